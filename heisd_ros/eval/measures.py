"""The figures every evaluation command reports, computed one way for eval, replay and bench.

Why one module: ``heisd eval``, ``heisd replay`` and ``heisd bench`` must mean the same
thing by "latency", "speedup", "deviation from AR" and "FLOPs per action", so the
results of the three commands can sit in one table (schema: docs/results-schema.md).

- Success: Wilson score interval (95 %), which stays inside [0, 1] and is honest for
  the handful of episodes a CPU evaluation affords (the normal approximation is not).
- Latency: mean / p50 / p99 of the decoder's ``total_s`` per action chunk, in ms.
- Token deviation vs AR: the method's bins against plain AR's bins for the SAME
  observation (AR re-decodes it outside the timed step; costs one AR step per chunk).
- FLOPs: counted from the tokens each transformer pass really processed (a forward
  pre-hook on the decoder LM), 2 x dense parameters per token plus the attention
  score/value products against the cached context (4 x layers x hidden x context per
  token). The visual prefix encoder (CNN) is not counted: it runs once per
  observation for every method alike.
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterator, Sequence

import numpy as np
import torch

from heisd_ros.core.decoding import StepResult
from heisd_ros.core.errors import InvalidInputError
from heisd_ros.core.fused_metric import MetricValue
from heisd_ros.core.observation import Observation
from heisd_ros.core.stats import Branch, StatsAggregate, StepStats

Z95 = 1.959963984540054


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion; (0, 1) when n == 0."""
    if n < 0 or successes < 0 or successes > n:
        raise InvalidInputError(f"need 0 <= successes <= n, got successes={successes}, n={n}")
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # at 0 (or n) successes the bound is exactly p; the formula leaves rounding residue (5.6e-17 at 0/3)
    lo = 0.0 if successes == 0 else max(0.0, centre - half)
    hi = 1.0 if successes == n else min(1.0, centre + half)
    return lo, hi


def latency_summary(ms: Sequence[float]) -> dict[str, float | None]:
    """mean / p50 / p99 in ms (None when there is no sample)."""
    arr = np.asarray(ms, dtype=np.float64)
    if arr.size == 0:
        return {"mean": None, "p50": None, "p99": None}
    return {"mean": float(arr.mean()), "p50": float(np.percentile(arr, 50)), "p99": float(np.percentile(arr, 99))}


def spread(values: Sequence[float]) -> dict[str, float | None]:
    """min / median / max (the benchmark's view of repeated timings)."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 0:
        return {"min": None, "median": None, "max": None}
    return {"min": float(arr.min()), "median": float(np.median(arr)), "max": float(arr.max())}


def token_deviation(bins: np.ndarray, reference: np.ndarray) -> tuple[float, int, bool]:
    """(mean |bin difference|, max |bin difference|, exact match) of one chunk against AR's."""
    a, b = np.asarray(bins, np.int64).ravel(), np.asarray(reference, np.int64).ravel()
    if a.shape != b.shape:
        raise InvalidInputError(f"cannot compare {a.size} bins with {b.size} reference bins")
    d = np.abs(a - b)
    return float(d.mean()), int(d.max()), bool(not d.any())


class TokenCounter:
    """Counts the tokens (and estimated FLOPs) of every pass of a Hugging Face decoder LM.

    Attach to the LlamaForCausalLM (``Bundle.vla_net.lm``); ``paused()`` excludes work
    that is not the method's own (the AR re-decode that measures deviation).
    """

    def __init__(self, lm: torch.nn.Module) -> None:
        cfg = lm.config
        self.layers = int(cfg.num_hidden_layers)
        self.hidden = int(cfg.hidden_size)
        embedding = lm.get_input_embeddings().weight.numel()
        self.dense_params = sum(p.numel() for p in lm.parameters()) - embedding
        self.tokens = 0
        self.flops = 0.0
        self.passes = 0
        self._paused = False
        self._handle = lm.register_forward_pre_hook(self._hook, with_kwargs=True)

    def flops_of(self, new_tokens: int, context: int) -> float:
        """Estimated FLOPs of one pass over ``new_tokens`` appended to ``context`` cached tokens."""
        attended = new_tokens * context + new_tokens * (new_tokens + 1) / 2
        return 2.0 * self.dense_params * new_tokens + 4.0 * self.layers * self.hidden * attended

    def _hook(self, module: torch.nn.Module, args: tuple, kwargs: dict) -> None:
        if self._paused:
            return
        x = kwargs.get("input_ids")
        if x is None:
            x = kwargs.get("inputs_embeds")
        if x is None and args:
            x = args[0]
        if x is None:
            return
        cache = kwargs.get("cache", kwargs.get("past_key_values"))
        context = int(cache.get_seq_length()) if cache is not None and hasattr(cache, "get_seq_length") else 0
        n = int(x.shape[1])
        self.tokens += n
        self.passes += 1
        self.flops += self.flops_of(n, context)

    def take(self) -> tuple[int, float]:
        """(tokens, FLOPs) counted since the last take."""
        out = (self.tokens, self.flops)
        self.tokens, self.flops, self.passes = 0, 0.0, 0
        return out

    @contextmanager
    def paused(self) -> Iterator[None]:
        self._paused = True
        try:
            yield
        finally:
            self._paused = False

    def close(self) -> None:
        self._handle.remove()


