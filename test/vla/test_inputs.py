"""The robot-signal -> Observation recipe: joints by name, proprio features, image resizing, clear errors."""
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from heisd_ros.core.errors import InvalidInputError
from heisd_ros.vla.inputs import PROPRIO_FEATURES, InputSpec, raw_proprio, resize_images

JOINTS = ["j1", "j2", "j3"]


def spec() -> InputSpec:
    return InputSpec(["front", "wrist"], 32, JOINTS)


def images(size=64):
    return {"front": np.full((size, size, 3), 10, np.uint8), "wrist": np.full((size, size, 3), 200, np.uint8)}


def test_proprio_holds_position_rotation_columns_and_gripper():
    quat = Rotation.from_euler("z", 90, degrees=True).as_quat()
    p = raw_proprio(np.array([1.0, 2.0, 3.0]), quat, 0.25)
    assert p.shape == (len(PROPRIO_FEATURES),)
    np.testing.assert_allclose(p[:3], [1, 2, 3])
    np.testing.assert_allclose(p[3:6], [0, 1, 0], atol=1e-12)  # x axis rotated onto y
    np.testing.assert_allclose(p[6:9], [-1, 0, 0], atol=1e-12)
    assert p[9] == 0.25


def test_quaternion_sign_does_not_change_the_features():
    quat = Rotation.from_euler("xyz", [0.3, -1.0, 2.0]).as_quat()
    np.testing.assert_allclose(raw_proprio(np.zeros(3), quat, 1.0), raw_proprio(np.zeros(3), -quat, 1.0))


def test_joints_are_picked_by_name_whatever_the_published_order():
    obs = spec().observation(images(), "lift the cube", ["j3", "extra", "j1", "j2"], np.array([3.0, 9.0, 1.0, 2.0]),
                             np.zeros(3), np.array([0, 0, 0, 1.0]), 1.0, 0.5)
    np.testing.assert_array_equal(obs.joint_positions, [1.0, 2.0, 3.0])
    assert obs.joint_names == JOINTS
    assert obs.images["front"].shape == (32, 32, 3)


def test_missing_joint_camera_or_pose_raise_clear_errors():
    s = spec()
    with pytest.raises(InvalidInputError, match="j3"):
        s.observation(images(), "x", ["j1", "j2"], np.zeros(2), np.zeros(3), np.array([0, 0, 0, 1.0]), 1.0, 0.0)
    with pytest.raises(InvalidInputError, match="wrist"):
        s.observation({"front": images()["front"]}, "x", JOINTS, np.zeros(3), np.zeros(3), np.array([0, 0, 0, 1.0]), 1.0, 0.0)
    with pytest.raises(InvalidInputError, match="ee_quaternion"):
        s.observation(images(), "x", JOINTS, np.zeros(3), np.zeros(3), None, 1.0, 0.0)
    with pytest.raises(InvalidInputError, match="NaN"):
        s.observation(images(), "x", JOINTS, np.zeros(3), np.array([np.nan, 0, 0]), np.array([0, 0, 0, 1.0]), 1.0, 0.0)


def test_resize_keeps_uniform_colour_and_is_identity_at_size():
    img = np.full((128, 96, 3), 77, np.uint8)
    out = resize_images(img, 32)
    assert out.shape == (32, 32, 3) and np.all(out == 77)
    same = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    assert resize_images(same, 32) is same


def test_gripper_value_comes_from_the_gripper_joints_by_name():
    s = InputSpec(["front", "wrist"], 32, JOINTS, gripper_joints=["f1", "f2"])
    names = ["f2", "j1", "j2", "j3", "f1"]
    obs = s.observation(images(), "x", names, np.array([-0.03, 0, 0, 0, 0.01]), np.zeros(3), np.array([0, 0, 0, 1.0]), None, 0.0)
    assert obs.proprio[-1] == pytest.approx(0.02)  # mean |q| of the fingers (std 1, mean 0)
    with pytest.raises(InvalidInputError, match="gripper joints"):
        s.observation(images(), "x", JOINTS, np.zeros(3), np.zeros(3), np.array([0, 0, 0, 1.0]), None, 0.0)


def test_proprio_statistics_roundtrip_and_standardise():
    raw = np.random.default_rng(1).normal(5.0, 2.0, (200, len(PROPRIO_FEATURES)))
    s = InputSpec(["front"], 32, JOINTS).with_statistics(raw)
    z = s.normalize_proprio(raw)
    np.testing.assert_allclose(z.mean(0), 0, atol=1e-5)
    assert InputSpec.from_dict(s.to_dict()) == s
