"""heisd bringup: start the node graph as separate processes without launch_ros."""
from __future__ import annotations

import argparse
import logging
import os
import signal
import tempfile
from pathlib import Path

from heisd_ros.ros.config import ConfigError, apply_overrides, load_config, write_params_file
from heisd_ros.ros.environment import graph_environment
from heisd_ros.ros.graph import DEFAULT_NODES, NodeGraph, failed_exits
from heisd_ros.ros.param_specs import NODE_PARAMS

log = logging.getLogger("heisd.bringup")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bringup",
        help="start the node graph (pip-only alternative to ros2 launch)",
        description=(
            "Start the heisd_ros nodes as separate processes with one parameter file, as "
            "'ros2 launch heisd_ros heisd.launch.py' does on a ROS 2 install. Output lines are "
            "prefixed with the node name. Ctrl-C stops every node cleanly. Exits non-zero when a "
            "node dies, unless --restart is given."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--config", type=Path, default=None, help="parameter file (default: the package's config/heisd.yaml)")
    p.add_argument("--nodes", nargs="+", default=list(DEFAULT_NODES), choices=list(NODE_PARAMS), metavar="NODE",
                   help=f"nodes to start, from: {', '.join(NODE_PARAMS)}")
    p.add_argument("--sim", action="store_true", help="also start the simulation bridge (a robosuite robot)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="NODE.PARAM:=VALUE",
                   help="override one parameter (repeatable), e.g. --set coordinator.tau:=0.2")
    p.add_argument("--bundle", default=None, help="model bundle for every node (shortcut for --set NODE.bundle:=...)")
    p.add_argument("--use-sim-time", action="store_true", help="all nodes follow /clock (bag replay, simulation)")
    p.add_argument("--domain-id", type=int, default=None, help="ROS_DOMAIN_ID for the graph (default: inherited)")
    p.add_argument("--restart", action="store_true", help="restart a node that dies instead of stopping the graph")
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds (default: run until Ctrl-C)")
    p.set_defaults(func=run)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM stops the graph like Ctrl-C


def run(args: argparse.Namespace) -> int:
    nodes = list(dict.fromkeys(args.nodes + (["sim_bridge"] if args.sim else [])))
    overrides = list(args.overrides)
    if args.bundle:
        overrides += [f"{n}.bundle:={args.bundle}" for n in nodes if "bundle" in {s.name for s in NODE_PARAMS[n]}]
    try:
        config = apply_overrides(load_config(args.config), overrides)
    except ConfigError as exc:
        log.error("%s", exc)
        return 2
    params_dir = Path(tempfile.mkdtemp(prefix="heisd-bringup-"))
    params_file = write_params_file({n: config.get(n, {}) for n in nodes}, params_dir / "params.yaml")
    env = graph_environment(args.domain_id, localhost_only=os.environ.get("ROS_AUTOMATIC_DISCOVERY_RANGE") != "SUBNET")
    graph = NodeGraph(nodes, params_file, env=env, use_sim_time=args.use_sim_time, restart=args.restart)
    log.info("starting %s (parameters: %s)", ", ".join(nodes), params_file)
    signal.signal(signal.SIGTERM, _interrupt)
    # a parent that ignores SIGINT (a job started with '&' by a non-interactive shell, CI runners)
    # hands that on: restore Ctrl-C explicitly, or the graph could only be stopped with SIGTERM
    signal.signal(signal.SIGINT, signal.default_int_handler)
    graph.start()
    try:
        code = graph.wait(timeout=args.duration)
    except KeyboardInterrupt:
        log.info("Ctrl-C: stopping the graph")
        code = 0
    finally:
        codes = graph.stop()
    failed = failed_exits(codes)
    if failed:
        log.error("nodes with a non-zero exit: %s", failed)
        code = code or 1
    return code
