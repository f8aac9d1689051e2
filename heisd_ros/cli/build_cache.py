"""``heisd build-cache``: build a bundle's retrieval datastore from demonstrations (writes <bundle>/retrieval)."""
from __future__ import annotations

import argparse

from heisd_ros.training import arguments


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("build-cache", help="build the retrieval datastore (bundle stage 3)", description=__doc__)
    arguments.add_data_args(p)
    arguments.add_bundle_arg(p)
    arguments.add_cache_args(p)
    p.set_defaults(func=arguments.command("run_build_cache"))
