"""``heisd replay --ros``'s engine: a bag played into the running node graph, the graph's outputs recorded.

Why: offline replay decodes frames in a loop; this runs the deployed graph itself
(separate node processes, services, the control timer, QoS, sim time), so what is
measured is what a robot would get from the same sensor stream. Per bag: the graph
starts with ``use_sim_time``, the bag player (heisd_ros.nodes.bag_player) publishes
/clock and the bag's sensor topics renamed to the graph's inputs, a recorder writes
the graph's ActionChunks, KinematicStates (and DecodeStats, where a node publishes
them) into a new bag stamped with the sim time of /clock, the graph stops, and a
summary is computed from the new bag alone.

The graph is started afresh for every bag: decoder history, queue and the
coordinator's newest-observation stamp must not carry over when sim time starts again.
"""
from __future__ import annotations

import queue
from collections import Counter
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import rclpy
from lifecycle_msgs.msg import State
from lifecycle_msgs.srv import GetState
from rclpy.parameter import Parameter
from rosbags.highlevel import AnyReader
from rosbags.rosbag2 import Writer

from heisd_ros.core.errors import InvalidInputError
from heisd_ros.core.stats import Branch
from heisd_ros.data.bag_writer import BAG_VERSION, STORAGES
from heisd_ros.data.reader import TopicConfig
from heisd_ros.data.typestore import heisd_typestore
from heisd_ros.nodes.bag_player import BagPlayerNode, PlaybackError, PlaybackStopped, message_class
from heisd_ros.nodes.bag_player import bag_topics as read_bag_topics
from heisd_ros.ros.config import ConfigError, camera_topics
from heisd_ros.ros.monitor import chunk_summary
from heisd_ros.ros.qos import COMMAND

ACTION_CHUNK = "heisd_msgs/msg/ActionChunk"
KINEMATIC_STATE = "heisd_msgs/msg/KinematicState"
DECODE_STATS = "heisd_msgs/msg/DecodeStats"
COORDINATOR_ACTION_TOPIC = "/coordinator/action_chunk"  # the coordinator's ~/action_chunk


class ReplayRosError(InvalidInputError):
    """A bag that cannot be played into the graph, or a graph that failed while it played."""


class GraphNodeDied(ReplayRosError):
    """A node of the graph exited while the bag was being prepared or played."""


# --- which bag topic feeds which graph input --------------------------------------------
@dataclass(frozen=True)
class GraphInputs:
    """The topics the graph listens on, from its parameter file."""

    joint_states: str
    ee_poses: Mapping[str, str]  # end-effector name -> PoseStamped topic, primary first
    instruction: str
    cameras: Mapping[str, str]  # bundle camera name -> Image topic

    @classmethod
    def from_config(cls, config: Mapping[str, Mapping[str, Any]], camera_names: Sequence[str]) -> "GraphInputs":
        enc, coord = config.get("kinematic_encoder", {}), config.get("coordinator", {})
        instr = {enc.get("instruction_topic", "/heisd/instruction"), coord.get("instruction_topic", "/heisd/instruction")}
        if len(instr) != 1:
            raise ReplayRosError(f"kinematic_encoder and coordinator listen for the instruction on different topics "
                                 f"{sorted(instr)}; the player feeds one")
        if enc.get("ee_source", "topic") != "topic":
            raise ReplayRosError("kinematic_encoder.ee_source must be 'topic' for --ros (the bag's poses drive it)")
        try:
            cams = camera_topics(coord.get("camera_topics", [""]), camera_names)
        except ConfigError as exc:
            raise ReplayRosError(str(exc)) from None
        names, topics = list(enc.get("ee_names", ["hand"])), list(enc.get("ee_pose_topics", ["/ee_pose"]))
        return cls(joint_states=enc.get("joint_states_topic", "/joint_states"), ee_poses=dict(zip(names, topics)),
                   instruction=instr.pop(), cameras=dict(zip(camera_names, cams)))


def bag_topics(bag: Path) -> dict[str, str]:
    """{topic: msgtype} of a bag; ReplayRosError when it is missing or unreadable."""
    if not Path(bag).exists():
        raise ReplayRosError(f"bag {bag} does not exist")
    try:
        return read_bag_topics(bag)
    except PlaybackError as exc:
        raise ReplayRosError(str(exc)) from None


