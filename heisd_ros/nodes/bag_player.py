"""Bag player: a rosbag2 bag (MCAP or sqlite3) played into a running graph on sim time.

For machines without ``ros2 bag play`` (it is not on PyPI): reads the bag with
rosbags, publishes /clock from the bag's recorded (log) time and the recorded
sensor topics in time order, at ``rate`` times real time, renamed to the topics
the graph listens on and with joint names remapped in every JointState. Run the
graph with ``use_sim_time: true``. Recorded outputs (heisd_msgs types, e.g. the
ActionChunks a previous run published) are never played: the graph under test
makes its own. Messages keep their header stamps; /clock never lags a message
published after it.

Messages become rclpy messages through one converter by field names
(``to_rclpy``), so any message type with an installed rclpy class plays.
"""
from __future__ import annotations

import array
import importlib
import sys
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

import numpy as np
import rclpy
from rclpy.exceptions import ParameterException
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rosbags.highlevel import AnyReader
from rosgraph_msgs.msg import Clock
from rosidl_parser.definition import (
    AbstractGenericString,
    AbstractNestedType,
    AbstractSequence,
    BasicType,
    NamespacedType,
)

from heisd_ros.core.errors import InvalidInputError
from heisd_ros.data.typestore import heisd_typestore
from heisd_ros.ros.config import ConfigError, parse_pairs
from heisd_ros.ros.param_specs import ParamSpec
from heisd_ros.ros.params import ParameterTable
from heisd_ros.ros.qos import LATCHED
from heisd_ros.ros.spinner import BackgroundSpinner

NODE_NAME = "bag_player"

BAG_PLAYER: tuple[ParamSpec, ...] = (
    ParamSpec("bag", "", "rosbag2 bag directory (MCAP or sqlite3) to play"),
    ParamSpec("rate", 1.0, "Playback speed: sim time advances this many times faster than wall time", range=(0.01, 100.0)),
    ParamSpec("clock_rate_hz", 100.0, "How often /clock is published between messages", range=(1.0, 1000.0), unit="Hz"),
    ParamSpec("topic_map", [""], "BAG_TOPIC=GRAPH_TOPIC: play only these topics, renamed ([''] = every sensor "
                                 "topic of the bag under its own name)"),
    ParamSpec("joint_map", [""], "BAG_NAME=GRAPH_NAME: rename joints in every sensor_msgs/JointState"),
    ParamSpec("instruction", "", "Instruction published once (latched) before playback, for bags without an instruction topic"),
    ParamSpec("instruction_topic", "/heisd/instruction", "std_msgs/String topic of the instruction parameter"),
    ParamSpec("wait_for_subscribers_s", 10.0, "Before playing, wait up to this long for a subscriber on every played topic",
              range=(0.0, 600.0), unit="s"),
)

# Played when topic_map is empty: what a robot publishes, never a policy's outputs.
SENSOR_TYPES = ("sensor_msgs/msg/JointState", "sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage",
                "geometry_msgs/msg/PoseStamped", "geometry_msgs/msg/Pose", "geometry_msgs/msg/PoseWithCovarianceStamped",
                "std_msgs/msg/String")
OUTPUT_PACKAGE = "heisd_msgs"  # recorded graph outputs: never played
JOINT_STATE = "sensor_msgs/msg/JointState"
STREAM = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)  # reliable matches best-effort subscribers too


class PlaybackError(InvalidInputError):
    """A bag that cannot be played as asked: missing, unreadable, nothing to play, unknown types."""


class PlaybackStopped(RuntimeError):
    """Playback was cut short by its ``should_stop`` check; the message says why."""


# --- rosbags object -> rclpy message, by field names ------------------------------------
_ARRAY_CODES = {"int8": "b", "uint8": "B", "int16": "h", "uint16": "H", "int32": "i", "uint32": "I",
                "int64": "q", "uint64": "Q", "float": "f", "double": "d"}
_FLOATS = {"float", "double"}


@lru_cache(maxsize=None)
def message_class(msgtype: str) -> type:
    """'pkg/msg/Name' (or 'pkg/Name') -> the installed rclpy message class."""
    parts = msgtype.split("/")
    if len(parts) == 2:
        parts = [parts[0], "msg", parts[1]]
    if len(parts) != 3 or not all(parts):
        raise PlaybackError(f"not a message type name: {msgtype!r}")
    try:
        return getattr(importlib.import_module(f"{parts[0]}.{parts[1]}"), parts[2])
    except (ImportError, AttributeError) as exc:
        raise PlaybackError(f"no rclpy message class for {msgtype} ({exc}); install its interface package") from None


def _class_of(slot: NamespacedType) -> type:
    return message_class("/".join([*slot.namespaces, slot.name]))


def _basic(value: Any, typename: str) -> Any:
    if typename in _FLOATS:
        return float(value)
    if typename == "boolean":
        return bool(value)
    if typename == "octet":
        return value if isinstance(value, bytes) else bytes([int(value)])
    if typename in ("char", "wchar") and isinstance(value, str):
        return value
    return int(value)


