"""Choice of MuJoCo's OpenGL backend."""
from __future__ import annotations

import pytest

from heisd_ros.sim import rendering


def test_explicit_mujoco_gl_is_an_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MUJOCO_GL", "OSMesa")
    monkeypatch.setattr(rendering, "probe_backend", lambda name: pytest.fail("must not probe"))
    assert rendering.select_gl_backend() == "osmesa"


def test_first_working_backend_is_chosen_and_exported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MUJOCO_GL", raising=False)
    monkeypatch.setattr(rendering, "probe_backend", lambda name: name == "osmesa")
    assert rendering.select_gl_backend(("egl", "osmesa")) == "osmesa"
    import os

    assert os.environ["MUJOCO_GL"] == "osmesa"


def test_no_working_backend_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MUJOCO_GL", raising=False)
    monkeypatch.setattr(rendering, "probe_backend", lambda name: False)
    with pytest.raises(rendering.RenderBackendError, match="libegl1"):
        rendering.select_gl_backend()


@pytest.mark.sim
def test_probe_really_renders_and_rejects_unknown_backends() -> None:
    assert rendering.probe_backend("no-such-backend") is False
    assert any(rendering.probe_backend(name) for name in rendering.CANDIDATES)
