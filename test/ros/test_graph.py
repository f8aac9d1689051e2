"""The whole inference graph in separate processes on a tiny real bundle: it publishes
action chunks at the configured rate, follows a run-time parameter change, and survives
the verifier dying and coming back."""
from __future__ import annotations

import os
import sys
import time

import numpy as np
import pytest
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters

from ros_harness import wait_for
from heisd_msgs.msg import ActionChunk
from heisd_ros.bundle import load_bundle
from heisd_ros.ros.config import apply_overrides, load_config, write_params_file
from heisd_ros.ros.graph import DEFAULT_NODES, NodeGraph
from heisd_ros.ros.scripted_robot import ScriptedRobot
from test_node_params import call

pytestmark = pytest.mark.ros


def graph_for(bundle, tmp_path, *overrides):
    b = load_bundle(bundle)
    nodes = list(DEFAULT_NODES)
    config = apply_overrides(load_config(), [f"{n}.bundle:={bundle}" for n in nodes] + [
        "kinematic_encoder.gripper_joints:=['']", "verifier.warmup_steps:=1",
        # one torch thread per model process: on a busy 2-core machine two threads each made
        # an AR verification take longer than the tests' service timeout
        "verifier.num_threads:=1", "drafter.num_threads:=1", "coordinator.num_threads:=1", *overrides])
    params = write_params_file({n: config[n] for n in nodes}, tmp_path / "p.yaml")
    return b, NodeGraph(nodes, params, stream=None if not os.environ.get("HEISD_TEST_NODE_LOGS") else sys.stderr)


def robot_joints(b):
    return b.joint_names + list(getattr(b.interface.inputs, "gripper_joints", []))


def shm_mappings(pid: int) -> list[str]:
    """The Fast DDS shared-memory segments a process has mapped."""
    with open(f"/proc/{pid}/maps") as f:
        return sorted({line.split()[-1] for line in f if "/dev/shm/fastdds" in line})


def fresh(chunks):
    return [m for _, m in chunks if m.source != ActionChunk.SOURCE_HOLD]


def test_graph_publishes_verified_actions_at_the_control_rate(ros_node, tiny_bundle, tmp_path):
    b, graph = graph_for(tiny_bundle, tmp_path, "coordinator.control_rate_hz:=20.0")
    robot = ScriptedRobot(ros_node.node, robot_joints(b), b.camera_names, b.image_size, "lift the cube")
    graph.start()
    try:
        robot.start()
        wait_for(lambda: len(fresh(robot.chunks)) >= 20, 120, "20 fresh action chunks")
        t0 = len(robot.chunks)
        time.sleep(3.0)
        window = robot.chunks[t0:]
        # a run-time parameter change takes effect: switch the coordinator to plain AR
        result = call(ros_node.node, SetParameters, "/coordinator/set_parameters", SetParameters.Request(
            parameters=[Parameter(name="method", value=ParameterValue(type=ParameterType.PARAMETER_STRING, string_value="ar"))]))
        assert result.results[0].successful, result.results[0].reason
        time.sleep(1.0)  # an inference already running finishes with the old decoder
        switched = len(robot.chunks)
        wait_for(lambda: len(fresh(robot.chunks[switched:])) >= 10, 60, "10 chunks after the switch")
        after = fresh(robot.chunks[switched:])
        # no process of the graph, nor this one, talks over Fast DDS shared memory (the loopback
        # profile): a node killed by a test would leave its segments, where a later process can block
        shm = {name: shm_mappings(graph.process(name).pid) for name in DEFAULT_NODES} | {"test": shm_mappings(os.getpid())}
    finally:
        robot.stop()
        codes = graph.stop()
    assert all(c == 0 for c in codes.values()), codes
    assert not any(shm.values()), shm
    stamps = np.array([t for t, _ in window])
    period = np.diff(stamps)
    assert len(window) >= 45, f"{len(window)} chunks in 3 s at 20 Hz"
    assert abs(np.median(period) - 0.05) < 0.01, f"median period {np.median(period):.4f} s"
    seqs = [m.sequence_id for _, m in window]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    got = fresh(robot.chunks)
    assert all(m.dimension == 7 and list(m.dimension_names) == b.action_names for m in got)
    assert all(np.all(np.isfinite(m.actions)) and np.all(np.abs(m.actions) <= 1.0) for m in got)
    sources = {m.source for m in got}
    assert sources <= {ActionChunk.SOURCE_AR, ActionChunk.SOURCE_DRAFTER, ActionChunk.SOURCE_RETRIEVAL,
                       ActionChunk.SOURCE_RETRIEVAL_SKIP}
    assert any(m.vla_forward_passes > 0 for m in got)
    assert any(s.metric_defined for s in robot.states), "the encoder never filled its window"
    assert all(m.source == ActionChunk.SOURCE_AR for m in after), [m.source for m in after]


def test_verifier_death_holds_then_recovers(ros_node, tiny_bundle, tmp_path):
    b, graph = graph_for(tiny_bundle, tmp_path, "coordinator.service_timeout_s:=0.5", "coordinator.method:=ar")
    robot = ScriptedRobot(ros_node.node, robot_joints(b), b.camera_names, b.image_size, "lift the cube")
    graph.start()
    try:
        robot.start()
        wait_for(lambda: len(fresh(robot.chunks)) >= 5, 120, "fresh chunks before the fault")
        graph.process("verifier").kill()
        graph.process("verifier").wait(5)
        time.sleep(1.5)
        mark = len(robot.chunks)
        time.sleep(2.0)
        during = [m for _, m in robot.chunks[mark:]]
        graph.respawn("verifier")
        wait_for(lambda: len(fresh(robot.chunks[mark + len(during):])) >= 5, 120, "fresh chunks after the verifier returned")
    finally:
        robot.stop()
        graph.stop()
    assert len(during) >= 30, "the control timer must keep publishing while the verifier is down"
    assert all(m.source == ActionChunk.SOURCE_HOLD for m in during)
    assert all(list(m.actions)[:6] == [0.0] * 6 for m in during), "hold = no motion"
