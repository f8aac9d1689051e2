"""SimEnv: the one interface to robosuite tasks (real simulator, state only unless stated)."""
from __future__ import annotations

import numpy as np
import pytest

from heisd_ros.sim.env import VLA_ARM_DIMENSIONS, SimEnv
from heisd_ros.sim.tasks import TASKS, get_task

pytestmark = pytest.mark.sim


@pytest.fixture(scope="module")
def lift() -> SimEnv:
    env = SimEnv("lift")
    yield env
    env.close()


def test_unknown_task_is_rejected_with_the_known_ones() -> None:
    with pytest.raises(ValueError, match="known tasks"):
        get_task("juggle")


def test_reset_depends_only_on_the_seed(lift: SimEnv) -> None:
    a = lift.reset(3).object_poses["cube"]
    lift.step(np.zeros(lift.action_space.dim))
    b = lift.reset(4).object_poses["cube"]
    c = lift.reset(3).object_poses["cube"]
    np.testing.assert_array_equal(a.position, c.position)
    np.testing.assert_array_equal(a.orientation, c.orientation)
    assert not np.allclose(a.position, b.position)


def test_observation_carries_real_joint_names_and_consistent_state(lift: SimEnv) -> None:
    obs = lift.reset(0)
    model = lift._sim.model
    for name in obs.joint_names:
        assert model.joint_name2id(name) >= 0
    assert obs.joint_names[:7] == tuple(f"robot0_joint{i}" for i in range(1, 8))
    assert any("finger" in n for n in obs.joint_names[7:])
    assert obs.joint_positions.shape == obs.joint_velocities.shape == (len(obs.joint_names),)
    pose = obs.ee_poses["right"]
    assert pose.position.shape == (3,)
    assert np.linalg.norm(pose.orientation) == pytest.approx(1.0)
    assert obs.gripper_openings["right"] == pytest.approx(1.0, abs=0.05)  # starts open
    assert obs.instruction == TASKS["lift"].instruction
    assert obs.images == {}
    assert obs.step == 0 and obs.time == 0.0


def test_step_moves_the_end_effector_along_the_commanded_axis(lift: SimEnv) -> None:
    obs = lift.reset(0)
    start = obs.ee_poses["right"].position
    action = np.zeros(7)
    action[2] = 0.5  # +z
    for _ in range(5):
        obs = lift.step(action)
    moved = obs.ee_poses["right"].position - start
    assert moved[2] > 0.02 and abs(moved[0]) < 0.01
    assert obs.step == 5 and obs.time == pytest.approx(5 / lift.control_rate)


def test_closing_the_gripper_reduces_its_opening(lift: SimEnv) -> None:
    obs = lift.reset(0)
    action = np.zeros(7)
    action[6] = 1.0
    for _ in range(10):
        obs = lift.step(action)
    assert obs.gripper_openings["right"] < 0.5


@pytest.mark.parametrize("bad", [np.zeros(6), np.full(7, np.nan)])
def test_step_rejects_bad_actions(lift: SimEnv, bad: np.ndarray) -> None:
    lift.reset(0)
    with pytest.raises(ValueError, match="action"):
        lift.step(bad)


def test_arm_action_space_is_the_vla_one(lift: SimEnv) -> None:
    space = lift.action_space
    assert space.names == VLA_ARM_DIMENSIONS + ("gripper",)
    np.testing.assert_array_equal(space.low, -1.0)
    np.testing.assert_array_equal(space.high, 1.0)
    np.testing.assert_allclose(space.scale, [0.05] * 3 + [0.5] * 3 + [1.0])


def test_humanoid_has_two_arms_two_hands_and_24_actions() -> None:
    with SimEnv("humanoid_lift") as env:
        obs = env.reset(0)
        assert env.arms == ("right", "left")
        assert env.action_space.dim == 24
        assert env.action_space.names[:6] == tuple(f"right_{d}" for d in VLA_ARM_DIMENSIONS)
        assert env.action_space.names[12:18] == tuple(f"right_hand_{i}" for i in range(6))
        assert set(obs.ee_poses) == {"right", "left"}
        assert obs.ee_poses["right"].position[1] < obs.ee_poses["left"].position[1]  # right hand on the right
        assert any(n.startswith("robot0_l_") for n in obs.joint_names)
        assert any("R_thumb" in n for n in obs.joint_names)


def test_cameras_give_small_upright_rgb_images() -> None:
    with SimEnv("lift", cameras=("agentview", "robot0_eye_in_hand"), image_size=48) as env:
        first = env.reset(0).images
        later = env.step(np.array([0.0, 0.0, 0.8, 0.0, 0.0, 0.0, 0.0])).images
    for view in ("agentview", "robot0_eye_in_hand"):
        assert first[view].shape == (48, 48, 3) and first[view].dtype == np.uint8
        assert first[view].flags["C_CONTIGUOUS"]
    assert not np.array_equal(first["robot0_eye_in_hand"], later["robot0_eye_in_hand"])
    # upright: agentview looks down at the table, which fills the lower half, with the backdrop above
    agent = first["agentview"].astype(float)
    assert not np.allclose(agent[:24].mean(axis=(0, 1)), agent[24:].mean(axis=(0, 1)), atol=5)


@pytest.mark.sim
def test_stepping_a_rendering_env_from_another_thread_is_refused_not_rendered_black():
    import threading

    with SimEnv("lift", cameras=("agentview",), image_size=32) as env:
        env.reset(0)
        errors = []
        worker = threading.Thread(target=lambda: errors.append(_raises(lambda: env.step(np.zeros(env.action_space.dim)))))
        worker.start()
        worker.join()
        assert errors and isinstance(errors[0], RuntimeError) and "thread that created it" in str(errors[0])
        assert env.step(np.zeros(env.action_space.dim)).images["agentview"].mean() > 50  # the owning thread renders the scene
    with SimEnv("lift", cameras=(), image_size=32) as blind:  # nothing to render: any thread may step it
        blind.reset(0)
        worker = threading.Thread(target=lambda: errors.append(blind.step(np.zeros(blind.action_space.dim))))
        worker.start()
        worker.join()
        assert errors[-1].step == 1


def _raises(fn):
    try:
        fn()
    except Exception as exc:  # noqa: BLE001
        return exc
    return None
