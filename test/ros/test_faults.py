"""Fault injection on the real node graph (separate processes, tiny real bundle).

One graph runs for the whole module; each test injects one fault into it (SIGSTOP,
SIGKILL, bad input, a run-time limit), checks that the coordinator degrades or holds
within its bound and says so on /diagnostics, and that it recovers on its own. What
was lost is counted: the coordinator's sequence ids must stay contiguous (no missed
tick) and no node but the one hurt may exit.
"""
from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped
from rcl_interfaces.srv import SetParameters
from sensor_msgs.msg import JointState

from heisd_msgs.msg import ActionChunk
from heisd_ros.ros.qos import SENSOR
from heisd_ros.ros.scripted_robot import ScriptedRobot
from ros_harness import SpinningNode, wait_for
from test_graph import fresh, graph_for, robot_joints
from test_node_params import call, double, string

pytestmark = pytest.mark.ros

HOLD = ActionChunk.SOURCE_HOLD
RETRIEVAL_SOURCES = {ActionChunk.SOURCE_RETRIEVAL, ActionChunk.SOURCE_RETRIEVAL_SKIP}
TIMEOUT_S = 0.5  # coordinator.service_timeout_s in this graph


class Diagnostics:
    """Every heisd /diagnostics status seen, as (receive time, node, message, values)."""

    def __init__(self, node) -> None:
        self.seen: list[tuple[float, str, str, dict[str, str]]] = []
        self._lock = threading.Lock()
        node.create_subscription(DiagnosticArray, "/diagnostics", self._on, 50)

    def _on(self, msg: DiagnosticArray) -> None:
        with self._lock:
            for s in msg.status:
                self.seen.append((time.monotonic(), s.name.removeprefix("heisd/"), s.message, {kv.key: kv.value for kv in s.values}))

    def of(self, node: str, since: float = 0.0) -> list[tuple[str, dict[str, str]]]:
        with self._lock:
            return [(m, v) for t, n, m, v in self.seen if n == node and t >= since]

    def latest(self, node: str) -> dict[str, str]:
        got = self.of(node)
        return got[-1][1] if got else {}

    def count(self, node: str, name: str) -> int:
        return int(self.latest(node).get(f"count.{name}", 0))


class LiveGraph:
    def __init__(self, bundle, graph, robot: ScriptedRobot, node, diagnostics: Diagnostics) -> None:
        self.bundle, self.graph, self.robot, self.node, self.diag = bundle, graph, robot, node, diagnostics

    def set(self, *parameters) -> None:
        result = call(self.node, SetParameters, "/coordinator/set_parameters", SetParameters.Request(parameters=list(parameters)))
        assert all(r.successful for r in result.results), [r.reason for r in result.results]
        time.sleep(0.5)  # an inference already running finishes with the old decoder

    def chunks_since(self, t: float) -> list[ActionChunk]:
        return [m for rt, m in list(self.robot.chunks) if rt >= t]

    def wait_fresh(self, since: float, n: int, timeout: float, what: str, sources: set[int] | None = None,
                   drafted: bool = False) -> None:
        def ok(m: ActionChunk) -> bool:
            return m.source != HOLD and (sources is None or m.source in sources) and (not drafted or m.drafted_tokens > 0)
        wait_for(lambda: sum(ok(m) for m in self.chunks_since(since)) >= n, timeout, what)

    def others_alive(self, hurt: str = "") -> None:
        for n in self.graph.nodes:
            if n.name != hurt:
                assert n.process.poll() is None, f"{n.name} exited with {n.process.returncode}: {n.output[-5:]}"


@pytest.fixture(scope="module")
def live(ros_context, tiny_bundle, tmp_path_factory):
    node = SpinningNode("test_faults")
    b, graph = graph_for(tiny_bundle, tmp_path_factory.mktemp("faults"), f"coordinator.service_timeout_s:={TIMEOUT_S}",
                         "coordinator.stale_observation_s:=1.0")
    robot = ScriptedRobot(node.node, robot_joints(b), b.camera_names, b.image_size, "lift the cube")
    g = LiveGraph(b, graph, robot, node.node, Diagnostics(node.node))
    graph.start()
    try:
        robot.start()
        wait_for(lambda: len(fresh(robot.chunks)) >= 5, 120, "fresh chunks from the graph")
        yield g
    finally:
        robot.stop()
        running = {n.name for n in graph.nodes if n.process.poll() is None}  # a failed test may leave one dead
        codes = {name: code for name, code in graph.stop().items() if name in running}
        node.close()
    seqs = [m.sequence_id for _, m in robot.chunks]
    assert np.all(np.diff(seqs) == 1), "the coordinator missed a tick or the robot lost a chunk"
    assert all(c == 0 for c in codes.values()), codes


def contiguous(chunks: list[ActionChunk]) -> None:
    seqs = np.array([m.sequence_id for m in chunks])
    assert len(seqs) and np.all(np.diff(seqs) == 1), f"sequence ids not contiguous: gaps after {seqs[:-1][np.diff(seqs) != 1]}"


