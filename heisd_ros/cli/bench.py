"""heisd bench: the speed table of every decoder on one bundle model, same observations for all.

Methods: ar (ours), hf_generate (HF greedy), hf_assisted (HF assisted generation, the
bundle's drafter as assistant model), hf_prompt_lookup (HF prompt lookup decoding),
drafter (Spec-VLA-style drafter SD), retrieval (REST-style retrieval SD) and heisd.
Observations: --bags (recorded episodes, default topics) or, without bags, one
plain-AR closed-loop episode of --steps per task in simulation. Repetition 0 is a
warm-up (excluded); repetitions are interleaved across methods; mean and min / median /
max per action; speedup = AR's mean / the method's mean. Writes results.json (docs/results-schema.md) and a report directory.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from heisd_ros.cli._decoding import add_decoding_args, load_for_decoding
from heisd_ros.eval.methods import BENCH_METHODS as ALL


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="speed table: our decoders vs Hugging Face generate / assisted / prompt lookup",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bundle", default="default", help="model bundle directory or shipped name (default: default)")
    p.add_argument("--methods", nargs="+", default=list(ALL), choices=ALL, help="methods (default: all seven)")
    p.add_argument("--bags", nargs="+", type=Path, default=None, help="recorded bags to take observations from")
    p.add_argument("--tasks", nargs="+", default=None, help="sim tasks for observations (default: the bundle's)")
    p.add_argument("--steps", type=int, default=30, help="observations per sim episode (default 30)")
    p.add_argument("--seed", type=int, default=1000, help="sim seed (default 1000)")
    p.add_argument("--reps", type=int, default=3, help="timed repetitions after one warm-up (default 3)")
    add_decoding_args(p)
    p.add_argument("--out", type=Path, default=Path("bench_results"), help="output directory (default bench_results)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from heisd_ros.core.errors import CorruptFileError, InvalidInputError
    from heisd_ros.data.reader import ReaderConfig, read_frames
    from heisd_ros.eval.bench import run_bench, sim_episodes, with_metric
    from heisd_ros.eval.replay import frame_observation
    from heisd_ros.eval.results import results_document, write_document
    from heisd_ros.reports import write_report

    if args.steps < 1:
        raise SystemExit("heisd bench: --steps must be >= 1")
    bundle, tau = load_for_decoding(args, "bench")
    started = time.perf_counter()
    try:
        if args.bags:
            episodes = [with_metric(bundle, [frame_observation(bundle, f) for f in read_frames(b, ReaderConfig(chunk=1))])
                        for b in args.bags]
            source = {"bags": [str(b) for b in args.bags]}
        else:
            tasks = args.tasks or sorted(bundle.tasks)
            episodes = sim_episodes(bundle, tasks, args.steps, args.seed)
            source = {"sim_tasks": tasks, "steps": args.steps, "seed": args.seed}
        rows = run_bench(bundle, episodes, args.reps, args.methods, overrides={"heisd": {"tau": tau}})
    except (InvalidInputError, CorruptFileError) as exc:
        raise SystemExit(f"heisd bench: {exc}") from None
    setup = {**source, "observations": sum(len(e) for e in episodes), "methods": list(args.methods), "reps": args.reps,
             "warmup_reps": 1, "tau": tau, "threads": args.threads, "tokens_per_step": bundle.vla.tokens_per_step,
             "vla_lm_params": sum(p.numel() for p in bundle.vla_net.lm.parameters()),
             "drafter_lm_params": sum(p.numel() for p in bundle.drafter_net.lm.parameters()),
             "wall_s": round(time.perf_counter() - started, 1)}
    notes = ["latency per action includes the visual prefix encoder for every method; speedup = AR mean / method mean",
             "HF baselines get the same prefix embeddings through placeholder ids (heisd_ros/eval/hf_baselines.py)"]
    doc = results_document("bench", bundle, setup, rows, notes=notes)
    path = write_document(doc, args.out / "results.json")
    files = write_report(doc, args.out / "report")
    print("| method | latency ms mean | min / median / max | speedup (mean) | VLA passes / action | exact vs AR |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        s = r["latency_spread_ms"]
        print(f"| {r['method']} | {r['latency_ms']['mean']:.1f} | {s['min']:.1f} / {s['median']:.1f} / {s['max']:.1f} | {r['speedup_vs_ar']:.2f}x | "
              f"{r['vla_forward_passes_per_action']:.2f} | {r['exact_match_vs_ar']:.0%} |")
    print(f"[bench] wrote {path} and {', '.join(str(f) for f in files)}")
    return 0
