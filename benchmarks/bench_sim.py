"""Simulator throughput and recording cost per task: ``python benchmarks/bench_sim.py``.

For each task: steps/s of SimEnv.step state only and with the task's two cameras
(zero actions, after a warm-up), then one recorded expert episode with cameras:
bag size and wall time. Run it alone on a shared machine; it is CPU-bound.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from heisd_ros.data.collect import CollectConfig, record_episode
from heisd_ros.sim.env import SimEnv
from heisd_ros.sim.tasks import TASKS


def steps_per_s(task: str, cameras: tuple[str, ...], image_size: int, steps: int) -> float:
    with SimEnv(task, cameras=cameras, image_size=image_size) as env:
        env.reset(0)
        zero = np.zeros(env.action_space.dim)
        for _ in range(10):
            env.step(zero)
        t0 = time.perf_counter()
        for _ in range(steps):
            env.step(zero)
        return steps / (time.perf_counter() - t0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=sorted(TASKS), choices=sorted(TASKS))
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--json", help="write the results to this file")
    args = parser.parse_args()
    rows = []
    for task in args.tasks:
        cams = TASKS[task].cameras
        row = {"task": task, "cameras": list(cams), "image_size": args.image_size,
               "steps_per_s_state": steps_per_s(task, (), args.image_size, args.steps),
               "steps_per_s_cameras": steps_per_s(task, cams, args.image_size, args.steps)}
        with tempfile.TemporaryDirectory() as out:
            record = record_episode(CollectConfig(task=task, episodes=1, out=Path(out), image_size=args.image_size), 0)
        row.update(episode_steps=record.steps, episode_success=record.success, bag_mb=record.bag_bytes / 1e6,
                   episode_wall_s=record.wall_s)
        rows.append(row)
        print(json.dumps(row), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
