"""Scripted experts succeed on the real simulator, and move fast in transport and slowly near contact."""
from __future__ import annotations

import numpy as np
import pytest

from heisd_ros.sim.env import SimEnv
from heisd_ros.sim.episodes import run_expert_episode
from heisd_ros.sim.experts import EXPERTS, box_yaws, make_expert, min_jerk, squaring_yaw, wrap, yaw_of, yaw_of_gripper

# (task, seeds): a few per task keeps the default suite short; measure_experts does 50.
CASES = [("lift", (0, 1)), ("nut", (0,)), ("sort", (0,)), ("humanoid_lift", (2,))]


@pytest.mark.sim
@pytest.mark.parametrize(("task", "seeds"), CASES)
def test_expert_succeeds(task: str, seeds: tuple[int, ...]) -> None:
    with SimEnv(task) as env:
        expert = make_expert(task, env.action_space, env.control_rate)
        for seed in seeds:
            result = run_expert_episode(env, expert, seed)
            assert result.success, f"{task} expert failed on seed {seed} after {result.steps} steps"
            assert result.steps <= env.task.max_steps


@pytest.mark.sim
def test_transport_is_faster_than_contact_segments_and_seeds_vary_the_motion() -> None:
    with SimEnv("lift") as env:
        expert = make_expert("lift", env.action_space, env.control_rate)
        speeds: dict[str, list[float]] = {}
        paths = []
        for seed in (0, 5):
            positions = []

            def observe(obs, action, seed=seed) -> None:  # noqa: ANN001
                positions.append(obs.ee_poses["right"].position)
                if seed == 0 and len(positions) > 1 and expert.segment_name:
                    speed = np.linalg.norm(positions[-1] - positions[-2]) * env.control_rate
                    speeds.setdefault(expert.segment_name, []).append(speed)

            run_expert_episode(env, expert, seed, observer=observe)
            paths.append(np.array(positions))
    transport = np.mean(speeds["approach cube"])
    contact = np.mean(speeds["descend cube"])
    assert transport > 0.1 and contact < 0.06 and transport > 2.5 * contact
    n = min(len(p) for p in paths)
    assert not np.allclose(paths[0][:n], paths[1][:n], atol=1e-3)


@pytest.mark.sim
def test_lift_expert_keeps_its_yaw_in_flight_and_squares_up_over_the_cube() -> None:
    """The turn to the cube's faces happens at the hover point, where the wrist camera sees them up close."""
    with SimEnv("lift", cameras=()) as env:
        expert = make_expert("lift", env.action_space, env.control_rate)
        yaws: dict[str, list[float]] = {}
        cube: list[float] = []

        def observe(obs, action) -> None:  # noqa: ANN001
            if expert.segment_name:
                yaws.setdefault(expert.segment_name, []).append(yaw_of_gripper(obs.ee_poses["right"].orientation))
            cube.append(yaw_of(obs.object_poses["cube"].orientation))

        assert run_expert_episode(env, expert, 3, observer=observe).success
    names = list(yaws)
    assert names.index("approach cube") < names.index("square cube") < names.index("align cube")
    approach, square = np.degrees(np.ptp(yaws["approach cube"])), np.degrees(np.ptp(yaws["square cube"]))
    assert approach < 3.0 and square > 10.0, (approach, square)

    def face_error(yaw: float) -> float:
        return float(np.degrees(abs(wrap(yaw - cube[0], np.pi / 2))))

    # the turn goes the short way to the nearest face and is finished before the descent
    assert face_error(yaws["square cube"][-1]) < 0.5 * face_error(yaws["square cube"][0])
    assert face_error(yaws["descend cube"][0]) < 1.5


def spied_episode(env: SimEnv, expert, seed: int, **kw):  # noqa: ANN001
    """run_expert_episode, also returning the recorded labels, the executed actions and the EE positions."""
    labels, executed, positions = [], [], []
    step = env.step

    def spy(action):  # noqa: ANN001
        executed.append(np.array(action))
        return step(action)

    def observe(obs, action) -> None:  # noqa: ANN001
        positions.append(obs.ee_poses["right"].position.copy())
        if action is not None:
            labels.append(action.copy())

    env.step = spy
    try:
        result = run_expert_episode(env, expert, seed, observer=observe, **kw)
    finally:
        del env.step
    return result, np.array(labels), np.array(executed), np.array(positions)


