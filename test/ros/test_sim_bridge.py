"""The sim bridge as a robot: topics, lockstep execution of commands, realtime holding, /clock."""
from __future__ import annotations

import numpy as np
import pytest
from geometry_msgs.msg import PoseStamped
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import String

from ros_harness import wait_for
from heisd_msgs.msg import ActionChunk, EpisodeStatus
from heisd_ros.ros.config import apply_overrides, load_config, write_params_file
from heisd_ros.ros.convert import image_to_rgb8, make_action_chunk
from heisd_ros.ros.graph import NodeGraph
from heisd_ros.ros.qos import COMMAND, LATCHED, SENSOR

pytestmark = [pytest.mark.ros, pytest.mark.sim]
NAMES = ["dx", "dy", "dz", "droll", "dpitch", "dyaw", "gripper"]


def bridge(tmp_path, *overrides):
    config = apply_overrides(load_config(), ["sim_bridge.image_size:=32", "sim_bridge.max_steps:=12", *overrides])
    params = write_params_file({"sim_bridge": config["sim_bridge"]}, tmp_path / "p.yaml")
    return NodeGraph(["sim_bridge"], params, stream=None).start()


def collect(node, msg_type, topic, qos):
    got = []
    node.create_subscription(msg_type, topic, got.append, qos)
    return got


def test_lockstep_executes_each_fresh_command_once(ros_node, tmp_path):
    n = ros_node.node
    joints, poses = collect(n, JointState, "/joint_states", SENSOR), collect(n, PoseStamped, "/ee_pose", SENSOR)
    images, status = collect(n, Image, "/camera/agentview/image_raw", SENSOR), collect(n, EpisodeStatus, "/sim_bridge/episode", COMMAND)
    instructions = collect(n, String, "/heisd/instruction", LATCHED)
    pub = n.create_publisher(ActionChunk, "/coordinator/action_chunk", COMMAND)
    graph = bridge(tmp_path, "sim_bridge.action_timeout_s:=60.0")
    try:
        wait_for(lambda: len(poses) >= 1 and pub.get_subscription_count() > 0, 90, "the first observation")
        z0 = poses[-1].pose.position.z
        up = np.array([0, 0, 1.0, 0, 0, 0, -1.0])
        for seq in range(1, 6):
            before = len(status)
            pub.publish(make_action_chunk(up, NAMES, n.get_clock().now().to_msg(), 0.05, ActionChunk.SOURCE_AR, seq))
            wait_for(lambda: len(status) > before, 30, f"step {seq}")
        hold = make_action_chunk(up, NAMES, n.get_clock().now().to_msg(), 0.05, ActionChunk.SOURCE_HOLD, 99)
        pub.publish(hold)  # a hold chunk is not a fresh action: no step
        wait_for(lambda: len(status) >= 5, 5, "5 statuses")
    finally:
        graph.stop()
    assert [s.step for s in status[:5]] == [1, 2, 3, 4, 5]
    assert status[4].fresh_actions == 5 and status[4].held_steps == 0 and not status[4].done
    assert poses[-1].pose.position.z > z0 + 0.02, "moving up for 5 steps must raise the end effector"
    assert instructions and instructions[0].data == "lift the cube"
    frame = image_to_rgb8(images[-1])
    assert frame.shape == (32, 32, 3) and frame.std() > 0
    # the frames are the scene the simulator renders in-process for that seed (a bridge that
    # rendered off its GL context's thread published black frames and noise)
    from heisd_ros.sim.env import SimEnv

    with SimEnv("lift", cameras=("agentview",), image_size=32) as env:
        expected = env.reset(load_config()["sim_bridge"]["seed"]).images["agentview"]
    first = image_to_rgb8(images[0])
    assert np.abs(first.astype(int) - expected.astype(int)).mean() < 2.0
    assert "robot0_joint1" in joints[-1].name and len(joints[-1].name) == len(joints[-1].position)


def test_realtime_advances_and_holds_without_commands(ros_node, tmp_path):
    n = ros_node.node
    status, clock = collect(n, EpisodeStatus, "/sim_bridge/episode", COMMAND), collect(n, Clock, "/clock", 10)
    graph = bridge(tmp_path, "sim_bridge.timing_mode:=realtime", "sim_bridge.control_rate_hz:=10.0")
    try:
        wait_for(lambda: any(s.done for s in status), 120, "the episode to run out")
    finally:
        graph.stop()
    last = [s for s in status if s.done][0]
    assert last.reason == "max_steps" and last.step == 12 and last.held_steps == 12 and last.fresh_actions == 0
    assert last.realtime_factor > 0
    stamps = [c.clock.sec + c.clock.nanosec * 1e-9 for c in clock]
    assert stamps == sorted(stamps) and stamps[-1] == pytest.approx(1.2, abs=1e-6)
