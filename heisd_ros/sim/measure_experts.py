"""Measure the scripted experts' success rates without rendering: ``python -m heisd_ros.sim.measure_experts``.

State only (no cameras), one task at a time, so the measurement is cheap enough
to repeat on a shared two-core machine. Prints one line per episode and a
summary per task; ``--json`` writes the summary.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Sequence

from heisd_ros.sim.env import SimEnv
from heisd_ros.sim.episodes import EpisodeResult, run_expert_episode
from heisd_ros.sim.experts import EXPERTS, make_expert


def measure(task: str, seeds: Sequence[int], verbose: bool = True) -> dict:
    """Success rate, mean episode length and steps/s of ``task``'s expert over ``seeds``."""
    results: list[EpisodeResult] = []
    with SimEnv(task) as env:
        expert = make_expert(task, env.action_space, env.control_rate)
        for seed in seeds:
            result = run_expert_episode(env, expert, seed)
            results.append(result)
            if verbose:
                print(f"{task} seed {seed}: {'success' if result.success else 'FAILURE'} "
                      f"{result.steps} steps {result.wall_s:.1f} s", flush=True)
    steps = sum(r.steps for r in results)
    wall = sum(r.wall_s for r in results)
    return {
        "task": task,
        "episodes": len(results),
        "successes": sum(r.success for r in results),
        "success_rate": sum(r.success for r in results) / max(len(results), 1),
        "failed_seeds": [r.seed for r in results if not r.success],
        "mean_steps": steps / max(len(results), 1),
        "steps_per_s": steps / wall if wall > 0 else float("nan"),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=sorted(EXPERTS), choices=sorted(EXPERTS))
    parser.add_argument("--seeds", type=int, default=50, help="number of seeds per task (default 50)")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--json", help="write the summaries to this file")
    args = parser.parse_args(argv)
    summaries = []
    for task in args.tasks:
        t0 = time.perf_counter()
        summary = measure(task, range(args.first_seed, args.first_seed + args.seeds))
        summary["wall_s"] = time.perf_counter() - t0
        summaries.append(summary)
        print(f"== {task}: {summary['successes']}/{summary['episodes']} = {100 * summary['success_rate']:.1f}% "
              f"(mean {summary['mean_steps']:.0f} steps, {summary['steps_per_s']:.0f} steps/s, "
              f"failed seeds {summary['failed_seeds']})", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(summaries, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
