"""The kinematic encoder in its own process: end-effector poses by forward kinematics of a
robot model, the fused metric once the window fills, resets, and bad joint states dropped."""
from __future__ import annotations

import math
import time

import numpy as np
import pytest
from sensor_msgs.msg import JointState
from std_msgs.msg import String

from heisd_msgs.msg import KinematicState
from heisd_ros.ros.config import apply_overrides, load_config, write_params_file
from heisd_ros.ros.graph import NodeGraph
from heisd_ros.ros.qos import COMMAND, LATCHED, SENSOR
from ros_harness import wait_for

pytestmark = pytest.mark.ros
ARM = """<mujoco><worldbody>
 <body name="l1"><joint name="j1" type="hinge" axis="0 0 1"/><geom type="capsule" fromto="0 0 0 0.5 0 0" size="0.02"/>
  <body name="l2" pos="0.5 0 0"><joint name="j2" type="hinge" axis="0 0 1"/><geom type="capsule" fromto="0 0 0 0.3 0 0" size="0.02"/>
   <site name="tip" pos="0.3 0 0"/></body></body></worldbody></mujoco>"""


def test_forward_kinematics_source_and_bad_samples(ros_node, tiny_bundle, tmp_path):
    model = tmp_path / "arm.xml"
    model.write_text(ARM)
    config = apply_overrides(load_config(), [
        f"kinematic_encoder.bundle:={tiny_bundle}", "kinematic_encoder.ee_source:=model",
        f"kinematic_encoder.robot_model:={model}", "kinematic_encoder.ee_frames:=[tip]", "kinematic_encoder.ee_names:=[hand]",
        "kinematic_encoder.gripper_joints:=['']", "kinematic_encoder.joint_names:=[j1, j2]"])
    params = write_params_file({"kinematic_encoder": config["kinematic_encoder"]}, tmp_path / "p.yaml")
    n = ros_node.node
    states: list[KinematicState] = []
    n.create_subscription(KinematicState, "/kinematic_encoder/kinematic_state", states.append, COMMAND)
    joints = n.create_publisher(JointState, "/joint_states", SENSOR)
    instruction = n.create_publisher(String, "/heisd/instruction", LATCHED)
    graph = NodeGraph(["kinematic_encoder"], params, stream=None).start()
    sent = []
    try:
        wait_for(lambda: joints.get_subscription_count() > 0, 60, "the encoder to subscribe")
        instruction.publish(String(data="lift the cube"))
        time.sleep(0.5)
        for k in range(8):
            a, b = 0.1 * k, 0.5 - 0.05 * k
            js = JointState(name=["j2", "extra", "j1"], position=[b, 7.0, a])  # reordered, with an extra joint
            js.header.stamp = n.get_clock().now().to_msg()
            joints.publish(js)
            sent.append((a, b))
            if k == 3:
                bad = JointState(name=["j2", "j1"], position=[math.nan, 0.0])
                bad.header.stamp = n.get_clock().now().to_msg()
                joints.publish(bad)  # dropped, must not break the window
            time.sleep(0.05)
        wait_for(lambda: len(states) >= 8, 30, "8 kinematic states")
    finally:
        graph.stop()
    for (a, b), s in zip(sent, states):
        p = s.ee_poses[0].position
        assert (p.x, p.y) == pytest.approx((0.5 * np.cos(a) + 0.3 * np.cos(a + b), 0.5 * np.sin(a) + 0.3 * np.sin(a + b)), abs=1e-9)
        assert list(s.joint_names) == ["j1", "j2"] and list(s.joint_positions) == pytest.approx([a, b])
    assert [s.metric_defined for s in states[:8]] == [False] * 4 + [True] * 4
    assert all(0.0 <= s.fused_metric <= 1.0 for s in states[4:8]) and s.window == 5
