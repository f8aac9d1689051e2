"""What every command that decodes with a bundle shares (eval, bench, replay): the
``--tau`` / ``--threads`` options and the start of the run (torch threads, the bundle, tau).

Why one place: the three commands must load the bundle and pick tau the same way, so
their results documents compare; torch is imported only when a command runs.
"""
from __future__ import annotations

import argparse
from typing import Any


def add_decoding_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tau", type=float, default=None, help="HeiSD threshold (default: the bundle's calibrated tau)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (default 1: on a shared or busy CPU more threads can be 40x slower)")


def load_for_decoding(args: argparse.Namespace, command: str) -> tuple[Any, float]:
    """Set torch's threads, load ``args.bundle``; returns (bundle, tau). A bad --threads exits with a message."""
    if args.threads < 1:
        raise SystemExit(f"heisd {command}: --threads must be >= 1")
    import torch

    from heisd_ros.bundle import load_bundle

    torch.set_num_threads(args.threads)
    bundle = load_bundle(args.bundle)
    return bundle, float(args.tau) if args.tau is not None else float(bundle.metric.tau)