def test_stalled_verifier_holds_within_the_timeout_and_resumes(live):
    live.set(string("method", "ar"))
    start = time.monotonic()
    live.wait_fresh(start, 3, 60, "AR chunks before the stall")
    failures = live.diag.count("coordinator", "inference_failures")
    verifier = live.graph.process("verifier")
    os.kill(verifier.pid, signal.SIGSTOP)
    stopped = time.monotonic()
    try:
        time.sleep(2.5)
    finally:
        os.kill(verifier.pid, signal.SIGCONT)
    resumed = time.monotonic()
    live.wait_fresh(resumed, 3, 60, "fresh chunks after SIGCONT")
    stall = [(t, m) for t, m in list(live.robot.chunks) if stopped <= t < resumed]
    # in flight when stopped: one call's timeout, then the queued actions drain (horizon ticks)
    bound = TIMEOUT_S + live.bundle.vla.horizon * 0.05 + 0.5
    late = [m for t, m in stall if t >= stopped + bound]
    assert len(stall) >= 0.6 * 2.5 * 20, f"only {len(stall)} chunks in 2.5 s: the control timer must not wait for the verifier"
    assert late and all(m.source == HOLD for m in late), [m.source for m in late]
    assert all(np.allclose(np.asarray(m.actions).reshape(m.horizon, m.dimension)[0, :6], 0.0) for m in late), "hold = no motion"
    assert max(np.diff([t for t, _ in stall])) < 0.5, "a tick waited for the stalled verifier"
    msgs = [msg for msg, _ in live.diag.of("coordinator", stopped)]
    assert any("did not answer within" in msg for msg in msgs), msgs
    wait_for(lambda: live.diag.count("coordinator", "inference_failures") > failures, 10, "the failure counted")
    contiguous(live.chunks_since(start))
    live.others_alive()


def test_killed_drafter_degrades_to_verified_ar_and_comes_back(live):
    live.set(string("method", "drafter"))
    start = time.monotonic()
    live.wait_fresh(start, 3, 60, "drafted chunks before the kill", drafted=True)
    fallbacks = live.diag.count("coordinator", "fallbacks")
    live.graph.process("drafter").kill()
    live.graph.process("drafter").wait(5)
    killed = time.monotonic()
    wait_for(lambda: live.diag.latest("coordinator").get("drafter") == "down", 20, "diagnostics to say drafter down")
    down = time.monotonic()
    live.wait_fresh(down, 5, 30, "chunks while the drafter is down")
    during = [m for m in live.chunks_since(down) if m.source != HOLD]
    live.others_alive("drafter")
    assert all(m.drafted_tokens == 0 and m.vla_forward_passes > 0 for m in during), "a dead drafter drafted?"
    assert all(m.source == ActionChunk.SOURCE_AR for m in during), "verified AR steps must be labelled AR"
    wait_for(lambda: live.diag.count("coordinator", "fallbacks") > fallbacks, 10, "the fallbacks counted")
    live.graph.respawn("drafter")
    back = time.monotonic()
    live.wait_fresh(back, 3, 90, "drafted chunks after the respawn", drafted=True)
    wait_for(lambda: live.diag.latest("coordinator").get("drafter") == "up", 10, "diagnostics to say drafter up")
    assert down - killed < 15
    contiguous(live.chunks_since(start))
    live.others_alive()


def test_killed_retrieval_cache_falls_back_to_the_drafter_and_comes_back(live):
    live.set(string("method", "heisd"), double("tau", 0.0))  # every defined metric picks retrieval
    start = time.monotonic()
    try:
        live.wait_fresh(start, 3, 60, "retrieval chunks before the kill", sources=RETRIEVAL_SOURCES)
        live.graph.process("retrieval_cache").kill()
        live.graph.process("retrieval_cache").wait(5)
        wait_for(lambda: live.diag.latest("coordinator").get("retrieval_cache") == "down", 20, "diagnostics to say retrieval down")
        down = time.monotonic()
        live.wait_fresh(down, 5, 30, "chunks while retrieval is down")
        during = [m for m in live.chunks_since(down) if m.source != HOLD]
        live.others_alive("retrieval_cache")
        assert not any(m.source in RETRIEVAL_SOURCES for m in during), [m.source for m in during]
        assert any(m.source == ActionChunk.SOURCE_DRAFTER and m.drafted_tokens > 0 for m in during)
        live.graph.respawn("retrieval_cache")
        live.wait_fresh(time.monotonic(), 3, 90, "retrieval chunks after the respawn", sources=RETRIEVAL_SOURCES)
    finally:
        live.set(double("tau", -1.0))
    contiguous(live.chunks_since(start))
    live.others_alive()