def topic_map(bag: Path, topics: TopicConfig, inputs: GraphInputs, arm: str | None = None,
              instruction: str | None = None) -> dict[str, str]:
    """{bag topic: graph topic} for joint states, every bundle camera, the EE pose(s) and the instruction.

    Bag topics follow the offline reader's conventions (``/camera/<view>/image_raw``,
    ``/ee_pose`` or ``/ee_pose/<arm>`` unless named); every input the graph needs must
    be found, else ReplayRosError lists the bag's topics."""
    types = bag_topics(bag)
    found = sorted(types)

    def need(topic: str | None, msgtype: str, role: str) -> str:
        if topic not in types:
            raise ReplayRosError(f"bag {bag} has no {role} topic {topic!r}; its topics: {found}")
        if types[topic] != msgtype:
            raise ReplayRosError(f"bag {bag}: {role} topic {topic} carries {types[topic]}, the graph needs {msgtype}")
        return topic

    out = {need(topics.joint_states, "sensor_msgs/msg/JointState", "joint states"): inputs.joint_states}
    images = dict(topics.images) if topics.images is not None else {c: f"/camera/{c}/image_raw" for c in inputs.cameras}
    for camera, graph_topic in inputs.cameras.items():
        out[need(images.get(camera), "sensor_msgs/msg/Image", f"{camera!r} camera")] = graph_topic
    if topics.ee_poses is not None:
        poses = dict(topics.ee_poses)
    else:
        poses = {t.split("/")[2]: t for t in types if t.startswith("/ee_pose/") and t.count("/") == 2}
        if "/ee_pose" in types:
            poses = {"right": "/ee_pose", **poses}
    if not poses:
        raise ReplayRosError(f"bag {bag} has no end-effector pose topic (map one with --ee-pose-topic); its topics: {found}")
    if len(inputs.ee_poses) == 1:
        arm = arm or ("right" if "right" in poses else sorted(poses)[0])
        if arm not in poses:
            raise ReplayRosError(f"bag {bag} has no end-effector pose for arm {arm!r}; it has {sorted(poses)}")
        out[need(poses[arm], "geometry_msgs/msg/PoseStamped", f"{arm!r} EE pose")] = next(iter(inputs.ee_poses.values()))
    else:
        for name, graph_topic in inputs.ee_poses.items():
            if name not in poses:
                raise ReplayRosError(f"the kinematic encoder tracks end effectors {list(inputs.ee_poses)}; bag {bag} "
                                     f"has poses for {sorted(poses)} (name them with --ee-pose-topic NAME=TOPIC)")
            out[need(poses[name], "geometry_msgs/msg/PoseStamped", f"{name!r} EE pose")] = graph_topic
    if topics.instruction in types:
        out[need(topics.instruction, "std_msgs/msg/String", "instruction")] = inputs.instruction
    elif not instruction:
        raise ReplayRosError(f"bag {bag} has no instruction topic {topics.instruction!r}; pass --instruction")
    return out


# --- recording the graph's outputs ------------------------------------------------------
class GraphRecorder:
    """Raw subscriptions on an rclpy node written into a new rosbag2 bag.

    Raw CDR bytes are written as received: no rclpy re-serialisation (whose padding
    rosbags rejects for some types). Each message is stamped on arrival with
    ``clock()``, the sim time last published on /clock (read from the player itself:
    a /clock subscription could be served after an output that followed it). One
    writer thread owns the bag from open to close (sqlite3 objects are bound to the
    thread that made them); callbacks only queue, so a write error cannot stop the
    executor, and close() re-raises it."""

    def __init__(self, node: Any, path: Path, topics: Mapping[str, str], clock: Callable[[], int],
                 storage: str = "mcap") -> None:
        if storage not in STORAGES:
            raise ReplayRosError(f"storage must be one of {sorted(STORAGES)}, got {storage!r}")
        if Path(path).exists():
            raise ReplayRosError(f"output bag {path} already exists; remove it or choose another --out")
        self.node, self.path, self.clock = node, Path(path), clock
        self.counts = {t: 0 for t in topics}
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._error: BaseException | None = None
        self._opened = threading.Event()
        self._thread = threading.Thread(target=self._write_all, args=(dict(topics), storage), name="heisd-recorder",
                                        daemon=True)
        self._thread.start()
        self._opened.wait()
        if self._error is not None:
            raise ReplayRosError(f"cannot create output bag {path}: {self._error}") from self._error
        self.subscriptions = {t: node.create_subscription(message_class(ty), t, lambda raw, t=t: self._on(t, raw),
                                                          COMMAND, raw=True) for t, ty in topics.items()}

    def _write_all(self, topics: dict[str, str], storage: str) -> None:
        try:
            ts = heisd_typestore()
            writer = Writer(self.path, version=BAG_VERSION, storage_plugin=STORAGES[storage])
            writer.open()
            conns = {t: writer.add_connection(t, ty, typestore=ts) for t, ty in topics.items()}
        except Exception as exc:  # noqa: BLE001 - reported by the constructor
            self._error = exc
            self._opened.set()
            return
        self._opened.set()
        try:
            while (item := self._queue.get()) is not None:
                topic, ns, raw = item
                if self._error is None:
                    writer.write(conns[topic], ns, raw)
                    self.counts[topic] += 1
        except Exception as exc:  # noqa: BLE001 - re-raised by close()
            self._error = exc
        finally:
            writer.close()

    def _on(self, topic: str, raw: bytes) -> None:
        self._queue.put((topic, int(self.clock()), raw))

    def close(self) -> None:
        """Stop recording, finish the bag; raises ReplayRosError if a write failed."""
        for sub in self.subscriptions.values():
            self.node.destroy_subscription(sub)
        self.subscriptions = {}
        self._queue.put(None)
        self._thread.join()
        if self._error is not None:
            raise ReplayRosError(f"writing {self.path} failed: {type(self._error).__name__}: {self._error}")


