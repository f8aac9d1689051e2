"""Scripted experts that solve each task from privileged state (object poses).

An expert is a plan of segments; each segment moves one end effector to a goal
pose along a minimum-jerk path, with a gripper command. Transport segments are
fast and smooth, segments near contact (grasp, insertion, release) are slow:
the two regimes HeiSD's kinematic switch tells apart. A seeded generator varies
speeds, hover heights and adds small transport noise, so demonstrations differ.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from scipy.spatial.transform import Rotation, Slerp

from heisd_ros.sim.env import ActionSpace, SimObservation

EXPERT_VERSION = "3"  # 2: the humanoid expert grips half-way, slides in above the table, watches the raise; 3: the lift expert squares up at the hover point

TRANSPORT_SPEED = 0.25  # m/s
FINE_SPEED = 0.05  # m/s
TURN_SPEED = 1.2  # rad/s
POSITION_GAIN = 2.5  # action per (m of tracking error / m per unit action)
ROTATION_GAIN = 1.5

# Panda site frame pointing down with the fingers closing along world y.
PANDA_DOWN = Rotation.from_matrix(np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, -1.0]]))

Goal = Callable[[SimObservation], tuple[np.ndarray, float]]


def yaw_of(quat_xyzw: np.ndarray) -> float:
    """Rotation about world z of an object that stands upright."""
    return float(Rotation.from_quat(quat_xyzw).as_euler("xyz")[2])


def wrap(angle: float, period: float) -> float:
    """``angle`` moved by multiples of ``period`` into [-period/2, period/2)."""
    return float((angle + period / 2) % period - period / 2)


def min_jerk(s: float) -> float:
    """Minimum-jerk time scaling: position fraction at normalised time s in [0, 1]."""
    s = min(max(s, 0.0), 1.0)
    return s**3 * (10 - 15 * s + 6 * s * s)


@dataclass
class Segment:
    """Move ``arm`` (and the arms in ``partners``, in step) to goals computed at the segment's start."""

    name: str
    goal: Goal
    gripper: float
    fine: bool = False
    tolerance: float = 0.01
    hold_steps: int = 0
    arm: str = "right"
    partners: dict[str, Goal] = field(default_factory=dict)
    check: Callable[[SimObservation], bool] | None = None  # checked at the end; False -> retry the task
    watch: bool = False  # also check at every step: a failure ends the segment early (and retries)


@dataclass
class _Track:
    start_pos: np.ndarray
    goal_pos: np.ndarray
    slerp: Slerp


@dataclass
class _Active:
    segment: Segment
    tracks: dict[str, _Track]
    duration: int
    step: int = 0
    arrived_at: int | None = None


@dataclass
class ArmFrame:
    """How one arm is commanded: its slice of the action vector and its neutral orientation."""

    position: slice
    rotation: slice
    gripper: slice
    neutral: Rotation | None  # None: the arm's orientation at the episode's start
    open_command: np.ndarray
    close_command: np.ndarray


