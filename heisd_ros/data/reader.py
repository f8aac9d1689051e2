"""Turning rosbag2 bags (this project's or anyone's) into time-aligned training frames.

For every action message the frame holds the latest image of each camera, the
joint positions in a requested order, the end-effector pose(s) and the
instruction at or before the action's stamp, the action itself and the next
few actions (a chunk). Topic names are configurable and joints are matched by
NAME (with an optional alias map), never by index, so bags from other robot
stacks read the same way. MCAP and sqlite3 storage both work.

Times: the header stamp of stamped messages (sim or robot time), the bag's log
time for unstamped ones (the instruction).
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from rosbags.highlevel import AnyReader
from rosbags.interfaces import Connection

from heisd_ros.core.errors import CorruptFileError, InvalidInputError
from heisd_ros.core.joints import JointMismatchError, pick_by_name
from heisd_ros.data.bag_writer import ACTION, INSTRUCTION, JOINT_STATES
from heisd_ros.data.typestore import heisd_typestore


class BagReadError(CorruptFileError, ValueError):
    """A bag that cannot be read: missing, truncated or corrupt files."""


class MissingTopicError(InvalidInputError):
    """A topic the reader needs is not in the bag."""


class MissingJointError(InvalidInputError):
    """A requested joint is not in the bag's joint states."""


class UnknownTypeError(InvalidInputError):
    """A topic carries a message type the reader cannot interpret for its role."""


@dataclass(frozen=True)
class TopicConfig:
    """Where each stream lives in the bag. ``None`` for images / EE poses: discover by name pattern
    (``/camera/<view>/image_raw``; ``/ee_pose/<arm>``, and ``/ee_pose`` as arm "right", robosuite's
    name for a single arm); an empty mapping: none."""

    joint_states: str = JOINT_STATES
    action: str = ACTION
    instruction: str | None = INSTRUCTION  # None: no instruction topic (use ReaderConfig.instruction)
    images: Mapping[str, str] | None = None  # view -> topic
    ee_poses: Mapping[str, str] | None = None  # arm -> topic


@dataclass(frozen=True)
class ReaderConfig:
    topics: TopicConfig = field(default_factory=TopicConfig)
    joint_order: Sequence[str] | None = None  # None: the order of the first joint-state message
    joint_aliases: Mapping[str, str] = field(default_factory=dict)  # name in the bag -> name wanted
    chunk: int = 4  # actions per frame: the current one and the next chunk - 1
    instruction: str | None = None  # used when the bag has no instruction topic
    require_images: bool = True  # frames before the first image of every view are skipped either way

    def __post_init__(self) -> None:
        if self.chunk < 1:
            raise InvalidInputError(f"chunk must be >= 1, got {self.chunk}")


@dataclass
class TrainingFrame:
    """One action and what the robot saw and felt when it was taken."""

    stamp: float  # s
    index: int  # position of the action in the bag's action stream
    images: dict[str, np.ndarray]  # view -> HxWx3 uint8
    joint_names: tuple[str, ...]
    joint_positions: np.ndarray
    ee_positions: dict[str, np.ndarray]  # arm -> xyz (m)
    ee_orientations: dict[str, np.ndarray]  # arm -> quaternion (x, y, z, w)
    instruction: str
    action_names: tuple[str, ...]
    action: np.ndarray  # (D,)
    action_chunk: np.ndarray  # (chunk, D); rows past the episode's end repeat the last action
    chunk_valid: int  # how many rows of action_chunk are real actions


@dataclass
class _Stream:
    stamps: list[float]
    values: list[Any]

    def latest(self, t: float) -> Any | None:
        i = bisect.bisect_right(self.stamps, t + 1e-9) - 1
        return self.values[i] if i >= 0 else None


def _stamp(msg: Any, log_time_ns: int) -> float:
    header = getattr(msg, "header", None)
    if header is not None and (header.stamp.sec or header.stamp.nanosec):
        return header.stamp.sec + header.stamp.nanosec * 1e-9
    return log_time_ns * 1e-9


def _image_array(msg: Any, topic: str) -> np.ndarray:
    enc = msg.encoding.lower()
    channels = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4, "mono8": 1}.get(enc)
    if channels is None:
        raise UnknownTypeError(f"{topic}: image encoding {msg.encoding!r} is not supported (rgb8, bgr8, rgba8, bgra8, mono8)")
    data = np.frombuffer(bytes(msg.data), dtype=np.uint8)
    if msg.step < msg.width * channels or data.size < msg.step * msg.height:
        raise BagReadError(f"{topic}: image data ({data.size} bytes) is too short for {msg.height}x{msg.width} {enc}")
    rows = data[: msg.step * msg.height].reshape(msg.height, msg.step)[:, : msg.width * channels]
    img = rows.reshape(msg.height, msg.width, channels)
    if enc.startswith("bgr"):
        img = img[..., [2, 1, 0]]
    elif channels == 1:
        img = np.repeat(img, 3, axis=2)
    return np.ascontiguousarray(img[..., :3])


