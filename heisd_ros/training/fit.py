"""One supervised loop for both networks: the VLA on demonstration tokens, the drafter on the VLA's.

Why one loop: the VLA (behaviour cloning) and the drafter (distillation) differ only
in their targets, so they share the optimiser, schedule, augmentation and the
seeding that makes a build reproducible. Cross-entropy is over the action-token
logits only, the same restriction as greedy decoding in the engine.

Augmentation: a random shift of each image by up to ``shift`` pixels (edge padding
then crop), the usual remedy for pixel policies trained on few demonstrations; and
Gaussian noise on the proprio vector (``proprio_noise``): with few demonstrations
the exact EE path identifies the episode, so a network can recite each
demonstration's actions from proprio alone and never learn to look where the
object is (it then reaches for the average object position). Noise on proprio
makes that shortcut useless and leaves the cameras as the informative input (the
gripper value is left clean: see proprio_noise_mask).
"""
from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from heisd_ros.core.errors import InvalidInputError
from heisd_ros.training.demos import FrameSet
from heisd_ros.vla.inputs import PROPRIO_FEATURES
from heisd_ros.vla.policy import SmallVLA


@dataclass
class FitConfig:
    """Optimisation settings (recorded in the bundle manifest)."""

    steps: int = 3000
    batch_size: int = 64
    lr: float = 1e-3
    min_lr: float = 3e-5
    warmup: int = 100
    weight_decay: float = 0.01
    shift: int = 4
    seed: int = 0
    threads: int = 1
    label_sigma: float = 0.0  # bins; > 0: Gaussian soft targets around the demonstrated bin (see soft_cross_entropy)
    proprio_noise: float = 0.0  # std of Gaussian noise added to the normalised proprio vector during training
    # the proprio features that get that noise (None: every feature but the gripper; see proprio_noise_mask)
    proprio_noise_features: list[str] | None = None

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "threads"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise InvalidInputError(f"{name} must be an integer >= 1, got {getattr(self, name)!r}")
        if not (self.lr > 0 and 0 <= self.min_lr <= self.lr):
            raise InvalidInputError(f"need lr > 0 and 0 <= min_lr <= lr, got {self.lr}, {self.min_lr}")
        if not (0.0 <= self.proprio_noise <= 10.0):
            raise InvalidInputError(f"proprio_noise must be in [0, 10] (standardised units), got {self.proprio_noise}")
        if not (0.0 <= self.label_sigma <= 64.0):
            raise InvalidInputError(f"label_sigma must be in [0, 64] bins, got {self.label_sigma}")
        if self.shift < 0 or self.warmup < 0:
            raise InvalidInputError("shift and warmup must be >= 0")
        if self.proprio_noise_features is not None:
            unknown = sorted(set(self.proprio_noise_features) - set(PROPRIO_FEATURES))
            if unknown or not self.proprio_noise_features:
                raise InvalidInputError(f"proprio_noise_features must be names from {list(PROPRIO_FEATURES)}, got {self.proprio_noise_features!r}")

    def to_dict(self) -> dict:
        return asdict(self)


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch so a build with the same inputs gives the same weights."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def random_shift(images: torch.Tensor, shift: int, generator: torch.Generator) -> torch.Tensor:
    """(B, cams, 3, S, S): shift each (sample, camera) image by up to ``shift`` px, edge-padded."""
    if shift == 0:
        return images
    b, c, ch, s, _ = images.shape
    flat = images.reshape(b * c, ch, s, s)
    padded = F.pad(flat, (shift, shift, shift, shift), mode="replicate")
    offsets = torch.randint(0, 2 * shift + 1, (b * c, 2), generator=generator)
    out = torch.stack([padded[i, :, y : y + s, x : x + s] for i, (y, x) in enumerate(offsets.tolist())])
    return out.reshape(images.shape)


def _lr(cfg: FitConfig, step: int) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    progress = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * min(progress, 1.0)))