class SegmentExpert:
    """Follows a list of segments built from the first observation; subclasses build the plan."""

    version = EXPERT_VERSION
    retries = 0  # times a failed segment check restarts the plan
    transport_speed = TRANSPORT_SPEED
    fine_speed = FINE_SPEED
    position_gain = POSITION_GAIN
    rotation_gain = ROTATION_GAIN

    def __init__(self, action_space: ActionSpace, control_rate: float, arms: dict[str, ArmFrame]) -> None:
        self.action_space = action_space
        self.dt = 1.0 / control_rate
        self.arms = arms
        self._plan: list[Segment] = []
        self._active: _Active | None = None
        self._rng = np.random.default_rng(0)
        self._grippers: dict[str, float] = {}
        self._neutral: dict[str, Rotation] = {}
        self._speed_factor = 1.0

    # plan ---------------------------------------------------------------------------------

    def plan(self, obs: SimObservation) -> list[Segment]:
        raise NotImplementedError

    def reset(self, obs: SimObservation, seed: int) -> None:
        """Start a new episode: the plan and its random variations depend only on ``seed``."""
        self._rng = np.random.default_rng(seed)
        self._speed_factor = float(self._rng.uniform(0.85, 1.15))
        self._neutral = {
            arm: frame.neutral if frame.neutral is not None else Rotation.from_quat(obs.ee_poses[arm].orientation)
            for arm, frame in self.arms.items()
        }
        self._plan = self.plan(obs)
        self._active = None
        self._grippers = {arm: -1.0 for arm in self.arms}
        self._retries_left = self.retries

    def retry_plan(self, obs: SimObservation) -> list[Segment]:
        """Plan after a failed check: by default the whole plan again from where the robot is."""
        return self.plan(obs)

    @property
    def done(self) -> bool:
        return not self._plan and self._active is None

    @property
    def segment_name(self) -> str | None:
        """Name of the segment being executed, None between segments and at the end."""
        return self._active.segment.name if self._active is not None else None

    def uniform(self, low: float, high: float) -> float:
        return float(self._rng.uniform(low, high))

    # control ------------------------------------------------------------------------------

    def act(self, obs: SimObservation) -> np.ndarray:
        """The next normalised action; holds still once the plan is finished."""
        action = np.zeros(self.action_space.dim)
        if self._active is None and self._plan:
            self._active = self._start(self._plan.pop(0), obs)
        if self._active is not None:
            for arm in self._active.tracks:
                self._grippers[arm] = self._active.segment.gripper
        for arm, frame in self.arms.items():
            action[frame.gripper] = frame.close_command if self._grippers[arm] > 0 else frame.open_command
        if self._active is None:
            return action
        active = self._active
        s = min_jerk((active.step + 1) / active.duration)
        base = Rotation.from_quat(obs.base_pose.orientation) if obs.base_pose is not None else Rotation.identity()
        scale = self.action_space.scale
        error = 0.0
        for arm, track in active.tracks.items():
            frame = self.arms[arm]
            ee = obs.ee_poses[arm]
            ref_pos = track.start_pos + s * (track.goal_pos - track.start_pos)
            ref_rot = track.slerp([s])[0]
            pos_err = base.inv().apply(ref_pos - ee.position)
            rot_err = base.inv().apply((ref_rot * Rotation.from_quat(ee.orientation).inv()).as_rotvec())
            action[frame.position] = self.position_gain * pos_err / scale[frame.position]
            action[frame.rotation] = self.rotation_gain * rot_err / scale[frame.rotation]
            if not active.segment.fine:
                action[frame.position] += self._rng.normal(0.0, 0.02, 3)
            error = max(error, float(np.linalg.norm(track.goal_pos - ee.position)))
        active.step += 1
        seg = active.segment
        if seg.watch and self._check_failed(seg, obs):
            self._retry(obs)
        elif active.step >= active.duration and (error < seg.tolerance or active.step > active.duration + 40):
            if active.arrived_at is None:
                active.arrived_at = active.step
            if active.step - active.arrived_at >= seg.hold_steps:
                self._active = None
                if self._check_failed(seg, obs):
                    self._retry(obs)
        return np.clip(action, self.action_space.low, self.action_space.high)

    def _check_failed(self, segment: Segment, obs: SimObservation) -> bool:
        """True when the segment's check fails and a retry is left to recover from it."""
        return segment.check is not None and self._retries_left > 0 and not segment.check(obs)

    def _retry(self, obs: SimObservation) -> None:
        self._active = None
        self._retries_left -= 1
        self._plan = self.retry_plan(obs)

    def _start(self, segment: Segment, obs: SimObservation) -> _Active:
        speed = (self.fine_speed if segment.fine else self.transport_speed) * self._speed_factor
        seconds = 0.25
        tracks = {}
        for arm, goal in {segment.arm: segment.goal, **segment.partners}.items():
            ee = obs.ee_poses[arm]
            goal_pos, yaw = goal(obs)
            start_rot = Rotation.from_quat(ee.orientation)
            goal_rot = Rotation.from_euler("z", yaw) * self._neutral[arm]
            distance = float(np.linalg.norm(goal_pos - ee.position))
            angle = float((goal_rot * start_rot.inv()).magnitude())
            seconds = max(seconds, distance / speed, angle / TURN_SPEED)
            slerp = Slerp([0.0, 1.0], Rotation.concatenate([start_rot, goal_rot]))
            tracks[arm] = _Track(ee.position.copy(), np.asarray(goal_pos, dtype=np.float64), slerp)
        return _Active(segment, tracks, duration=max(1, int(np.ceil(seconds / self.dt))))


