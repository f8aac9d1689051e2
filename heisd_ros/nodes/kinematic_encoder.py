"""Kinematic encoder: joint states and end-effector poses in, heisd_msgs/KinematicState out.

One KinematicState per sample of the primary end-effector pose: joints mapped by
name, every end effector's latest pose, the gripper opening, a task-phase
estimate, and the fused metric (R, D, M) that picks the HeiSD branch. End-effector
poses come from PoseStamped topics, or (``ee_source: model``) from forward
kinematics of the robot's MJCF/URDF model on every joint-state sample. History
resets on every instruction message (a new task or episode), on time going
backwards (bag loop, sim reset) and on gaps longer than ``stale_timeout_s``;
malformed input, and input stamped beyond ``max_future_stamp_s`` ahead of the node
clock, is counted and dropped.
"""
from __future__ import annotations

import math
import sys
from typing import Any

from geometry_msgs.msg import PoseStamped
from sensor_msgs.msg import JointState
from std_msgs.msg import String

from heisd_msgs.msg import KinematicState
from heisd_ros.core.errors import InvalidInputError
from heisd_ros.core.forward_kinematics import ModelKinematics
from heisd_ros.core.fused_metric import MetricConfig
from heisd_ros.core.kinematics import KinematicTracker
from heisd_ros.nodes.base import OK, WARN, HeisdNode, run
from heisd_ros.nodes.bundles import load_metric_config
from heisd_ros.ros.convert import JointSample, MessageError, joint_state_to_arrays, stamp_to_seconds
from heisd_ros.ros.qos import COMMAND, LATCHED, SENSOR