def proprio_noise_mask(dim: int, features: list[str] | None = None) -> torch.Tensor:
    """1 for the proprio features that get training noise, 0 for the rest.

    Default (``features`` None): every feature but the gripper value. Why not the
    gripper: whether the fingers have closed is the only signal that a grasp is done
    (the arm is still while they close); noised, the policy grasped and then waited
    forever. ``features`` names them instead (e.g. only the EE position, so the
    policy still knows how far its own wrist has turned).
    """
    if dim != len(PROPRIO_FEATURES):
        return torch.ones(dim)
    chosen = set(features) if features is not None else {name for name in PROPRIO_FEATURES if name != "gripper"}
    return torch.tensor([1.0 if name in chosen else 0.0 for name in PROPRIO_FEATURES])


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, sigma: float) -> torch.Tensor:
    """Cross-entropy against a Gaussian over bins centred on each target (plain CE at sigma 0).

    Why: the bins are ordered; plain CE punishes a prediction one bin off as much as
    one a hundred bins off, which on few demonstrations leaves the argmax noisy.
    Soft targets make neighbouring bins partly right, so the model learns where the
    action lies on the axis (the argmax stays at the mode of the demonstrations).
    """
    flat, y = logits.reshape(-1, logits.shape[-1]), targets.reshape(-1)
    if sigma <= 0:
        return F.cross_entropy(flat, y)
    bins = torch.arange(flat.shape[-1], dtype=flat.dtype)
    weights = torch.exp(-0.5 * ((bins[None, :] - y[:, None].to(flat.dtype)) / sigma) ** 2)
    weights = weights / weights.sum(-1, keepdim=True)
    return -(weights * F.log_softmax(flat, dim=-1)).sum(-1).mean()


def batch_tensors(data: FrameSet, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, list[list[int]]]:
    """Images (B, cams, 3, S, S) float, proprio (B, P), text ids of the given rows."""
    return (SmallVLA.image_tensor(data.images[rows]), torch.as_tensor(data.proprio[rows]),
            [data.text_ids[i] for i in rows])


def task_balanced_weights(data: FrameSet) -> np.ndarray:
    """Row sampling probabilities giving every instruction the same share of the batches.

    Why: a long task (hundreds of steps per episode) would otherwise crowd out a short
    one, and the short ones are the tasks the success bar is measured on.
    """
    keys = np.array([hash(tuple(t)) for t in data.text_ids])
    _, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    w = 1.0 / counts[inverse]
    return w / w.sum()


def fit(model: SmallVLA, data: FrameSet, targets: np.ndarray, cfg: FitConfig, desc: str = "train",
        progress: bool = True) -> dict:
    """Train ``model`` to predict ``targets`` (N, H*D) bins on ``data`` (task-balanced batches).

    Returns the mean loss and token accuracy of the last 10% of the steps.
    """
    targets = np.asarray(targets)
    if targets.shape != (len(data), model.cfg.tokens_per_step):
        raise InvalidInputError(f"targets must have shape ({len(data)}, {model.cfg.tokens_per_step}), got {targets.shape}")
    if len(data) == 0:
        raise InvalidInputError("no training frames")
    torch.set_num_threads(cfg.threads)
    seed_everything(cfg.seed)
    generator = torch.Generator().manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]
    optimiser = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr)
    model.train()
    tail = max(1, cfg.steps // 10)
    weights = task_balanced_weights(data)
    noise_mask = proprio_noise_mask(model.cfg.proprio_dim, cfg.proprio_noise_features)
    losses, accs = [], []
    bar = tqdm(range(cfg.steps), desc=desc, disable=not progress, mininterval=2.0)
    for step in bar:
        rows = rng.choice(len(data), size=min(cfg.batch_size, len(data)), p=weights)
        images, proprio, text = batch_tensors(data, rows)
        images = random_shift(images, cfg.shift, generator)
        if cfg.proprio_noise > 0:
            proprio = proprio + cfg.proprio_noise * noise_mask * torch.randn(proprio.shape, generator=generator)
        y = torch.as_tensor(targets[rows], dtype=torch.long)
        logits = model.action_logits(images, proprio, text, y)
        loss = soft_cross_entropy(logits, y, cfg.label_sigma)
        for group in optimiser.param_groups:
            group["lr"] = _lr(cfg, step)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimiser.step()
        if step >= cfg.steps - tail:
            losses.append(loss.item())
            accs.append(float((logits.argmax(-1) == y).float().mean()))
        if step % 50 == 0:
            bar.set_postfix(loss=f"{loss.item():.3f}")
    model.eval()
    return {"final_loss": float(np.mean(losses)), "final_train_token_accuracy": float(np.mean(accs)), "steps": cfg.steps}


@torch.no_grad()
def greedy_labels(model: SmallVLA, data: FrameSet, batch_size: int = 256, progress: bool = True,
                  desc: str = "greedy") -> np.ndarray:
    """(N, H*D) greedy bins of ``model`` on every frame (no augmentation)."""
    model.eval()
    out = []
    for start in tqdm(range(0, len(data), batch_size), desc=desc, disable=not progress, mininterval=2.0):
        rows = np.arange(start, min(start + batch_size, len(data)))
        out.append(model.greedy_bins(*batch_tensors(data, rows)).numpy())
    return np.concatenate(out) if out else np.zeros((0, model.cfg.tokens_per_step), np.int64)
