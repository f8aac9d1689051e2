"""What a VLA policy consumes at one control step, as plain numpy.

One record for every model, drafter and decoder, so that nodes convert a ROS message
to an ``Observation`` once and the engine never sees ROS types. ``validate`` is the
single place where malformed sensor data is rejected with a message that says what is
wrong, instead of turning into NaN actions several modules later.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from heisd_ros.core.errors import InvalidInputError


@dataclass
class Observation:
    """Camera images, instruction and proprioception of one step.

    images: camera name -> (H, W, 3) uint8 image. instruction: the task in natural
    language (also selects the retrieval collection). joint_names / joint_positions:
    the same length, rad or m. proprio: extra float features the model expects (may be
    empty). ee_position: absolute end-effector xyz in m (feeds the fused metric), or
    None when unknown. stamp: capture time in s.
    """

    images: dict[str, np.ndarray]
    instruction: str
    joint_names: list[str] = field(default_factory=list)
    joint_positions: np.ndarray = field(default_factory=lambda: np.zeros(0))
    proprio: np.ndarray = field(default_factory=lambda: np.zeros(0))
    ee_position: np.ndarray | None = None
    stamp: float = 0.0

    def validate(self) -> "Observation":
        """Raise InvalidInputError on anything malformed; return self so calls chain."""
        if not isinstance(self.images, dict):
            raise InvalidInputError(f"images must be a dict camera name -> array, got {type(self.images).__name__}")
        for name, img in self.images.items():
            if not isinstance(name, str) or not name:
                raise InvalidInputError(f"camera names must be non-empty strings, got {name!r}")
            if not isinstance(img, np.ndarray) or img.ndim != 3 or img.shape[2] != 3 or min(img.shape[:2]) < 1:
                shape = getattr(img, "shape", None)
                raise InvalidInputError(f"image {name!r} must be an (H, W, 3) array, got shape {shape}")
            if img.dtype != np.uint8:
                raise InvalidInputError(f"image {name!r} must be uint8, got {img.dtype}")
        if not isinstance(self.instruction, str) or not self.instruction.strip():
            raise InvalidInputError("instruction must be a non-empty string")
        if not all(isinstance(n, str) and n for n in self.joint_names):
            raise InvalidInputError("joint_names must be non-empty strings")
        if len(set(self.joint_names)) != len(self.joint_names):
            raise InvalidInputError(f"joint_names contain duplicates: {self.joint_names}")
        joints = _float_vector(self.joint_positions, "joint_positions")
        if joints.size != len(self.joint_names):
            raise InvalidInputError(
                f"{len(self.joint_names)} joint_names but {joints.size} joint_positions; they must match one to one"
            )
        _float_vector(self.proprio, "proprio")
        if self.ee_position is not None:
            ee = _float_vector(self.ee_position, "ee_position")
            if ee.size != 3:
                raise InvalidInputError(f"ee_position must hold xyz (3 values), got {ee.size}")
        if not isinstance(self.stamp, (int, float, np.floating, np.integer)) or not np.isfinite(self.stamp):
            raise InvalidInputError(f"stamp must be a finite number of seconds, got {self.stamp!r}")
        return self


def _float_vector(value: object, what: str) -> np.ndarray:
    """Check that value is a finite 1-D real array and return it."""
    if not isinstance(value, np.ndarray):
        raise InvalidInputError(f"{what} must be a numpy array, got {type(value).__name__}")
    if value.ndim != 1:
        raise InvalidInputError(f"{what} must be 1-D, got shape {value.shape}")
    if value.dtype.kind not in "fiu":
        raise InvalidInputError(f"{what} must be real numbers, got dtype {value.dtype}")
    if not np.all(np.isfinite(value)):
        raise InvalidInputError(f"{what} contains NaN or inf: {value}")
    return value
