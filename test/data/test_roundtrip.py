"""Every topic of a recorded sim episode survives the bag, field by field (real simulator, real bags)."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from rosbags.highlevel import AnyReader

from heisd_ros.data.bag_writer import ACTION, INSTRUCTION, JOINT_STATES, EpisodeBagWriter, ee_pose_topic, image_topic
from heisd_ros.data.reader import ReaderConfig, read_frames
from heisd_ros.data.typestore import heisd_typestore
from heisd_ros.sim.env import SimEnv

pytestmark = pytest.mark.sim


def record(env: SimEnv, path: Path, steps: int, storage: str = "mcap"):  # noqa: ANN201
    rng = np.random.default_rng(0)
    observations, actions = [], []
    writer = EpisodeBagWriter(path, env.control_rate, env.action_space.names, env.arms, env.cameras, storage=storage)
    writer.write_instruction(env.instruction)
    obs = env.reset(1)
    for k in range(steps):
        action = rng.uniform(-0.3, 0.3, env.action_space.dim)
        writer.write_observation(obs)
        writer.write_action(k, action)
        observations.append(obs)
        actions.append(action)
        obs = env.step(action)
    writer.write_observation(obs)
    observations.append(obs)
    writer.close({"task": env.task.name, "seed": "1"})
    return observations, actions


def messages(path: Path) -> dict[str, list]:
    out: dict[str, list] = {}
    with AnyReader([path], default_typestore=heisd_typestore()) as reader:
        for conn, log_time, raw in reader.messages():
            out.setdefault(conn.topic, []).append((log_time, reader.deserialize(raw, conn.msgtype)))
    return out


def stamp_s(msg) -> float:  # noqa: ANN001
    return msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_arm_episode_roundtrip_field_by_field(tmp_path: Path, storage: str) -> None:
    with SimEnv("lift", cameras=("agentview",), image_size=32) as env:
        observations, actions = record(env, tmp_path / "bag", steps=4, storage=storage)
        names = env.action_space.names
    msgs = messages(tmp_path / "bag")
    assert set(msgs) == {JOINT_STATES, image_topic("agentview"), "/ee_pose", INSTRUCTION, ACTION}
    assert [m.data for _, m in msgs[INSTRUCTION]] == ["lift the cube"]
    assert len(msgs[JOINT_STATES]) == len(observations) and len(msgs[ACTION]) == len(actions)
    for obs, (log_time, js), (_, img), (_, pose) in zip(observations, msgs[JOINT_STATES],
                                                       msgs[image_topic("agentview")], msgs["/ee_pose"]):
        t = obs.step / 20.0
        assert stamp_s(js) == pytest.approx(t) and log_time == round(t * 1e9)
        assert list(js.name) == list(obs.joint_names)
        np.testing.assert_array_equal(js.position, obs.joint_positions)
        np.testing.assert_array_equal(js.velocity, obs.joint_velocities)
        assert (img.height, img.width, img.encoding, img.step) == (32, 32, "rgb8", 96)
        np.testing.assert_array_equal(np.asarray(img.data).reshape(32, 32, 3), obs.images["agentview"])
        assert stamp_s(img) == pytest.approx(t) and img.header.frame_id == "agentview"
        p, q = pose.pose.position, pose.pose.orientation
        np.testing.assert_array_equal([p.x, p.y, p.z], obs.ee_poses["right"].position)
        np.testing.assert_array_equal([q.x, q.y, q.z, q.w], obs.ee_poses["right"].orientation)
        assert pose.header.frame_id == "world"
    for k, (action, (_, chunk)) in enumerate(zip(actions, msgs[ACTION])):
        assert chunk.horizon == 1 and chunk.dimension == 7 and list(chunk.dimension_names) == list(names)
        np.testing.assert_array_equal(chunk.actions, action)
        assert chunk.source == 5 and chunk.sequence_id == k
        assert stamp_s(chunk) == pytest.approx(k / 20.0) and chunk.step_dt == pytest.approx(0.05)
        assert math.isnan(chunk.fused_metric)

    frames = read_frames(tmp_path / "bag", ReaderConfig(chunk=2))
    assert len(frames) == len(actions)
    for k, frame in enumerate(frames):  # each action with the observation it was computed from
        np.testing.assert_array_equal(frame.joint_positions, observations[k].joint_positions)
        np.testing.assert_array_equal(frame.images["agentview"], observations[k].images["agentview"])
        np.testing.assert_array_equal(frame.action, actions[k])
        assert frame.instruction == "lift the cube" and frame.action_names == names
    np.testing.assert_array_equal(frames[0].action_chunk, np.stack(actions[:2]))


def test_custom_metadata_lands_in_metadata_yaml(tmp_path: Path) -> None:
    with SimEnv("lift") as env:
        record(env, tmp_path / "bag", steps=1)
    meta = yaml.safe_load((tmp_path / "bag" / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert meta["custom_data"] == {"task": "lift", "seed": "1"}
    assert meta["storage_identifier"] == "mcap"


def test_humanoid_episode_has_one_pose_topic_per_arm(tmp_path: Path) -> None:
    with SimEnv("humanoid_lift") as env:
        observations, actions = record(env, tmp_path / "bag", steps=2)
        assert [ee_pose_topic(a, env.arms) for a in env.arms] == ["/ee_pose/right", "/ee_pose/left"]
    msgs = messages(tmp_path / "bag")
    for arm in ("right", "left"):
        positions = [[m.pose.position.x, m.pose.position.y, m.pose.position.z] for _, m in msgs[f"/ee_pose/{arm}"]]
        np.testing.assert_array_equal(positions, [o.ee_poses[arm].position for o in observations])
    frames = read_frames(tmp_path / "bag", ReaderConfig(require_images=False))
    assert set(frames[0].ee_positions) == {"right", "left"}
    assert frames[0].action.shape == (24,)
    assert len(frames[0].joint_names) == len(observations[0].joint_names) == 36