def test_killed_kinematic_encoder_makes_inputs_stale_then_recovers(live):
    live.set(string("method", "ar"))
    start = time.monotonic()
    live.wait_fresh(start, 3, 60, "chunks before the kill")
    live.graph.process("kinematic_encoder").kill()
    live.graph.process("kinematic_encoder").wait(5)
    killed = time.monotonic()
    time.sleep(3.0)
    # stale_observation_s (1 s), the inference in flight and the queued actions, then only holds
    late = [m for t, m in list(live.robot.chunks) if t >= killed + 1.0 + live.bundle.vla.horizon * 0.05 + 0.5]
    assert len(late) >= 20 and all(m.source == HOLD for m in late), [m.source for m in late]
    msgs = [msg for msg, _ in live.diag.of("coordinator", killed)]
    assert any("kinematic state is" in msg and "old" in msg for msg in msgs), msgs
    assert live.diag.count("coordinator", "stale_observations") > 0
    live.others_alive("kinematic_encoder")
    live.graph.respawn("kinematic_encoder")
    live.wait_fresh(time.monotonic(), 3, 90, "fresh chunks after the encoder returned")
    contiguous(live.chunks_since(start))
    live.others_alive()


def test_far_future_stamps_are_dropped_not_obeyed(live):
    """One JointState + pose stamped an hour ahead: without the check the coordinator would take
    it as the newest observation and ignore every real one until that hour had passed."""
    live.set(string("method", "ar"))
    joints = live.node.create_publisher(JointState, "/joint_states", SENSOR)
    pose_pub = live.node.create_publisher(PoseStamped, "/ee_pose", SENSOR)
    start = time.monotonic()
    live.wait_fresh(start, 3, 60, "chunks before the bad stamps")
    before = live.diag.count("kinematic_encoder", "future_stamps")
    future = live.node.get_clock().now().nanoseconds * 1e-9 + 3600.0
    for _ in range(5):
        js = JointState(name=robot_joints(live.bundle), position=[0.0] * len(robot_joints(live.bundle)))
        js.header.stamp.sec = int(future)
        pose = PoseStamped()
        pose.header.stamp.sec = int(future)
        pose.pose.orientation.w = 1.0
        joints.publish(js)
        pose_pub.publish(pose)
        time.sleep(0.05)
    sent = time.monotonic()
    wait_for(lambda: live.diag.count("kinematic_encoder", "future_stamps") >= before + 5, 10, "the encoder to count them")
    live.wait_fresh(sent + 0.5, 5, 30, "fresh chunks after the future-stamped samples")
    assert all(abs(m.observation_stamp.sec - int(future)) > 60 for m in live.chunks_since(start) if m.source != HOLD)
    live.node.destroy_publisher(joints)
    live.node.destroy_publisher(pose_pub)
    contiguous(live.chunks_since(start))
    live.others_alive()


def test_run_time_action_limit_clamps_every_published_action(live):
    live.set(string("method", "ar"), double("action_limit", 0.01))
    try:
        start = time.monotonic()
        live.wait_fresh(start, 10, 60, "chunks under the tight limit")
        got = live.chunks_since(start)
        actions = np.concatenate([np.asarray(m.actions) for m in got])
        assert np.all(np.abs(actions) <= 0.01 + 1e-12), "every published action (queued ones too) within the limit"
        assert any(m.clamped for m in got), "the hold gripper -1 alone must be clamped to -0.01"
        wait_for(lambda: live.diag.count("coordinator", "clamped") > 0, 10, "clamping counted in diagnostics")
    finally:
        live.set(double("action_limit", 1.0))
    contiguous(live.chunks_since(start))
    live.others_alive()


def test_frames_out_of_sync_with_the_kinematic_state_are_not_paired_with_it(live):
    """Frames stamped half a tick off every kinematic state: nothing is inferred (waits counted and
    reported), HOLD is published meanwhile; a tolerance that covers the offset pairs each frame
    with the state closest to it."""
    before = live.diag.count("coordinator", "sync_waits")
    live.robot.image_lag_s = 0.025  # the robot ticks at 20 Hz: 25 ms from the states on either side
    try:
        time.sleep(0.5)  # chunks computed before the lag took effect drain
        start = time.monotonic()
        time.sleep(2.0)
        assert not [m for m in live.chunks_since(start) if m.source != HOLD], "inferred from unsynchronised inputs"
        wait_for(lambda: live.diag.count("coordinator", "sync_waits") > before + 5, 10, "sync waits counted")
        assert any("not synchronised" in m for m, _ in live.diag.of("coordinator", since=start)), \
            "the coordinator's status says why it holds"
        live.set(double("sync_tolerance_s", 0.04))
        paired = time.monotonic()
        live.wait_fresh(paired, 5, 30, "fresh chunks once the tolerance covers the offset")
        got = [m for m in live.chunks_since(paired) if m.source != HOLD]
        states = np.array([s.header.stamp.sec + s.header.stamp.nanosec * 1e-9 for s in list(live.robot.states)])
        used = np.array([m.observation_stamp.sec + m.observation_stamp.nanosec * 1e-9 for m in got])
        assert np.all(np.abs(used[:, None] - states[None]).min(axis=1) < 1e-5), "each chunk names the kinematic state it used"
    finally:
        live.robot.image_lag_s = 0.0
        live.set(double("sync_tolerance_s", 0.01))
    live.wait_fresh(time.monotonic(), 3, 30, "fresh chunks with synchronised inputs again")
    contiguous(live.chunks_since(start))
    live.others_alive()
