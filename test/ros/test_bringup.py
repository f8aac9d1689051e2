"""heisd bringup and the process graph: prefixed logs, clean Ctrl-C, a dying node."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

import pytest

from ros_harness import DOMAIN_ID, wait_for
from heisd_ros.ros.config import apply_overrides, load_config, write_params_file
from heisd_ros.ros.graph import NodeGraph

pytestmark = pytest.mark.ros


def test_bringup_starts_nodes_and_stops_them_on_ctrl_c(tiny_bundle):
    proc = subprocess.Popen(
        [sys.executable, "-m", "heisd_ros", "bringup", "--nodes", "drafter", "coordinator", "--domain-id", str(DOMAIN_ID),
         "--set", "coordinator.tau:=0.25", "--bundle", tiny_bundle],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True)
    reader.start()
    try:
        wait_for(lambda: sum("]: parameters: " in line for line in lines) >= 2, 90, "both nodes to report their parameters")
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    reader.join(5)
    text = "".join(lines)
    assert proc.returncode == 0, text
    assert any(line.startswith("[coordinator] ") and "tau=0.25" in line for line in lines), text
    assert any(line.startswith("[drafter] ") for line in lines), text


def test_bringup_rejects_a_bad_override_before_starting():
    proc = subprocess.run([sys.executable, "-m", "heisd_ros", "bringup", "--set", "coordinator.top_k:=0"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "coordinator.top_k: 0 is outside [1, 32]" in proc.stderr


def test_graph_reports_a_dead_node_or_restarts_it(tmp_path, tiny_bundle):
    params = write_params_file(apply_overrides(load_config(), [f"drafter.bundle:={tiny_bundle}"]), tmp_path / "p.yaml")
    graph = NodeGraph(["drafter"], params, env=dict(os.environ), stream=None).start()
    try:
        wait_for(lambda: any("]: parameters: " in line for line in graph.nodes[0].output), 60, "drafter start")
        graph.process("drafter").kill()
        assert graph.wait(timeout=10) == 1
    finally:
        graph.stop()

    graph = NodeGraph(["drafter"], params, env=dict(os.environ), stream=None, restart=True).start()
    try:
        first = graph.process("drafter")
        wait_for(lambda: any("]: parameters: " in line for line in graph.nodes[0].output), 60, "drafter start")
        first.kill()
        first.wait(5)
        assert graph.wait(timeout=3) == 0  # restarted: nothing reported dead
        assert graph.nodes[0].restarts == 1 and graph.process("drafter") is not first
        assert graph.process("drafter").poll() is None
        wait_for(lambda: sum("]: parameters: " in line for line in graph.nodes[0].output) >= 2, 60, "the restarted drafter")
    finally:
        codes = graph.stop()
    assert codes["drafter"] == 0


def test_nodes_do_not_outlive_a_killed_bringup(tiny_bundle):
    proc = subprocess.Popen([sys.executable, "-m", "heisd_ros", "bringup", "--nodes", "drafter", "--domain-id", str(DOMAIN_ID),
                             "--bundle", tiny_bundle], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True).start()
    try:
        wait_for(lambda: any("]: parameters: " in line for line in lines), 90, "the drafter to start")
        children = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
        assert children, "bringup has no child process"
        proc.kill()  # SIGKILL: bringup gets no chance to stop its nodes
        proc.wait(10)
        wait_for(lambda: not any(os.path.exists(f"/proc/{pid}") and "zombie" not in open(f"/proc/{pid}/status").read().lower()
                                 for pid in children), 30, "the orphaned drafter to stop")
    finally:
        if proc.poll() is None:
            proc.kill()
