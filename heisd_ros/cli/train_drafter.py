"""``heisd train-drafter``: distil the small drafter from a bundle's VLA (writes <bundle>/drafter)."""
from __future__ import annotations

import argparse

from heisd_ros.training import pipeline


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("train-drafter", help="distil the drafter on the VLA's greedy tokens (bundle stage 2)",
                              description=__doc__)
    pipeline.add_data_args(p)
    pipeline.add_bundle_arg(p)
    pipeline.add_drafter_args(p, prefix="drafter-")
    p.set_defaults(func=pipeline.command(pipeline.run_train_drafter))