@pytest.mark.sim
def test_action_noise_perturbs_the_executed_action_but_records_the_experts_correction() -> None:
    with SimEnv("lift", cameras=()) as env:
        expert = make_expert("lift", env.action_space, env.control_rate)
        runs = {sigma: spied_episode(env, expert, 3, action_noise=sigma) for sigma in (0.0, 0.1)}
        clean, noisy = runs[0.0], runs[0.1]
        assert clean[0].success and noisy[0].success
        np.testing.assert_array_equal(clean[1], clean[2])  # no noise: what is recorded is what ran
        diff = noisy[2] - noisy[1]  # executed minus recorded
        assert 0.05 < diff[:, :6].std() < 0.15  # the arm dims carry noise of about sigma (less where clipped)
        np.testing.assert_array_equal(diff[:, 6], 0.0)  # the gripper command is never perturbed
        # the expert reacts to the perturbation: its recorded labels change more from step to step
        assert np.abs(np.diff(noisy[1][:, :3], axis=0)).mean() > 1.5 * np.abs(np.diff(clean[1][:, :3], axis=0)).mean()
        with pytest.raises(ValueError, match="action_noise"):
            run_expert_episode(env, expert, 3, action_noise=-0.1)


def lag1_autocorrelation(x: np.ndarray) -> float:
    x = x - x.mean()
    return float((x[1:] * x[:-1]).sum() / (x * x).sum())


@pytest.mark.sim
def test_correlated_action_noise_pushes_the_arm_the_same_way_for_several_steps() -> None:
    """AR(1) noise with correlation time 10 steps: lag-1 autocorrelation exp(-1/10) = 0.90 (white: about 0)."""
    with SimEnv("lift", cameras=()) as env:
        expert = make_expert("lift", env.action_space, env.control_rate)
        correlation = {}
        for steps in (0.0, 10.0):
            _, labels, executed, _ = spied_episode(env, expert, 4, max_steps=80, action_noise=0.05, noise_correlation=steps)
            diff = executed - labels
            correlation[steps] = np.mean([lag1_autocorrelation(diff[:, d]) for d in range(6)])
            np.testing.assert_array_equal(diff[:, 6], 0.0)
        assert abs(correlation[0.0]) < 0.3
        assert correlation[10.0] > 0.7
        with pytest.raises(ValueError, match="noise_correlation"):
            run_expert_episode(env, expert, 3, action_noise=0.1, noise_correlation=-2.0)


def test_every_task_has_an_expert_and_unknown_ones_are_rejected() -> None:
    from heisd_ros.sim.tasks import TASKS

    assert set(EXPERTS) == set(TASKS)
    with pytest.raises(ValueError, match="no scripted expert"):
        make_expert("juggle", None, 20.0)  # type: ignore[arg-type]


def test_min_jerk_profile_is_smooth_and_bounded() -> None:
    s = np.linspace(0, 1, 101)
    values = np.array([min_jerk(x) for x in s])
    assert values[0] == 0.0 and values[-1] == 1.0 and np.all(np.diff(values) >= 0)
    assert min_jerk(-1.0) == 0.0 and min_jerk(2.0) == 1.0
    velocity = np.diff(values)
    assert velocity[0] < velocity[50] and velocity[-1] < velocity[50]  # slow at both ends


def test_yaw_helpers() -> None:
    assert wrap(3 * np.pi / 4, np.pi / 2) == pytest.approx(-np.pi / 4)
    assert len(box_yaws(np.array([0, 0, 0, 1.0]), np.pi / 2)) == 4
    # a nut whose handle points away from the robot (+x) is turned so that it points sideways or back
    for handle in (0.0, 0.3, -0.3):
        turned = handle + squaring_yaw(handle, 0.0) - 0.0
        assert np.cos(turned) < 0.1


def _still_observation(step: int = 0):  # noqa: ANN202
    from heisd_ros.sim.env import Pose, SimObservation

    down = np.array([1.0, 0.0, 0.0, 0.0])
    return SimObservation(step=step, time=step / 20, images={}, joint_names=(), joint_positions=np.zeros(0),
                          joint_velocities=np.zeros(0), ee_poses={"right": Pose(np.zeros(3), down)},
                          gripper_openings={"right": 1.0}, object_poses={}, instruction="")


