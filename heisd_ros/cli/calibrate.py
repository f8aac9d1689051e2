"""``heisd calibrate``: fused-metric ranges and tau on demonstrations (writes <bundle>/calibration.json).

tau rule: see heisd_ros/training/calibration.py (fewest expected VLA passes per step
on held-out frames, subject to a bound on the retrieval branch's bin error).
"""
from __future__ import annotations

import argparse

from heisd_ros.training import arguments


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("calibrate", help="calibrate the fused metric and tau (bundle stage 4)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    arguments.add_data_args(p)
    arguments.add_bundle_arg(p)
    arguments.add_calibration_args(p)
    p.set_defaults(func=arguments.command("run_calibrate"))
