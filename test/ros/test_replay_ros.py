"""``heisd replay --ros``: a foreign-looking bag (renamed topics, reordered and renamed joints, sqlite3)
played into the real node graph on sim time, the graph's outputs recorded into a new bag; and the
bag player's message converter on real rclpy classes."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from rosbags.highlevel import AnyReader
from rosbags.rosbag2 import StoragePlugin, Writer

from heisd_ros.bundle import load_bundle
from heisd_ros.data.typestore import heisd_typestore

pytestmark = pytest.mark.ros

TOPICS = {"joints": "/arm/joint_states", "image": "/front_cam/rgb", "pose": "/tcp_pose", "instruction": "/task_text",
          "action": "/policy/cmd"}
START_S, RATE_HZ = 100.0, 20.0


def write_foreign_bag(path: Path, bundle, steps: int, storage: StoragePlugin = StoragePlugin.SQLITE3) -> dict[str, str]:  # noqa: ANN001
    """A robot stack's recording: TOPICS, joints reversed and prefixed 'ext/', a moving EE, recorded actions.
    Returns the joint map (bag name -> bundle name)."""
    ts = heisd_typestore()
    t = ts.types
    joints = bundle.joint_names + list(bundle.interface.inputs.gripper_joints)
    order = [f"ext/{n}" for n in joints[::-1]]
    rng = np.random.default_rng(0)
    size = bundle.image_size
    with Writer(path, version=9, storage_plugin=storage) as w:
        c = {"joints": w.add_connection(TOPICS["joints"], "sensor_msgs/msg/JointState", typestore=ts),
             "image": w.add_connection(TOPICS["image"], "sensor_msgs/msg/Image", typestore=ts),
             "pose": w.add_connection(TOPICS["pose"], "geometry_msgs/msg/PoseStamped", typestore=ts),
             "instruction": w.add_connection(TOPICS["instruction"], "std_msgs/msg/String", typestore=ts),
             "action": w.add_connection(TOPICS["action"], "heisd_msgs/msg/ActionChunk", typestore=ts)}
        first = int(START_S * 1e9)
        w.write(c["instruction"], first, ts.serialize_cdr(t["std_msgs/msg/String"](data="lift the cube"), "std_msgs/msg/String"))
        for k in range(steps):
            ns = first + int(round(k * 1e9 / RATE_HZ))
            stamp = t["builtin_interfaces/msg/Time"](sec=ns // 10**9, nanosec=ns % 10**9)
            header = t["std_msgs/msg/Header"](stamp=stamp, frame_id="base")
            q = np.array([0.1 * math.sin(0.5 * k / RATE_HZ + i) for i in range(len(order))])
            js = t["sensor_msgs/msg/JointState"](header=header, name=order, position=q, velocity=np.zeros(len(order)),
                                                 effort=np.zeros(0))
            w.write(c["joints"], ns, ts.serialize_cdr(js, js.__msgtype__))
            img = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
            im = t["sensor_msgs/msg/Image"](header=header, height=size, width=size, encoding="rgb8", is_bigendian=0,
                                            step=3 * size, data=img.reshape(-1))
            w.write(c["image"], ns, ts.serialize_cdr(im, im.__msgtype__))
            a = 0.3 * k / RATE_HZ
            pose = t["geometry_msgs/msg/PoseStamped"](header=header, pose=t["geometry_msgs/msg/Pose"](
                position=t["geometry_msgs/msg/Point"](x=0.1 * math.cos(a), y=0.1 * math.sin(a), z=1.0),
                orientation=t["geometry_msgs/msg/Quaternion"](x=0.0, y=0.0, z=0.0, w=1.0)))
            w.write(c["pose"], ns, ts.serialize_cdr(pose, pose.__msgtype__))
            chunk = t["heisd_msgs/msg/ActionChunk"]
            msg = chunk(header=header, sequence_id=k, observation_stamp=stamp, dimension_names=list(bundle.action_names),
                        horizon=1, dimension=len(bundle.action_names), actions=np.zeros(len(bundle.action_names)),
                        step_dt=1 / RATE_HZ, source=chunk.SOURCE_REPLAY, drafted_tokens=0, accepted_tokens=0,
                        vla_forward_passes=0, inference_latency=0.0, fused_metric=0.0, clamped=False)
            w.write(c["action"], ns, ts.serialize_cdr(msg, msg.__msgtype__))
    return {f"ext/{n}": n for n in joints}


def read_bag(path: Path) -> dict[str, list]:
    out: dict[str, list] = {}
    with AnyReader([path], default_typestore=heisd_typestore()) as reader:
        for conn, ns, raw in reader.messages():
            out.setdefault(conn.topic, []).append((ns, reader.deserialize(raw, conn.msgtype)))
    return out


def test_replay_ros_plays_a_foreign_bag_into_the_graph_and_records_its_outputs(ros_node, tiny_bundle, tmp_path):
    from heisd_msgs.msg import DecodeStats

    # no node publishes DecodeStats yet; one from this process shows that the graph's are found and recorded
    stats_pub = ros_node.node.create_publisher(DecodeStats, "/test_replay/decode_stats", 10)
    ros_node.node.create_timer(0.1, lambda: stats_pub.publish(DecodeStats(drafted_tokens=3)))
    bundle = load_bundle(tiny_bundle)
    bag = tmp_path / "robot_run"
    joint_map = write_foreign_bag(bag, bundle, steps=120)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "heisd_ros", "replay", "--ros", str(bag), "--bundle", tiny_bundle, "--out", str(out),
           "--rate", "0.5", "--storage", "sqlite3", "--joint-states-topic", TOPICS["joints"], "--instruction-topic", TOPICS["instruction"],
           "--action-topic", TOPICS["action"], "--image-topic", f"agentview={TOPICS['image']}",
           "--ee-pose-topic", f"right={TOPICS['pose']}", "--set", "verifier.warmup_steps:=1",
           "--set", "kinematic_encoder.gripper_joints:=['']", "--joint-map", *[f"{k}={v}" for k, v in joint_map.items()]]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=150)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    doc = json.loads((out / "replay_ros.json").read_text())
    assert json.loads(done.stdout) == doc  # printed too
    print(json.dumps(doc, indent=1))  # shown when an assertion below fails
    (s,) = doc["bags"]
    recorded = read_bag(Path(s["output_bag"]))
    assert Path(s["output_bag"]) == out / "robot_run_graph"
    chunks = [m for _, m in recorded["/coordinator/action_chunk"]]
    end_s = START_S + 119 / RATE_HZ
    stamps = np.array([m.header.stamp.sec + m.header.stamp.nanosec * 1e-9 for m in chunks])
    log_times = np.array([ns * 1e-9 for ns, _ in recorded["/coordinator/action_chunk"]])
    assert len(chunks) >= 40
    assert np.all((stamps >= START_S) & (stamps <= end_s + 1e-6)), (stamps.min(), stamps.max())
    assert np.all((log_times >= START_S) & (log_times <= end_s + 1e-6)), "recorded on the sim time of /clock"
    fresh = [m for m in chunks if m.source != m.SOURCE_HOLD]
    assert fresh, "the graph never produced a verified action from the played observations"
    assert all(m.source != m.SOURCE_REPLAY for m in chunks), "the bag's recorded actions must not be replayed"
    assert all(list(m.dimension_names) == bundle.action_names for m in fresh)
    # the summary agrees with the recorded bag
    assert s["chunks"] == len(chunks) and s["fresh_chunks"] == len(fresh)
    assert s["hold_chunks"] == len(chunks) - len(fresh)
    assert sum(s["chunks_by_source"].values()) == len(chunks)
    assert math.isclose(sum(s["branch_mix"].values()), 1.0)
    assert math.isclose(s["inference_latency_ms_mean"], np.mean([m.inference_latency for m in fresh]) * 1e3)
    assert s["inference_latency_ms_mean"] > 0
    assert s["kinematic_states"] == len(recorded["/kinematic_encoder/kinematic_state"]) > 0
    assert s["decode_stats"] == len(recorded["/test_replay/decode_stats"]) > 0
    assert all(m.drafted_tokens == 3 for _, m in recorded["/test_replay/decode_stats"])
    assert math.isclose(s["sim_start_s"], START_S) and math.isclose(s["sim_end_s"], end_s)
    assert s["messages_played"]["/joint_states"] == 120 and s["messages_played"]["/camera/agentview/image_raw"] == 120
    assert "/policy/cmd" not in s["messages_played"] and s["messages_played"]["/heisd/instruction"] == 1
    states = [m for _, m in recorded["/kinematic_encoder/kinematic_state"]]
    assert any(list(m.joint_names) == list(joint_map.values())[::-1] for m in states), "joint names were remapped"
    assert any(m.metric_defined for m in states)
    assert all(c in (0, -2) for c in s["node_exit_codes"].values()), s["node_exit_codes"]


def test_replay_ros_errors_say_what_is_wrong(tiny_bundle, tmp_path):
    from heisd_ros.cli import main

    bundle = load_bundle(tiny_bundle)
    bag = tmp_path / "robot_run"
    write_foreign_bag(bag, bundle, steps=3)
    base = ["replay", "--ros", "--bundle", tiny_bundle, "--out", str(tmp_path / "out")]
    with pytest.raises(SystemExit, match="not found: .*nowhere"):
        main(base + [str(tmp_path / "nowhere")])
    with pytest.raises(SystemExit, match=r"no joint states topic '/joint_states'; its topics: .*/arm/joint_states"):
        main(base + [str(bag)])  # the bag's topics are not mapped
    with pytest.raises(SystemExit, match="no 'agentview' camera topic '/camera/agentview/image_raw'"):
        main(base + [str(bag), "--joint-states-topic", TOPICS["joints"]])
    with pytest.raises(SystemExit, match="one method"):
        main(base + [str(bag), "--methods", "ar", "heisd"])
    (tmp_path / "out" / "robot_run_graph").mkdir(parents=True)
    with pytest.raises(SystemExit, match="already exist: .*robot_run_graph"):
        main(base + [str(bag)])


@pytest.mark.slow  # a whole graph start (about 40 s on a busy 2-core machine)
def test_replay_ros_reports_a_graph_node_that_died(tiny_bundle, tmp_path):
    bundle = load_bundle(tiny_bundle)
    bag = tmp_path / "robot_run"
    joint_map = write_foreign_bag(bag, bundle, steps=3)
    cmd = [sys.executable, "-m", "heisd_ros", "replay", "--ros", str(bag), "--bundle", tiny_bundle,
           "--out", str(tmp_path / "out"), "--joint-states-topic", TOPICS["joints"], "--instruction-topic",
           TOPICS["instruction"], "--image-topic", f"agentview={TOPICS['image']}", "--ee-pose-topic",
           f"right={TOPICS['pose']}", "--set", f"coordinator.bundle:={tmp_path / 'no_such_bundle'}",
           "--joint-map", *[f"{k}={v}" for k, v in joint_map.items()]]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "node coordinator exited with code 1" in done.stderr, done.stderr[-2000:]
    assert "no_such_bundle" in done.stderr  # the node's own last words come with it


def test_bag_player_publishes_clock_and_renamed_topics_in_recorded_time(ros_node, tiny_bundle, tmp_path):
    from rosgraph_msgs.msg import Clock
    from sensor_msgs.msg import JointState

    from heisd_ros.nodes.bag_player import BagPlayerNode, PlaybackError
    from rclpy.parameter import Parameter
    from ros_harness import wait_for

    bundle = load_bundle(tiny_bundle)
    bag = tmp_path / "mcap_run"
    steps = 30
    joint_map = write_foreign_bag(bag, bundle, steps=steps, storage=StoragePlugin.MCAP)
    clocks, joints = [], []
    ros_node.node.create_subscription(Clock, "/clock", lambda m: clocks.append(m.clock.sec + m.clock.nanosec * 1e-9), 100)
    ros_node.node.create_subscription(JointState, "/robot/joints", lambda m: joints.append((clocks[-1] if clocks else None, m)), 100)
    params = [Parameter("bag", value=str(bag)), Parameter("rate", value=2.0),
              Parameter("topic_map", value=[f"{TOPICS['joints']}=/robot/joints"]),
              Parameter("joint_map", value=[f"{k}={v}" for k, v in joint_map.items()])]
    player = BagPlayerNode(parameter_overrides=params)
    # the /clock the player had published when it sent each message, by wrapping the conversion that
    # precedes every publish: DDS orders delivery per topic only, so a subscriber can see a message
    # before the /clock sample sent just ahead of it (it did, once, over loopback UDP)
    clock_at_send = []
    convert = player._convert

    def spied_convert(reader, topic, raw):  # noqa: ANN001
        msg = convert(reader, topic, raw)
        clock_at_send.append(player.clock_ns * 1e-9)
        return msg

    player._convert = spied_convert
    try:
        assert player.graph_topics == ["/robot/joints"]
        assert player.wait_for_subscribers(10.0) == []
        wait_for(lambda: player.clock_pub.get_subscription_count() > 0, 10, "a /clock subscriber")
        report = player.play()
        wait_for(lambda: len(joints) == steps, 5, f"{steps} joint states")
    finally:
        player.destroy_node()
    duration = (steps - 1) / RATE_HZ
    assert report.messages == {"/robot/joints": steps} and math.isclose(report.duration_s, duration)
    assert duration / 2.0 * 0.9 <= report.wall_s <= duration / 2.0 + 1.0, report.wall_s  # rate 2: half the bag's time
    assert clocks == sorted(clocks) and math.isclose(clocks[0], START_S) and math.isclose(clocks[-1], START_S + duration)
    assert len(clock_at_send) == steps
    for k, (_, msg) in enumerate(joints):
        stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        assert math.isclose(stamp, START_S + k / RATE_HZ), "header stamps are kept"
        assert clock_at_send[k] >= stamp - 1e-9, "/clock never lags a message"
        assert list(msg.name) == list(joint_map.values())[::-1]
    assert np.allclose(joints[3][1].position, [0.1 * math.sin(0.5 * 3 / RATE_HZ + i) for i in range(len(joint_map))])
    # by default every sensor topic plays under its own name, never the recorded actions
    player = BagPlayerNode(parameter_overrides=[Parameter("bag", value=str(bag))])
    try:
        assert sorted(player.graph_topics) == sorted(v for k, v in TOPICS.items() if k != "action")
    finally:
        player.destroy_node()
    with pytest.raises(PlaybackError, match="recorded graph outputs"):
        BagPlayerNode(parameter_overrides=[Parameter("bag", value=str(bag)),
                                           Parameter("topic_map", value=[f"{TOPICS['action']}=/x"])])
    with pytest.raises(PlaybackError, match="no topic"):
        BagPlayerNode(parameter_overrides=[Parameter("bag", value=str(bag)), Parameter("topic_map", value=["/nope=/x"])])
    with pytest.raises(PlaybackError, match="does not exist"):
        BagPlayerNode(parameter_overrides=[Parameter("bag", value=str(tmp_path / "missing"))])


def test_converter_copies_nested_messages_fixed_arrays_octets_and_bytes():
    from diagnostic_msgs.msg import DiagnosticArray
    from sensor_msgs.msg import CameraInfo, Image
    from std_msgs.msg import ByteMultiArray

    from heisd_msgs.msg import KinematicState
    from heisd_ros.nodes.bag_player import PlaybackError, to_rclpy
    from rclpy.serialization import deserialize_message, serialize_message

    ts = heisd_typestore()
    t = ts.types
    stamp = t["builtin_interfaces/msg/Time"](sec=7, nanosec=5)
    header = t["std_msgs/msg/Header"](stamp=stamp, frame_id="cam")
    pose = t["geometry_msgs/msg/Pose"](position=t["geometry_msgs/msg/Point"](x=1.0, y=2.0, z=3.0),
                                       orientation=t["geometry_msgs/msg/Quaternion"](x=0.0, y=0.0, z=0.0, w=1.0))
    kin = t["heisd_msgs/msg/KinematicState"](
        header=header, joint_names=["a", "b"], joint_positions=np.array([0.5, -0.5]), joint_velocities=np.zeros(0),
        ee_names=["right"], ee_poses=[pose, pose], gripper_openings=np.array([1.0]), phase=2, window=5,
        metric_defined=True, curvature_radius=0.1, displacement=0.2, curvature_radius_normalized=0.3,
        displacement_normalized=0.4, fused_metric=0.35, alpha=0.5, novelty=float("nan"))
    out = to_rclpy(kin)
    assert isinstance(out, KinematicState) and out.header.stamp.nanosec == 5 and out.header.frame_id == "cam"
    assert [p.position.z for p in out.ee_poses] == [3.0, 3.0] and list(out.joint_positions) == [0.5, -0.5]
    assert out.phase == 2 and out.metric_defined is True and math.isnan(out.novelty)
    pixels = np.arange(2 * 3 * 3, dtype=np.uint8)
    img = to_rclpy(t["sensor_msgs/msg/Image"](header=header, height=2, width=3, encoding="rgb8", is_bigendian=0, step=9,
                                              data=pixels))
    assert isinstance(img, Image) and bytes(img.data) == pixels.tobytes()
    info = t["sensor_msgs/msg/CameraInfo"](
        header=header, height=2, width=3, distortion_model="plumb_bob", d=np.array([0.1, 0.2]), k=np.arange(9.0),
        r=np.eye(3).reshape(-1), p=np.arange(12.0), binning_x=1, binning_y=1,
        roi=t["sensor_msgs/msg/RegionOfInterest"](x_offset=1, y_offset=2, height=3, width=4, do_rectify=True))
    cam = deserialize_message(serialize_message(to_rclpy(info)), CameraInfo)  # a valid rclpy message end to end
    assert list(cam.k) == list(range(9)) and list(cam.d) == [0.1, 0.2] and cam.roi.do_rectify is True
    status = t["diagnostic_msgs/msg/DiagnosticStatus"](level=2, name="n", message="m", hardware_id="h",
                                                      values=[t["diagnostic_msgs/msg/KeyValue"](key="k", value="v")])
    diag = to_rclpy(t["diagnostic_msgs/msg/DiagnosticArray"](header=header, status=[status]))
    assert isinstance(diag, DiagnosticArray) and diag.status[0].level == b"\x02" and diag.status[0].values[0].value == "v"
    layout = t["std_msgs/msg/MultiArrayLayout"](dim=[], data_offset=0)
    octets = to_rclpy(t["std_msgs/msg/ByteMultiArray"](layout=layout, data=np.array([1, 255], dtype=np.uint8)))
    assert isinstance(octets, ByteMultiArray) and list(octets.data) == [b"\x01", b"\xff"]
    with pytest.raises(PlaybackError, match="no field 'header'"):
        to_rclpy(t["std_msgs/msg/String"](data="x"), Image)


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_recorder_writes_raw_outputs_stamped_with_the_given_clock(ros_node, tmp_path, storage):
    from heisd_msgs.msg import ActionChunk
    from heisd_ros.eval.replay_ros import GraphRecorder, ReplayRosError
    from heisd_ros.ros.qos import COMMAND
    from ros_harness import wait_for

    topic = f"/test_recorder_{storage}/chunks"
    pub = ros_node.node.create_publisher(ActionChunk, topic, COMMAND)
    now = [5_000_000_000]
    recorder = GraphRecorder(ros_node.node, tmp_path / "rec", {topic: "heisd_msgs/msg/ActionChunk"}, lambda: now[0],
                             storage)
    wait_for(lambda: pub.get_subscription_count() > 0, 10, "the recorder's subscription")
    for k in range(5):
        now[0] += 50_000_000
        pub.publish(ActionChunk(sequence_id=k, dimension_names=["x"], horizon=1, dimension=1, actions=[0.1 * k]))
        wait_for(lambda: recorder.counts[topic] == k + 1, 10, f"chunk {k} recorded")  # one per clock value
    recorder.close()
    got = read_bag(tmp_path / "rec")[topic]
    assert [m.sequence_id for _, m in got] == list(range(5)) and np.allclose([m.actions[0] for _, m in got], [0, .1, .2, .3, .4])
    assert [ns for ns, _ in got] == [5_000_000_000 + 50_000_000 * (k + 1) for k in range(5)]
    with pytest.raises(ReplayRosError, match="already exists"):
        GraphRecorder(ros_node.node, tmp_path / "rec", {topic: "heisd_msgs/msg/ActionChunk"}, lambda: 0, storage)


def test_topic_map_finds_the_graph_inputs_by_convention_and_by_name(tmp_path):
    from heisd_ros.data.reader import TopicConfig
    from heisd_ros.eval.replay_ros import GraphInputs, ReplayRosError, topic_map
    from heisd_ros.ros.config import apply_overrides, load_config

    ts = heisd_typestore()
    bag = tmp_path / "two_arms"
    with Writer(bag, version=9, storage_plugin=StoragePlugin.MCAP) as w:
        for topic, msgtype in (("/joint_states", "sensor_msgs/msg/JointState"), ("/camera/agentview/image_raw", "sensor_msgs/msg/Image"),
                               ("/ee_pose/right", "geometry_msgs/msg/PoseStamped"), ("/ee_pose/left", "geometry_msgs/msg/PoseStamped"),
                               ("/heisd/instruction", "std_msgs/msg/String")):
            w.add_connection(topic, msgtype, typestore=ts)
    config = load_config()
    one = GraphInputs.from_config(config, ["agentview"])
    base = {"/joint_states": "/joint_states", "/camera/agentview/image_raw": "/camera/agentview/image_raw",
            "/heisd/instruction": "/heisd/instruction"}
    assert topic_map(bag, TopicConfig(), one) == {**base, "/ee_pose/right": "/ee_pose"}  # right drives the metric
    assert topic_map(bag, TopicConfig(), one, arm="left") == {**base, "/ee_pose/left": "/ee_pose"}
    two = GraphInputs.from_config(apply_overrides(config, ["kinematic_encoder.ee_names:=[left, right]",
                                                           "kinematic_encoder.ee_pose_topics:=[/l, /r]"]), ["agentview"])
    assert topic_map(bag, TopicConfig(), two) == {**base, "/ee_pose/left": "/l", "/ee_pose/right": "/r"}
    other = GraphInputs.from_config(apply_overrides(config, ["kinematic_encoder.ee_names:=[hand, head]",
                                                             "kinematic_encoder.ee_pose_topics:=[/h, /x]"]), ["agentview"])
    with pytest.raises(ReplayRosError, match=r"tracks end effectors \['hand', 'head'\].*poses for \['left', 'right'\]"):
        topic_map(bag, TopicConfig(), other)
    with pytest.raises(ReplayRosError, match="carries sensor_msgs/msg/JointState, the graph needs sensor_msgs/msg/Image"):
        topic_map(bag, TopicConfig(images={"agentview": "/joint_states"}), one)
    no_instruction = TopicConfig(instruction="/task")
    with pytest.raises(ReplayRosError, match="no instruction topic '/task'; pass --instruction"):
        topic_map(bag, no_instruction, one)
    assert "/heisd/instruction" not in topic_map(bag, no_instruction, one, instruction="lift the cube")
    cams = ["agentview", "robot0_eye_in_hand"]  # the shipped bundle's; the package's file says [''] = by convention
    assert GraphInputs.from_config(config, cams).cameras == {c: f"/camera/{c}/image_raw" for c in cams}
    with pytest.raises(ReplayRosError, match="one topic per bundle camera"):
        GraphInputs.from_config(apply_overrides(config, ["coordinator.camera_topics:=[/cam]"]), cams)
    with pytest.raises(ReplayRosError, match="different topics"):
        GraphInputs.from_config(apply_overrides(config, ["coordinator.instruction_topic:=/other"]), ["agentview"])
