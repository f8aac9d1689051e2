"""heisd_msgs across real processes over DDS, checked field by field."""
from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

import samples
from ros_harness import call_service, wait_for
from heisd_msgs.msg import ActionChunk, KinematicState
from heisd_msgs.srv import Verify
from heisd_ros.ros.qos import COMMAND

pytestmark = pytest.mark.ros
PEER = Path(__file__).with_name("peer.py")


def start_peer(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(PEER), *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def stop_peer(proc: subprocess.Popen) -> str:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=15)
    return out


def test_kinematic_state_from_another_process(ros_node):
    received: list[KinematicState] = []
    ros_node.node.create_subscription(KinematicState, "/heisd_test/kinematic", received.append, COMMAND)
    peer = start_peer("publish_kinematic", "5")
    try:
        wait_for(lambda: len(received) >= 5, 30, "5 KinematicState messages")
    finally:
        out = stop_peer(peer)
    assert peer.returncode == 0, out
    for seq, msg in enumerate(received[:5]):
        diff = samples.first_difference(msg, samples.kinematic_state(seq))
        assert diff is None, f"message {seq}: {diff}"


def test_action_chunk_round_trip(ros_node):
    peer = start_peer("echo_chunk")
    echoed: list[ActionChunk] = []
    try:
        pub = ros_node.node.create_publisher(ActionChunk, "/heisd_test/chunk_in", COMMAND)
        ros_node.node.create_subscription(ActionChunk, "/heisd_test/chunk_out", echoed.append, COMMAND)
        wait_for(lambda: pub.get_subscription_count() > 0 and ros_node.node.count_publishers("/heisd_test/chunk_out") > 0,
                 30, "the echo peer to match")
        sent = [samples.action_chunk(seq) for seq in range(3)]
        for msg in sent:
            pub.publish(msg)
        wait_for(lambda: len(echoed) >= 3, 15, "3 echoed chunks")
    finally:
        out = stop_peer(peer)
    assert peer.returncode == 0, out
    by_id = {m.sequence_id: m for m in echoed}
    for msg in sent:
        back = by_id[msg.sequence_id + 1000]
        back.sequence_id -= 1000
        assert samples.first_difference(back, msg) is None, samples.first_difference(back, msg)


def test_verify_service_across_processes(ros_node):
    peer = start_peer("verify_service")
    try:
        response = call_service(ros_node.node, Verify, "/heisd_test/verify", samples.verify_request())
    finally:
        out = stop_peer(peer)
    assert peer.returncode == 0, out
    expected = samples.verify_response_for(samples.verify_request())
    assert samples.first_difference(response, expected) is None, samples.first_difference(response, expected)
    # the values depend on the request, so a wrong routing of fields would show
    assert list(response.tokens) == list(range(106, 99, -1))
    assert response.message == "lift the cube|3x4"