def _pose_arrays(msg: Any) -> tuple[np.ndarray, np.ndarray]:
    pose = msg.pose if hasattr(msg, "pose") else msg
    if hasattr(pose, "pose"):  # PoseWithCovarianceStamped
        pose = pose.pose
    p, q = pose.position, pose.orientation
    return np.array([p.x, p.y, p.z]), np.array([q.x, q.y, q.z, q.w])


ACTION_TYPES = ("heisd_msgs/msg/ActionChunk",)
POSE_TYPES = ("geometry_msgs/msg/PoseStamped", "geometry_msgs/msg/Pose", "geometry_msgs/msg/PoseWithCovarianceStamped")


class BagReader:
    """Reads one bag directory (or a single .mcap / .db3 file's directory) into training frames."""

    def __init__(self, path: Path | str, config: ReaderConfig | None = None) -> None:
        self.path = Path(path)
        self.config = config or ReaderConfig()
        if not self.path.exists():
            raise BagReadError(f"bag {self.path} does not exist")

    def frames(self) -> list[TrainingFrame]:
        """All frames of the bag, in action order."""
        try:
            with AnyReader([self.path], default_typestore=heisd_typestore()) as reader:
                return self._frames(reader)
        except (MissingTopicError, MissingJointError, UnknownTypeError, BagReadError):
            raise
        except Exception as exc:  # rosbags raises its own errors (and struct/KeyError on damage)
            raise BagReadError(f"cannot read bag {self.path}: {type(exc).__name__}: {exc}") from exc

    # internals ------------------------------------------------------------------------------

    def _connections(self, reader: AnyReader) -> dict[str, Connection]:
        return {c.topic: c for c in reader.connections}

    def _resolve(self, conns: dict[str, Connection]) -> tuple[dict[str, str], dict[str, str]]:
        topics = self.config.topics
        for role, topic in (("joint states", topics.joint_states), ("actions", topics.action)):
            if topic not in conns:
                raise MissingTopicError(f"bag {self.path} has no {role} topic {topic!r}; topics: {sorted(conns)}")
        if topics.images is None:
            images = {t.split("/")[2]: t for t in conns
                      if t.startswith("/camera/") and t.endswith("/image_raw") and t.count("/") == 3}
        else:
            images = dict(topics.images)
        if topics.ee_poses is None:
            ee = {t.split("/")[2]: t for t in conns if t.startswith("/ee_pose/") and t.count("/") == 2}
            if "/ee_pose" in conns:
                ee = {"right": "/ee_pose", **ee}
        else:
            ee = dict(topics.ee_poses)
        for role, mapping in (("image", images), ("EE pose", ee)):
            for name, topic in mapping.items():
                if topic not in conns:
                    raise MissingTopicError(f"bag {self.path} has no {role} topic {topic!r} (for {name!r}); "
                                            f"topics: {sorted(conns)}")
        if topics.instruction is not None and topics.instruction not in conns and self.config.instruction is None:
            raise MissingTopicError(f"bag {self.path} has no instruction topic {topics.instruction!r}; "
                                    f"give ReaderConfig.instruction or TopicConfig.instruction=None")
        checks = [(topics.joint_states, ("sensor_msgs/msg/JointState",)), (topics.action, ACTION_TYPES)]
        checks += [(t, ("sensor_msgs/msg/Image",)) for t in images.values()]
        checks += [(t, POSE_TYPES) for t in ee.values()]
        if topics.instruction in conns:
            checks.append((topics.instruction, ("std_msgs/msg/String",)))
        for topic, allowed in checks:
            if conns[topic].msgtype not in allowed:
                raise UnknownTypeError(f"{topic} carries {conns[topic].msgtype}; expected one of {list(allowed)}")
        return images, ee

    def _frames(self, reader: AnyReader) -> list[TrainingFrame]:
        conns = self._connections(reader)
        images, ee = self._resolve(conns)
        topics = self.config.topics
        role_of = {topics.joint_states: "joints", topics.action: "action"}
        role_of.update({t: f"image:{v}" for v, t in images.items()})
        role_of.update({t: f"ee:{a}" for a, t in ee.items()})
        if topics.instruction in conns:
            role_of[topics.instruction] = "instruction"
        streams: dict[str, _Stream] = {role: _Stream([], []) for role in role_of.values()}
        wanted = [conns[t] for t in role_of]
        joint_order = list(self.config.joint_order) if self.config.joint_order is not None else None
        for conn, log_time, raw in reader.messages(connections=wanted):
            role = role_of[conn.topic]
            msg = reader.deserialize(raw, conn.msgtype)
            stamp = _stamp(msg, log_time)
            if role == "joints":
                names = [self.config.joint_aliases.get(n, n) for n in msg.name]
                if joint_order is None:
                    joint_order = names
                value = self._joint_vector(names, np.asarray(msg.position, dtype=np.float64), joint_order, conn.topic)
            elif role == "action":
                value = self._action(msg, conn.topic)
            elif role.startswith("image:"):
                value = _image_array(msg, conn.topic)
            elif role.startswith("ee:"):
                value = _pose_arrays(msg)
            else:
                value = str(msg.data)
            stream = streams[role]
            stream.stamps.append(stamp)
            stream.values.append(value)
        for stream in streams.values():  # bags are written in log-time order; stamps may differ
            order = np.argsort(stream.stamps, kind="stable")
            stream.stamps = [stream.stamps[i] for i in order]
            stream.values = [stream.values[i] for i in order]
        return self._align(streams, images, ee, tuple(joint_order or ()))

    def _joint_vector(self, names: list[str], positions: np.ndarray, order: list[str], topic: str) -> np.ndarray:
        if len(positions) != len(names):
            raise BagReadError(f"{topic}: {len(names)} joint names but {len(positions)} positions")
        try:
            return pick_by_name(order, names, positions, what="joint(s)")
        except JointMismatchError as exc:
            raise MissingJointError(f"{topic}: {exc}") from None

    def _action(self, msg: Any, topic: str) -> tuple[tuple[str, ...], np.ndarray]:
        dim = int(msg.dimension)
        actions = np.asarray(msg.actions, dtype=np.float64)
        if dim < 1 or msg.horizon < 1 or actions.size != dim * msg.horizon:
            raise BagReadError(f"{topic}: ActionChunk with horizon {msg.horizon}, dimension {dim} "
                               f"holds {actions.size} values")
        names = tuple(msg.dimension_names) if msg.dimension_names else tuple(f"a{i}" for i in range(dim))
        if len(names) != dim:
            raise BagReadError(f"{topic}: {len(names)} dimension names for dimension {dim}")
        return names, actions.reshape(int(msg.horizon), dim)[0]

    def _align(self, streams: dict[str, _Stream], images: dict[str, str], ee: dict[str, str],
               joint_names: tuple[str, ...]) -> list[TrainingFrame]:
        actions = streams["action"]
        if not actions.values:
            raise MissingTopicError(f"bag {self.path}: the action topic has no messages")
        names = actions.values[0][0]
        if any(n != names for n, _ in actions.values):
            raise BagReadError(f"bag {self.path}: action dimension names change within the bag")
        vectors = np.stack([a for _, a in actions.values])
        instr_stream = streams.get("instruction")
        frames = []
        k = self.config.chunk
        for i, t in enumerate(actions.stamps):
            joints = streams["joints"].latest(t)
            imgs = {v: streams[f"image:{v}"].latest(t) for v in images}
            poses = {a: streams[f"ee:{a}"].latest(t) for a in ee}
            if joints is None or any(x is None for x in imgs.values()) or any(x is None for x in poses.values()):
                continue  # nothing observed yet for this action
            if instr_stream is not None and instr_stream.values:
                text = instr_stream.latest(t)
                instruction = text if text is not None else instr_stream.values[0]
            else:
                instruction = self.config.instruction or ""
            chunk = vectors[i: i + k]
            valid = len(chunk)
            if valid < k:
                chunk = np.concatenate([chunk, np.repeat(chunk[-1:], k - valid, axis=0)])
            frames.append(TrainingFrame(
                stamp=t, index=i, images=imgs, joint_names=joint_names, joint_positions=joints,
                ee_positions={a: p[0] for a, p in poses.items()},
                ee_orientations={a: p[1] for a, p in poses.items()},
                instruction=instruction, action_names=names, action=vectors[i], action_chunk=chunk,
                chunk_valid=valid,
            ))
        if self.config.require_images and not images:
            raise MissingTopicError(f"bag {self.path} has no camera topics; set require_images=False to read it")
        return frames


def read_frames(path: Path | str, config: ReaderConfig | None = None) -> list[TrainingFrame]:
    """All training frames of the bag at ``path``."""
    return BagReader(path, config).frames()
