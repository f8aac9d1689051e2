"""Demonstration bags (``heisd collect`` layout) -> training Episodes, through the data reader.

Each episode directory holds a rosbag2 bag and its ``episode.json`` sidecar (task,
seed, success, control rate); the reader (heisd_ros.data.reader) aligns every
action with the latest images, joint states and EE pose. Only complete episodes
whose expert succeeded are used for training: a failed demonstration teaches the
failure. Single-arm robots use the pose of their only arm; for several arms the
right one (the proprio recipe has one end effector).
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from heisd_ros.core.errors import InvalidInputError
from heisd_ros.data.collect import is_complete, read_sidecar
from heisd_ros.data.reader import ReaderConfig, read_frames
from heisd_ros.training.demos import Episode

log = logging.getLogger(__name__)


def episode_from_bag(bag_dir: Path) -> Episode:
    """One episode directory -> Episode (the reader's frames stacked over time)."""
    meta = read_sidecar(bag_dir)
    frames = read_frames(bag_dir, ReaderConfig(chunk=1))
    if not frames:
        raise InvalidInputError(f"bag {bag_dir} holds no aligned frames")
    arm = "right" if "right" in frames[0].ee_positions else sorted(frames[0].ee_positions)[0]
    return Episode(
        task=str(meta["task"]),
        instruction=frames[0].instruction or str(meta.get("instruction", "")),
        seed=int(meta["seed"]),
        images={view: np.stack([f.images[view] for f in frames]) for view in frames[0].images},
        joint_names=list(frames[0].joint_names),
        joint_positions=np.stack([f.joint_positions for f in frames]),
        ee_position=np.stack([f.ee_positions[arm] for f in frames]),
        ee_quaternion=np.stack([f.ee_orientations[arm] for f in frames]),
        gripper=None,
        actions=np.stack([f.action for f in frames]),
        action_names=list(frames[0].action_names),
        control_rate_hz=float(meta["control_rate"]),
        source=str(bag_dir),
        success=bool(meta.get("success", False)),
        extra={"image_size": int(meta.get("image_size", frames[0].images[next(iter(frames[0].images))].shape[0]))},
    )


def episodes_from_bags(root: Path, include_failures: bool = False) -> list[Episode]:
    """Every complete episode directory under ``root`` (sorted by task, seed); failed demos skipped unless asked."""
    root = Path(root)
    dirs = sorted(p for p in root.rglob("metadata.yaml") if ".partial" not in p.parts)
    episodes, skipped = [], 0
    for meta in dirs:
        bag_dir = meta.parent
        if not is_complete(bag_dir):
            log.warning("skipping incomplete episode %s", bag_dir)
            continue
        ep = episode_from_bag(bag_dir)
        if ep.success or include_failures:
            episodes.append(ep)
        else:
            skipped += 1
    if skipped:
        log.warning("skipped %d demonstration(s) whose expert failed", skipped)
    if not episodes:
        raise InvalidInputError(f"no complete successful demonstration episodes under {root}")
    return sorted(episodes, key=lambda e: (e.task, e.seed))
