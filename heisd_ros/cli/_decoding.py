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


def add_option_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--option", dest="options", action="append", default=[], metavar="METHOD.KEY=VALUE",
                   help="a decoder setting for one method (repeatable), e.g. heisd.skip_guard=none, "
                        "heisd.skip_count=1, drafter.relax_radius=2; keys as Bundle.make_decoder takes them")


def parse_options(options: list[str], methods: list[str], command: str) -> dict[str, dict[str, Any]]:
    """``["heisd.skip_count=1"]`` -> ``{"heisd": {"skip_count": 1}}`` (ints, then floats, else strings)."""
    out: dict[str, dict[str, Any]] = {}
    for item in options:
        key, sep, raw = item.partition("=")
        method, dot, name = key.partition(".")
        if not sep or not dot or not name or not raw:
            raise SystemExit(f"heisd {command}: --option {item!r} is not METHOD.KEY=VALUE")
        if method not in methods:
            raise SystemExit(f"heisd {command}: --option {item!r} names method {method!r}, not one of {methods}")
        value: Any = raw
        for cast in (int, float):
            try:
                value = cast(raw)
                break
            except ValueError:
                pass
        out.setdefault(method, {})[name] = value
    return out


def load_for_decoding(args: argparse.Namespace, command: str) -> tuple[Any, float]:
    """Set torch's threads, load ``args.bundle``; returns (bundle, tau). A bad --threads exits with a message."""
    if args.threads < 1:
        raise SystemExit(f"heisd {command}: --threads must be >= 1")
    import torch

    from heisd_ros.bundle import load_bundle

    torch.set_num_threads(args.threads)
    bundle = load_bundle(args.bundle)
    return bundle, float(args.tau) if args.tau is not None else float(bundle.metric.tau)