def panda_frame() -> dict[str, ArmFrame]:
    return {
        "right": ArmFrame(slice(0, 3), slice(3, 6), slice(6, 7), PANDA_DOWN, np.array([-1.0]), np.array([1.0]))
    }


def hold(name: str, arm_goal: Goal, gripper: float, steps: int, arm: str = "right") -> Segment:
    """Stay at the goal for ``steps`` steps while the gripper opens or closes."""
    return Segment(name, arm_goal, gripper, fine=True, tolerance=1.0, hold_steps=steps, arm=arm)


def here(obs: SimObservation, yaw: float | None = None, arm: str = "right") -> tuple[np.ndarray, float]:
    ee = obs.ee_poses[arm]
    current_yaw = yaw_of_gripper(ee.orientation)
    return ee.position.copy(), current_yaw if yaw is None else yaw


def yaw_of_gripper(quat_xyzw: np.ndarray) -> float:
    """Yaw of a top-down Panda gripper relative to PANDA_DOWN."""
    relative = Rotation.from_quat(quat_xyzw) * PANDA_DOWN.inv()
    return float(relative.as_euler("xyz")[2])


class PandaPickPlaceExpert(SegmentExpert):
    """Shared pick / transport / place building blocks for the Panda tasks."""

    def __init__(self, action_space: ActionSpace, control_rate: float) -> None:
        super().__init__(action_space, control_rate, panda_frame())

    def pick(self, label: str, grasp_yaws: Callable[[np.ndarray], list[float]], grasp_dz: float = 0.0,
             hover: float = 0.10, site: str | None = None, square_at_hover: bool = False) -> list[Segment]:
        """Hover over the object, descend slowly, close, lift slowly.

        ``grasp_yaws`` maps the object's quaternion to the gripper yaws that grasp it;
        the one whose fingers point away from the nearest other object is used.
        ``square_at_hover``: keep the wrist's yaw on the way over and turn to the grasp
        yaw only at the hover point. Why: a policy learning from these demonstrations
        then decides which way to turn where the wrist camera shows the object's faces
        from close up, and every frame of the turn shows how much is left; turning in
        flight puts that decision in frames where the object is a few pixels wide.
        """
        key = site or label
        hover = hover + self.uniform(-0.01, 0.02)
        jitter = np.array([self.uniform(-0.01, 0.01), self.uniform(-0.01, 0.01), 0.0])
        chosen: dict[str, float] = {}

        def grasp_yaw(obs: SimObservation) -> float:
            if "yaw" not in chosen:
                options = grasp_yaws(obs.object_poses[label].orientation)
                chosen["yaw"] = clearest_yaw(options, label, obs, here(obs)[1])
            return chosen["yaw"]

        def hover_point(obs: SimObservation) -> np.ndarray:
            return obs.object_poses[key].position + np.array([0.0, 0.0, hover + grasp_dz]) + jitter

        def above(obs: SimObservation) -> tuple[np.ndarray, float]:
            return hover_point(obs), here(obs)[1] if square_at_hover else grasp_yaw(obs)

        def squared(obs: SimObservation) -> tuple[np.ndarray, float]:
            return hover_point(obs), grasp_yaw(obs)

        def aligned(obs: SimObservation) -> tuple[np.ndarray, float]:
            p = obs.object_poses[key].position
            return p + np.array([0.0, 0.0, 0.04 + grasp_dz]), grasp_yaw(obs)

        def grasp(obs: SimObservation) -> tuple[np.ndarray, float]:
            p = obs.object_poses[key].position
            return p + np.array([0.0, 0.0, grasp_dz]), grasp_yaw(obs)

        def lifted(obs: SimObservation) -> tuple[np.ndarray, float]:
            return obs.ee_poses["right"].position + np.array([0.0, 0.0, 0.05]), here(obs)[1]

        return [
            Segment(f"approach {label}", above, -1.0, tolerance=0.02),
            *([Segment(f"square {label}", squared, -1.0, fine=True, tolerance=0.006)] if square_at_hover else []),
            Segment(f"align {label}", aligned, -1.0, fine=True, tolerance=0.006),
            Segment(f"descend {label}", grasp, -1.0, fine=True, tolerance=0.006),
            hold(f"grasp {label}", lambda o: here(o), 1.0, 10),
            Segment(f"lift {label}", lifted, 1.0, fine=True, tolerance=0.015),
        ]


