"""A scripted stand-in robot for bring-up checks, graph tests and latency benchmarks
(the simulated robot is sim_bridge): publishes joint states, an end-effector pose on a
smooth circle, camera frames and the instruction at a fixed rate, and records what
the coordinator commands and what the kinematic encoder reports, with receive times.

Joint and camera names come from the bundle, so any bundle can be exercised without
a simulator; the graph under test is the real one.
"""
from __future__ import annotations

import math
import threading
import time

import numpy as np
from geometry_msgs.msg import PoseStamped
from rclpy.node import Node
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import String

from heisd_msgs.msg import ActionChunk, KinematicState
from heisd_ros.ros.convert import rgb8_to_image, seconds_to_stamp, stamp_to_seconds
from heisd_ros.ros.qos import LATCHED, RECORDER, SENSOR


class ScriptedRobot:
    def __init__(self, node: Node, joint_names: list[str], cameras: list[str], image_size: int,
                 instruction: str, rate_hz: float = 20.0, gripper_joint: str | None = None) -> None:
        self.node, self.joint_names, self.cameras = node, joint_names, cameras
        self.image_size, self.instruction, self.period = image_size, instruction, 1.0 / rate_hz
        self.joints = node.create_publisher(JointState, "/joint_states", SENSOR)
        self.pose = node.create_publisher(PoseStamped, "/ee_pose", SENSOR)
        self.images = {c: node.create_publisher(Image, f"/camera/{c}/image_raw", SENSOR) for c in cameras}
        self.instr = node.create_publisher(String, "/heisd/instruction", LATCHED)
        self.chunks: list[tuple[float, ActionChunk]] = []
        self.states: list[KinematicState] = []
        self.state_delays: list[float] = []  # s from the pose stamp to the KinematicState arriving here (2 hops)
        self.chunk_delays: list[tuple[int, float]] = []  # (source, s from the observation stamp to the chunk arriving)
        node.create_subscription(ActionChunk, "/coordinator/action_chunk", self._on_chunk, RECORDER)
        node.create_subscription(KinematicState, "/kinematic_encoder/kinematic_state", self._on_state, RECORDER)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.nan_joints = False
        self.image_lag_s = 0.0  # camera frames stamped this much before the joints and pose of the same tick

    def _age(self, stamp) -> float:
        return self.node.get_clock().now().nanoseconds * 1e-9 - (stamp.sec + stamp.nanosec * 1e-9)

    def _on_chunk(self, msg: ActionChunk) -> None:
        self.chunks.append((time.monotonic(), msg))
        if msg.source != ActionChunk.SOURCE_HOLD and msg.observation_stamp.sec:
            self.chunk_delays.append((msg.source, self._age(msg.observation_stamp)))

    def _on_state(self, msg: KinematicState) -> None:
        self.states.append(msg)
        self.state_delays.append(self._age(msg.header.stamp))

    def start(self) -> "ScriptedRobot":
        self.instr.publish(String(data=self.instruction))
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        k = 0
        rng = np.random.default_rng(0)
        while not self._stop.is_set():
            stamp = self.node.get_clock().now().to_msg()
            t = k * self.period
            q = [0.1 * math.sin(0.5 * t + i) for i in range(len(self.joint_names))]
            if self.nan_joints:
                q[0] = float("nan")
            js = JointState(name=list(self.joint_names), position=q, velocity=[0.0] * len(q))
            js.header.stamp = stamp
            self.joints.publish(js)
            pose = PoseStamped()
            pose.header.stamp, pose.header.frame_id = stamp, "world"
            pose.pose.position.x, pose.pose.position.y, pose.pose.position.z = 0.1 * math.cos(0.3 * t), 0.1 * math.sin(0.3 * t), 1.0
            pose.pose.orientation.w = 1.0
            self.pose.publish(pose)
            frame_stamp = seconds_to_stamp(stamp_to_seconds(stamp) - self.image_lag_s) if self.image_lag_s else stamp
            for cam, pub in self.images.items():
                pub.publish(rgb8_to_image(rng.integers(0, 255, (self.image_size, self.image_size, 3), dtype=np.uint8), frame_stamp, cam))
            k += 1
            time.sleep(self.period)
