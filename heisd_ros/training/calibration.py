"""``heisd calibrate``: fused-metric ranges and the hybrid threshold tau, measured on demonstrations.

Ranges: ``calibrate_ranges`` (1st/99th percentiles of R and D over every window) on
the end-effector trajectories of the training episodes.

How tau is chosen (the rule stored in calibration.json): on held-out demonstration
frames, each frame with a defined metric M is measured twice through the engine
(training/measure.py): the retrieval draft under block-relaxed acceptance and the
drafter's draft under token-relaxed acceptance, giving accepted tokens a_r and a_d,
and the mean |bin error| e_r of the top-1 retrieved chunk against the VLA. A cost
model turns that into VLA forward passes per step: a verified step costs
``1 + max(0, T - a - 1)`` passes (the fused prefill + verification pass, then greedy
completion; T = H*D tokens), and under the 2:1 verify-skip schedule only one retrieval step in
``skip + 1`` is verified. For each tau on a grid, frames with M > tau go to
retrieval and the rest to the drafter; tau is the value with the fewest expected
passes per step among those whose retrieval frames keep mean e_r <= ``max_error``
bins (skipped steps execute retrieved actions unverified, so their error must stay
small). Ties go to the larger tau (less unverified execution). If no tau with a
retrieval share meets the bound, tau = 1 (the drafter everywhere).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from heisd_ros.bundle.format import CALIBRATION, DRAFTER_DIR, RETRIEVAL_DIR, VLA_DIR, read_interface, write_json
from heisd_ros.bundle.loader import load_network
from heisd_ros.core.decoding import AcceptanceConfig
from heisd_ros.core.drafters import ModelDrafter, RetrievalDrafter
from heisd_ros.core.errors import InvalidInputError
from heisd_ros.core.fused_metric import FusedMetric, MetricConfig, calibrate_ranges
from heisd_ros.core.retrieval import RetrievalDatastore
from heisd_ros.training.cache import scope_statistics
from heisd_ros.training.demos import Episode, episode_observations
from heisd_ros.training.measure import measure_drafts

TAU_GRID = np.round(np.linspace(0.0, 1.0, 51), 4)


def passes_per_step(accepted: np.ndarray, tokens: int) -> np.ndarray:
    """VLA forward passes of a verified speculative step that accepted ``accepted`` tokens (fused prefill + verify)."""
    return 1.0 + np.maximum(0, tokens - np.asarray(accepted) - 1)


def choose_tau(metric: np.ndarray, retrieval_accepted: np.ndarray, drafter_accepted: np.ndarray,
               retrieval_error: np.ndarray, tokens: int, skip: int = 2, max_error: float = 8.0,
               grid: np.ndarray = TAU_GRID) -> tuple[float, list[dict]]:
    """The rule of the module docstring over frames with a defined metric; returns tau and the sweep table."""
    m = np.asarray(metric, float)
    if m.size == 0:
        raise InvalidInputError("no held-out frames with a defined fused metric to calibrate tau on")
    cost_r = passes_per_step(retrieval_accepted, tokens) / (skip + 1)
    cost_d = passes_per_step(drafter_accepted, tokens)
    err = np.nan_to_num(np.asarray(retrieval_error, float), nan=float(tokens * 255))
    table, best = [], (np.inf, -1.0)
    for tau in grid:
        to_r = m > tau
        cost = float(np.where(to_r, cost_r, cost_d).mean())
        error = float(err[to_r].mean()) if to_r.any() else 0.0
        ok = error <= max_error
        table.append({"tau": float(tau), "retrieval_share": float(to_r.mean()), "passes_per_step": cost,
                      "retrieval_error_bins": error, "within_bound": bool(ok)})
        if ok and (cost < best[0] - 1e-9 or abs(cost - best[0]) <= 1e-9):
            best = (cost, float(tau))
    return (best[1] if best[1] >= 0 else 1.0), table


def metric_values(episodes: list[Episode], config: MetricConfig) -> list[np.ndarray]:
    """Per episode, M at every step (NaN while undefined), computed as the encoder does on line."""
    out = []
    for ep in episodes:
        fm = FusedMetric(config)
        out.append(np.array([v.fused if v.defined else np.nan for v in map(fm.update, ep.ee_position)]))
    return out


def calibrate(bundle: Path, train_episodes: list[Episode], heldout_episodes: list[Episode], window: int = 5,
              alpha: float = 0.5, max_error: float = 8.0, top_k: int = 5, frame_stride: int = 1,
              progress: bool = True) -> dict:
    """Write ``bundle/calibration.json``; returns the stage info (ranges, tau, sweep, held-out measurements)."""
    bundle = Path(bundle)
    if not heldout_episodes:
        raise InvalidInputError("tau is calibrated on held-out episodes; none were given")
    ranges = calibrate_ranges([ep.ee_position for ep in train_episodes], window=window)
    interface = read_interface(bundle)
    vla = load_network(bundle / VLA_DIR).as_vla_model(interface.tokenizer)
    drafter_model = load_network(bundle / DRAFTER_DIR).as_vla_model(interface.tokenizer)
    store = RetrievalDatastore.load(bundle / RETRIEVAL_DIR)
    provisional = MetricConfig(window=window, alpha=alpha, tau=0.5, ranges=ranges)
    metric_all = metric_values(heldout_episodes, provisional)
    observations, metric = [], []
    for ep, m in zip(heldout_episodes, metric_all):
        obs = episode_observations(ep, interface.inputs)
        for t in range(0, ep.length, frame_stride):
            if np.isfinite(m[t]):
                observations.append(obs[t])
                metric.append(m[t])
    metric = np.asarray(metric)
    retrieval = measure_drafts(vla, RetrievalDrafter(store, vla, k=top_k), observations, AcceptanceConfig("block"),
                               progress, "retrieval on held-out")
    drafted = measure_drafts(vla, ModelDrafter(drafter_model, adaptive=False), observations,
                             AcceptanceConfig("token", 9), progress, "drafter on held-out")
    scopes = scope_statistics(store, np.stack([vla.embed(o) for o in observations]),
                              np.stack([o.joint_positions for o in observations]), [o.instruction for o in observations], top_k)
    tau, table = choose_tau(metric, retrieval.accepted, drafted.accepted, retrieval.deviation, vla.tokens_per_step,
                            max_error=max_error)
    config = MetricConfig(window=window, alpha=alpha, tau=tau, ranges=ranges)
    rule = (f"tau minimises expected VLA passes per step on held-out demo frames (retrieval verified 1 in 3, "
            f"block-relaxed; drafter token-relaxed r=9) subject to mean top-1 retrieval error <= {max_error} bins")
    record = {"metric": config.to_dict(), "rule": rule, "max_error_bins": max_error, "sweep": table,
              "heldout_frames": int(metric.size)}
    write_json(bundle / CALIBRATION, record)
    chosen = next(row for row in table if row["tau"] == tau) if tau in TAU_GRID else None
    return {"metric_config": config.to_dict(), "rule": rule, "chosen": chosen,
            "metrics": {"retrieval_heldout": {**retrieval.summary(), **scopes}, "drafter_heldout": drafted.summary(),
                        "tau": tau}}