def _value(value: Any, slot: Any, where: str) -> Any:
    if isinstance(slot, NamespacedType):
        return to_rclpy(value, _class_of(slot), where)
    if isinstance(slot, AbstractGenericString):
        return str(value)
    if isinstance(slot, BasicType):
        return _basic(value, slot.typename)
    if isinstance(slot, AbstractNestedType):
        inner = slot.value_type
        if isinstance(inner, NamespacedType):
            cls = _class_of(inner)
            return [to_rclpy(v, cls, f"{where}[{i}]") for i, v in enumerate(value)]
        if isinstance(inner, AbstractGenericString):
            return [str(v) for v in value]
        code = _ARRAY_CODES.get(getattr(inner, "typename", ""))
        if code is None:  # boolean, octet, char: plain lists
            return [_basic(v, inner.typename) for v in value]
        values = np.asarray(value, dtype=np.dtype(code))
        if isinstance(slot, AbstractSequence):  # rclpy stores sequences as array.array, fixed arrays as numpy
            return array.array(code, values.tobytes())
        return values
    raise PlaybackError(f"{where}: field type {type(slot).__name__} is not supported")


def to_rclpy(msg: Any, cls: type | None = None, where: str = "") -> Any:
    """A rosbags-deserialised message (any type, nested messages and arrays included) as an rclpy message.

    Fields are copied by name, so the rosbags type must have every field the rclpy
    class has (same definition); a missing field raises PlaybackError naming it."""
    cls = cls or message_class(msg.__msgtype__)
    out = cls()
    where = where or cls.__name__
    for (name, _), slot in zip(cls.get_fields_and_field_types().items(), cls.SLOT_TYPES):
        if not hasattr(msg, name):
            raise PlaybackError(f"{where}: the recorded message has no field {name!r} that {cls.__name__} has "
                                f"(different message definitions?)")
        try:
            setattr(out, name, _value(getattr(msg, name), slot, f"{where}.{name}"))
        except (AssertionError, TypeError, ValueError, OverflowError) as exc:
            raise PlaybackError(f"{where}.{name}: cannot convert {type(getattr(msg, name)).__name__}: {exc}") from None
    return out


# --- the node -----------------------------------------------------------------------------
def bag_topics(bag: Path) -> dict[str, str]:
    """{topic: msgtype} of a bag; PlaybackError when it is unreadable."""
    try:
        with AnyReader([Path(bag)], default_typestore=heisd_typestore()) as reader:
            return {c.topic: c.msgtype for c in reader.connections}
    except Exception as exc:  # rosbags raises its own errors on a damaged or foreign directory
        raise PlaybackError(f"cannot read bag {bag}: {type(exc).__name__}: {exc}") from None


@dataclass
class PlaybackReport:
    """What one playback published."""

    bag: str
    rate: float
    start_ns: int = 0  # recorded time of the first played message
    end_ns: int = 0  # ... and of the last one
    messages: dict[str, int] = field(default_factory=dict)  # graph topic -> count
    wall_s: float = 0.0

    @property
    def duration_s(self) -> float:
        return (self.end_ns - self.start_ns) * 1e-9