@dataclass
class StepRecord:
    """One decoder call as the reports see it."""

    stats: StepStats
    episode: int = 0
    step: int = 0  # control step at which the observation was taken
    metric: float | None = None  # fused metric M (None while undefined)
    vla_tokens: int = 0
    vla_flops: float = 0.0
    drafter_flops: float = 0.0
    deviation: tuple[float, int, bool] | None = None  # token_deviation vs AR; None when not measured

    def to_dict(self) -> dict:
        d = {"episode": self.episode, "step": self.step, "branch": self.stats.branch.value,
             "latency_ms": self.stats.total_s * 1e3, "forward_passes": self.stats.forward_passes,
             "accepted": self.stats.accepted, "drafted": self.stats.drafted, "metric": self.metric,
             "vla_tokens": self.vla_tokens}
        if self.deviation is not None:
            d["bin_deviation_mean"], d["bin_deviation_max"], d["exact_match"] = self.deviation
        return d


@dataclass
class MethodRun:
    """Every decoder call of one (method, task, timing) combination, plus episode outcomes."""

    method: str
    task: str
    timing: str = "offline"
    records: list[StepRecord] = field(default_factory=list)
    successes: list[bool] = field(default_factory=list)
    ticks: int = 0  # control ticks (closed loop)
    held_ticks: int = 0  # ticks without a fresh action (realtime)
    seeds: list[int] = field(default_factory=list)
    horizon: int = 1  # actions per decoder call

    def summary(self, ar_latency_mean_ms: float | None, tau: float | None = None) -> dict:
        """One results row (docs/results-schema.md)."""
        agg = StatsAggregate()
        for r in self.records:
            agg.add(r.stats)
        dec = agg.summary()
        latency = latency_summary([r.stats.total_s * 1e3 / self.horizon for r in self.records])
        n = len(self.records)
        deviations = [r.deviation for r in self.records if r.deviation is not None]
        k = len(self.successes)
        wins = int(sum(self.successes))
        ci = wilson_interval(wins, k) if k else None
        speedup = None
        if ar_latency_mean_ms and latency["mean"]:
            speedup = ar_latency_mean_ms / latency["mean"]
        per_action = 1.0 / max(n * self.horizon, 1)  # every call yields one chunk of H actions
        row = {
            "method": self.method,
            "task": self.task,
            "timing": self.timing,
            "episodes": k,
            "seeds": list(self.seeds),
            "successes": wins if k else None,
            "success_rate": wins / k if k else None,
            "success_ci95": list(ci) if ci else None,
            "decoder_calls": n,
            "latency_ms": latency,
            "speedup_vs_ar": speedup,
            "vla_forward_passes_per_action": sum(r.stats.forward_passes for r in self.records) * per_action,
            "mean_accepted_tokens": dec["mean_accepted_length"],
            "acceptance_rate": dec["acceptance_rate"],
            "token_deviation_vs_ar": None if not deviations else {
                "mean_abs_bins": float(np.mean([d[0] for d in deviations])),
                "max_abs_bins": int(max(d[1] for d in deviations)),
                "exact_match_rate": float(np.mean([d[2] for d in deviations])),
                "compared_calls": len(deviations),
            },
            "branch_mix": {b.value: float(np.mean([r.stats.branch is b for r in self.records])) if n else 0.0
                           for b in (Branch.AR, Branch.DRAFTER, Branch.RETRIEVAL, Branch.RETRIEVAL_SKIP)},
            "vla_tokens_per_action": sum(r.vla_tokens for r in self.records) * per_action,
            "est_gflops_per_action": {
                "vla": sum(r.vla_flops for r in self.records) * per_action / 1e9,
                "drafter": sum(r.drafter_flops for r in self.records) * per_action / 1e9,
            },
            "time_split_ms": dec["time_split_ms"],
            "tau": tau,
        }
        if self.ticks:
            row["control_ticks"] = self.ticks
            row["held_tick_fraction"] = self.held_ticks / self.ticks
        return row


class Meter:
    """Turns decoder calls into StepRecords of a MethodRun: tokens and FLOPs from counters on the
    VLA and drafter LMs, deviation from ``reference(step, obs)`` -> AR bins (VLA work inside it
    is not counted)."""

    def __init__(self, bundle, run: MethodRun, reference: Callable[[int, Observation], np.ndarray] | None = None) -> None:  # noqa: ANN001
        self.vla = TokenCounter(bundle.vla_net.lm)
        self.drafter = TokenCounter(bundle.drafter_net.lm)
        self.reference = reference
        self.run = run
        self.episode = 0

    def start_episode(self, episode: int) -> None:
        """Later records belong to ``episode``; work done before now is not attributed to them."""
        self.episode = episode
        self.vla.take()
        self.drafter.take()

    def record(self, step: int, obs: Observation, value: MetricValue | None, result: StepResult) -> None:
        """Call right after ``decoder.step``: nothing but that call may have run the LMs since the last record."""
        tokens, flops = self.vla.take()
        _, drafter_flops = self.drafter.take()
        dev = None
        if self.reference is not None:
            with self.vla.paused(), self.drafter.paused():
                dev = token_deviation(result.bins, self.reference(step, obs))
        metric = float(value.fused) if value is not None and value.defined else None
        self.run.records.append(StepRecord(result.stats, self.episode, step, metric, tokens, flops, drafter_flops, dev))

    def close(self) -> None:
        self.vla.close()
        self.drafter.close()
