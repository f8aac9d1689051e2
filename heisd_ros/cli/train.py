"""``heisd train``: train the bundled small VLA on demonstration bags (writes <bundle>/vla)."""
from __future__ import annotations

import argparse

from heisd_ros.training import arguments


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("train", help="train the small VLA on demonstrations (bundle stage 1)",
                              description=__doc__)
    arguments.add_data_args(p)
    arguments.add_bundle_arg(p)
    arguments.add_vla_args(p)
    p.set_defaults(func=arguments.command("run_train"))
