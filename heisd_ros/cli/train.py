"""``heisd train``: train the bundled small VLA on demonstration bags (writes <bundle>/vla)."""
from __future__ import annotations

import argparse

from heisd_ros.training import pipeline


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("train", help="train the small VLA on demonstrations (bundle stage 1)",
                              description=__doc__)
    pipeline.add_data_args(p)
    pipeline.add_bundle_arg(p)
    pipeline.add_vla_args(p)
    p.set_defaults(func=pipeline.command(pipeline.run_train))