# --- the summary ---------------------------------------------------------------------------
def summarize_output(path: Path, action_topic: str = COORDINATOR_ACTION_TOPIC) -> dict[str, Any]:
    """Figures of a recorded graph-output bag, computed from the bag alone (docs/results-schema.md)."""
    with AnyReader([Path(path)], default_typestore=heisd_typestore()) as reader:
        counts = {c.topic: 0 for c in reader.connections}
        by_type = {c.topic: c.msgtype for c in reader.connections}
        chunks = []
        for conn, ns, raw in reader.messages():
            counts[conn.topic] += 1
            if conn.topic == action_topic:
                chunks.append((ns, reader.deserialize(raw, conn.msgtype)))
    by_source = Counter(Branch.from_source(int(m.source)).value for _, m in chunks)
    figures = chunk_summary([m for _, m in chunks])  # the same figures the demo reports live
    stamps = [m.header.stamp.sec + m.header.stamp.nanosec * 1e-9 for _, m in chunks]
    return {
        "chunks": len(chunks),
        "fresh_chunks": figures["actions"],
        "hold_chunks": len(chunks) - figures["actions"],
        "chunks_by_source": dict(sorted(by_source.items())),
        "branch_mix": figures.get("branch_mix", {}),
        "inference_latency_ms_mean": figures["latency_ms"]["mean"] if figures["actions"] else None,
        "chunk_stamps_s": [min(stamps), max(stamps)] if stamps else None,
        "kinematic_states": sum(n for t, n in counts.items() if by_type[t] == KINEMATIC_STATE),
        "decode_stats": sum(n for t, n in counts.items() if by_type[t] == DECODE_STATS),
    }


# --- one bag through the graph ---------------------------------------------------------------
@dataclass
class RosReplaySettings:
    rate: float = 1.0
    storage: str = "mcap"
    ready_timeout_s: float = 180.0
    settle_s: float = 0.5  # after the last message: let in-flight outputs reach the recorder
    instruction: str | None = None  # published before playback (for bags without an instruction topic)
    instruction_topic: str = "/heisd/instruction"
    joint_map: Mapping[str, str] | None = None


def _dead(graph: Any) -> str | None:
    dead = graph.poll()
    if not dead:
        return None
    lines = []
    for name, code in dead:
        tail = next((n.output[-8:] for n in graph.nodes if n.name == name), [])
        lines.append(f"node {name} exited with code {code}" + ("; last output:\n    " + "\n    ".join(tail) if tail else ""))
    return "\n".join(lines)


def _wait(what: str, ready: Callable[[], bool], graph: Any, deadline: float) -> None:
    while not ready():
        reason = _dead(graph)
        if reason:
            raise GraphNodeDied(f"while waiting for {what}: {reason}")
        if time.monotonic() > deadline:
            raise ReplayRosError(f"the graph did not become ready: timed out waiting for {what}")
        time.sleep(0.1)


