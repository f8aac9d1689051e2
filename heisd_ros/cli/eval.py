"""heisd eval: closed-loop evaluation in simulation, every method side by side on the same seeds.

Methods: ar (plain greedy), drafter (drafter SD, token-relaxed r=9), retrieval
(retrieval SD with block-relaxed acceptance, no verify-skip), heisd (the hybrid:
fused-metric branch choice, block-relaxed retrieval with 2:1 verify-skip, where a
skipped step continues the demonstration of the latest lookup and never opens or closes
the gripper unverified, token-relaxed drafter; accepted positions carry the VLA's own
tokens, docs/evaluation.md). --option changes one method's settings, e.g.
--option heisd.skip_pick=top1 (the reference skip: a fresh lookup's top-1),
heisd.skip_guard=none or heisd.skip_count=1.
Timing modes: lockstep (the simulator waits for each action) and realtime (the
simulator runs at the control rate on the wall clock; ticks without a fresh action
hold). Writes results.json (docs/results-schema.md) and a report directory
(summary.md + PNG plots). Deviation from AR re-decodes every lockstep observation with
AR outside the timed step: it roughly doubles the wall time (--no-deviation skips it).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from heisd_ros.cli._decoding import add_decoding_args, add_option_args, load_for_decoding, parse_options
from heisd_ros.eval.methods import METHODS, TIMINGS


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="closed-loop success and speed of every decoding method in simulation",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bundle", default="default", help="model bundle directory or shipped name (default: default)")
    p.add_argument("--tasks", nargs="+", default=None, help="simulation tasks (default: every task of the bundle)")
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS, help="methods (default: all four)")
    p.add_argument("--timing", nargs="+", default=["lockstep", "realtime"], choices=TIMINGS, dest="timings",
                   help="timing modes (default: both)")
    p.add_argument("--episodes", type=int, default=10, help="episodes per method, task and timing (default 10)")
    p.add_argument("--seed", type=int, default=1000, help="first seed; held out from demonstrations (default 1000)")
    p.add_argument("--max-steps", type=int, default=None, help="step limit per episode (default: the task's)")
    add_decoding_args(p)
    add_option_args(p)
    p.add_argument("--no-deviation", action="store_true", help="skip the AR re-decode that measures deviation")
    p.add_argument("--out", type=Path, default=Path("eval_results"), help="output directory (default eval_results)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from heisd_ros.core.errors import InvalidInputError
    from heisd_ros.eval.closed_loop import evaluate
    from heisd_ros.eval.results import results_document, write_document
    from heisd_ros.reports import write_report

    if args.episodes < 1:
        raise SystemExit("heisd eval: --episodes must be >= 1")
    options = parse_options(args.options, list(METHODS), "eval")
    bundle, tau = load_for_decoding(args, "eval")
    options.setdefault("heisd", {}).setdefault("tau", tau)
    tau = float(options["heisd"]["tau"])
    tasks = args.tasks or sorted(bundle.tasks)
    seeds = list(range(args.seed, args.seed + args.episodes))
    started = time.perf_counter()
    try:
        result = evaluate(bundle, tasks, args.methods, seeds, args.timings, args.max_steps, not args.no_deviation,
                          overrides=options)
    except InvalidInputError as exc:
        raise SystemExit(f"heisd eval: {exc}") from None
    setup = {"tasks": tasks, "methods": list(args.methods), "timings": list(args.timings), "seeds": seeds,
             "max_steps": args.max_steps, "tau": tau, "options": options, "deviation_measured": not args.no_deviation,
             "threads": args.threads, "wall_s": round(time.perf_counter() - started, 1)}
    notes = ["speedup and latency are per action on this machine's CPU; realtime rows share the CPU between the "
             "simulator and the decoder thread (overrun_tick_fraction: ticks the simulator itself was late)",
             "token deviation is measured in lockstep only (AR re-decodes each observation outside the timed step)"]
    doc = results_document("eval", bundle, setup, result.rows(tau), result.traces(tau), notes)
    path = write_document(doc, args.out / "results.json")
    files = write_report(doc, args.out / "report")
    print(f"[eval] wrote {path} and {', '.join(str(f) for f in files)}")
    return 0