def test_failed_check_restarts_the_plan_until_retries_run_out() -> None:
    from heisd_ros.sim.env import ActionSpace
    from heisd_ros.sim.experts import Segment, SegmentExpert, panda_frame

    space = ActionSpace(tuple("abcdefg"), -np.ones(7), np.ones(7), np.array([0.05] * 3 + [0.5] * 3 + [1.0]))

    class Flaky(SegmentExpert):
        retries = 2
        plans = 0

        def plan(self, obs):  # noqa: ANN001, ANN202
            Flaky.plans += 1
            stay = lambda o: (o.ee_poses["right"].position.copy(), 0.0)  # noqa: E731
            return [Segment("try", stay, 1.0, fine=True, tolerance=1.0, check=lambda o: False)]

    expert = Flaky(space, 20.0, panda_frame())
    obs = _still_observation()
    expert.reset(obs, seed=0)
    for _ in range(200):
        if expert.done:
            break
        action = expert.act(obs)
    assert expert.done and Flaky.plans == 3  # the first plan and two retries
    assert action[6] == 1.0  # the gripper command of the segment


def test_a_watched_check_ends_its_segment_as_soon_as_it_fails() -> None:
    from heisd_ros.sim.env import ActionSpace
    from heisd_ros.sim.experts import Segment, SegmentExpert, panda_frame

    space = ActionSpace(tuple("abcdefg"), -np.ones(7), np.ones(7), np.array([0.05] * 3 + [0.5] * 3 + [1.0]))
    obs = _still_observation()
    far = lambda o: (o.ee_poses["right"].position + np.array([0.5, 0.0, 0.0]), 0.0)  # noqa: E731

    class Watched(SegmentExpert):
        retries = 1
        calls: list[str] = []

        def plan(self, o):  # noqa: ANN001, ANN202
            def ok_twice(o):  # noqa: ANN001, ANN202
                Watched.calls.append("check")
                return len(Watched.calls) <= 2

            return [Segment("carry", far, 1.0, check=ok_twice, watch=True)]

    expert = Watched(space, 20.0, panda_frame())
    expert.reset(obs, seed=0)
    steps = 0
    while not expert.done and steps < 500:
        expert.act(obs)
        steps += 1
    # the watched check fails on the 3rd step and restarts the plan; with no retry left the second
    # plan's segment is no longer checked and runs out its time (>= 35 steps for 0.5 m; the robot never moves)
    assert expert.done and len(Watched.calls) == 3
    assert steps > 3 + 35


def _humanoid_observation(cube: np.ndarray, hand: np.ndarray):  # noqa: ANN202
    from heisd_ros.sim.env import Pose, SimObservation

    upright = np.array([0.0, 0.0, 0.0, 1.0])
    return SimObservation(step=0, time=0.0, images={}, joint_names=(), joint_positions=np.zeros(0),
                          joint_velocities=np.zeros(0),
                          ee_poses={"right": Pose(hand, upright), "left": Pose(np.array([0.0, 0.2, 1.1]), upright)},
                          gripper_openings={"right": 1.0, "left": 1.0}, object_poses={"cube": Pose(cube, upright)},
                          instruction="")


def test_humanoid_raise_check_catches_a_cube_slipping_out_of_the_hand() -> None:
    from heisd_ros.sim.env import ActionSpace
    from heisd_ros.sim.experts import HumanoidLiftExpert

    space = ActionSpace(tuple(f"a{i}" for i in range(24)), -np.ones(24), np.ones(24),
                        np.array([0.05] * 3 + [0.5] * 3 + [0.05] * 3 + [0.5] * 3 + [1.0] * 12))
    resting = np.array([0.0, -0.15, 1.03])
    hand = resting - HumanoidLiftExpert.GRASP_OFFSET
    expert = HumanoidLiftExpert(space, 20.0)
    expert.reset(_humanoid_observation(resting, hand), seed=0)
    (lift,) = [s for s in expert._plan if s.name == "lift cube"]
    (raise_,) = [s for s in expert._plan if s.name == "raise cube"]
    assert raise_.watch and not lift.watch
    up = np.array([0.0, 0.0, 0.05])
    assert not lift.check(_humanoid_observation(resting, hand + up))  # the hand rose without the cube
    assert lift.check(_humanoid_observation(resting + up, hand + up))
    # the raise remembers where the cube sat in the hand at its start ...
    assert raise_.check(_humanoid_observation(resting + up, hand + up))
    higher = np.array([0.0, 0.0, 0.08])
    assert raise_.check(_humanoid_observation(resting + up + higher, hand + up + higher))
    # ... so a cube still above the table but sliding out of the fingers fails the check
    slipped = resting + up + higher - np.array([0.02, 0.0, 0.04])
    assert slipped[2] > resting[2] + 0.02
    assert not raise_.check(_humanoid_observation(slipped, hand + up + higher))
