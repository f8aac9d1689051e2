"""Forward kinematics through a robot model: a two-link arm against its closed form, and the
simulator's Panda against the end-effector pose the simulator itself reports."""
from __future__ import annotations

import numpy as np
import pytest

from heisd_ros.core.errors import InvalidInputError
from heisd_ros.core.forward_kinematics import ModelKinematics

ARM = """<mujoco><worldbody>
 <body name="l1"><joint name="j1" type="hinge" axis="0 0 1"/><geom type="capsule" fromto="0 0 0 0.5 0 0" size="0.02"/>
  <body name="l2" pos="0.5 0 0"><joint name="j2" type="hinge" axis="0 0 1"/><geom type="capsule" fromto="0 0 0 0.3 0 0" size="0.02"/>
   <site name="tip" pos="0.3 0 0"/></body></body></worldbody></mujoco>"""


def test_two_link_arm_matches_closed_form(tmp_path):
    path = tmp_path / "arm.xml"
    path.write_text(ARM)
    fk = ModelKinematics(path, ["tip", "l2"])
    for a, b in [(0.0, 0.0), (0.3, 0.4), (-1.2, 2.0)]:
        (tip, quat), (elbow, _) = fk.poses(["j2", "j1", "unknown_extra"], np.array([b, a, 9.0]))  # by name
        assert tip == pytest.approx([0.5 * np.cos(a) + 0.3 * np.cos(a + b), 0.5 * np.sin(a) + 0.3 * np.sin(a + b), 0.0], abs=1e-9)
        assert elbow == pytest.approx([0.5 * np.cos(a), 0.5 * np.sin(a), 0.0], abs=1e-9)
        assert quat == pytest.approx([0, 0, np.sin((a + b) / 2), np.cos((a + b) / 2)], abs=1e-9)


def test_bad_models_frames_and_joints_are_named(tmp_path):
    path = tmp_path / "arm.xml"
    path.write_text(ARM)
    with pytest.raises(InvalidInputError, match="no body or site named 'hand'"):
        ModelKinematics(path, ["hand"])
    with pytest.raises(InvalidInputError, match="does not exist"):
        ModelKinematics(tmp_path / "missing.urdf", ["tip"])
    fk = ModelKinematics(path, ["tip"])
    with pytest.raises(InvalidInputError, match="none of the joints"):
        fk.poses(["x"], np.zeros(1))
    with pytest.raises(InvalidInputError, match="finite"):
        fk.poses(["j1"], np.array([np.nan]))


@pytest.mark.sim
def test_panda_model_reproduces_the_simulators_end_effector_pose(tmp_path):
    import mujoco

    from heisd_ros.sim.env import SimEnv

    with SimEnv("lift") as env:
        obs = env.reset(3)  # at rest: the reported pose and the joint positions are of the same instant
        model_file = tmp_path / "panda_scene.xml"
        mujoco.mj_saveLastXML(str(model_file), env._sim.model._model)
        site = mujoco.mj_id2name(env._sim.model._model, mujoco.mjtObj.mjOBJ_SITE, env._robot.eef_site_id["right"])
    (pos, quat), = ModelKinematics(model_file, [site]).poses(list(obs.joint_names), obs.joint_positions)
    expected = obs.ee_poses["right"]
    assert np.abs(obs.joint_positions).max() > 0.1  # a non-trivial configuration
    assert pos == pytest.approx(expected.position, abs=1e-6)
    assert abs(abs(float(np.dot(quat, expected.orientation))) - 1.0) < 1e-6  # same rotation (q and -q)
