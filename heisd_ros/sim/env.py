"""One interface to every simulated task: ``reset(seed)`` and ``step(action)`` return a SimObservation.

Everything downstream (experts, bag recording, the sim bridge node, closed-loop
evaluation) talks to this class only, never to robosuite directly, so a task's
robot (Panda arm or GR1 humanoid), controller and cameras are details here.

Conventions: quaternions are (x, y, z, w); positions in m in the world frame;
images are upright HxWx3 uint8; the action is robosuite's normalised command
in [-1, 1] per dimension (OSC_POSE: delta EE pose, ``ActionSpace.scale`` gives
m or rad per unit), control at ``control_rate`` Hz.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from scipy.spatial.transform import Rotation

from heisd_ros.core.joints import gripper_dims
from heisd_ros.sim.rendering import select_gl_backend
from heisd_ros.sim.tasks import TaskSpec, get_task

MODEL_SEED = 0
VLA_ARM_DIMENSIONS: tuple[str, ...] = ("dx", "dy", "dz", "droll", "dpitch", "dyaw")


@dataclass(frozen=True)
class Pose:
    """Position (m) and unit quaternion (x, y, z, w)."""

    position: np.ndarray
    orientation: np.ndarray


@dataclass(frozen=True)
class ActionSpace:
    """Names, bounds and physical scale of the action vector."""

    names: tuple[str, ...]
    low: np.ndarray
    high: np.ndarray
    scale: np.ndarray  # m or rad per unit of action (1 for grippers / hands)

    @property
    def dim(self) -> int:
        return len(self.names)

    @property
    def gripper_dims(self) -> list[int]:
        """Indices of the gripper / hand commands (the rest move the arms)."""
        return gripper_dims(self.names)


@dataclass
class SimObservation:
    """What the robot and (privileged) the expert know after a reset or a step."""

    step: int
    time: float  # s of sim time: step / control_rate
    images: dict[str, np.ndarray]
    joint_names: tuple[str, ...]
    joint_positions: np.ndarray
    joint_velocities: np.ndarray
    ee_poses: dict[str, Pose]  # per arm: "right", "left"
    gripper_openings: dict[str, float]  # per arm, 1 = fully open, 0 = closed
    object_poses: dict[str, Pose]  # privileged: for experts only
    instruction: str
    reward: float = 0.0
    success: bool = False
    base_pose: Pose | None = field(default=None)


class SimEnv:
    """A robosuite task behind a small, typed interface."""

    def __init__(
        self,
        task: TaskSpec | str,
        cameras: Sequence[str] = (),
        image_size: int = 128,
        control_rate: float = 20.0,
    ) -> None:
        self.task = get_task(task) if isinstance(task, str) else task
        if image_size < 8 or image_size > 1024:
            raise ValueError(f"image_size must be in [8, 1024], got {image_size}")
        self.cameras = tuple(cameras)
        self.image_size = int(image_size)
        self.control_rate = float(control_rate)
        self._thread = threading.get_ident()  # the GL context is current in this thread only
        select_gl_backend()
        import robosuite  # imported only after MUJOCO_GL is settled

        # robosuite warns on every make() about controller parts a robot lacks: keep errors only.
        logging.getLogger("robosuite_logs").setLevel(logging.ERROR)
        from robosuite.controllers import load_composite_controller_config

        import heisd_ros.sim.variants  # noqa: F401  registers this project's environments with robosuite

        render = bool(self.cameras)
        self._env = self._make(robosuite, load_composite_controller_config, render)
        self._sim = self._env.sim
        self._robot = self._env.robots[0]
        self._configure_rendering()
        self._joint_names, self._qpos_idx, self._qvel_idx = self._resolve_joints()
        self._gripper_ranges = self._resolve_gripper_ranges()
        self.action_space = self._build_action_space()
        self._step = 0

    # public surface -------------------------------------------------------------------------

    @property
    def instruction(self) -> str:
        return self.task.instruction

    @property
    def arms(self) -> tuple[str, ...]:
        return tuple(self._robot.arms)

    @property
    def robot_name(self) -> str:
        return self.task.robot

    @property
    def joint_names(self) -> tuple[str, ...]:
        return self._joint_names

    def reset(self, seed: int) -> SimObservation:
        """Start an episode whose initial state depends only on ``seed``."""
        self._check_thread()
        # robosuite's samplers hold a reference to env.rng: reseed it in place.
        self._env.rng.bit_generator.state = np.random.default_rng(seed).bit_generator.state
        raw = self._env.reset()
        self._step = 0
        return self._observe(raw, reward=0.0)

    def step(self, action: np.ndarray) -> SimObservation:
        """Apply one normalised action for 1 / control_rate s of sim time."""
        self._check_thread()
        action = np.asarray(action, dtype=np.float64)
        if action.shape != (self.action_space.dim,):
            raise ValueError(f"action must have shape ({self.action_space.dim},), got {action.shape}")
        if not np.all(np.isfinite(action)):
            raise ValueError("action contains NaN or infinite values")
        raw, reward, _, _ = self._env.step(np.clip(action, self.action_space.low, self.action_space.high))
        self._step += 1
        return self._observe(raw, reward=float(reward))

    def close(self) -> None:
        self._env.close()

    def _check_thread(self) -> None:
        """Rendering needs the GL context, which is current only in the thread that created the env:
        from another thread EGL renders black frames and garbage without any error."""
        if self.cameras and threading.get_ident() != self._thread:
            raise RuntimeError("this SimEnv renders cameras, and must be reset and stepped on the thread that "
                               "created it (its GL context is current there only); create it on the thread that steps it")

    def __enter__(self) -> "SimEnv":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # internals ------------------------------------------------------------------------------

    def _make(self, robosuite, load_composite_controller_config, render: bool):  # noqa: ANN001, ANN202
        return robosuite.make(
            self.task.env_name,
            robots=self.task.robot,
            controller_configs=load_composite_controller_config(controller="BASIC", robot=self.task.robot),
            has_renderer=False,
            has_offscreen_renderer=render,
            use_camera_obs=render,
            camera_names=list(self.cameras) if render else "agentview",
            camera_heights=self.image_size,
            camera_widths=self.image_size,
            control_freq=int(round(self.control_rate)),
            ignore_done=True,
            hard_reset=False,
            horizon=10**9,
            # robosuite draws some object sizes (Lift's cube) from env.rng while building the
            # model: a fixed seed makes every process build the same model.
            seed=MODEL_SEED,
            **dict(self.task.env_kwargs),
        )

    def _configure_rendering(self) -> None:
        """Shadows and reflections cost 10-50x in software rendering and add nothing for a policy."""
        model = self._sim.model._model
        model.light_castshadow[:] = 0
        model.mat_reflectance[:] = 0.0
        context = self._sim._render_context_offscreen
        if context is not None:
            import mujoco

            context.scn.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = 0
            context.scn.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 0
            context.scn.flags[mujoco.mjtRndFlag.mjRND_SKYBOX] = 0

    def _resolve_joints(self) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
        model = self._sim.model._model
        names = list(self._robot.robot_joints)
        for arm in self._robot.arms:
            names.extend(self._robot.gripper[arm].joints)
        ids = [self._sim.model.joint_name2id(n) for n in names]
        return tuple(names), model.jnt_qposadr[ids].copy(), model.jnt_dofadr[ids].copy()

    def _resolve_gripper_ranges(self) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Per arm: qpos indices, open positions and the farthest distance from open."""
        model = self._sim.model._model
        ranges = {}
        for arm in self._robot.arms:
            gripper = self._robot.gripper[arm]
            ids = [self._sim.model.joint_name2id(n) for n in gripper.joints]
            open_q = np.asarray(gripper.init_qpos, dtype=np.float64)
            lo, hi = model.jnt_range[ids, 0], model.jnt_range[ids, 1]
            span = np.maximum(np.abs(lo - open_q), np.abs(hi - open_q))
            ranges[arm] = (model.jnt_qposadr[ids].copy(), open_q, np.where(span > 0, span, 1.0))
        return ranges

    def _build_action_space(self) -> ActionSpace:
        low, high = (np.asarray(b, dtype=np.float64) for b in self._env.action_spec)
        names: list[str] = []
        scale: list[float] = []
        single = len(self._robot.arms) == 1
        controllers = self._robot.part_controllers
        for part, (start, end) in self._robot.composite_controller._action_split_indexes.items():
            width = end - start
            if part in self._robot.arms:
                prefix = "" if single else f"{part}_"
                names.extend(prefix + d for d in VLA_ARM_DIMENSIONS)
                scale.extend(np.abs(np.asarray(controllers[part].output_max, dtype=np.float64)).tolist())
            elif part.endswith("_gripper"):
                arm = part[: -len("_gripper")]
                if width == 1:
                    names.append("gripper" if single else f"{arm}_gripper")
                else:
                    names.extend(f"{arm}_hand_{i}" for i in range(width))
                scale.extend([1.0] * width)
            else:
                raise ValueError(f"unsupported controller part {part!r} in task {self.task.name}")
        if len(names) != low.size:
            raise RuntimeError(f"action names ({len(names)}) do not match robosuite's action size ({low.size})")
        return ActionSpace(tuple(names), low, high, np.asarray(scale))

    def _site_pose(self, site_id: int) -> Pose:
        data = self._sim.data._data
        quat = Rotation.from_matrix(data.site_xmat[site_id].reshape(3, 3)).as_quat()
        return Pose(data.site_xpos[site_id].copy(), quat)

    def _body_pose(self, body_id: int) -> Pose:
        data = self._sim.data._data
        wxyz = data.xquat[body_id]
        return Pose(data.xpos[body_id].copy(), np.array([wxyz[1], wxyz[2], wxyz[3], wxyz[0]]))

    def _observe(self, raw: dict, reward: float) -> SimObservation:
        data = self._sim.data._data
        model = self._sim.model
        images = {cam: np.ascontiguousarray(raw[f"{cam}_image"][::-1]) for cam in self.cameras}
        ee = {arm: self._site_pose(self._robot.eef_site_id[arm]) for arm in self._robot.arms}
        grippers = {}
        for arm, (idx, open_q, span) in self._gripper_ranges.items():
            closed_fraction = np.clip(np.abs(data.qpos[idx] - open_q) / span, 0.0, 1.0)
            grippers[arm] = float(1.0 - closed_fraction.mean())
        objects = {label: self._body_pose(model.body_name2id(b)) for label, b in self.task.bodies.items()}
        objects.update({label: self._site_pose(model.site_name2id(s)) for label, s in self.task.sites.items()})
        base = self._body_pose(model.body_name2id(self._robot.robot_model.root_body))
        return SimObservation(
            step=self._step,
            time=self._step / self.control_rate,
            images=images,
            joint_names=self._joint_names,
            joint_positions=data.qpos[self._qpos_idx].copy(),
            joint_velocities=data.qvel[self._qvel_idx].copy(),
            ee_poses=ee,
            gripper_openings=grippers,
            object_poses=objects,
            instruction=self.task.instruction,
            reward=reward,
            success=bool(self._env._check_success()),
            base_pose=base,
        )
