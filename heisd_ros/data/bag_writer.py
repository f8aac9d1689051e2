"""Recording one simulated episode as a rosbag2 bag with the topics a real robot stack publishes.

Topics (all stamped on sim time, step k at k / control_rate):
- ``/joint_states`` sensor_msgs/JointState: arm and gripper/hand joints, real MuJoCo names
- ``/camera/<view>/image_raw`` sensor_msgs/Image, rgb8, upright
- ``/ee_pose`` geometry_msgs/PoseStamped for a single-arm robot; ``/ee_pose/<arm>``
  (``/ee_pose/right``, ``/ee_pose/left``) for a robot with several arms, frame "world"
- ``/heisd/instruction`` std_msgs/String, once at t = 0
- ``/heisd/action`` heisd_msgs/ActionChunk, H = 1, the action executed from step k
  to k + 1, SOURCE_REPLAY, dimension names filled

Written with rosbags (no ROS runtime); MCAP storage by default, sqlite3 on request.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
from rosbags.rosbag2 import StoragePlugin, Writer

from heisd_ros.data.typestore import heisd_typestore
from heisd_ros.sim.env import Pose, SimObservation

JOINT_STATES = "/joint_states"
INSTRUCTION = "/heisd/instruction"
ACTION = "/heisd/action"
WORLD_FRAME = "world"
BAG_VERSION = 9

T_JOINT_STATE = "sensor_msgs/msg/JointState"
T_IMAGE = "sensor_msgs/msg/Image"
T_POSE_STAMPED = "geometry_msgs/msg/PoseStamped"
T_STRING = "std_msgs/msg/String"
T_ACTION_CHUNK = "heisd_msgs/msg/ActionChunk"

STORAGES = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}


def image_topic(view: str) -> str:
    return f"/camera/{view}/image_raw"


def ee_pose_topic(arm: str, arms: Sequence[str]) -> str:
    """``/ee_pose`` when the robot has one arm, else ``/ee_pose/<arm>``."""
    return "/ee_pose" if len(arms) == 1 else f"/ee_pose/{arm}"


class EpisodeBagWriter:
    """Writes observations and executed actions of one episode into a new bag directory."""

    def __init__(self, path: Path | str, control_rate: float, action_names: Sequence[str],
                 arms: Sequence[str], cameras: Sequence[str], storage: str = "mcap") -> None:
        if storage not in STORAGES:
            raise ValueError(f"storage must be one of {sorted(STORAGES)}, got {storage!r}")
        if control_rate <= 0:
            raise ValueError(f"control_rate must be positive, got {control_rate}")
        self.path = Path(path)
        self.control_rate = float(control_rate)
        self.action_names = list(action_names)
        self.arms = list(arms)
        self.cameras = list(cameras)
        self._ts = heisd_typestore()
        self._t = self._ts.types
        self._writer = Writer(self.path, version=BAG_VERSION, storage_plugin=STORAGES[storage])
        self._writer.open()
        self._conn: dict[str, Any] = {}
        add = self._add
        add(JOINT_STATES, T_JOINT_STATE)
        for view in self.cameras:
            add(image_topic(view), T_IMAGE)
        for arm in self.arms:
            add(ee_pose_topic(arm, self.arms), T_POSE_STAMPED)
        add(INSTRUCTION, T_STRING)
        add(ACTION, T_ACTION_CHUNK)
        self._sequence = 0

    def _add(self, topic: str, msgtype: str) -> None:
        self._conn[topic] = self._writer.add_connection(topic, msgtype, typestore=self._ts)

    def _stamp(self, step: int) -> tuple[Any, int]:
        ns = int(round(step * 1e9 / self.control_rate))
        return self._t["builtin_interfaces/msg/Time"](sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000), ns

    def _header(self, stamp: Any, frame: str = "") -> Any:
        return self._t["std_msgs/msg/Header"](stamp=stamp, frame_id=frame)

    def _write(self, topic: str, msg: Any, ns: int) -> None:
        self._writer.write(self._conn[topic], ns, self._ts.serialize_cdr(msg, self._conn[topic].msgtype))

    def write_instruction(self, text: str) -> None:
        _, ns = self._stamp(0)
        self._write(INSTRUCTION, self._t[T_STRING](data=text), ns)

    def write_observation(self, obs: SimObservation) -> None:
        """Joint states, EE poses and images of ``obs``, stamped at its step."""
        stamp, ns = self._stamp(obs.step)
        t = self._t
        self._write(JOINT_STATES, t[T_JOINT_STATE](
            header=self._header(stamp),
            name=list(obs.joint_names),
            position=np.asarray(obs.joint_positions, dtype=np.float64),
            velocity=np.asarray(obs.joint_velocities, dtype=np.float64),
            effort=np.zeros(0, dtype=np.float64),
        ), ns)
        for arm in self.arms:
            self._write(ee_pose_topic(arm, self.arms), t[T_POSE_STAMPED](
                header=self._header(stamp, WORLD_FRAME), pose=self._pose(obs.ee_poses[arm])), ns)
        for view in self.cameras:
            image = obs.images[view]
            if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
                raise ValueError(f"camera {view!r}: expected HxWx3 uint8, got {image.dtype} {image.shape}")
            h, w, _ = image.shape
            self._write(image_topic(view), t[T_IMAGE](
                header=self._header(stamp, view), height=h, width=w, encoding="rgb8", is_bigendian=0,
                step=3 * w, data=np.ascontiguousarray(image).reshape(-1)), ns)

    def write_action(self, step: int, action: np.ndarray) -> None:
        """The action executed from ``step`` to ``step + 1`` (an ActionChunk with H = 1)."""
        action = np.asarray(action, dtype=np.float64).reshape(-1)
        if action.size != len(self.action_names):
            raise ValueError(f"action has {action.size} values, expected {len(self.action_names)}")
        stamp, ns = self._stamp(step)
        chunk = self._t[T_ACTION_CHUNK]
        self._write(ACTION, chunk(
            header=self._header(stamp, WORLD_FRAME),
            sequence_id=self._sequence,
            observation_stamp=stamp,
            dimension_names=self.action_names,
            horizon=1,
            dimension=action.size,
            actions=action,
            step_dt=1.0 / self.control_rate,
            source=chunk.SOURCE_REPLAY,
            drafted_tokens=0,
            accepted_tokens=0,
            vla_forward_passes=0,
            inference_latency=0.0,
            fused_metric=float("nan"),
            clamped=False,
        ), ns)
        self._sequence += 1

    def _pose(self, pose: Pose) -> Any:
        t = self._t
        p, q = pose.position, pose.orientation
        return t["geometry_msgs/msg/Pose"](
            position=t["geometry_msgs/msg/Point"](x=float(p[0]), y=float(p[1]), z=float(p[2])),
            orientation=t["geometry_msgs/msg/Quaternion"](x=float(q[0]), y=float(q[1]), z=float(q[2]), w=float(q[3])),
        )

    def close(self, custom_metadata: dict[str, str] | None = None) -> None:
        """Finish the bag; ``custom_metadata`` goes into metadata.yaml's custom_data."""
        if custom_metadata:
            self._writer.custom_data.update({k: str(v) for k, v in custom_metadata.items()})
        self._writer.close()
