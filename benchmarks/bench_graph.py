"""Timing of the whole node graph: publish-period jitter of the coordinator, per-hop
message latency, and end-to-end latency from a camera/pose sample to the action chunk
built from it, per branch. The robot is the scripted stand-in (heisd_ros.ros.scripted_robot),
the graph the real one (separate processes over DDS).

    python benchmarks/bench_graph.py --bundle PATH [--rate 20] [--seconds 30] [--method heisd] [--out results.json]
"""
from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", required=True)
    ap.add_argument("--rate", type=float, default=20.0, help="coordinator control rate (Hz)")
    ap.add_argument("--seconds", type=float, default=30.0, help="measurement window after warm-up")
    ap.add_argument("--method", default="heisd", choices=["ar", "drafter", "retrieval", "heisd"])
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()

    from heisd_ros.ros.environment import graph_environment

    os.environ.update(graph_environment(random.Random(os.getpid()).randint(1, 100)))
    import rclpy
    from rclpy.executors import SingleThreadedExecutor

    from heisd_msgs.msg import ActionChunk
    from heisd_ros.bundle import load_bundle
    from heisd_ros.ros.config import apply_overrides, load_config, write_params_file
    from heisd_ros.ros.graph import DEFAULT_NODES, NodeGraph
    from heisd_ros.ros.scripted_robot import ScriptedRobot

    b = load_bundle(args.bundle)
    nodes = list(DEFAULT_NODES)
    cams = [f"/camera/{c}/image_raw" for c in b.camera_names]
    config = apply_overrides(load_config(), [f"{n}.bundle:={args.bundle}" for n in nodes] + [
        f"coordinator.control_rate_hz:={args.rate}", f"coordinator.method:={args.method}",
        f"coordinator.camera_topics:={json.dumps(cams)}", "kinematic_encoder.gripper_joints:=['']",
        "verifier.num_threads:=1", "drafter.num_threads:=1"])
    params = write_params_file({n: config[n] for n in nodes}, Path(tempfile.mkdtemp()) / "p.yaml")
    rclpy.init()
    node = rclpy.create_node("bench_graph")
    ex = SingleThreadedExecutor()
    ex.add_node(node)
    joints = list(b.joint_names) + list(getattr(b.interface.inputs, "gripper_joints", []))
    robot = ScriptedRobot(node, joints, list(b.camera_names), b.image_size, next(iter(b.tasks.values())), rate_hz=args.rate)
    graph = NodeGraph(nodes, params, stream=None).start()
    try:
        robot.start()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and sum(c.source != ActionChunk.SOURCE_HOLD for _, c in robot.chunks) < 20:
            ex.spin_once(timeout_sec=0.05)
        mark_chunks, mark_states, mark_delays = len(robot.chunks), len(robot.state_delays), len(robot.chunk_delays)
        end = time.monotonic() + args.seconds
        while time.monotonic() < end:
            ex.spin_once(timeout_sec=0.05)
    finally:
        robot.stop()
        graph.stop()
    times = np.array([t for t, _ in robot.chunks[mark_chunks:]])
    period_ms = np.diff(times) * 1e3
    hops = np.array(robot.state_delays[mark_states:]) * 1e3
    e2e: dict[str, list[float]] = {}
    names = {ActionChunk.SOURCE_AR: "ar", ActionChunk.SOURCE_DRAFTER: "drafter", ActionChunk.SOURCE_RETRIEVAL: "retrieval",
             ActionChunk.SOURCE_RETRIEVAL_SKIP: "retrieval_skip"}
    for source, delay in robot.chunk_delays[mark_delays:]:
        e2e.setdefault(names.get(source, str(source)), []).append(delay * 1e3)
    fresh = sum(c.source != ActionChunk.SOURCE_HOLD for _, c in robot.chunks[mark_chunks:])
    result = {
        "rate_hz": args.rate, "method": args.method, "seconds": args.seconds, "chunks": int(times.size),
        "fresh_fraction": fresh / max(1, times.size),
        "publish_period_ms": {"mean": float(period_ms.mean()), "std": float(period_ms.std()),
                              "p99": float(np.percentile(period_ms, 99)), "max": float(period_ms.max())},
        "pose_to_kinematic_state_ms": {"mean": float(hops.mean()), "p99": float(np.percentile(hops, 99))},
        "observation_to_chunk_ms": {k: {"n": len(v), "mean": float(np.mean(v)), "p50": float(np.median(v)),
                                        "p99": float(np.percentile(v, 99))} for k, v in sorted(e2e.items())},
    }
    print(json.dumps(result, indent=1))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1))
    node.destroy_node()
    rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
