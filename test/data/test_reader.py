"""The bag reader on bags from other stacks: renamed topics, reordered joints, sqlite3, damage."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from rosbags.rosbag2 import StoragePlugin

from heisd_ros.data.reader import (
    BagReadError,
    MissingJointError,
    MissingTopicError,
    ReaderConfig,
    TopicConfig,
    UnknownTypeError,
    read_frames,
)

RENAMED = {"joints": "/robot/joint_states", "image": "/wrist_cam/rgb", "pose": "/tcp_pose",
           "action": "/policy/command", "instruction": "/task"}
RENAMED_CONFIG = TopicConfig(joint_states="/robot/joint_states", action="/policy/command", instruction="/task",
                             images={"wrist": "/wrist_cam/rgb"}, ee_poses={"right": "/tcp_pose"})
OURS = ("shoulder", "elbow", "wrist", "finger")


def bag_with_reordered_joints(factory, storage: StoragePlugin = StoragePlugin.MCAP, steps: int = 6):  # noqa: ANN001, ANN201
    """Joint states in the order (wrist, finger_left, shoulder, elbow): values encode joint and step."""
    bag_order = ["wrist", "gripper_finger", "shoulder", "elbow"]
    code = {"shoulder": 1.0, "elbow": 2.0, "wrist": 3.0, "gripper_finger": 4.0}
    positions = np.array([[code[n] + 0.01 * k for n in bag_order] for k in range(steps)])
    actions = np.arange(steps * 3, dtype=float).reshape(steps, 3)
    path = factory(joint_names=bag_order, positions=positions, actions=actions, topics=RENAMED, storage=storage)
    return path, actions


@pytest.mark.parametrize("storage", [StoragePlugin.MCAP, StoragePlugin.SQLITE3])
def test_renamed_topics_and_reordered_joints_are_read_by_name(foreign_bag_factory, storage) -> None:  # noqa: ANN001
    path, actions = bag_with_reordered_joints(foreign_bag_factory, storage)
    config = ReaderConfig(topics=RENAMED_CONFIG, joint_order=OURS, joint_aliases={"gripper_finger": "finger"},
                          chunk=3)
    frames = read_frames(path, config)
    assert len(frames) == len(actions)
    for k, frame in enumerate(frames):
        assert frame.joint_names == OURS
        np.testing.assert_allclose(frame.joint_positions, [1 + 0.01 * k, 2 + 0.01 * k, 3 + 0.01 * k, 4 + 0.01 * k])
        np.testing.assert_array_equal(frame.action, actions[k])
        assert frame.images["wrist"].shape == (4, 4, 3) and frame.images["wrist"][0, 0, 0] == k
        np.testing.assert_array_equal(frame.ee_positions["right"], [k, 0.0, 1.0])
        assert frame.instruction == "stack the cups"
        assert frame.action_names == ("d0", "d1", "d2")
        assert frame.stamp == pytest.approx(1.0 + 0.1 * k)
    np.testing.assert_array_equal(frames[1].action_chunk, actions[1:4])
    assert frames[1].chunk_valid == 3
    last = frames[-1]
    assert last.chunk_valid == 1
    np.testing.assert_array_equal(last.action_chunk, np.repeat(actions[-1:], 3, axis=0))


def test_default_joint_order_is_the_bags(foreign_bag_factory) -> None:  # noqa: ANN001
    path, _ = bag_with_reordered_joints(foreign_bag_factory)
    frame = read_frames(path, ReaderConfig(topics=RENAMED_CONFIG))[0]
    assert frame.joint_names == ("wrist", "gripper_finger", "shoulder", "elbow")
    np.testing.assert_allclose(frame.joint_positions, [3, 4, 1, 2])


def test_missing_joint_is_named(foreign_bag_factory) -> None:  # noqa: ANN001
    path, _ = bag_with_reordered_joints(foreign_bag_factory)
    with pytest.raises(MissingJointError, match="finger"):
        read_frames(path, ReaderConfig(topics=RENAMED_CONFIG, joint_order=OURS))  # no alias for the finger


def test_missing_topics_are_named_with_what_the_bag_has(foreign_bag_factory) -> None:  # noqa: ANN001
    path, _ = bag_with_reordered_joints(foreign_bag_factory)
    with pytest.raises(MissingTopicError, match=r"/joint_states.*/robot/joint_states"):
        read_frames(path)  # default topic names
    wrong_camera = TopicConfig(joint_states="/robot/joint_states", action="/policy/command", instruction="/task",
                               images={"front": "/front/image"}, ee_poses={})
    with pytest.raises(MissingTopicError, match="/front/image"):
        read_frames(path, ReaderConfig(topics=wrong_camera))


def test_wrong_message_type_for_a_role_is_rejected(foreign_bag_factory) -> None:  # noqa: ANN001
    path = foreign_bag_factory(joint_names=["a"], positions=np.zeros((2, 1)), actions=np.zeros((2, 2)),
                               topics=RENAMED, action_type="std_msgs/msg/String")
    with pytest.raises(UnknownTypeError, match="std_msgs/msg/String"):
        read_frames(path, ReaderConfig(topics=RENAMED_CONFIG))


def test_truncated_bag_is_a_clear_error(foreign_bag_factory) -> None:  # noqa: ANN001
    path, _ = bag_with_reordered_joints(foreign_bag_factory, steps=40)
    mcap = next(path.glob("*.mcap"))
    data = mcap.read_bytes()
    mcap.write_bytes(data[: len(data) // 2])
    with pytest.raises(BagReadError, match=str(path)):
        read_frames(path, ReaderConfig(topics=RENAMED_CONFIG))


def test_garbage_bag_and_missing_bag_are_clear_errors(tmp_path: Path, foreign_bag_factory) -> None:  # noqa: ANN001
    path, _ = bag_with_reordered_joints(foreign_bag_factory)
    mcap = next(path.glob("*.mcap"))
    mcap.write_bytes(b"\x00" * 64)
    with pytest.raises(BagReadError):
        read_frames(path, ReaderConfig(topics=RENAMED_CONFIG))
    with pytest.raises(BagReadError, match="does not exist"):
        read_frames(tmp_path / "nowhere")


def test_chunk_must_be_positive() -> None:
    with pytest.raises(ValueError, match="chunk"):
        ReaderConfig(chunk=0)
