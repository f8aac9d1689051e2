"""``heisd build-bundle``: the whole model bundle from a directory of demonstration bags.

Runs train -> train-drafter -> build-cache -> calibrate (and, with --eval-episodes,
a closed-loop evaluation on held-out seeds), then writes README.md and seals the
manifest. Seeded: the same bags and options give the same weights.
"""
from __future__ import annotations

import argparse

from heisd_ros.training import arguments


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("build-bundle", help="build a complete model bundle from demonstration bags",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    arguments.add_data_args(p)
    arguments.add_bundle_arg(p, "--out")
    p.add_argument("--force", action="store_true", help="build into a non-empty directory")
    p.add_argument("--resume", action="store_true", help="keep the stages the bundle's manifest already records")
    arguments.add_vla_args(p)
    arguments.add_drafter_args(p, prefix="drafter-")
    arguments.add_cache_args(p)
    arguments.add_calibration_args(p)
    arguments.add_eval_args(p)
    p.set_defaults(func=arguments.command("run_build_bundle"))
