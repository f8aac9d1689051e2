"""How robot signals become the model's inputs: camera images and the proprio vector.

Why its own module: the ROS nodes, the simulation rollout and training must feed the
model exactly the same numbers. Everything here is computable from what a real robot
publishes (camera images, joint states, the end-effector pose, the gripper opening),
and the recipe (which cameras, which joints, normalisation statistics) is stored in
the bundle, so a deployment cannot silently drift from training.

Proprio recipe (``PROPRIO_FEATURES``): EE position (3, m), EE orientation as the first
two columns of its rotation matrix (6; continuous, unlike a quaternion whose sign
flips), and one gripper value, each standardised with the demonstrations' mean and
std. The gripper value is the mean |position| of the spec's ``gripper_joints`` (read
by name from the joint states, as bags and robots publish them: for the Panda the
finger half-width); only a spec without gripper joints takes the caller's gripper
opening (1 = open, 0 = closed) instead.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from scipy.spatial.transform import Rotation

from heisd_ros.core.errors import InvalidInputError
from heisd_ros.core.observation import Observation

PROPRIO_FEATURES: tuple[str, ...] = ("ee_x", "ee_y", "ee_z", "r11", "r21", "r31", "r12", "r22", "r32", "gripper")
_STD_FLOOR = 1e-3


def raw_proprio(ee_position: np.ndarray, ee_quaternion: np.ndarray, gripper: float | np.ndarray) -> np.ndarray:
    """(..., 10) un-normalised proprio features from EE position (..., 3), quaternion xyzw (..., 4), gripper (...)."""
    pos = np.asarray(ee_position, dtype=np.float64)
    quat = np.asarray(ee_quaternion, dtype=np.float64)
    grip = np.asarray(gripper, dtype=np.float64)
    if pos.shape[-1:] != (3,) or quat.shape[-1:] != (4,) or pos.shape[:-1] != quat.shape[:-1] or grip.shape != pos.shape[:-1]:
        raise InvalidInputError(
            f"need ee_position (..., 3), ee_quaternion (..., 4) and gripper (...) of matching batch shape, "
            f"got {pos.shape}, {quat.shape}, {grip.shape}"
        )
    for what, arr in (("ee_position", pos), ("ee_quaternion", quat), ("gripper", grip)):
        if not np.all(np.isfinite(arr)):
            raise InvalidInputError(f"{what} contains NaN or inf")
    norms = np.linalg.norm(quat, axis=-1)
    if np.any(norms < 1e-6):
        raise InvalidInputError("ee_quaternion has zero norm")
    matrix = Rotation.from_quat(quat.reshape(-1, 4)).as_matrix().reshape(pos.shape[:-1] + (3, 3))
    columns = np.concatenate([matrix[..., :, 0], matrix[..., :, 1]], axis=-1)
    return np.concatenate([pos, columns, grip[..., None]], axis=-1)


def resize_images(images: np.ndarray, size: int) -> np.ndarray:
    """(..., H, W, 3) uint8 -> (..., size, size, 3) uint8 (antialiased bilinear; identity when already that size)."""
    arr = np.asarray(images)
    if arr.ndim < 3 or arr.shape[-1] != 3 or arr.dtype != np.uint8:
        raise InvalidInputError(f"images must be (..., H, W, 3) uint8, got shape {arr.shape} dtype {arr.dtype}")
    if arr.shape[-3:-1] == (size, size):
        return arr
    lead = arr.shape[:-3]
    x = torch.from_numpy(np.ascontiguousarray(arr.reshape((-1,) + arr.shape[-3:]))).permute(0, 3, 1, 2).float()
    y = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    out = y.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return out.reshape(lead + (size, size, 3))


@dataclass
class InputSpec:
    """The stored input recipe: cameras, image size, joints used for retrieval, proprio statistics."""

    cameras: list[str]
    image_size: int
    joint_names: list[str]
    gripper_joints: list[str] = field(default_factory=list)
    proprio_mean: list[float] = field(default_factory=lambda: [0.0] * len(PROPRIO_FEATURES))
    proprio_std: list[float] = field(default_factory=lambda: [1.0] * len(PROPRIO_FEATURES))

    def __post_init__(self) -> None:
        if not self.cameras or not all(isinstance(c, str) and c for c in self.cameras):
            raise InvalidInputError(f"cameras must be non-empty names, got {self.cameras!r}")
        if len(self.proprio_mean) != len(PROPRIO_FEATURES) or len(self.proprio_std) != len(PROPRIO_FEATURES):
            raise InvalidInputError(f"proprio statistics must have {len(PROPRIO_FEATURES)} entries ({PROPRIO_FEATURES})")
        if not all(np.isfinite(self.proprio_mean)) or not all(s > 0 and np.isfinite(s) for s in self.proprio_std):
            raise InvalidInputError("proprio mean must be finite and std finite and > 0")
        if len(set(self.joint_names)) != len(self.joint_names):
            raise InvalidInputError(f"joint_names contain duplicates: {self.joint_names}")
        if len(set(self.gripper_joints)) != len(self.gripper_joints):
            raise InvalidInputError(f"gripper_joints contain duplicates: {self.gripper_joints}")

    def with_statistics(self, raw: np.ndarray) -> "InputSpec":
        """This recipe with mean/std from (N, 10) raw proprio features of the demonstrations (std floored at 1e-3)."""
        arr = np.asarray(raw, dtype=np.float64)
        if arr.ndim != 2 or arr.shape[1] != len(PROPRIO_FEATURES) or arr.shape[0] == 0:
            raise InvalidInputError(f"raw proprio must be (N, {len(PROPRIO_FEATURES)}) with N >= 1, got {arr.shape}")
        return InputSpec(list(self.cameras), self.image_size, list(self.joint_names), list(self.gripper_joints),
                         arr.mean(0).tolist(), np.maximum(arr.std(0), _STD_FLOOR).tolist())

    def gripper_value(self, joint_names: Sequence[str], joint_positions: np.ndarray,
                      gripper: float | np.ndarray | None) -> np.ndarray:
        """The gripper feature (...,): mean |q| of the gripper joints, or the given opening without gripper joints."""
        if self.gripper_joints:
            picked = _pick(self.gripper_joints, joint_names, joint_positions, "gripper joints")
            return np.abs(picked).mean(axis=-1)
        if gripper is None:
            raise InvalidInputError("this model reads the gripper opening (1 = open, 0 = closed); pass gripper")
        return np.asarray(gripper, dtype=np.float64)

    def raw_features(self, joint_names: Sequence[str], joint_positions: np.ndarray, ee_position: np.ndarray,
                     ee_quaternion: np.ndarray, gripper: float | np.ndarray | None = None) -> np.ndarray:
        """(..., 10) un-normalised proprio of one step or (with leading axes) of many."""
        return raw_proprio(ee_position, ee_quaternion, self.gripper_value(joint_names, joint_positions, gripper))

    def normalize_proprio(self, raw: np.ndarray) -> np.ndarray:
        """Standardise raw features (..., 10) -> float32."""
        return ((np.asarray(raw, np.float64) - np.asarray(self.proprio_mean)) / np.asarray(self.proprio_std)).astype(np.float32)

    def select_joints(self, joint_names: Sequence[str], joint_positions: np.ndarray) -> np.ndarray:
        """The positions of this spec's joints, picked by name from whatever order the robot publishes."""
        return _pick(self.joint_names, joint_names, joint_positions, "joints")

    def prepare_images(self, images: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The spec's cameras, resized to image_size; a missing camera raises InvalidInputError."""
        if not isinstance(images, dict):
            raise InvalidInputError(f"images must be a dict camera name -> array, got {type(images).__name__}")
        missing = [c for c in self.cameras if c not in images]
        if missing:
            raise InvalidInputError(f"missing camera image(s) {missing}; the model needs {self.cameras}, got {sorted(images)}")
        return {c: resize_images(images[c], self.image_size) for c in self.cameras}

    def observation(self, images: dict[str, np.ndarray], instruction: str, joint_names: Sequence[str],
                    joint_positions: np.ndarray, ee_position: np.ndarray | None, ee_quaternion: np.ndarray | None,
                    gripper: float | None, stamp: float) -> Observation:
        """Robot signals -> the model's validated Observation (the recipe in the module docstring).

        Joints are picked by name; the EE pose is required (the proprio vector needs it)
        and checked for NaN/inf; ``gripper`` is only read by a recipe without gripper
        joints (module docstring).
        """
        if ee_position is None or ee_quaternion is None:
            missing = [n for n, v in (("ee_position", ee_position), ("ee_quaternion", ee_quaternion)) if v is None]
            raise InvalidInputError(f"the model's proprio needs {missing}; pass them (e.g. from TF or forward kinematics)")
        positions = np.asarray(joint_positions, dtype=np.float64)
        proprio = self.normalize_proprio(self.raw_features(joint_names, positions, ee_position, ee_quaternion, gripper))
        return Observation(
            images=self.prepare_images(images),
            instruction=instruction,
            joint_names=list(self.joint_names),
            joint_positions=self.select_joints(joint_names, positions),
            proprio=proprio,
            ee_position=np.asarray(ee_position, dtype=np.float64).copy(),
            stamp=float(stamp),
        ).validate()

    def to_dict(self) -> dict:
        return {"cameras": self.cameras, "image_size": self.image_size, "joint_names": self.joint_names,
                "gripper_joints": self.gripper_joints, "proprio_features": list(PROPRIO_FEATURES), "proprio_mean": self.proprio_mean, "proprio_std": self.proprio_std}

    @classmethod
    def from_dict(cls, d: dict) -> "InputSpec":
        try:
            if list(d["proprio_features"]) != list(PROPRIO_FEATURES):
                raise InvalidInputError(f"proprio features {d['proprio_features']} differ from this version's {PROPRIO_FEATURES}")
            return cls(list(d["cameras"]), int(d["image_size"]), list(d["joint_names"]), list(d["gripper_joints"]),
                       list(d["proprio_mean"]), list(d["proprio_std"]))
        except (KeyError, TypeError) as exc:
            raise InvalidInputError(f"input spec lacks or mistypes a field: {exc}") from None


def _pick(wanted: Sequence[str], joint_names: Sequence[str], joint_positions: np.ndarray, what: str) -> np.ndarray:
    """Columns ``wanted`` of (..., J) positions published under ``joint_names``; clear errors on mismatch."""
    positions = np.asarray(joint_positions, dtype=np.float64)
    names = list(joint_names)
    if positions.shape[-1:] != (len(names),):
        raise InvalidInputError(f"{len(names)} joint names but joint positions of shape {positions.shape}")
    if not np.all(np.isfinite(positions)):
        raise InvalidInputError("joint positions contain NaN or inf")
    index = {n: i for i, n in enumerate(names)}
    missing = [n for n in wanted if n not in index]
    if missing:
        raise InvalidInputError(f"joint states lack {what} {missing} that the model needs (got {names})")
    return positions[..., [index[n] for n in wanted]]


def default_gripper_joints(joint_names: Sequence[str]) -> list[str]:
    """Joints that belong to a gripper or hand by their name (finger/gripper/hand)."""
    return [n for n in joint_names if any(k in n.lower() for k in ("finger", "gripper", "hand"))]
