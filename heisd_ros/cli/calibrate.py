"""``heisd calibrate``: fused-metric ranges and tau on demonstrations (writes <bundle>/calibration.json).

tau rule: see heisd_ros/training/calibration.py (fewest expected VLA passes per step
on held-out frames, subject to a bound on the retrieval branch's bin error).
"""
from __future__ import annotations

import argparse

from heisd_ros.training import pipeline


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("calibrate", help="calibrate the fused metric and tau (bundle stage 4)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    pipeline.add_data_args(p)
    pipeline.add_bundle_arg(p)
    pipeline.add_calibration_args(p)
    p.set_defaults(func=pipeline.command(pipeline.run_calibrate))
