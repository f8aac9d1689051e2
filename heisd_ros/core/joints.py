"""Joint values by name, never by index: the one rule every consumer of joint states follows."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from heisd_ros.core.errors import InvalidInputError


class JointMismatchError(InvalidInputError):
    """Joint names and values that do not fit: missing, duplicated, or of another length."""


def pick_by_name(wanted: Sequence[str], names: Sequence[str], values: np.ndarray, what: str = "joints") -> np.ndarray:
    """Columns ``wanted`` of (..., J) ``values`` published under ``names``, in the wanted order.

    Extra joints are ignored; a missing or duplicated one, or a length mismatch, raises
    JointMismatchError naming the joints."""
    values = np.asarray(values, dtype=np.float64)
    names = list(names)
    if values.shape[-1:] != (len(names),):
        raise JointMismatchError(f"{len(names)} joint names but values of shape {values.shape}")
    if len(set(names)) != len(names):
        raise JointMismatchError(f"joint names are duplicated: {sorted({n for n in names if names.count(n) > 1})}")
    index = {n: i for i, n in enumerate(names)}
    missing = [n for n in wanted if n not in index]
    if missing:
        raise JointMismatchError(f"{what} {missing} are missing (got {names})")
    return values[..., [index[n] for n in wanted]]


def gripper_dims(action_names: Sequence[str]) -> list[int]:
    """Indices of the gripper / hand dimensions of an action vector, by name ("gripper" or "hand" in it)."""
    return [i for i, n in enumerate(action_names) if "gripper" in n or "hand" in n]