def clearest_yaw(options: list[float], label: str, obs: SimObservation, current: float) -> float:
    """Of the grasp yaws, the one whose finger axis is most perpendicular to the nearest other object."""
    own = obs.object_poses[label].position
    others = [p.position for name, p in obs.object_poses.items()
              if name != label and not name.endswith("_bin") and np.linalg.norm(p.position[:2] - own[:2]) < 0.15]
    def cost(yaw: float) -> tuple[float, float]:
        fingers = np.array([-np.sin(yaw), np.cos(yaw)])  # site x axis (finger axis) in the world xy plane
        if not others:
            clash = 0.0
        else:
            nearest = min(others, key=lambda p: np.linalg.norm(p[:2] - own[:2]))
            direction = (nearest[:2] - own[:2]) / max(np.linalg.norm(nearest[:2] - own[:2]), 1e-9)
            clash = round(abs(float(fingers @ direction)), 1)
        return clash, abs(wrap(yaw - current, 2 * np.pi))
    return min((wrap(y, 2 * np.pi) for y in options), key=cost)


def box_yaws(quat: np.ndarray, period: float) -> list[float]:
    """Grasp yaws of an upright object symmetric under rotations by ``period``."""
    base = yaw_of(quat)
    return [base + k * period for k in range(int(round(2 * np.pi / period)))]


def cylinder_yaws(quat: np.ndarray) -> list[float]:
    """Grasp yaws of a cylinder: any yaw upright, across its axis when it lies on its side."""
    axis = Rotation.from_quat(quat).apply([0.0, 0.0, 1.0])
    if abs(axis[2]) > 0.8:
        return [k * np.pi / 4 for k in range(8)]
    across = float(np.arctan2(axis[1], axis[0]))  # fingers (site x) along the axis's normal in xy
    return [across, across + np.pi]


class LiftExpert(PandaPickPlaceExpert):
    def plan(self, obs: SimObservation) -> list[Segment]:
        up = 0.12 + self.uniform(0.0, 0.05)

        def raised(o: SimObservation) -> tuple[np.ndarray, float]:
            return o.ee_poses["right"].position + np.array([0.0, 0.0, up]), here(o)[1]

        return [
            hold("settle", lambda o: here(o), -1.0, 3),
            *self.pick("cube", lambda q: box_yaws(q, np.pi / 2), square_at_hover=True),
            Segment("raise cube", raised, 1.0, tolerance=0.02, hold_steps=5),
        ]


class SortExpert(PandaPickPlaceExpert):
    """Bread and can, each from the left bin into its own cell of the right bin."""

    CARRY_Z = 1.0
    # Drop points inside each target cell, pulled towards the robot: the cells' centres
    # lie at the edge of the Panda's reach.
    DROP_OFFSET = np.array([-0.03, -0.035, 0.08])

    def plan(self, obs: SimObservation) -> list[Segment]:
        segments = [hold("settle", lambda o: here(o), -1.0, 3)]
        grasp_yaws = {"bread": lambda q: box_yaws(q, np.pi / 2), "can": cylinder_yaws}
        for label in ("bread", "can"):
            segments += self.pick(label, grasp_yaws[label], grasp_dz=0.005)
            segments += self.place(f"{label}_bin")
        return segments

    def place(self, target: str) -> list[Segment]:
        carry = self.CARRY_Z + self.uniform(-0.02, 0.03)

        def up(o: SimObservation) -> tuple[np.ndarray, float]:
            p = o.ee_poses["right"].position
            return np.array([p[0], p[1], carry]), here(o)[1]

        def over(o: SimObservation) -> tuple[np.ndarray, float]:
            p = o.object_poses[target].position + self.DROP_OFFSET
            return np.array([p[0], p[1], carry]), here(o)[1]

        def drop(o: SimObservation) -> tuple[np.ndarray, float]:
            p = o.object_poses[target].position
            return p + self.DROP_OFFSET, here(o)[1]

        return [
            Segment(f"carry up to {target}", up, 1.0, tolerance=0.03),
            Segment(f"carry to {target}", over, 1.0, tolerance=0.02),
            Segment(f"lower into {target}", drop, 1.0, fine=True, tolerance=0.01),
            hold(f"release in {target}", lambda o: here(o), -1.0, 8),
            Segment(f"retreat from {target}", up, -1.0, tolerance=0.03),
        ]


