"""Procedural demonstrations: fast, simulator-free input for the pipeline's tests and a dry run of the commands.

Each episode shows a coloured square at a random target in both cameras; the end
effector moves there on a smooth path (straight transport, then a slow curved
approach), with OSC-style delta actions proportional to the remaining error and a
gripper that closes (+1) for the last steps. The images carry the target, so a
policy that learns anything must read them.
"""
from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from heisd_ros.training.demos import Episode

ACTION_NAMES = ["dx", "dy", "dz", "droll", "dpitch", "dyaw", "gripper"]
JOINT_NAMES = [f"joint{i}" for i in range(1, 8)] + ["finger_joint1", "finger_joint2"]


def _frame(target_px: tuple[int, int], ee_px: tuple[int, int], size: int, colour: np.ndarray) -> np.ndarray:
    img = np.full((size, size, 3), 40, np.uint8)
    y, x = target_px
    img[max(0, y - 3): y + 3, max(0, x - 3): x + 3] = colour
    ey, ex = ee_px
    img[max(0, ey - 1): ey + 2, max(0, ex - 1): ex + 2] = 230
    return img


def synthetic_episodes(n: int, length: int = 30, seed: int = 0, image_size: int = 64,
                       cameras: tuple[str, ...] = ("agentview", "robot0_eye_in_hand"),
                       tasks: dict[str, str] | None = None) -> list[Episode]:
    """``n`` episodes per task of ``length`` steps; episode i of a task uses seed ``seed + i``."""
    tasks = tasks or {"lift": "lift the cube"}
    out = []
    for t_index, (task, instruction) in enumerate(sorted(tasks.items())):
        colour = np.array([200, 60 + 80 * t_index, 60], np.uint8)
        for i in range(n):
            ep_seed = seed + i
            rng = np.random.default_rng(ep_seed * 7919 + t_index)
            target = np.array([rng.uniform(-0.2, 0.2), rng.uniform(-0.2, 0.2), 0.85])
            ee = np.array([0.0, 0.0, 1.0])
            positions, actions, images = [], [], {c: [] for c in cameras}
            for step in range(length):
                positions.append(ee.copy())
                frac = step / max(1, length - 1)
                err = target - ee
                gain = 0.35 if frac < 0.6 else 0.12  # fast transport, slow approach
                delta = np.clip(err * gain / 0.05, -1, 1)
                curl = np.array([-err[1], err[0], 0.0]) * (0.0 if frac < 0.6 else 2.0)
                grip = 1.0 if frac > 0.8 else -1.0
                actions.append(np.concatenate([delta + 0.1 * curl, np.zeros(3), [grip]]))
                for c_index, cam in enumerate(cameras):
                    scale = (image_size - 8) / 0.4
                    to_px = lambda p: (int(np.clip(image_size / 2 + p[0] * scale, 3, image_size - 4)),
                                       int(np.clip(image_size / 2 + p[1] * scale, 3, image_size - 4)))
                    offset = np.zeros(3) if c_index == 0 else -ee * np.array([1, 1, 0])
                    images[cam].append(_frame(to_px(target + offset), to_px(ee + offset), image_size, colour))
                ee = ee + np.clip(actions[-1][:3], -1, 1) * 0.05 * 0.5 + 0.01 * np.array([np.sin(step / 3), 0, 0]) * (frac >= 0.6)
            positions = np.array(positions)
            quat = np.tile(Rotation.from_euler("x", np.pi).as_quat(), (length, 1))
            width = np.array([0.04 if a[6] < 0 else 0.012 for a in actions])  # fingers open until the gripper closes
            joints = np.concatenate([positions, positions[:, :2] * 2, positions[:, :2] * -1, width[:, None], -width[:, None]],
                                    axis=1)
            out.append(Episode(task=task, instruction=instruction, seed=ep_seed,
                               images={c: np.stack(v) for c, v in images.items()}, joint_names=list(JOINT_NAMES),
                               joint_positions=joints, ee_position=positions, ee_quaternion=quat, gripper=None,
                               actions=np.array(actions), action_names=list(ACTION_NAMES), control_rate_hz=20.0,
                               source=f"synthetic:{task}:{ep_seed}"))
    return out