def _verifier_active(node: Any) -> Callable[[], bool]:
    """A readiness check: the verifier lifecycle node reports 'active' (after loading and warm-up)."""
    client = node.create_client(GetState, "/verifier/get_state")
    pending: list[tuple[Any, float]] = []  # (future, sent at)

    def check() -> bool:
        if pending and pending[0][0].done():
            result = pending.pop()[0].result()
            if result is not None and result.current_state.id == State.PRIMARY_STATE_ACTIVE:
                return True
        if pending and time.monotonic() - pending[0][1] > 2.0:  # a response lost right after discovery
            client.remove_pending_request(pending.pop()[0])
        if not pending and client.service_is_ready():
            pending.append((client.call_async(GetState.Request()), time.monotonic()))
        return False

    return check


def decode_stats_topics(node: Any) -> dict[str, str]:
    """Topics of the running graph that carry DecodeStats (recorded where a node publishes them)."""
    return {t: DECODE_STATS for t, types in node.get_topic_names_and_types() if DECODE_STATS in types}


def replay_bag_into_graph(bag: Path, out_bag: Path, graph: Any, mapping: Mapping[str, str],
                          settings: RosReplaySettings, executor: Any,
                          record_topics: Mapping[str, str], log: Callable[[str], None] = print) -> dict[str, Any]:
    """Start ``graph`` (a NodeGraph with use_sim_time), play ``bag`` into it, record, stop; the bag's summary.

    ``executor`` spins the player and recorder nodes (a running background executor
    of the caller's rclpy context). ``record_topics`` ({topic: msgtype}) must all get a
    publisher; DecodeStats topics found in the graph once it is up are recorded too."""
    params = [Parameter("bag", value=str(bag)), Parameter("rate", value=float(settings.rate)),
              Parameter("topic_map", value=[f"{k}={v}" for k, v in mapping.items()]),
              Parameter("wait_for_subscribers_s", value=0.0)]
    if settings.joint_map:
        params.append(Parameter("joint_map", value=[f"{k}={v}" for k, v in settings.joint_map.items()]))
    if settings.instruction:
        params += [Parameter("instruction", value=settings.instruction),
                   Parameter("instruction_topic", value=settings.instruction_topic)]
    try:
        player = BagPlayerNode(parameter_overrides=params)
    except PlaybackError as exc:
        raise ReplayRosError(str(exc)) from None
    recorder_node = rclpy.create_node("heisd_replay_recorder")
    executor.add_node(player)
    executor.add_node(recorder_node)
    recorder = None
    started = time.monotonic()
    graph.start()
    try:
        deadline = time.monotonic() + settings.ready_timeout_s
        _wait(f"subscribers on {player.graph_topics}", lambda: not player.unmatched_topics(), graph, deadline)
        if any(n.name == "verifier" for n in graph.nodes):
            _wait("the verifier to become active", _verifier_active(recorder_node), graph, deadline)
        topics = {**record_topics, **decode_stats_topics(recorder_node)}
        recorder = GraphRecorder(recorder_node, out_bag, topics, lambda: player.clock_ns, settings.storage)
        _wait(f"publishers on {sorted(topics)}",
              lambda: all(s.get_publisher_count() > 0 for s in recorder.subscriptions.values()), graph, deadline)
        log(f"[replay --ros] graph ready after {time.monotonic() - started:.1f} s; playing {bag} at rate {settings.rate}")
        try:
            report = player.play(should_stop=lambda: _dead(graph))
        except PlaybackStopped as exc:
            raise GraphNodeDied(f"while playing {bag}: {exc}") from None
        except PlaybackError as exc:
            raise ReplayRosError(str(exc)) from None
        time.sleep(settings.settle_s)
        reason = _dead(graph)
        if reason:
            raise GraphNodeDied(f"while playing {bag}: {reason}")
    finally:
        codes = graph.stop()
        for node in (player, recorder_node):
            executor.remove_node(node)
        try:
            if recorder is not None:
                recorder.close()
        finally:
            player.destroy_node()
            recorder_node.destroy_node()
    summary = {"bag": str(bag), "output_bag": str(out_bag), "rate": settings.rate,
               "sim_start_s": report.start_ns * 1e-9, "sim_end_s": report.end_ns * 1e-9,
               "sim_duration_s": report.duration_s, "wall_s": round(report.wall_s, 3),
               "messages_played": dict(sorted(report.messages.items())),
               **summarize_output(out_bag), "node_exit_codes": codes}
    return summary
