"""``heisd collect``: run a task's scripted expert and record one rosbag2 bag per episode.

Each episode becomes ``<out>/<task>_seed<seed>/`` (MCAP by default) with an
``episode.json`` sidecar; complete episodes are skipped, so an interrupted run is
resumed by repeating the command. ``--dry-run`` records nothing and measures the
expert's success rate without cameras instead.
"""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from heisd_ros.sim.tasks import TASKS


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("collect", help="record scripted-expert demonstrations as rosbag2 bags",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", required=True, choices=sorted(TASKS), help="task family")
    p.add_argument("--episodes", type=int, default=10, help="number of episodes (default 10)")
    p.add_argument("--out", type=Path, help="output directory for the bags (required unless --dry-run)")
    p.add_argument("--seed", type=int, default=0, help="seed of the first episode; episode i uses seed + i")
    p.add_argument("--cameras", nargs="*", default=None,
                   help="camera views to record (default: the task's views; none: state only)")
    p.add_argument("--image-size", type=int, default=128, help="square image size in pixels (default 128)")
    p.add_argument("--workers", type=int, default=1, help="episodes recorded in parallel (default 1)")
    p.add_argument("--max-steps", type=int, default=None, help="step limit per episode (default: the task's)")
    p.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap", help="rosbag2 storage (default mcap)")
    p.add_argument("--action-noise", type=float, default=0.0,
                   help="std of Gaussian noise on the executed arm actions, normalised units (default 0); the "
                        "bag records the expert's own actions, so demonstrations show recoveries (DART)")
    p.add_argument("--noise-correlation", type=float, default=0.0, metavar="STEPS",
                   help="correlation time of the action noise in control steps (default 0: white noise); e.g. 10 "
                        "makes the arm drift for about half a second before the expert corrects it")
    p.add_argument("--dry-run", action="store_true",
                   help="write nothing: measure the expert's success rate over the episodes, without cameras")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    log = logging.getLogger("heisd.collect")
    if args.dry_run:
        from heisd_ros.sim.measure_experts import measure

        summary = measure(args.task, range(args.seed, args.seed + args.episodes))
        print(json.dumps(summary, indent=2))
        return 0
    if args.out is None:
        log.error("--out is required unless --dry-run")
        return 2
    from heisd_ros.data.collect import CollectConfig, collect, pending_seeds, summarize

    try:
        config = CollectConfig(task=args.task, episodes=args.episodes, out=args.out, seed=args.seed,
                               cameras=None if args.cameras is None else tuple(args.cameras),
                               image_size=args.image_size, workers=args.workers, max_steps=args.max_steps,
                               storage=args.storage, action_noise=args.action_noise,
                               noise_correlation=args.noise_correlation)
    except ValueError as exc:
        log.error("%s", exc)
        return 2
    skipped = args.episodes - len(pending_seeds(config))
    if skipped:
        log.info("%d of %d episodes already complete in %s: skipped", skipped, args.episodes, args.out)
    records = list(collect(config))
    summary = summarize(records)
    failed = [r.seed for r in records if not r.success]
    log.info("recorded %d episodes in %s: %d successful, %.1f MB and %.1f s per episode%s",
             summary["episodes"], args.out, summary["successes"], summary["mean_bag_mb"], summary["mean_wall_s"],
             f"; failed seeds {failed}" if failed else "")
    return 0
