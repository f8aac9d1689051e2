"""heisd replay: offline evaluation of every decoding method on the observations recorded in rosbag2 bags.

Bags from any stack (MCAP or sqlite3): map topic names and joint names with the
options below (joints are matched by NAME; --joint-map renames the bag's joints to
the bundle's). Every recorded action (heisd_msgs/ActionChunk on the action topic)
becomes one observation: the latest image of each camera, the joint states and the
end-effector pose at its stamp. Reports the same speed and deviation figures as
``heisd eval`` (no task success offline) plus the deviation from the recorded action.
Writes results.json (docs/results-schema.md) and a report directory.
Not implemented: playing the bag into the running node graph (--ros).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from heisd_ros.data.bag_writer import ACTION, INSTRUCTION, JOINT_STATES
from heisd_ros.eval.closed_loop import METHODS


def _pairs(values: list[str] | None, what: str) -> dict[str, str] | None:
    if values is None:
        return None
    out = {}
    for v in values:
        key, sep, val = v.partition("=")
        if not sep or not key or not val:
            raise SystemExit(f"heisd replay: {what} must be KEY=VALUE, got {v!r}")
        out[key] = val
    return out


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("replay", help="offline speed and deviation of every method on recorded rosbag2 bags",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("bags", nargs="+", type=Path, help="bag directories")
    p.add_argument("--bundle", default="default", help="model bundle directory or shipped name (default: default)")
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS, help="methods (default: all four)")
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
    p.add_argument("--tau", type=float, default=None, help="HeiSD threshold (default: the bundle's calibrated tau)")
    p.add_argument("--out", type=Path, default=Path("replay_results"), help="output directory (default replay_results)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (default 1: on a shared or busy CPU more threads can be 40x slower)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from heisd_ros.bundle import load_bundle
    from heisd_ros.core.errors import CorruptFileError, InvalidInputError
    from heisd_ros.data.reader import ReaderConfig, TopicConfig
    from heisd_ros.eval.replay import replay
    from heisd_ros.eval.results import results_document, write_document
    from heisd_ros.reports import write_report

    topics = TopicConfig(joint_states=args.joint_states_topic, action=args.action_topic,
                         instruction=args.instruction_topic, images=_pairs(args.image_topic, "--image-topic"),
                         ee_poses=_pairs(args.ee_pose_topic, "--ee-pose-topic"))
    config = ReaderConfig(topics=topics, joint_aliases=_pairs(args.joint_map, "--joint-map") or {}, chunk=1,
                          instruction=args.instruction)
    import torch

    if args.threads < 1:
        raise SystemExit("heisd replay: --threads must be >= 1")
    torch.set_num_threads(args.threads)
    bundle = load_bundle(args.bundle)
    tau = float(args.tau) if args.tau is not None else float(bundle.metric.tau)
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
