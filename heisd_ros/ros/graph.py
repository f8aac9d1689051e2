"""Start the heisd_ros node executables as separate processes (pip-only bring-up).

What ``ros2 launch`` does for a ROS 2 install, without launch_ros: one process
per node with the same parameter file, output prefixed with the node name,
clean shutdown (SIGINT, then SIGTERM, then SIGKILL), and a policy for a node
that dies: stop the graph and report, or restart it.
"""
from __future__ import annotations

import ctypes
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Callable, Mapping, Sequence

from heisd_ros.ros.param_specs import NODE_PARAMS

log = logging.getLogger("heisd.graph")

# The inference graph; the simulation bridge is added when a simulated robot is wanted.
DEFAULT_NODES = ("kinematic_encoder", "retrieval_cache", "drafter", "verifier", "coordinator")


def _stop_with_parent() -> None:
    """In the child, before exec: get SIGTERM when the supervising process dies, even by SIGKILL,
    so no node outlives its graph (Linux prctl PR_SET_PDEATHSIG; elsewhere a no-op)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG = 1
    except OSError:
        pass


def failed_exits(codes: Mapping[str, int | None]) -> dict[str, int | None]:
    """The nodes of ``NodeGraph.stop()``'s exit codes that failed: 0, -SIGINT and a node never started are clean."""
    return {n: c for n, c in codes.items() if c not in (0, None, -signal.SIGINT)}


def node_command(node: str, params_file: str | Path, extra_ros_args: Sequence[str] = ()) -> list[str]:
    """Command line of one node: its console script next to this Python, else ``python -m``."""
    if node not in NODE_PARAMS:
        raise ValueError(f"unknown node {node!r}; known: {', '.join(NODE_PARAMS)}")
    script = Path(sys.executable).parent / f"heisd-{node.replace('_', '-')}"
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", f"heisd_ros.nodes.{node}"]
    return cmd + ["--ros-args", "--params-file", str(params_file), *extra_ros_args]


@dataclass
class NodeProcess:
    name: str
    command: list[str]
    process: subprocess.Popen | None = None
    restarts: int = 0
    started_at: float = 0.0
    output: list[str] = field(default_factory=list)  # last lines, for error reports


class NodeGraph:
    """A set of node processes that live and die together."""

    def __init__(self, nodes: Sequence[str], params_file: str | Path, env: Mapping[str, str] | None = None,
                 use_sim_time: bool = False, restart: bool = False, max_restarts: int = 5,
                 stream: IO[str] | None = sys.stdout, on_line: Callable[[str, str], None] | None = None):
        extra = ["-p", "use_sim_time:=true"] if use_sim_time else []
        self.nodes = [NodeProcess(n, node_command(n, params_file, extra)) for n in nodes]
        self.env = dict(env if env is not None else os.environ)
        self.restart = restart
        self.max_restarts = max_restarts
        self.stream = stream  # None: keep the output only in NodeProcess.output (and on_line)
        self.on_line = on_line
        self._lock = threading.Lock()
        self._stopping = False

    # Life cycle ------------------------------------------------------------------
    def start(self) -> "NodeGraph":
        for node in self.nodes:
            self._spawn(node)
        return self

    def _spawn(self, node: NodeProcess) -> None:
        node.process = subprocess.Popen(
            node.command, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
            start_new_session=True,  # Ctrl-C in the terminal reaches us, and we stop the nodes in order
            preexec_fn=_stop_with_parent,
        )
        node.started_at = time.monotonic()
        threading.Thread(target=self._pump, args=(node, node.process), daemon=True).start()
        log.debug("started %s (pid %d): %s", node.name, node.process.pid, " ".join(node.command))

    def _pump(self, node: NodeProcess, proc: subprocess.Popen) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip("\n")
            node.output = (node.output + [line])[-50:]
            with self._lock:
                if self.stream is not None:
                    print(f"[{node.name}] {line}", file=self.stream, flush=True)
            if self.on_line is not None:
                self.on_line(node.name, line)

    def poll(self) -> list[tuple[str, int]]:
        """Check the processes once; restart or report those that exited."""
        dead = []
        for node in self.nodes:
            proc = node.process
            if proc is None or proc.poll() is None or self._stopping:
                continue
            code = proc.returncode
            if self.restart and node.restarts < self.max_restarts:
                node.restarts += 1
                log.warning("%s exited with code %s; restarting (%d/%d)", node.name, code, node.restarts, self.max_restarts)
                self._spawn(node)
            else:
                dead.append((node.name, code))
        return dead

    def wait(self, timeout: float | None = None, until: Callable[[], bool] | None = None) -> int:
        """Block until a node dies (returns 1), ``until()`` is true or the timeout passes (returns 0)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while deadline is None or time.monotonic() < deadline:
            dead = self.poll()
            if dead:
                for name, code in dead:
                    log.error("node %s exited with code %s", name, code)
                return 1
            if until is not None and until():
                return 0
            time.sleep(0.1)
        return 0

    def stop(self, grace_s: float = 10.0) -> dict[str, int | None]:
        """SIGINT every node, then SIGTERM and SIGKILL the ones that linger. Returns exit codes.

        The grace is generous because it only costs time when a node is slow to exit:
        on a loaded 2-core machine a node finishing an inference took more than 5 s.
        """
        self._stopping = True
        running = [n for n in self.nodes if n.process is not None and n.process.poll() is None]
        for sig, wait_s in ((signal.SIGINT, grace_s), (signal.SIGTERM, 2.0), (signal.SIGKILL, 2.0)):
            for node in running:
                if node.process.poll() is None:
                    try:
                        node.process.send_signal(sig)
                    except ProcessLookupError:
                        pass
            deadline = time.monotonic() + wait_s
            while time.monotonic() < deadline and any(n.process.poll() is None for n in running):
                time.sleep(0.05)
            running = [n for n in running if n.process.poll() is None]
            if not running:
                break
            log.warning("still running after %s: %s", sig.name, ", ".join(n.name for n in running))
            if sig == signal.SIGINT:  # where a lingering node was, for the report
                for n in running:
                    log.warning("%s, last output:\n  %s", n.name, "\n  ".join(n.output[-8:]) or "(none)")
        return {n.name: (n.process.returncode if n.process else None) for n in self.nodes}

    def process(self, name: str) -> subprocess.Popen:
        for node in self.nodes:
            if node.name == name and node.process is not None:
                return node.process
        raise KeyError(name)

    def respawn(self, name: str) -> None:
        """Start a node again (after a test or an operator stopped it)."""
        for node in self.nodes:
            if node.name == name:
                if node.process is not None and node.process.poll() is None:
                    raise RuntimeError(f"{name} is still running")
                self._spawn(node)
                return
        raise KeyError(name)

    def __enter__(self) -> "NodeGraph":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def have_ros_launch() -> bool:
    """True when launch_ros and the ros2 CLI are installed (a full ROS 2 install)."""
    try:
        import launch_ros  # noqa: F401
    except ImportError:
        return False
    return shutil.which("ros2") is not None
