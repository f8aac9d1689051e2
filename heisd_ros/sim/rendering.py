"""Choice of MuJoCo's headless OpenGL backend.

MuJoCo reads ``MUJOCO_GL`` once, when it is first imported, and a backend whose
libraries are missing fails only at that import (or at the first render). So
the choice is made before robosuite or mujoco is imported, by probing each
candidate in a short-lived subprocess. An explicit ``MUJOCO_GL`` in the
environment is an override and is never probed away.
"""
from __future__ import annotations

import os
import subprocess
import sys

CANDIDATES: tuple[str, ...] = ("egl", "osmesa")

_PROBE = (
    "import mujoco\n"
    "m = mujoco.MjModel.from_xml_string('<mujoco><worldbody><geom size=\"1\"/></worldbody></mujoco>')\n"
    "r = mujoco.Renderer(m, 8, 8)\n"
    "r.update_scene(mujoco.MjData(m))\n"
    "assert r.render().shape == (8, 8, 3)\n"
    "r.close()\n"
)


class RenderBackendError(RuntimeError):
    """No headless OpenGL backend works on this machine."""


def probe_backend(name: str, timeout_s: float = 60.0) -> bool:
    """True if MuJoCo renders one frame with ``MUJOCO_GL=name`` in a fresh process."""
    env = dict(os.environ, MUJOCO_GL=name)
    try:
        done = subprocess.run(
            [sys.executable, "-c", _PROBE], env=env, capture_output=True, timeout=timeout_s
        )
    except subprocess.TimeoutExpired:
        return False
    return done.returncode == 0


def select_gl_backend(candidates: tuple[str, ...] = CANDIDATES) -> str:
    """Set and return ``MUJOCO_GL``: the user's value if set, else the first working candidate.

    The result is written to ``os.environ`` so that worker processes inherit it
    without probing again.
    """
    chosen = os.environ.get("MUJOCO_GL", "").strip().lower()
    if chosen:
        return chosen
    for name in candidates:
        if probe_backend(name):
            os.environ["MUJOCO_GL"] = name
            return name
    raise RenderBackendError(
        f"none of the headless OpenGL backends {list(candidates)} can render here; install "
        "libegl1 (EGL) or libosmesa6 (OSMesa), or set MUJOCO_GL explicitly"
    )
