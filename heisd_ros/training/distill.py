"""``heisd train-drafter``: a much smaller copy of the architecture distilled on the VLA's greedy tokens.

Why distillation, not the demonstrations: the drafter is only useful when its tokens
are the ones the VLA would emit, so its targets are the VLA's own greedy tokens on
the demonstration frames, and token agreement with the VLA is what it optimises.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from heisd_ros.bundle.format import DRAFTER_DIR, VLA_DIR, read_interface
from heisd_ros.bundle.loader import load_network
from heisd_ros.training.demos import Episode, frames
from heisd_ros.training.fit import FitConfig, fit, greedy_labels, seed_everything
from heisd_ros.vla.config import VLAConfig
from heisd_ros.vla.policy import SmallVLA

# Drafter size relative to the VLA: one decoder layer of width 64, a lighter CNN.
DRAFTER_DEFAULTS = dict(conv_channels=[8, 16, 16], keypoints=8, hidden=64, layers=1, heads=2, intermediate=172)


def drafter_config(vla_cfg: VLAConfig, **overrides) -> VLAConfig:
    """The VLA's interface (cameras, image size, words, action space) at drafter size."""
    return replace(vla_cfg, **{**DRAFTER_DEFAULTS, **overrides})


def train_drafter(bundle: Path, episodes: list[Episode], fit_cfg: FitConfig, progress: bool = True, **size) -> dict:
    """Distil a drafter from ``bundle/vla`` on ``episodes``; writes ``bundle/drafter``; returns stage info."""
    bundle = Path(bundle)
    interface = read_interface(bundle)
    teacher = load_network(bundle / VLA_DIR)
    data = frames(episodes, interface.inputs, teacher.prompt.ids, teacher.cfg.horizon)
    labels = greedy_labels(teacher, data, progress=progress, desc="vla greedy labels")
    cfg = drafter_config(teacher.cfg, **size)
    seed_everything(fit_cfg.seed)
    student = SmallVLA(cfg)
    metrics = fit(student, data, labels, fit_cfg, desc="train drafter", progress=progress)
    student.save(bundle / DRAFTER_DIR)
    return {"seed": fit_cfg.seed, "fit": fit_cfg.to_dict(), "model": cfg.to_dict(),
            "parameters": sum(p.numel() for p in student.parameters()), "frames": len(data), "metrics": metrics}