class BagPlayerNode(Node):
    """Publishes /clock and a bag's sensor topics; ``play()`` blocks until the bag is done."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(NODE_NAME, **kwargs)
        self.params = ParameterTable(self, BAG_PLAYER)
        p = self.params
        self.bag = Path(p["bag"])
        if not p["bag"] or not self.bag.exists():
            raise PlaybackError(f"bag {p['bag']!r} does not exist (parameter bag)")
        try:
            self.topic_map = parse_pairs(p["topic_map"], "topic_map")
            self.joint_map = parse_pairs(p["joint_map"], "joint_map")
        except ConfigError as exc:
            raise PlaybackError(str(exc)) from None
        self.clock_pub = self.create_publisher(Clock, "/clock", 10)
        self.clock_ns = 0  # the sim time last published on /clock
        self._streams: dict[str, Any] = {}  # bag topic -> publisher
        self._out: dict[str, str] = {}  # bag topic -> graph topic
        self._types: dict[str, str] = {}  # bag topic -> msgtype
        self._selected = self._select()
        self._instruction_pub = None
        if p["instruction"]:
            self._instruction_pub = self.create_publisher(message_class("std_msgs/msg/String"), p["instruction_topic"], LATCHED)

    def _select(self) -> list[str]:
        types = bag_topics(self.bag)
        if self.topic_map:
            missing = sorted(set(self.topic_map) - set(types))
            if missing:
                raise PlaybackError(f"bag {self.bag} has no topic(s) {missing}; its topics: {sorted(types)}")
            outputs = [t for t in self.topic_map if types[t].startswith(OUTPUT_PACKAGE + "/")]
            if outputs:
                raise PlaybackError(f"{outputs} carry recorded graph outputs ({OUTPUT_PACKAGE}); the player does not "
                                    f"replay them, the graph under test publishes its own")
            selected = list(self.topic_map)
        else:
            selected = sorted(t for t, ty in types.items() if ty in SENSOR_TYPES)
        if not selected:
            raise PlaybackError(f"bag {self.bag} has no sensor topics to play (types {list(SENSOR_TYPES)}); "
                                f"its topics: {sorted(types)}")
        for topic in selected:
            out = self.topic_map.get(topic, topic)
            cls = message_class(types[topic])
            qos = LATCHED if types[topic] == "std_msgs/msg/String" else STREAM
            self._streams[topic] = self.create_publisher(cls, out, qos)
            self._out[topic], self._types[topic] = out, types[topic]
        return selected

    @property
    def graph_topics(self) -> list[str]:
        """The topics this player publishes (besides /clock)."""
        return [self._out[t] for t in self._selected]

    def unmatched_topics(self) -> list[str]:
        """Played topics that have no subscriber yet."""
        return [self._out[t] for t in self._selected if self._streams[t].get_subscription_count() == 0]

    def wait_for_subscribers(self, timeout_s: float, should_stop: Callable[[], str | None] | None = None) -> list[str]:
        """Wait until every played topic has a subscriber; returns those still without one."""
        deadline = time.monotonic() + timeout_s
        missing = self.unmatched_topics()
        while missing and time.monotonic() < deadline:
            _check(should_stop)
            time.sleep(0.05)
            missing = self.unmatched_topics()
        return missing

    def _publish_clock(self, ns: int) -> None:
        self.clock_ns = ns
        msg = Clock()
        msg.clock.sec, msg.clock.nanosec = ns // 1_000_000_000, ns % 1_000_000_000
        self.clock_pub.publish(msg)

    def _convert(self, reader: AnyReader, topic: str, raw: bytes) -> Any:
        msg = to_rclpy(reader.deserialize(raw, self._types[topic]), self._streams[topic].msg_type)
        if self._types[topic] == JOINT_STATE and self.joint_map:
            msg.name = [self.joint_map.get(n, n) for n in msg.name]
        return msg

    def play(self, should_stop: Callable[[], str | None] | None = None) -> PlaybackReport:
        """Play the bag once. ``should_stop()`` returning a reason aborts with PlaybackStopped."""
        p = self.params
        rate, period = float(p["rate"]), 1.0 / float(p["clock_rate_hz"])
        report = PlaybackReport(str(self.bag), rate)
        if self._instruction_pub is not None:
            self._instruction_pub.publish(message_class("std_msgs/msg/String")(data=p["instruction"]))
        started = time.monotonic()
        try:
            with AnyReader([self.bag], default_typestore=heisd_typestore()) as reader:
                wanted = [c for c in reader.connections if c.topic in self._streams]
                wall0 = first = None
                last_clock = -1
                next_clock = started
                for conn, ns, raw in reader.messages(connections=wanted):
                    if wall0 is None:
                        wall0, first = time.monotonic(), ns
                        report.start_ns = ns
                    due = wall0 + (ns - first) * 1e-9 / rate
                    while (now := time.monotonic()) < due:
                        _check(should_stop)
                        if now >= next_clock:
                            last_clock = max(last_clock, first + int((now - wall0) * rate * 1e9))
                            self._publish_clock(last_clock)
                            next_clock = now + period
                        time.sleep(max(0.0, min(due, next_clock) - time.monotonic()))
                    if ns > last_clock:
                        last_clock = ns
                        self._publish_clock(ns)
                    self._streams[conn.topic].publish(self._convert(reader, conn.topic, raw))
                    out = self._out[conn.topic]
                    report.messages[out] = report.messages.get(out, 0) + 1
                    report.end_ns = ns
        except (PlaybackError, PlaybackStopped):
            raise
        except Exception as exc:  # rosbags raises its own errors on damaged bags
            raise PlaybackError(f"cannot play bag {self.bag}: {type(exc).__name__}: {exc}") from exc
        report.wall_s = time.monotonic() - started
        return report


def _check(should_stop: Callable[[], str | None] | None) -> None:
    reason = should_stop() if should_stop is not None else None
    if reason:
        raise PlaybackStopped(reason)


def main(args: list[str] | None = None) -> int:
    """``heisd-bag_player --ros-args -p bag:=DIR [-p rate:=0.5] ...``: play once, then exit."""
    rclpy.init(args=sys.argv if args is None else args)
    node = None
    try:
        node = BagPlayerNode()
        from rclpy.executors import SingleThreadedExecutor

        executor = SingleThreadedExecutor()
        executor.add_node(node)
        spinner = BackgroundSpinner(executor)
        try:
            missing = node.wait_for_subscribers(node.params["wait_for_subscribers_s"])
            if missing:
                node.get_logger().warning(f"playing although nobody subscribes to {missing}")
            report = node.play()
            node.get_logger().info(f"played {sum(report.messages.values())} messages, {report.duration_s:.2f} s of "
                                   f"bag time in {report.wall_s:.2f} s")
        finally:
            spinner.stop()
        return 0
    except KeyboardInterrupt:
        return 0
    except (PlaybackError, PlaybackStopped, ParameterException) as exc:
        rclpy.logging.get_logger(NODE_NAME).fatal(str(exc))
        return 1
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    sys.exit(main())
