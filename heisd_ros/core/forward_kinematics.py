"""End-effector poses from joint states through a robot model (MJCF or URDF), with MuJoCo
as the kinematics library.

For robots that publish joint states but no end-effector pose topic (and where TF is
not available): the kinematic encoder loads the robot's model once, sets the named
joints and reads the pose of a body or site. Joints are matched by name; joints the
model has but the message lacks keep their model default.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from heisd_ros.core.errors import InvalidInputError

_FREE_JOINT = 0  # mjJNT_FREE; ball joints (1) have 4 qpos entries, hinge/slide 1


class ModelKinematics:
    """Forward kinematics of one robot model for a set of end-effector frames (bodies or sites)."""

    def __init__(self, model_path: str | Path, frames: Sequence[str]) -> None:
        import mujoco

        path = Path(model_path).expanduser()
        if not path.is_file():
            raise InvalidInputError(f"robot model {path} does not exist (MJCF .xml or URDF .urdf)")
        try:
            self.model = mujoco.MjModel.from_xml_path(str(path))
        except ValueError as exc:
            raise InvalidInputError(f"robot model {path} could not be loaded: {exc}") from None
        self.data = mujoco.MjData(self.model)
        self._mujoco = mujoco
        self.frames: list[tuple[str, str, int]] = []
        for name in frames:
            site = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_SITE, name)
            body = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_BODY, name)
            if site >= 0:
                self.frames.append((name, "site", site))
            elif body >= 0:
                self.frames.append((name, "body", body))
            else:
                raise InvalidInputError(f"robot model {path.name} has no body or site named {name!r}")
        self.joint_qpos: dict[str, int] = {}
        for j in range(self.model.njnt):
            if self.model.jnt_type[j] in (2, 3):  # slide, hinge: one qpos entry each
                self.joint_qpos[mujoco.mj_id2name(self.model, mujoco.mjtObj.mjOBJ_JOINT, j)] = int(self.model.jnt_qposadr[j])

    def poses(self, joint_names: Sequence[str], joint_positions: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """(position m, quaternion xyzw) of every frame, in the model's world frame."""
        q = np.asarray(joint_positions, dtype=np.float64)
        if q.shape != (len(joint_names),) or not np.all(np.isfinite(q)):
            raise InvalidInputError(f"need {len(joint_names)} finite joint positions, got {q.tolist()}")
        known = [(self.joint_qpos[n], v) for n, v in zip(joint_names, q) if n in self.joint_qpos]
        if not known:
            raise InvalidInputError(f"none of the joints {list(joint_names)} is in the robot model "
                                    f"(it has {sorted(self.joint_qpos)})")
        self.data.qpos[:] = self.model.qpos0
        for adr, value in known:
            self.data.qpos[adr] = value
        self._mujoco.mj_kinematics(self.model, self.data)
        out = []
        for _, kind, idx in self.frames:
            if kind == "site":
                pos = self.data.site_xpos[idx].copy()
                quat = np.empty(4)
                self._mujoco.mju_mat2Quat(quat, self.data.site_xmat[idx])
            else:
                pos, quat = self.data.xpos[idx].copy(), self.data.xquat[idx].copy()
            out.append((pos, np.array([quat[1], quat[2], quat[3], quat[0]])))  # wxyz -> xyzw
        return out
