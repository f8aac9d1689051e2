"""heisd bringup and the process graph: prefixed logs, clean Ctrl-C, a dying node."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import DOMAIN_ID, wait_for
from heisd_ros.ros.config import load_config, write_params_file
from heisd_ros.ros.graph import NodeGraph

pytestmark = pytest.mark.ros


def test_bringup_starts_nodes_and_stops_them_on_ctrl_c():
    proc = subprocess.Popen(
        [sys.executable, "-m", "heisd_ros", "bringup", "--nodes", "drafter", "coordinator", "--domain-id", str(DOMAIN_ID),
         "--set", "coordinator.tau:=0.25"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and sum("started with" in line for line in lines) < 2:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    text = "".join(lines) + out
    assert proc.returncode == 0, text
    assert any(line.startswith("[coordinator] ") and "tau=0.25" in line for line in lines), text
    assert any(line.startswith("[drafter] ") for line in lines), text


def test_bringup_rejects_a_bad_override_before_starting():
    proc = subprocess.run([sys.executable, "-m", "heisd_ros", "bringup", "--set", "coordinator.top_k:=0"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "coordinator.top_k: 0 is outside [1, 32]" in proc.stderr


def test_graph_reports_a_dead_node_or_restarts_it(tmp_path):
    params = write_params_file(load_config(), tmp_path / "p.yaml")
    graph = NodeGraph(["drafter"], params, env=dict(os.environ), stream=None).start()
    try:
        wait_for(lambda: any("started with" in line for line in graph.nodes[0].output), 30, "drafter start")
        graph.process("drafter").kill()
        assert graph.wait(timeout=10) == 1
    finally:
        graph.stop()

    graph = NodeGraph(["drafter"], params, env=dict(os.environ), stream=None, restart=True).start()
    try:
        first = graph.process("drafter")
        wait_for(lambda: any("started with" in line for line in graph.nodes[0].output), 30, "drafter start")
        first.kill()
        first.wait(5)
        assert graph.wait(timeout=3) == 0  # restarted: nothing reported dead
        assert graph.nodes[0].restarts == 1 and graph.process("drafter") is not first
        assert graph.process("drafter").poll() is None
    finally:
        codes = graph.stop()
    assert codes["drafter"] == 0
