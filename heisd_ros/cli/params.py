"""heisd params: the parameter reference of every node."""
from __future__ import annotations

import argparse

from heisd_ros.ros.param_specs import NODE_PARAMS, describe_all


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("params", help="list every node parameter with its description, range and default",
                       description="Print each node's parameters: default, description, unit, range or choices, "
                                   "and whether it can be changed at run time (ros2 param set).")
    p.add_argument("nodes", nargs="*", metavar="NODE", help=f"nodes to list (default: all of {', '.join(NODE_PARAMS)})")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    unknown = [n for n in args.nodes if n not in NODE_PARAMS]
    if unknown:
        print(f"unknown node(s): {', '.join(unknown)}; known: {', '.join(NODE_PARAMS)}")
        return 2
    print(describe_all(args.nodes or None))
    return 0
