"""``heisd build-cache``: build a bundle's retrieval datastore from demonstrations (writes <bundle>/retrieval)."""
from __future__ import annotations

import argparse

from heisd_ros.training import pipeline


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("build-cache", help="build the retrieval datastore (bundle stage 3)", description=__doc__)
    pipeline.add_data_args(p)
    pipeline.add_bundle_arg(p)
    pipeline.add_cache_args(p)
    p.set_defaults(func=pipeline.command(pipeline.run_build_cache))
