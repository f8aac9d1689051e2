"""``heisd train-drafter``: distil the small drafter from a bundle's VLA (writes <bundle>/drafter)."""
from __future__ import annotations

import argparse

from heisd_ros.training import arguments


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("train-drafter", help="distil the drafter on the VLA's greedy tokens (bundle stage 2)",
                              description=__doc__)
    arguments.add_data_args(p)
    arguments.add_bundle_arg(p)
    arguments.add_drafter_args(p, prefix="drafter-")
    p.set_defaults(func=arguments.command("run_train_drafter"))
