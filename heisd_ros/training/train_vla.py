"""``heisd train``: behaviour cloning of the small VLA on demonstration action tokens.

Fits the action tokenizer (q01/q99 per dimension, gripper masked from normalisation
as in OpenVLA: its command is already -1 open / +1 close and stays so end to end),
the proprio statistics and the instruction vocabulary on the training episodes,
trains the network, and writes ``vla/`` of a bundle.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from heisd_ros.bundle.format import INTERFACE, VLA_DIR, Interface, write_json
from heisd_ros.core.errors import InvalidInputError
from heisd_ros.core.tokenizer import ActionTokenizer
from heisd_ros.training.demos import Episode, check_consistent, frames, idle_steps
from heisd_ros.training.fit import FitConfig, fit, seed_everything
from heisd_ros.vla.config import VLAConfig
from heisd_ros.vla.inputs import InputSpec, default_gripper_joints
from heisd_ros.vla.policy import SmallVLA, instruction_words

GRIPPER_NAMES = ("gripper",)


def gripper_mask(action_names: list[str]) -> np.ndarray:
    """True = normalise with q01/q99; False for gripper dimensions (already +-1 commands)."""
    return np.array([not (n in GRIPPER_NAMES or n.endswith("_gripper")) for n in action_names])


def interface_for(episodes: list[Episode], cameras: list[str], image_size: int, joint_names: list[str] | None) -> Interface:
    """Tokenizer, input recipe and task table fitted on the training episodes.

    Retrieval joints default to every recorded joint that is not a gripper joint; the
    gripper joints (by name) feed the proprio's gripper value.
    """
    check_consistent(episodes)
    first = episodes[0]
    gripper_joints = default_gripper_joints(first.joint_names)
    joints = list(joint_names) if joint_names is not None else [n for n in first.joint_names if n not in gripper_joints]
    actions = np.concatenate([ep.actions for ep in episodes])
    tokenizer = ActionTokenizer.fit(actions, mask=gripper_mask(first.action_names))
    recipe = InputSpec(list(cameras), image_size, joints, gripper_joints)
    spec = recipe.with_statistics(np.concatenate([ep.raw_proprio(recipe) for ep in episodes]))
    tasks: dict[str, str] = {}
    for ep in episodes:
        if tasks.setdefault(ep.task, ep.instruction) != ep.instruction:
            raise InvalidInputError(f"task {ep.task!r} has two instructions: {tasks[ep.task]!r} and {ep.instruction!r}")
    return Interface(tokenizer, list(first.action_names), first.control_rate_hz, spec, tasks)


def train_vla(episodes: list[Episode], bundle: Path, model_cfg: VLAConfig, fit_cfg: FitConfig,
              joint_names: list[str] | None = None, drop_idle: bool = True, progress: bool = True) -> dict:
    """Train the VLA on ``episodes`` and write ``bundle/vla``; returns the stage info for the manifest.

    drop_idle: leave the demonstrator's pauses out of the training frames (demos.idle_steps).
    """
    if not episodes:
        raise InvalidInputError("no training episodes")
    missing = [c for c in model_cfg.cameras if c not in episodes[0].images]
    if missing:
        raise InvalidInputError(f"demonstrations lack camera(s) {missing}; they have {sorted(episodes[0].images)}")
    interface = interface_for(episodes, model_cfg.cameras, model_cfg.image_size, joint_names)
    cfg = replace(model_cfg, words=instruction_words([ep.instruction for ep in episodes]),
                  action_dim=interface.tokenizer.dim, proprio_dim=len(interface.inputs.proprio_mean))
    seed_everything(fit_cfg.seed)
    model = SmallVLA(cfg)
    data = frames(episodes, interface.inputs, model.prompt.ids, cfg.horizon)
    targets = interface.tokenizer.encode(data.chunks).reshape(len(data), -1)
    keep = np.ones(len(data), bool)
    if drop_idle:
        arm = np.asarray(interface.tokenizer.mask)
        keep = ~np.concatenate([idle_steps(ep, interface.inputs, arm) for ep in episodes])
        if not keep.any():
            raise InvalidInputError("every demonstration frame is idle; nothing to learn from")
    metrics = fit(model, data.subset(np.flatnonzero(keep)), targets[keep], fit_cfg, desc="train vla", progress=progress)
    out = Path(bundle) / VLA_DIR
    model.save(out)
    write_json(out / INTERFACE, interface.to_dict())
    return {
        "seed": fit_cfg.seed,
        "fit": fit_cfg.to_dict(),
        "model": cfg.to_dict(),
        "parameters": sum(p.numel() for p in model.parameters()),
        "frames": len(data),
        "idle_frames_dropped": int((~keep).sum()),
        "episodes": len(episodes),
        "recorded_image_size": int(episodes[0].images[cfg.cameras[0]].shape[1]),
        "metrics": metrics,
    }