class NutExpert(PandaPickPlaceExpert):
    """Grasp the square nut by its handle, square it to the peg, lower it over the peg."""

    HOVER_Z = 1.0  # nut centre height above the peg top (0.95 m), with room for the nut's tilt
    ENGAGED_Z = 0.925  # nut centre height with the peg inside the hole: released here, it slides down

    def plan(self, obs: SimObservation) -> list[Segment]:
        squared: dict[str, float] = {}

        def raise_and_square(o: SimObservation) -> tuple[np.ndarray, float]:
            squared["yaw"] = squaring_yaw(yaw_of(o.object_poses["square_nut"].orientation), here(o)[1])
            p = o.ee_poses["right"].position
            return np.array([p[0], p[1], self.HOVER_Z + 0.05]), squared["yaw"]

        def over_peg(height: float) -> Goal:
            def goal(o: SimObservation) -> tuple[np.ndarray, float]:
                ee = o.ee_poses["right"].position
                nut = o.object_poses["square_nut"].position
                peg = o.object_poses["square_peg"].position
                target = ee + np.array([peg[0] - nut[0], peg[1] - nut[1], height - nut[2]])
                return target, squared["yaw"]

            return goal

        return [
            hold("settle", lambda o: here(o), -1.0, 5),
            *self.pick("square_nut", lambda q: box_yaws(q, np.pi), site="square_nut_handle"),
            Segment("raise and square nut", raise_and_square, 1.0, tolerance=0.02),
            Segment("carry nut over peg", over_peg(self.HOVER_Z), 1.0, tolerance=0.015),
            Segment("align nut over peg", over_peg(self.HOVER_Z), 1.0, fine=True, tolerance=0.004, hold_steps=3),
            Segment("lower nut onto peg", over_peg(self.ENGAGED_Z), 1.0, fine=True, tolerance=0.006),
            hold("release nut", lambda o: here(o), -1.0, 8),
            Segment("retreat", lambda o: (o.ee_poses["right"].position + np.array([0, 0, 0.08]), here(o)[1]),
                    -1.0, tolerance=0.03),
        ]


def squaring_yaw(handle_yaw: float, gripper_yaw: float, wrist_limit: float = 2.2) -> float:
    """Gripper yaw that squares the nut to the peg with its handle pointing sideways or back.

    A handle pointing away from the robot (+x) puts the gripper beyond the peg, at the
    edge of the Panda's reach; the wrist's yaw range bounds how far the nut may turn.
    """
    turns = [wrap(target - handle_yaw, 2 * np.pi) for target in (np.pi / 2, np.pi, -np.pi / 2)]
    feasible = [t for t in turns if abs(gripper_yaw + t) <= wrist_limit] or turns
    return gripper_yaw + min(feasible, key=abs)


