"""``heisd replay`` on a project bag and on the same recording as a foreign stack would write it:
renamed topics, reordered and renamed joints, sqlite3 storage."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from rosbags.rosbag2 import StoragePlugin, Writer

from heisd_ros.bundle import load_bundle
from heisd_ros.cli import main
from heisd_ros.data.reader import ReaderConfig, TopicConfig, read_frames
from heisd_ros.data.typestore import heisd_typestore
from heisd_ros.eval.replay import frame_observation, replay
from heisd_ros.eval.results import validate_document

pytestmark = pytest.mark.sim  # the bundle comes from simulated demonstrations; replay itself needs no simulator

TOPICS = {"joints": "/arm/joint_states", "image": "/front_cam/rgb", "pose": "/tcp_pose", "action": "/policy/cmd",
          "instruction": "/task_text"}


def write_foreign_copy(src: Path, dst: Path) -> dict[str, str]:
    """Rewrite ``src`` with TOPICS, joints in reverse order and prefixed 'ext/', sqlite3; returns the joint map."""
    frames = read_frames(src, ReaderConfig(chunk=1))
    names = list(frames[0].joint_names)
    renamed = {n: f"ext/{n}" for n in names}
    order = names[::-1]
    ts = heisd_typestore()
    t = ts.types
    with Writer(dst, version=9, storage_plugin=StoragePlugin.SQLITE3) as w:
        c = {"joints": w.add_connection(TOPICS["joints"], "sensor_msgs/msg/JointState", typestore=ts),
             "image": w.add_connection(TOPICS["image"], "sensor_msgs/msg/Image", typestore=ts),
             "pose": w.add_connection(TOPICS["pose"], "geometry_msgs/msg/PoseStamped", typestore=ts),
             "action": w.add_connection(TOPICS["action"], "heisd_msgs/msg/ActionChunk", typestore=ts),
             "instruction": w.add_connection(TOPICS["instruction"], "std_msgs/msg/String", typestore=ts)}
        first_ns = int(round(frames[0].stamp * 1e9))
        w.write(c["instruction"], first_ns, ts.serialize_cdr(t["std_msgs/msg/String"](data=frames[0].instruction),
                                                             "std_msgs/msg/String"))
        for k, f in enumerate(frames):
            ns = int(round(f.stamp * 1e9))
            header = t["std_msgs/msg/Header"](stamp=t["builtin_interfaces/msg/Time"](sec=ns // 10**9, nanosec=ns % 10**9),
                                              frame_id="base")
            pos = dict(zip(names, f.joint_positions))
            js = t["sensor_msgs/msg/JointState"](header=header, name=[renamed[n] for n in order],
                                                 position=np.array([pos[n] for n in order]),
                                                 velocity=np.zeros(len(order)), effort=np.zeros(0))
            w.write(c["joints"], ns, ts.serialize_cdr(js, js.__msgtype__))
            img = f.images["agentview"]
            im = t["sensor_msgs/msg/Image"](header=header, height=img.shape[0], width=img.shape[1], encoding="rgb8",
                                            is_bigendian=0, step=3 * img.shape[1], data=img.reshape(-1))
            w.write(c["image"], ns, ts.serialize_cdr(im, im.__msgtype__))
            p, q = f.ee_positions["right"], f.ee_orientations["right"]
            pose = t["geometry_msgs/msg/PoseStamped"](header=header, pose=t["geometry_msgs/msg/Pose"](
                position=t["geometry_msgs/msg/Point"](x=float(p[0]), y=float(p[1]), z=float(p[2])),
                orientation=t["geometry_msgs/msg/Quaternion"](x=float(q[0]), y=float(q[1]), z=float(q[2]), w=float(q[3]))))
            w.write(c["pose"], ns, ts.serialize_cdr(pose, pose.__msgtype__))
            chunk = t["heisd_msgs/msg/ActionChunk"]
            msg = chunk(header=header, sequence_id=k, observation_stamp=header.stamp, dimension_names=list(f.action_names),
                        horizon=1, dimension=f.action.size, actions=f.action, step_dt=0.05, source=chunk.SOURCE_REPLAY,
                        drafted_tokens=0, accepted_tokens=0, vla_forward_passes=0, inference_latency=0.0,
                        fused_metric=0.0, clamped=False)
            w.write(c["action"], ns, ts.serialize_cdr(msg, msg.__msgtype__))
    return {v: k for k, v in renamed.items()}


def foreign_config(joint_map: dict[str, str]) -> ReaderConfig:
    topics = TopicConfig(joint_states=TOPICS["joints"], action=TOPICS["action"], instruction=TOPICS["instruction"],
                         images={"agentview": TOPICS["image"]}, ee_poses={"right": TOPICS["pose"]})
    return ReaderConfig(topics=topics, joint_aliases=joint_map, chunk=1)


def test_foreign_bag_gives_the_same_observations_and_figures(sim_bundle, tmp_path):
    bags, bundle_dir = sim_bundle
    ours = sorted(p.parent for p in bags.rglob("metadata.yaml"))[0]
    foreign = tmp_path / "foreign"
    joint_map = write_foreign_copy(ours, foreign)
    bundle = load_bundle(bundle_dir)
    a = read_frames(ours, ReaderConfig(chunk=1))
    b = read_frames(foreign, foreign_config(joint_map))
    assert len(a) == len(b) > 5
    assert list(b[0].joint_names) != list(a[0].joint_names)  # reordered in the bag ...
    for fa, fb in zip(a, b):  # ... but the model sees the same observation
        oa, ob = frame_observation(bundle, fa), frame_observation(bundle, fb)
        np.testing.assert_allclose(ob.proprio, oa.proprio)
        np.testing.assert_array_equal(ob.images["agentview"], oa.images["agentview"])
        np.testing.assert_allclose(ob.ee_position, oa.ee_position)
    ra = replay(bundle, [ours], ["ar", "heisd"], progress=None, overrides={"heisd": {"tau": 0.0}})
    rb = replay(bundle, [foreign], ["ar", "heisd"], foreign_config(joint_map), progress=None,
                overrides={"heisd": {"tau": 0.0}})
    rows_a, rows_b = ra.rows(0.0), rb.rows(0.0)
    for x, y in zip(rows_a, rows_b):
        assert x["method"] == y["method"] and x["task"] == y["task"] == "lift"
        for key in ("decoder_calls", "vla_forward_passes_per_action", "mean_accepted_tokens", "branch_mix",
                    "token_deviation_vs_ar", "recorded_action_deviation"):
            assert x[key] == y[key], key


def test_replay_cli_with_mapped_topics_writes_results_and_report(sim_bundle, tmp_path):
    bags, bundle_dir = sim_bundle
    ours = sorted(p.parent for p in bags.rglob("metadata.yaml"))[0]
    foreign = tmp_path / "foreign"
    joint_map = write_foreign_copy(ours, foreign)
    out = tmp_path / "replay"
    args = ["replay", str(foreign), "--bundle", str(bundle_dir), "--out", str(out), "--tau", "0.0",
            "--joint-states-topic", TOPICS["joints"], "--action-topic", TOPICS["action"],
            "--instruction-topic", TOPICS["instruction"], "--image-topic", f"agentview={TOPICS['image']}",
            "--ee-pose-topic", f"right={TOPICS['pose']}", "--joint-map", *[f"{k}={v}" for k, v in joint_map.items()]]
    assert main(args) == 0
    doc = validate_document(json.loads((out / "results.json").read_text()))
    frames = doc["setup"]["frames"]
    methods = [r["method"] for r in doc["results"]]
    assert methods == ["ar", "drafter", "retrieval", "heisd"]
    for r in doc["results"]:
        assert r["success_rate"] is None and r["timing"] == "offline" and r["decoder_calls"] == frames
        assert r["recorded_action_deviation"]["mean_abs_bins"] >= 0
    assert (out / "report" / "summary.md").is_file() and (out / "report" / "latency_cdf.png").is_file()
    assert not (out / "report" / "success_vs_speedup.png").exists()  # no success offline
    with pytest.raises(SystemExit, match="joint states lack"):
        main(args[:-len(joint_map) - 1] + ["--out", str(tmp_path / "x")])  # without the joint map
