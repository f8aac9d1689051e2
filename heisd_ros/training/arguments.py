"""The build stages' command-line options, and the CLI entry that runs one stage.

Why its own module: ``heisd --help`` and every ``heisd <stage> --help`` only need
the options, not torch and the training code, so the CLI modules import this light
module and the stage runners in pipeline.py are imported when a stage actually runs.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from typing import Callable

def add_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, help="directory of 'heisd collect' bags (or synthetic:<n>[:<steps>])")
    p.add_argument("--tasks", nargs="*", default=None, help="only these tasks (default: all in the data)")
    p.add_argument("--holdout", type=int, default=2, help="highest-seed episodes per task kept out of training (default 2)")
    p.add_argument("--include-failures", action="store_true", help="also use demonstrations whose expert failed")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def add_bundle_arg(p: argparse.ArgumentParser, flag: str = "--bundle") -> None:
    p.add_argument(flag, required=True, type=Path, dest="bundle", help="bundle directory (created if needed)")


def add_vla_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("VLA")
    g.add_argument("--steps", type=int, default=3000, help="training steps (default 3000)")
    g.add_argument("--batch-size", type=int, default=64)
    g.add_argument("--lr", type=float, default=1e-3)
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--horizon", type=int, default=1, help="actions per step H (OpenVLA: 1)")
    g.add_argument("--image-size", type=int, default=64)
    g.add_argument("--cameras", nargs="+", default=["agentview", "robot0_eye_in_hand"])
    g.add_argument("--hidden", type=int, default=128)
    g.add_argument("--layers", type=int, default=4)
    g.add_argument("--conv-channels", nargs="+", type=int, default=[16, 32, 32],
                   help="channels of the stride-2 convs, one per halving of the image (default 16 32 32: 8x8 features at 64 px)")
    g.add_argument("--keypoints", type=int, default=16,
                   help="spatial-softmax keypoints per camera (default 16); their coordinates are also the retrieval key")
    g.add_argument("--coord-channels", action="store_true", help="CoordConv: feed x/y ramps to the camera encoder")
    g.add_argument("--label-sigma", type=float, default=0.0,
                   help="Gaussian soft targets over neighbouring bins, in bins (default 0: plain cross-entropy)")
    g.add_argument("--proprio-noise", type=float, default=0.0,
                   help="std of noise on the standardised proprio vector in training (default 0); > 0 stops the "
                        "network reciting demonstrations from the EE path instead of looking at the cameras")
    g.add_argument("--proprio-noise-features", nargs="+", default=None, metavar="FEATURE",
                   help="the proprio features that get --proprio-noise (default: all but 'gripper'); names: "
                        "ee_x ee_y ee_z r11 r21 r31 r12 r22 r32 gripper")
    g.add_argument("--joints", nargs="*", default=None, help="joint names for the retrieval bins (default: all recorded)")


def add_drafter_args(p: argparse.ArgumentParser, prefix: str = "") -> None:
    g = p.add_argument_group("drafter")
    g.add_argument(f"--{prefix}steps", type=int, default=1500, dest=f"{prefix.replace('-', '_')}steps")
    g.add_argument(f"--{prefix}seed", type=int, default=1, dest=f"{prefix.replace('-', '_')}seed")


def add_cache_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("retrieval cache")
    g.add_argument("--cache-horizon", type=int, default=None, help="steps of payload per entry (default: the VLA's H)")
    g.add_argument("--joint-bin-width", type=float, default=0.25, help="rad per coarse joint bin")


def add_calibration_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("calibration")
    g.add_argument("--window", type=int, default=5)
    g.add_argument("--alpha", type=float, default=0.5)
    g.add_argument("--max-error", type=float, default=8.0, help="bound on retrieval-branch mean bin error (tau rule)")
    g.add_argument("--stride", type=int, default=2, help="use every n-th held-out frame for tau")


def add_eval_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("closed-loop evaluation (held-out seeds)")
    g.add_argument("--eval-episodes", nargs="+", default=["0"], metavar="N|TASK=N",
                   help="episodes per task and method: N for every task, TASK=N to set one (0 = skip)")
    g.add_argument("--eval-seed-start", type=int, default=1000, help="first evaluation seed (never a training seed)")
    g.add_argument("--eval-methods", nargs="+", default=["ar"], help="decoding methods to evaluate")


def command(runner: str) -> Callable[[argparse.Namespace], int]:
    """A CLI ``func`` running ``pipeline.<runner>`` on ``args.bundle``: 0 on success, 2 with a one-line error otherwise."""

    def func(args: argparse.Namespace) -> int:
        from heisd_ros.core.errors import HeisdError

        pipeline = importlib.import_module("heisd_ros.training.pipeline")
        try:
            getattr(pipeline, runner)(args, Path(args.bundle))
        except (HeisdError, ValueError) as exc:
            print(f"heisd {args.command}: error: {exc}", file=sys.stderr)
            return 2
        return 0

    return func