class HumanoidLiftExpert(SegmentExpert):
    """GR1: the right hand comes alongside the cube palm-first, wraps it and lifts; the left arm rests.

    A dexterous hand's grasp on a cube is less certain than a parallel gripper's: if the
    cube does not follow the first lift, or slips in the hand during the raise (watched at
    every step), the hand opens and tries again from where the cube now lies.

    The hand keeps its start ("handshake") orientation: fingers forward, palm facing +y.
    """

    # Cube centre in the closed hand, as a world offset from the right hand's site; the palm
    # meets the cube's face at about 0.05 m in y: aiming much closer pushes the cube away.
    GRASP_OFFSET = np.array([0.07, 0.045, -0.005])
    GRASP_STEPS = 15
    # Hand closing command, of 1 = fully closed: closing fully keeps squeezing the wrapped cube
    # until it pops out of the fingers (within seconds of the lift); half-way holds it.
    GRIP = 0.5
    # Height above the grasp point while the hand slides in: at grasp height the palm's edge
    # drags on the table and stalls short of the cube; it drops onto the grasp height beside it.
    CLEARANCE = 0.01
    RAISE = (0.08, 0.12)  # range of the final raise, m: short, as a long carry gives a grasp more time to slip
    SLIP_TOLERANCE = 0.03  # m the cube may shift in the hand during the raise before it counts as slipping
    retries = 3
    transport_speed = 0.12
    fine_speed = 0.04
    rotation_gain = 0.5

    def __init__(self, action_space: ActionSpace, control_rate: float) -> None:
        hand = np.ones(6)
        arms = {
            "right": ArmFrame(slice(0, 3), slice(3, 6), slice(12, 18), None, -hand, self.GRIP * hand),
            "left": ArmFrame(slice(6, 9), slice(9, 12), slice(18, 24), None, -hand, hand),
        }
        super().__init__(action_space, control_rate, arms)

    def retry_plan(self, obs: SimObservation) -> list[Segment]:
        release = hold("release cube", lambda o: (o.ee_poses["right"].position.copy(), 0.0), -1.0, 10)
        return [release, *self.plan(obs)]

    def plan(self, obs: SimObservation) -> list[Segment]:
        beside = np.array([0.0, -0.07, 0.04 + self.uniform(0.0, 0.02)])
        up = self.uniform(*self.RAISE)

        resting_z = float(obs.object_poses["cube"].position[2])
        jitter = np.array([self.uniform(-0.005, 0.005), self.uniform(-0.005, 0.005), 0.0])

        clear = np.array([0.0, 0.0, self.CLEARANCE])

        def grasp_point(o: SimObservation) -> np.ndarray:
            return o.object_poses["cube"].position - self.GRASP_OFFSET + jitter

        def cube_off_table(o: SimObservation) -> bool:
            return float(o.object_poses["cube"].position[2]) > resting_z + 0.02

        grip: dict[str, np.ndarray] = {}

        def cube_follows_hand(o: SimObservation) -> bool:
            """Off the table and where it sat in the hand when the raise began: a slipping cube fails early."""
            offset = o.object_poses["cube"].position - o.ee_poses["right"].position
            start = grip.setdefault("offset", offset)
            return cube_off_table(o) and float(np.linalg.norm(offset - start)) < self.SLIP_TOLERANCE

        def stay(o: SimObservation) -> tuple[np.ndarray, float]:
            return o.ee_poses["right"].position.copy(), 0.0

        def raised(dz: float) -> Goal:
            return lambda o: (o.ee_poses["right"].position + np.array([0.0, 0.0, dz]), 0.0)

        return [
            hold("settle", stay, -1.0, 3),
            Segment("approach cube", lambda o: (grasp_point(o) + beside, 0.0), -1.0, tolerance=0.02),
            Segment("lower beside cube", lambda o: (grasp_point(o) + beside * [0, 1, 0] + clear, 0.0), -1.0,
                    fine=True, tolerance=0.01),
            Segment("close in on cube", lambda o: (grasp_point(o) + clear, 0.0), -1.0, fine=True, tolerance=0.008),
            Segment("settle onto cube", lambda o: (grasp_point(o), 0.0), -1.0, fine=True, tolerance=0.006),
            hold("grasp cube", stay, 1.0, self.GRASP_STEPS),
            Segment("lift cube", raised(0.04), 1.0, fine=True, tolerance=0.015, check=cube_off_table),
            Segment("raise cube", raised(up), 1.0, tolerance=0.03, hold_steps=5,
                    check=cube_follows_hand, watch=True),
        ]


EXPERTS: dict[str, type[SegmentExpert]] = {
    "lift": LiftExpert,
    "sort": SortExpert,
    "nut": NutExpert,
    "humanoid_lift": HumanoidLiftExpert,
}


def make_expert(task: str, action_space: ActionSpace, control_rate: float) -> SegmentExpert:
    """The scripted expert for ``task``; ValueError for a task without one."""
    try:
        cls = EXPERTS[task]
    except KeyError:
        raise ValueError(f"no scripted expert for task {task!r}; experts exist for {sorted(EXPERTS)}") from None
    return cls(action_space, control_rate)
