"""``heisd bench``'s engine: the speed table of every decoder on one bundle model and the same observations.

Methods: our AR, HF ``generate`` greedy, HF assisted generation with the bundle's
drafter as assistant model, HF prompt lookup decoding, drafter SD (token-relaxed,
Spec-VLA style), retrieval SD (block-relaxed, REST style, no verify-skip) and HeiSD.
Observations: recorded bags (through the data reader) or one plain-AR closed-loop
episode per task in simulation; the fused metric follows each episode's EE path.

Timing: repetition 0 is a warm-up and excluded; each later repetition runs every
method over all observations in turn (interleaved), so slow drifts of a shared CPU
hit every method alike. Per action: min / median / max over all timed calls, and
mean / p50 / p99 for the results schema. Speedup is AR's mean over the method's mean,
as in ``heisd eval``: a decoder whose skipped steps cost ~0.1 ms has a median of 0.1 ms
whatever its verified steps cost, so a ratio of medians says nothing about throughput. Deviation: bins against our AR's on the same
observation (computed once, before timing).
"""
from __future__ import annotations

import time
from typing import Callable, Sequence

import numpy as np

from heisd_ros.core.decoding import ARDecoder
from heisd_ros.core.errors import InvalidInputError
from heisd_ros.core.fused_metric import FusedMetric, MetricValue
from heisd_ros.core.observation import Observation
from heisd_ros.eval.hf_baselines import PLACEHOLDER_ID, HFGenerate, PrefixInjector
from heisd_ros.eval.methods import BENCH_METHODS as ALL
from heisd_ros.eval.measures import Meter, MethodRun, TokenCounter, latency_summary, spread, token_deviation

OURS = ("ar", "drafter", "retrieval", "heisd")
HF = ("hf_generate", "hf_assisted", "hf_prompt_lookup")
Episode = list[tuple[Observation, MetricValue]]


def with_metric(bundle, observations: Sequence[Observation]) -> Episode:  # noqa: ANN001
    """Pair each observation of one episode with the fused metric of its EE path."""
    metric = FusedMetric(bundle.metric)
    return [(o, metric.update(o.ee_position)) for o in observations]


def sim_episodes(bundle, tasks: Sequence[str], steps: int, seed: int) -> list[Episode]:  # noqa: ANN001
    """One plain-AR closed-loop episode of ``steps`` per task: the observations a deployment would see."""
    from heisd_ros.eval.rollout import open_env, run_episode

    out = []
    for task in tasks:
        seen: list[Observation] = []
        with open_env(bundle, task) as env:
            run_episode(bundle, env, ARDecoder(bundle.vla), seed, steps, env.arms[0],
                        on_step=lambda step, obs, value, result: seen.append(obs))
        out.append(with_metric(bundle, seen))
    return out


def _prefix_length(net) -> int:  # noqa: ANN001
    return int(net.cfg.visual_tokens) + 1  # + the proprio embedding


def hf_runners(bundle, prompt_lookup_tokens: int = 3) -> tuple[dict[str, HFGenerate], list]:  # noqa: ANN001
    """The three HF baselines on the bundle's VLA (assistant: its drafter); also returns what to close."""
    vla, drafter = bundle.vla_net, bundle.drafter_net
    n = _prefix_length(vla)
    if _prefix_length(drafter) != n or drafter.cfg.vocab_size != vla.cfg.vocab_size:
        raise InvalidInputError("the drafter's prefix length or vocabulary differs from the VLA's: HF assisted "
                                "generation needs the same input ids for both")

    def prefix(net):  # noqa: ANN001, ANN202
        return lambda obs: net.encode(*net.observation_tensors(obs))[0][0]

    target, assistant = PrefixInjector(vla.lm, prefix(vla)), PrefixInjector(drafter.lm, prefix(drafter))

    def prompt(obs: Observation) -> list[int]:
        return [PLACEHOLDER_ID] * n + vla.prompt(obs)

    tokens, bins = bundle.vla.tokens_per_step, vla.cfg.n_bins
    runners = {
        "hf_generate": HFGenerate(vla.lm, bins, tokens, prompt, injectors=(target,)),
        "hf_assisted": HFGenerate(vla.lm, bins, tokens, prompt, {"assistant_model": drafter.lm}, (target, assistant)),
        "hf_prompt_lookup": HFGenerate(vla.lm, bins, tokens, prompt, {"prompt_lookup_num_tokens": prompt_lookup_tokens},
                                       (target,)),
    }
    return runners, [target, assistant, *runners.values()]


