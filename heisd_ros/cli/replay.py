"""heisd replay: evaluation of the decoding methods on the observations recorded in rosbag2 bags.

Bags from any stack (MCAP or sqlite3): map topic names and joint names with the
options below (joints are matched by NAME; --joint-map renames the bag's joints to
the bundle's). Every recorded action (heisd_msgs/ActionChunk on the action topic)
becomes one observation: the latest image of each camera, the joint states and the
end-effector pose at its stamp. Reports the same speed and deviation figures as
``heisd eval`` (no task success offline) plus the deviation from the recorded action.
Writes results.json (docs/results-schema.md) and a report directory.

With --ros: the deployed node graph instead (config/heisd.yaml, or --config, with
--bundle and --set overrides; every node on use_sim_time). Per bag, the graph is
started, a bag player publishes /clock and the bag's sensor topics (joint states
with --joint-map applied, cameras, EE pose, instruction; mapped with the same
options) renamed to the graph's inputs at --rate times real time, never the bag's
recorded actions; the graph's ActionChunks and KinematicStates are recorded, on the
sim time of /clock, into OUT/<bag name>_graph (a new bag), and the graph is stopped.
OUT/replay_ros.json (printed too) holds per bag: chunks, fresh vs hold, branch mix
by ActionChunk.source, mean inference latency, sim duration. --methods takes one
method there (the coordinator's), --tau sets the coordinator's tau.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

from heisd_ros.data.bag_writer import ACTION, INSTRUCTION, JOINT_STATES
from heisd_ros.cli._decoding import add_decoding_args, load_for_decoding
from heisd_ros.eval.methods import METHODS


def _pairs(values: list[str] | None, what: str) -> dict[str, str] | None:
    from heisd_ros.ros.config import ConfigError, parse_pairs

    try:
        return None if values is None else parse_pairs(values, what)
    except ConfigError as exc:
        raise SystemExit(f"heisd replay: {exc}") from None


def _topics(args: argparse.Namespace):  # noqa: ANN202 - a data.reader.TopicConfig
    """The bag's topic names as the options give them (both replay modes read bags the same way)."""
    from heisd_ros.data.reader import TopicConfig

    return TopicConfig(joint_states=args.joint_states_topic, action=args.action_topic,
                       instruction=args.instruction_topic, images=_pairs(args.image_topic, "--image-topic"),
                       ee_poses=_pairs(args.ee_pose_topic, "--ee-pose-topic"))


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("replay", help="offline speed and deviation of every method on recorded rosbag2 bags",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("bags", nargs="+", type=Path, help="bag directories")
    p.add_argument("--bundle", default="default", help="model bundle directory or shipped name (default: default)")
    p.add_argument("--methods", nargs="+", default=None, choices=METHODS,
                   help="methods (default: all four; with --ros one, default the config's coordinator.method)")
    p.add_argument("--joint-states-topic", default=JOINT_STATES, help=f"sensor_msgs/JointState topic (default {JOINT_STATES})")
    p.add_argument("--action-topic", default=ACTION, help=f"heisd_msgs/ActionChunk topic (default {ACTION})")
    p.add_argument("--instruction-topic", default=INSTRUCTION, help=f"std_msgs/String topic (default {INSTRUCTION})")
    p.add_argument("--instruction", default=None, help="instruction for bags without an instruction topic")
    p.add_argument("--image-topic", nargs="+", default=None, metavar="VIEW=TOPIC",
                   help="camera topics by the bundle's view names (default: /camera/<view>/image_raw)")
    p.add_argument("--ee-pose-topic", nargs="+", default=None, metavar="ARM=TOPIC",
                   help="geometry_msgs/PoseStamped per arm (default: /ee_pose or /ee_pose/<arm>)")
    p.add_argument("--joint-map", nargs="+", default=None, metavar="BAG_NAME=BUNDLE_NAME",
                   help="rename joints of the bag to the bundle's joint names")
    p.add_argument("--arm", default=None, help="arm whose EE pose drives the metric (default right, or the only one)")
    add_decoding_args(p)
    p.add_argument("--out", type=Path, default=Path("replay_results"), help="output directory (default replay_results)")
    ros = p.add_argument_group("--ros: play the bags into the running node graph")
    ros.add_argument("--ros", action="store_true", help="play each bag into the node graph and record its outputs")
    ros.add_argument("--rate", type=float, default=1.0, help="playback speed, 1.0 = real time (default 1.0)")
    ros.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap", help="storage of the output bags (default mcap)")
    ros.add_argument("--config", type=Path, default=None, help="parameter file (default: the package's config/heisd.yaml)")
    ros.add_argument("--set", dest="overrides", action="append", default=[], metavar="NODE.PARAM:=VALUE",
                     help="override one graph parameter (repeatable), e.g. --set coordinator.skip_count:=1")
    ros.add_argument("--domain-id", type=int, default=None, help="ROS_DOMAIN_ID of the graph (default: inherited)")
    ros.add_argument("--ready-timeout", type=float, default=180.0,
                     help="seconds to wait for the graph to come up before each bag (default 180)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.ros:
        return run_ros(args)
    args.methods = args.methods or list(METHODS)
    from heisd_ros.core.errors import CorruptFileError, InvalidInputError
    from heisd_ros.data.reader import ReaderConfig
    from heisd_ros.eval.replay import replay
    from heisd_ros.eval.results import results_document, write_document
    from heisd_ros.reports import write_report

    topics = _topics(args)
    config = ReaderConfig(topics=topics, joint_aliases=_pairs(args.joint_map, "--joint-map") or {}, chunk=1,
                          instruction=args.instruction)
    bundle, tau = load_for_decoding(args, "replay")
    started = time.perf_counter()
    try:
        result = replay(bundle, args.bags, args.methods, config, args.arm, args.instruction,
                        overrides={"heisd": {"tau": tau}})
    except (InvalidInputError, CorruptFileError) as exc:
        raise SystemExit(f"heisd replay: {exc}") from None
    setup = {"bags": [str(b) for b in args.bags], "frames": result.frames, "methods": list(args.methods), "tau": tau,
             "topics": {"joint_states": topics.joint_states, "action": topics.action, "instruction": topics.instruction,
                        "images": topics.images, "ee_poses": topics.ee_poses},
             "joint_map": config.joint_aliases, "threads": args.threads, "wall_s": round(time.perf_counter() - started, 1)}
    notes = ["offline: every method decodes the recorded observations (the robot's trajectory, not its own), so "
             "no task success; AR's bins on the same frame are the deviation reference"]
    traces = [{"method": "heisd", "task": r.task, "timing": "offline", "seed": 0, "tau": tau,
               "steps": [rec.to_dict() for rec in r.records if rec.episode == r.seeds[0]]}
              for r in result.runs if r.method == "heisd"][:1]
    doc = results_document("replay", bundle, setup, result.rows(tau), traces, notes)
    path = write_document(doc, args.out / "results.json")
    files = write_report(doc, args.out / "report")
    print(f"[replay] wrote {path} and {', '.join(str(f) for f in files)}")
    return 0


def run_ros(args: argparse.Namespace) -> int:
    """--ros: every bag through a freshly started node graph (heisd_ros.eval.replay_ros)."""
    from heisd_ros.bundle import load_bundle
    from heisd_ros.core.errors import CorruptFileError, InvalidInputError
    from heisd_ros.eval.replay_ros import (ACTION_CHUNK, COORDINATOR_ACTION_TOPIC, KINEMATIC_STATE, GraphInputs,
                                           ReplayRosError, RosReplaySettings, replay_bag_into_graph,
                                           topic_map)
    from heisd_ros.ros.config import ConfigError, apply_overrides, load_config, write_params_file
    from heisd_ros.ros.environment import graph_environment
    from heisd_ros.ros.graph import DEFAULT_NODES, NodeGraph, failed_exits

    if not 0.01 <= args.rate <= 100.0:
        raise SystemExit(f"heisd replay: --rate must be in [0.01, 100], got {args.rate}")
    if args.methods is not None and len(args.methods) != 1:
        raise SystemExit(f"heisd replay: --ros runs one method (the coordinator's), got {args.methods}")
    missing = [str(b) for b in args.bags if not b.exists()]
    if missing:
        raise SystemExit(f"heisd replay: bag(s) not found: {', '.join(missing)}")
    names = [b.resolve().name for b in args.bags]
    if len(set(names)) != len(names):
        raise SystemExit(f"heisd replay: bag names must differ (outputs go to OUT/<name>_graph): {names}")
    taken = [str(args.out / f"{n}_graph") for n in names if (args.out / f"{n}_graph").exists()]
    if taken:
        raise SystemExit(f"heisd replay: output bag(s) already exist: {', '.join(taken)}; remove them or choose another --out")
    nodes = list(DEFAULT_NODES)
    overrides = [f"{n}.bundle:={args.bundle}" for n in nodes]
    overrides += [f"coordinator.method:={args.methods[0]}"] if args.methods else []
    overrides += [f"coordinator.tau:={args.tau}"] if args.tau is not None else []
    try:
        bundle = load_bundle(args.bundle)
        config = load_config(args.config)
        config = apply_overrides(config, overrides + list(args.overrides))
        inputs = GraphInputs.from_config(config, bundle.camera_names)
        mappings = [topic_map(b, _topics(args), inputs, args.arm, args.instruction) for b in args.bags]
    except (ConfigError, InvalidInputError, CorruptFileError) as exc:
        raise SystemExit(f"heisd replay: {exc}") from None
    args.out.mkdir(parents=True, exist_ok=True)
    params_file = write_params_file({n: config.get(n, {}) for n in nodes},
                                    Path(tempfile.mkdtemp(prefix="heisd-replay-")) / "params.yaml")
    env = graph_environment(args.domain_id, localhost_only=os.environ.get("ROS_AUTOMATIC_DISCOVERY_RANGE") != "SUBNET")
    record = {COORDINATOR_ACTION_TOPIC: ACTION_CHUNK, config["coordinator"].get(
        "kinematic_state_topic", "/kinematic_encoder/kinematic_state"): KINEMATIC_STATE}
    joint_map = _pairs(args.joint_map, "--joint-map")
    summaries = []
    with _ros_session(env) as executor:
        for bag, mapping, name in zip(args.bags, mappings, names):
            settings = RosReplaySettings(rate=args.rate, storage=args.storage, ready_timeout_s=args.ready_timeout,
                                         instruction=None if inputs.instruction in mapping.values() else args.instruction,
                                         instruction_topic=inputs.instruction, joint_map=joint_map)
            graph = NodeGraph(nodes, params_file, env=env, use_sim_time=True,
                              stream=sys.stderr if getattr(args, "verbose", False) else None)
            try:
                summaries.append(replay_bag_into_graph(bag, args.out / f"{name}_graph", graph, mapping, settings,
                                                       executor, record, log=lambda m: print(m, file=sys.stderr)))
            except (ReplayRosError, CorruptFileError) as exc:
                raise SystemExit(f"heisd replay --ros: {exc}") from None
    doc = {"command": "replay --ros", "bundle": str(args.bundle), "rate": args.rate,
           "method": config["coordinator"].get("method", "heisd"), "bags": summaries}
    path = args.out / "replay_ros.json"
    path.write_text(json.dumps(doc, indent=2) + "\n")
    print(json.dumps(doc, indent=2))  # stdout holds only the document; progress goes to stderr
    print(f"[replay --ros] wrote {path}", file=sys.stderr)
    failed = {s["bag"]: bad for s in summaries if (bad := failed_exits(s["node_exit_codes"]))}
    if failed:
        print(f"heisd replay --ros: nodes exited non-zero when the graph was stopped: {failed}", file=sys.stderr)
    return 1 if failed else 0


@contextlib.contextmanager
def _ros_session(env: dict[str, str]) -> Iterator:
    """The process's rclpy context on the graph's domain, with one background executor (yielded).
    An already initialised default context (a test, an embedding tool) is reused and left running."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor

    from heisd_ros.ros.spinner import BackgroundSpinner

    owned = not rclpy.ok()
    if owned:
        for key in ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE", "FASTDDS_DEFAULT_PROFILES_FILE", "RMW_IMPLEMENTATION"):
            if key in env:
                os.environ[key] = env[key]
        rclpy.init()
    executor = SingleThreadedExecutor()
    spinner = BackgroundSpinner(executor)
    try:
        yield executor
    finally:
        spinner.stop()
        if owned:
            rclpy.try_shutdown()
