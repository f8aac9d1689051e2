"""Demonstrations as the training code sees them: whole episodes of time-aligned arrays.

Why a record of its own: training, distillation, cache building and calibration all
read the same episodes, whatever produced them (``heisd collect`` bags through the
data reader, or arrays in tests), and each needs a different flattening. ``Episode``
is validated once on construction so a malformed demonstration fails with a message
naming it, not as a shape error inside torch.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from heisd_ros.core.errors import InvalidInputError
from heisd_ros.core.observation import Observation
from heisd_ros.vla.inputs import InputSpec
from heisd_ros.vla.policy import normalize_instruction


@dataclass
class Episode:
    """One demonstration: T aligned steps of cameras, joints, EE pose, gripper and the action taken.

    images: camera -> (T, H, W, 3) uint8. gripper: opening (1 = open, 0 = closed) where
    the source records one, else None (models then read the gripper joints).
    actions: (T, D) in controller units (the gripper command as the robot takes it).
    source: where it came from (a bag path), recorded in the bundle manifest.
    """

    task: str
    instruction: str
    seed: int
    images: dict[str, np.ndarray]
    joint_names: list[str]
    joint_positions: np.ndarray
    ee_position: np.ndarray
    ee_quaternion: np.ndarray
    gripper: np.ndarray | None
    actions: np.ndarray
    action_names: list[str]
    control_rate_hz: float
    source: str = ""
    success: bool = True
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        name = f"episode {self.task!r} seed {self.seed}"
        self.instruction = normalize_instruction(self.instruction)
        self.actions = np.asarray(self.actions, dtype=np.float64)
        if self.actions.ndim != 2 or self.actions.shape[0] < 1:
            raise InvalidInputError(f"{name}: actions must be (T, D) with T >= 1, got {self.actions.shape}")
        t, d = self.actions.shape
        if len(self.action_names) != d:
            raise InvalidInputError(f"{name}: {len(self.action_names)} action names for actions of dimension {d}")
        checks = {
            "joint_positions": (t, len(self.joint_names)),
            "ee_position": (t, 3),
            "ee_quaternion": (t, 4),
        }
        if self.gripper is not None:
            checks["gripper"] = (t,)
        for attr, shape in checks.items():
            arr = np.asarray(getattr(self, attr), dtype=np.float64)
            if arr.shape != shape:
                raise InvalidInputError(f"{name}: {attr} must have shape {shape}, got {arr.shape}")
            if not np.all(np.isfinite(arr)):
                raise InvalidInputError(f"{name}: {attr} contains NaN or inf")
            setattr(self, attr, arr)
        if not np.all(np.isfinite(self.actions)):
            raise InvalidInputError(f"{name}: actions contain NaN or inf")
        if not self.images:
            raise InvalidInputError(f"{name}: no camera images")
        for cam, img in self.images.items():
            if not isinstance(img, np.ndarray) or img.dtype != np.uint8 or img.ndim != 4 or img.shape[0] != t or img.shape[3] != 3:
                raise InvalidInputError(f"{name}: images[{cam!r}] must be ({t}, H, W, 3) uint8, got {getattr(img, 'shape', None)}")
        if not self.control_rate_hz > 0:
            raise InvalidInputError(f"{name}: control_rate_hz must be > 0, got {self.control_rate_hz}")

    @property
    def length(self) -> int:
        return int(self.actions.shape[0])

    def raw_proprio(self, spec: InputSpec) -> np.ndarray:
        """(T, 10) un-normalised proprio features by the recipe ``spec`` (vla/inputs.py)."""
        return spec.raw_features(self.joint_names, self.joint_positions, self.ee_position, self.ee_quaternion, self.gripper)

    def action_chunks(self, horizon: int) -> np.ndarray:
        """(T, H, D): at step t the actions t..t+H-1, the last action repeated past the end."""
        idx = np.minimum(np.arange(self.length)[:, None] + np.arange(horizon)[None], self.length - 1)
        return self.actions[idx]


def idle_steps(ep: Episode, spec: InputSpec, arm_dims: np.ndarray, action_tol: float = 0.05,
               gripper_tol: float = 1e-4) -> np.ndarray:
    """(T,) True where the demonstrator paused: arm command below ``action_tol`` on every
    ``arm_dims`` dimension and the gripper neither moving nor re-commanded.

    Why: a scripted pause (waiting for the fingers to close) shows the policy identical
    observations followed by different actions (keep waiting, then go), and a
    memoryless policy learns to wait forever. Dropping the pauses from the
    behaviour-cloning set removes that fixed point; the frames while the fingers are
    still moving stay, so the gripper still closes before the arm goes.
    """
    grip = spec.gripper_value(ep.joint_names, ep.joint_positions, ep.gripper)
    grip_moving = np.abs(np.diff(grip, append=grip[-1:])) > gripper_tol
    commands = ep.actions[:, ~arm_dims]
    recommanded = np.any(np.abs(np.diff(commands, axis=0, prepend=commands[:1])) > 1e-9, axis=1)
    still = np.all(np.abs(ep.actions[:, arm_dims]) < action_tol, axis=1)
    return still & ~grip_moving & ~recommanded


def check_consistent(episodes: list[Episode]) -> None:
    """All episodes must share action names and control rate (one bundle = one action space)."""
    if not episodes:
        raise InvalidInputError("no demonstration episodes")
    first = episodes[0]
    for ep in episodes[1:]:
        if ep.action_names != first.action_names:
            raise InvalidInputError(
                f"episode {ep.task!r} seed {ep.seed} has actions {ep.action_names}, others {first.action_names}; "
                "one bundle covers one action space"
            )
        if abs(ep.control_rate_hz - first.control_rate_hz) > 1e-6:
            raise InvalidInputError(f"episodes mix control rates {first.control_rate_hz} and {ep.control_rate_hz} Hz")


@dataclass
class FrameSet:
    """Episodes flattened into model inputs: one row per step."""

    images: np.ndarray  # (N, cams, S, S, 3) uint8
    proprio: np.ndarray  # (N, P) float32, normalised
    text_ids: list[list[int]]  # per row
    chunks: np.ndarray  # (N, H, D) actions
    episode: np.ndarray  # (N,) index into the episode list
    step: np.ndarray  # (N,)

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def subset(self, rows: np.ndarray) -> "FrameSet":
        """The given rows only (e.g. without idle frames)."""
        return FrameSet(self.images[rows], self.proprio[rows], [self.text_ids[i] for i in rows], self.chunks[rows],
                        self.episode[rows], self.step[rows])


def frames(episodes: list[Episode], spec: InputSpec, prompt_ids, horizon: int) -> FrameSet:
    """Flatten episodes with the input recipe ``spec``; ``prompt_ids(instruction) -> ids`` encodes the text."""
    check_consistent(episodes)
    images, proprio, text, chunks, ep_idx, steps = [], [], [], [], [], []
    for i, ep in enumerate(episodes):
        prepared = spec.prepare_images(ep.images)
        images.append(np.stack([prepared[c] for c in spec.cameras], axis=1))
        proprio.append(spec.normalize_proprio(ep.raw_proprio(spec)))
        ids = prompt_ids(ep.instruction)
        text.extend([ids] * ep.length)
        chunks.append(ep.action_chunks(horizon))
        ep_idx.append(np.full(ep.length, i))
        steps.append(np.arange(ep.length))
    return FrameSet(np.concatenate(images), np.concatenate(proprio), text, np.concatenate(chunks),
                    np.concatenate(ep_idx), np.concatenate(steps))


def episode_observations(ep: Episode, spec: InputSpec) -> list[Observation]:
    """Every step of an episode as the Observation the deployed model would get (same recipe as the bundle)."""
    out = []
    for t in range(ep.length):
        out.append(spec.observation({c: img[t] for c, img in ep.images.items()}, ep.instruction, ep.joint_names,
                                    ep.joint_positions[t], ep.ee_position[t], ep.ee_quaternion[t],
                                    None if ep.gripper is None else float(ep.gripper[t]),
                                    t / ep.control_rate_hz))
    return out