def run_bench(bundle, episodes: list[Episode], reps: int = 3, methods: Sequence[str] = ALL,  # noqa: ANN001
              overrides: dict[str, dict] | None = None, progress: Callable[[str], None] | None = print) -> list[dict]:
    """Results rows (docs/results-schema.md) of every method on every observation, ``reps`` timed repetitions."""
    bad = [m for m in methods if m not in ALL]
    if bad or not methods:
        raise InvalidInputError(f"bench methods must be among {ALL}, got {list(methods)}")
    if reps < 1:
        raise InvalidInputError(f"reps must be >= 1, got {reps}")
    if not episodes or not all(episodes):
        raise InvalidInputError("no observations to benchmark")
    overrides = overrides or {}
    names = ["ar"] + [m for m in methods if m != "ar"]
    reference = ARDecoder(bundle.vla)
    ar_bins = [[reference.step(o).bins for o, _ in ep] for ep in episodes]
    decoders = {m: bundle.make_decoder(m, **overrides.get(m, {})) for m in names if m in OURS}
    runners, closers = hf_runners(bundle) if any(m in HF for m in names) else ({}, [])
    horizon = int(bundle.vla.horizon)
    runs = {m: MethodRun(m, "bench", "bench", horizon=horizon) for m in decoders}
    meters: dict[str, Meter] = {}
    for m in decoders:
        meters[m] = Meter(bundle, runs[m], lambda step, obs, m=m: ar_bins[meters[m].episode][step])
    vla_count, drafter_count = TokenCounter(bundle.vla_net.lm), TokenCounter(bundle.drafter_net.lm)
    hf: dict[str, dict[str, list]] = {m: {"ms": [], "passes": [], "tokens": [], "flops": [], "dflops": [], "dev": []}
                                      for m in runners}
    ms: dict[str, list[float]] = {m: [] for m in names}
    try:
        for rep in range(reps + 1):
            for m in names:
                for e, ep in enumerate(episodes):
                    if m in decoders:
                        decoders[m].reset()
                        meters[m].start_episode(e)
                    for i, (obs, value) in enumerate(ep):
                        vla_count.take(), drafter_count.take()
                        start = time.perf_counter()
                        if m in decoders:
                            result = decoders[m].step(obs, value)
                            elapsed = time.perf_counter() - start
                            if rep:
                                meters[m].record(i, obs, value, result)
                        else:
                            bins, passes = runners[m](obs)
                            elapsed = time.perf_counter() - start
                            if rep:
                                tokens, flops = vla_count.take()
                                rec = hf[m]
                                rec["passes"].append(passes), rec["tokens"].append(tokens), rec["flops"].append(flops)
                                rec["dflops"].append(drafter_count.take()[1])
                                rec["dev"].append(token_deviation(bins, ar_bins[e][i]))
                        if rep:
                            ms[m].append(elapsed * 1e3 / horizon)
            if progress:
                progress(f"[bench] repetition {rep}{' (warm-up, excluded)' if rep == 0 else ''} done")
    finally:
        for meter in meters.values():
            meter.close()
        vla_count.close(), drafter_count.close()
        for c in closers:
            c.close()
    base = float(np.mean(ms["ar"]))
    rows = []
    for m in names:
        if m in runs:
            row = runs[m].summary(None, overrides.get("heisd", {}).get("tau", float(bundle.metric.tau)) if m == "heisd" else None)
            devs = [r.deviation for r in runs[m].records]
        else:
            rec = hf[m]
            devs = rec["dev"]
            row = {"method": m, "task": "bench", "timing": "bench", "success_rate": None, "decoder_calls": len(devs),
                   "vla_forward_passes_per_action": float(np.mean(rec["passes"])) / horizon,
                   "mean_accepted_tokens": None, "branch_mix": {},
                   "vla_tokens_per_action": float(np.mean(rec["tokens"])) / horizon,
                   "est_gflops_per_action": {"vla": float(np.mean(rec["flops"])) / horizon / 1e9,
                                             "drafter": float(np.mean(rec["dflops"])) / horizon / 1e9}}
        row["episodes"] = reps
        row["latency_ms"] = latency_summary(ms[m])
        row["latency_spread_ms"] = spread(ms[m])
        row["speedup_vs_ar"] = base / float(np.mean(ms[m]))
        row["latency_samples_ms"] = ms[m]
        row["exact_match_vs_ar"] = float(np.mean([d[2] for d in devs]))
        row["token_deviation_vs_ar"] = None if m == "ar" else {
            "mean_abs_bins": float(np.mean([d[0] for d in devs])), "max_abs_bins": int(max(d[1] for d in devs)),
            "exact_match_rate": float(np.mean([d[2] for d in devs])), "compared_calls": len(devs)}
        rows.append(row)
    return rows
