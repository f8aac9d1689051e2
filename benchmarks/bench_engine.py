"""Side-by-side CPU speed of the decoding strategies on a transformers Llama (a script, not a test).

Compares, per action (tokens_per_step = 7): our plain AR, Hugging Face greedy
``generate``, HF assisted generation (a tiny Llama assistant sharing the vocabulary),
HF prompt lookup, drafter SD (strict and token-relaxed r=9), retrieval SD (block
relaxed, K=5) and the HeiSD hybrid (fused metric on the end-effector path, fixed 2:1
verify-skip).

Regime (printed with the table): the target is a randomly initialised Llama, so a
draft can only agree with it where it was built from the target's own outputs. We
therefore measure a *familiar-motion* regime: synthetic episodes (straight transport,
then a slow fine arc) are "demonstrated" by the target's own greedy chunks; the
retrieval datastore holds exactly those chunks and the drafter is distilled on them,
and the evaluation replays the same observations. Acceptance is thus an upper bound
set by memorisation, not generalisation; the latencies and forward-pass counts are
what the strategies cost at that acceptance.

Latency: min / median / max per action over interleaved repetitions (every strategy
runs one pass over all episodes per repetition, in turn), the first repetition being
a warm-up and excluded.

Usage: python benchmarks/bench_engine.py --out bench_engine.json [--reps 3 --threads 1]
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from heisd_ros.core.decoding import AcceptanceConfig, ARDecoder, HybridDecoder, SpeculativeDecoder
from heisd_ros.core.drafters import ModelDrafter, RetrievalDrafter
from heisd_ros.core.fused_metric import FusedMetric, MetricConfig, MetricValue, calibrate_ranges
from heisd_ros.core.hf_adapter import CharVocabulary, HFCausalVLA, TextPromptBuilder
from heisd_ros.core.observation import Observation
from heisd_ros.core.retrieval import RetrievalDatastore
from heisd_ros.core.stats import StatsAggregate
from heisd_ros.core.tokenizer import ActionTokenizer
from heisd_ros.core.verify_skip import FixedSkipSchedule
from heisd_ros.eval.hf_baselines import HFGenerate

N_BINS = 256
TASKS = ["lift the red cube", "open the top drawer", "put the bowl on the plate"]
VOCAB = CharVocabulary()
VOCAB_SIZE = len(VOCAB) + N_BINS


def llama(hidden: int, layers: int, heads: int, seed: int) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=VOCAB_SIZE, hidden_size=hidden, intermediate_size=int(2.75 * hidden) // 64 * 64,
        num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=heads,
        max_position_embeddings=256, initializer_range=0.1, bos_token_id=None, eos_token_id=None, pad_token_id=0,
    )
    return LlamaForCausalLM(config).eval()


def episodes(n_per_task: int, steps: int, rng: np.random.Generator) -> list[list[Observation]]:
    """Synthetic episodes: fast straight transport (2/3 of the steps), then a slow arc of 1 cm radius."""
    out = []
    for task in TASKS:
        for _ in range(n_per_task):
            start = rng.uniform(-0.3, 0.3, 3)
            direction = rng.normal(size=3)
            direction /= np.linalg.norm(direction)
            transport = (2 * steps) // 3
            path = [start + 0.04 * t * direction for t in range(transport)]
            centre = path[-1] + np.array([0.01, 0.0, 0.0])
            for t in range(steps - transport):
                angle = np.pi + 0.5 * (t + 1)
                path.append(centre + 0.01 * np.array([np.cos(angle), np.sin(angle), 0.0]))
            out.append([
                Observation(images={}, instruction=task, joint_names=["x", "y", "z"], joint_positions=2.0 * p,
                            ee_position=p, stamp=0.1 * i)
                for i, p in enumerate(path)
            ])
    return out


def distill(drafter: LlamaForCausalLM, target: HFCausalVLA, pairs: list[tuple[list[int], np.ndarray]], epochs: int) -> float:
    """Train the drafter to reproduce the target's greedy chunks (teacher forcing); returns final mean loss."""
    drafter.train()
    opt = torch.optim.Adam(drafter.parameters(), lr=1e-3)
    action_ids = target.action_token_ids
    loss_value = float("nan")
    for _ in range(epochs):
        losses = []
        for prompt, bins in pairs:
            ids = torch.tensor(prompt + action_ids[torch.as_tensor(bins)].tolist())
            logits = drafter(ids[None, :-1]).logits[0, len(prompt) - 1:, action_ids]
            loss = torch.nn.functional.cross_entropy(logits, torch.as_tensor(bins))
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        loss_value = float(np.mean(losses))
    drafter.eval()
    return loss_value


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="JSON results path")
    ap.add_argument("--reps", type=int, default=3, help="timed repetitions (plus one warm-up)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ap.add_argument("--episodes-per-task", type=int, default=1)
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--tau", type=float, default=0.4)
    ap.add_argument("--distill-epochs", type=int, default=40)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)

    target_hf = llama(hidden=512, layers=8, heads=8, seed=0)
    draft_hf = llama(hidden=256, layers=2, heads=4, seed=1)
    n_target = sum(p.numel() for p in target_hf.parameters())
    n_draft = sum(p.numel() for p in draft_hf.parameters())
    tokenizer = ActionTokenizer(-np.ones(7), np.ones(7))
    builder = TextPromptBuilder(VOCAB.encode, "{instruction}|{proprio}:")
    target = HFCausalVLA(target_hf, tokenizer, 1, builder)
    draft_model = HFCausalVLA(draft_hf, tokenizer, 1, builder)
    eps = episodes(args.episodes_per_task, args.steps, rng)
    observations = [o for ep in eps for o in ep]
    prompt_lengths = [len(builder(o)) for o in observations]

    # "demonstrations": the target's own greedy chunks
    ar = ARDecoder(target)
    greedy = {id(o): ar.step(o).bins for o in observations}
    store = RetrievalDatastore(embed_dim=target_hf.config.hidden_size, horizon=1, action_dim=7)
    for task in TASKS:
        group = [o for o in observations if o.instruction == task]
        toks = np.stack([greedy[id(o)] for o in group])
        store.build(task, np.stack([target.embed(o) for o in group]), tokenizer.decode(toks.reshape(-1, 1, 7)), toks,
                    np.arange(len(group)), np.zeros(len(group), np.int64), np.stack([o.joint_positions for o in group]))
    t0 = time.perf_counter()
    loss = distill(draft_hf, target, [(builder(o), greedy[id(o)]) for o in observations], args.distill_epochs)
    distill_s = time.perf_counter() - t0
    drafter_match = float(np.mean([
        np.array_equal(draft_model.decode(draft_model.prefill(o), np.zeros(0, np.int64), 7), greedy[id(o)]) for o in observations
    ]))

    ranges = calibrate_ranges([np.stack([o.ee_position for o in ep]) for ep in eps])
    metrics: dict[int, MetricValue] = {}
    for ep in eps:
        fm = FusedMetric(MetricConfig(tau=args.tau, ranges=ranges))
        for o in ep:
            metrics[id(o)] = fm.update(o.ee_position)

    relaxed = AcceptanceConfig("token", 9)
    ours: dict[str, object] = {
        "AR (ours)": ar,
        "drafter SD, strict": SpeculativeDecoder(target, ModelDrafter(draft_model), AcceptanceConfig("strict")),
        "drafter SD, token r=9": SpeculativeDecoder(target, ModelDrafter(draft_model), relaxed),
        "retrieval SD, block K=5": SpeculativeDecoder(target, RetrievalDrafter(store, target, k=5), AcceptanceConfig("block")),
        "HeiSD hybrid (2:1 skip)": HybridDecoder(target, ModelDrafter(draft_model), RetrievalDrafter(store, target, k=5),
                                               tau=args.tau, drafter_acceptance=relaxed,
                                               retrieval_acceptance=AcceptanceConfig("block"),
                                               skip_schedule=FixedSkipSchedule(2, 1)),
    }
    hf_runs = {
        "HF generate (greedy)": HFGenerate(target_hf, N_BINS, 7, builder),
        "HF assisted (tiny Llama)": HFGenerate(target_hf, N_BINS, 7, builder, {"assistant_model": draft_hf}),
        "HF prompt lookup (3)": HFGenerate(target_hf, N_BINS, 7, builder, {"prompt_lookup_num_tokens": 3}),
    }
    names = list(ours)[:1] + list(hf_runs) + list(ours)[1:]
    lat: dict[str, list[float]] = {n: [] for n in names}
    passes: dict[str, list[int]] = {n: [] for n in names}
    exact: dict[str, list[bool]] = {n: [] for n in names}
    bin_err: dict[str, list[float]] = {n: [] for n in names}
    aggs: dict[str, StatsAggregate] = {n: StatsAggregate() for n in ours}
    t_bench = time.perf_counter()
    for rep in range(args.reps + 1):
        for name in names:
            for ep in eps:
                if name in ours:
                    ours[name].reset()
                for o in ep:
                    start = time.perf_counter()
                    if name in ours:
                        result = ours[name].step(o, metrics[id(o)])
                        bins, n_pass = result.bins, result.stats.forward_passes
                    else:
                        bins, n_pass = hf_runs[name](o)
                    elapsed = time.perf_counter() - start
                    if rep == 0:
                        continue
                    lat[name].append(elapsed * 1e3)
                    passes[name].append(n_pass)
                    exact[name].append(bool(np.array_equal(bins, greedy[id(o)])))
                    bin_err[name].append(float(np.abs(bins - greedy[id(o)]).max()))
                    if name in ours:
                        aggs[name].add(result.stats)
    bench_s = time.perf_counter() - t_bench

    base = float(np.median(lat["AR (ours)"]))
    rows = []
    for name in names:
        summary = aggs[name].summary() if name in aggs else None
        rows.append({
            "strategy": name,
            "latency_ms": {"min": float(np.min(lat[name])), "median": float(np.median(lat[name])), "max": float(np.max(lat[name]))},
            "speedup_vs_ar_median": base / float(np.median(lat[name])),
            "forward_passes_per_action": float(np.mean(passes[name])),
            "mean_accepted_length": None if summary is None else summary["mean_accepted_length"],
            "branch_mix": None if summary is None else summary["branch_mix"],
            "exact_match_vs_ar": float(np.mean(exact[name])),
            "max_bin_error_vs_ar": float(np.max(bin_err[name])),
        })
    regime = (
        "familiar motion: random-weight target; datastore = the target's own greedy chunks for the evaluated "
        f"observations; drafter distilled on them (exact-chunk match {drafter_match:.0%}); episodes = straight "
        f"transport then a slow 1 cm arc; hybrid tau={args.tau}, window 5 (first 4 steps AR)"
    )
    setup = {
        "target_params": n_target, "drafter_params": n_draft, "prompt_tokens": [min(prompt_lengths), max(prompt_lengths)],
        "tokens_per_step": 7, "actions_per_strategy": len(lat["AR (ours)"]), "reps": args.reps, "threads": args.threads,
        "distill_loss": loss, "distill_s": distill_s, "bench_s": bench_s, "regime": regime,
    }
    print(f"\nRegime: {regime}")
    print(f"Target {n_target / 1e6:.1f}M params, drafter {n_draft / 1e6:.2f}M, prompt {min(prompt_lengths)}-"
          f"{max(prompt_lengths)} tokens, {setup['actions_per_strategy']} timed actions per strategy, {args.threads} thread(s)\n")
    print("| strategy | latency ms min / median / max | speedup (median) | VLA passes / action | mean accepted | exact vs AR | max bin err |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        l = r["latency_ms"]
        acc = "-" if r["mean_accepted_length"] is None else f"{r['mean_accepted_length']:.2f}"
        print(f"| {r['strategy']} | {l['min']:.1f} / {l['median']:.1f} / {l['max']:.1f} | {r['speedup_vs_ar_median']:.2f}x | "
              f"{r['forward_passes_per_action']:.2f} | {acc} | {r['exact_match_vs_ar']:.0%} | {r['max_bin_error_vs_ar']:.0f} |")
    mix = next(r["branch_mix"] for r in rows if r["strategy"].startswith("HeiSD"))
    print(f"\nHybrid branch mix: {', '.join(f'{k} {v:.0%}' for k, v in sorted(mix.items()))}")
    with open(args.out, "w") as fh:
        json.dump({"setup": setup, "results": rows}, fh, indent=1)


if __name__ == "__main__":
    main()