class KinematicEncoderNode(HeisdNode):
    NODE_NAME = "kinematic_encoder"

    def __init__(self, metric_config: MetricConfig | None = None) -> None:
        super().__init__()
        p = self.params
        topics, names = list(p["ee_pose_topics"]), list(p["ee_names"])
        self.fk = None
        if p["ee_source"] == "model":
            frames = [f for f in p["ee_frames"] if f]
            if len(frames) != len(names):
                raise ValueError(f"ee_frames ({len(frames)}) and ee_names ({len(names)}) must match for ee_source model")
            self.fk = ModelKinematics(p["robot_model"], frames)
        elif len(topics) != len(names) or not topics:
            raise ValueError(f"ee_pose_topics ({len(topics)}) and ee_names ({len(names)}) must be non-empty and match")
        grippers = [g for g in p["gripper_joints"]]
        self._gripper_joints = (grippers + [""] * len(names))[: len(names)]
        self._base_config = metric_config or load_metric_config(p["bundle"])
        self.tracker = KinematicTracker(self._metric_config(), p["stale_timeout_s"], p["min_position_step_m"])
        self._ee_names = names
        self._poses: dict[str, PoseStamped] = {}
        self._joints: JointSample | None = None
        self._joints_received_at = -math.inf
        self._instruction: str | None = None
        self._last_defined_at = None
        self.pub = self.create_publisher(KinematicState, "~/kinematic_state", COMMAND)
        self.create_subscription(JointState, p["joint_states_topic"], self._on_joints, SENSOR)
        if self.fk is None:
            for i, (topic, name) in enumerate(zip(topics, names)):
                self.create_subscription(PoseStamped, topic, lambda m, n=name, primary=(i == 0): self._on_pose(m, n, primary), SENSOR)
        self.create_subscription(String, p["instruction_topic"], self._on_instruction, LATCHED)
        self.params.on_change(self._on_params)
        source = f"forward kinematics of {p['robot_model']}" if self.fk else topics[0]
        self.set_status(OK, f"waiting for {source} (window {self.tracker.config.window})")

    def _metric_config(self) -> MetricConfig:
        p, base = self.params, self._base_config
        alpha = base.alpha if p["alpha"] < 0 else p["alpha"]
        return MetricConfig(window=p["window"], alpha=alpha, tau=base.tau, max_radius=base.max_radius, ranges=base.ranges)

    def _on_params(self, changed: dict[str, Any]) -> None:
        if {"window", "alpha"} & set(changed):
            cfg = self._metric_config()
            self.tracker.reconfigure(window=cfg.window, alpha=cfg.alpha)
        self.tracker.stale_timeout_s = self.params["stale_timeout_s"]
        self.tracker.min_step_m = self.params["min_position_step_m"]

    def _on_instruction(self, msg: String) -> None:
        if self._instruction is not None:
            self.get_logger().info(f"instruction {msg.data!r}: kinematic history reset")
        self._instruction = msg.data
        self.tracker.reset()

    def _from_the_future(self, stamp: float, what: str) -> bool:
        """A stamp ahead of the node clock by more than the skew allowance is dropped (it would
        make every later sample look like time going backwards)."""
        ahead = stamp - self._now()
        if ahead <= self.params["max_future_stamp_s"]:
            return False
        self.count("future_stamps")
        self.set_status(WARN, f"dropped a {what} stamped {ahead:.3f} s in the future")
        return True

    def _on_joints(self, msg: JointState) -> None:
        try:
            sample = joint_state_to_arrays(msg, list(self.params["joint_names"]))
        except MessageError as exc:
            self.count("rejected_joint_states")
            self.set_status(WARN, f"dropped a JointState: {exc}")
            return
        if self._from_the_future(sample.stamp, "JointState"):
            return
        if self._joints is not None and sample.stamp < self._joints.stamp:
            self.count("non_monotonic_joint_states")
            self.set_status(WARN, f"JointState time went back by {self._joints.stamp - sample.stamp:.3f} s (bag loop or sim reset?)")
        self._joints = sample
        self._joints_received_at = self._now()
        self.count("joint_states")
        if self.fk is not None:
            try:
                all_joints = joint_state_to_arrays(msg, None)
                poses = self.fk.poses(all_joints.names, all_joints.positions)
            except (MessageError, InvalidInputError) as exc:
                self.count("rejected_joint_states")
                self.set_status(WARN, f"forward kinematics failed: {exc}")
                return
            for i, (name, (pos, quat)) in enumerate(zip(self._ee_names, poses)):
                pose = PoseStamped(header=msg.header)
                pose.header.frame_id = "world"
                pose.pose.position.x, pose.pose.position.y, pose.pose.position.z = (float(v) for v in pos)
                (pose.pose.orientation.x, pose.pose.orientation.y, pose.pose.orientation.z,
                 pose.pose.orientation.w) = (float(v) for v in quat)
                self._on_pose(pose, name, i == 0)

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _opening(self, name: str) -> float | None:
        joint = self._gripper_joints[self._ee_names.index(name)]
        if not joint or self._joints is None or joint not in self._joints.names:
            return None
        q = self._joints.positions[self._joints.names.index(joint)]
        closed, opened = self.params["gripper_closed_position"], self.params["gripper_open_position"]
        if opened == closed:
            return None
        return float(min(1.0, max(0.0, (q - closed) / (opened - closed))))

    def _on_pose(self, msg: PoseStamped, name: str, primary: bool) -> None:
        pos = msg.pose.position
        if not all(math.isfinite(v) for v in (pos.x, pos.y, pos.z)):
            self.count("rejected_poses")
            self.set_status(WARN, f"dropped a non-finite {name} pose")
            return
        if self.fk is None and self._from_the_future(stamp_to_seconds(msg.header.stamp), f"{name} pose"):
            return
        self._poses[name] = msg
        if not primary:
            return
        try:
            sample = self.tracker.update(stamp_to_seconds(msg.header.stamp), [pos.x, pos.y, pos.z], self._opening(name))
        except InvalidInputError as exc:
            self.count("rejected_poses")
            self.set_status(WARN, f"dropped a {name} pose: {exc}")
            return
        if sample.reset_reason:
            self.count("history_resets")
            self.get_logger().info(f"kinematic history reset: {sample.reset_reason}")
        self.pub.publish(self._state(msg, sample))
        self.count("published")
        stale = self._now() - self._joints_received_at > self.params["stale_timeout_s"]
        if stale:
            self.count("stale_joint_states")
            self.set_status(WARN, "joint states are stale: publishing poses and metric without joints")
        else:
            self.set_status(OK, "publishing")

    def _state(self, pose: PoseStamped, sample) -> KinematicState:
        m, cfg = sample.metric, self.tracker.config
        out = KinematicState(header=pose.header, phase=int(sample.phase), window=cfg.window, alpha=float(cfg.alpha),
                             metric_defined=bool(m.defined), novelty=math.nan)
        joints = self._joints
        if joints is not None and self._now() - self._joints_received_at <= self.params["stale_timeout_s"]:
            out.joint_names = joints.names
            out.joint_positions = joints.positions.tolist()
            out.joint_velocities = joints.velocities.tolist() if joints.velocities is not None else []
        names = [n for n in self._ee_names if n in self._poses]
        out.ee_names = names
        out.ee_poses = [self._poses[n].pose for n in names]
        openings = [self._opening(n) for n in names]
        out.gripper_openings = [o for o in openings if o is not None] if all(o is not None for o in openings) else []
        if m.defined:
            out.curvature_radius, out.displacement = m.radius, m.displacement
            out.curvature_radius_normalized, out.displacement_normalized, out.fused_metric = m.radius_norm, m.displacement_norm, m.fused
        else:
            out.curvature_radius = out.displacement = out.curvature_radius_normalized = math.nan
            out.displacement_normalized = out.fused_metric = math.nan
        return out

    def diagnostic_values(self) -> dict[str, Any]:
        cfg = self.tracker.config
        return {"window": cfg.window, "alpha": cfg.alpha, "history_resets": self.tracker.resets}


def main(args: list[str] | None = None) -> int:
    return run(KinematicEncoderNode, args)


if __name__ == "__main__":
    sys.exit(main())
