"""The ``heisd`` command.

Each subcommand lives in its own module in this package and exposes
``register(subparsers)``, which adds a parser whose ``func`` default takes the
parsed arguments and returns an exit code. Modules are discovered, so adding a
subcommand never edits this file.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys
from typing import Sequence

from heisd_ros import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="heisd",
        description=(
            "HeiSD hybrid speculative decoding for VLA policies: collect demonstrations, "
            "build the model bundle, bring up the ROS 2 node graph, evaluate and benchmark."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Run 'heisd <command> --help' for the options of one command.",
    )
    parser.add_argument("--version", action="version", version=f"heisd_ros {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    sub.required = True
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
