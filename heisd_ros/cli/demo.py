"""heisd demo: the whole node graph on the bundled default, closed loop in simulation.

For each decoding method (plain AR first, then HeiSD) the inference graph and the
simulation bridge start as separate processes talking over DDS; the sim bridge runs
the same held-out seeds for every method. The demo prints each episode's outcome,
HeiSD's branch mix, and the per-action inference latency of HeiSD against plain AR
on the same episodes.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import random
import tempfile
import time
from pathlib import Path

log = logging.getLogger("heisd.demo")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo", help="closed-loop episodes through the full node graph: HeiSD vs plain AR",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--bundle", default="default", help="model bundle (default: the shipped one)")
    p.add_argument("--task", default="lift", help="simulation task (lift, sort, nut; default lift)")
    p.add_argument("--episodes", type=int, default=2, help="episodes per method (default 2)")
    p.add_argument("--seed", type=int, default=1000, help="first held-out seed (default 1000)")
    p.add_argument("--max-steps", type=int, default=200, help="step limit per episode (default 200, the Lift task's own limit)")
    p.add_argument("--methods", nargs="+", default=["ar", "heisd"], choices=["ar", "drafter", "retrieval", "heisd"],
                   help="decoding methods to compare, the first is the baseline (default: ar heisd)")
    p.add_argument("--timing", default="lockstep", choices=["lockstep", "realtime"], help="sim timing mode (default lockstep)")
    p.add_argument("--out", type=Path, default=None, help="also write the results as JSON here")
    p.add_argument("--quiet", action="store_true", help="do not stream the nodes' logs")
    p.set_defaults(func=run)


def recorded_size(bundle) -> int:  # noqa: ANN001
    """Render at the demonstrations' resolution: the coordinator then resizes exactly as training did
    (rendering natively at the model's size is a different image, and the policy fails on it)."""
    return int(bundle.manifest.get("stages", {}).get("train", {}).get("recorded_image_size") or bundle.image_size)


def graph_config(bundle, bundle_arg: str, task: str, method: str, seed: int, episodes: int, max_steps: int,
                 timing: str) -> dict:
    """Parameter overrides that point every node at the bundle and the sim bridge at the task."""
    from heisd_ros.ros.config import apply_overrides, load_config

    cams = list(bundle.camera_names)
    nodes = ["kinematic_encoder", "retrieval_cache", "drafter", "verifier", "coordinator"]
    overrides = [f"{n}.bundle:={bundle_arg}" for n in nodes] + [
        f"coordinator.method:={method}",
        f"coordinator.control_rate_hz:={float(bundle.control_rate_hz)}",
        f"sim_bridge.task:={task}", f"sim_bridge.seed:={seed}", f"sim_bridge.episodes:={episodes}",
        f"sim_bridge.max_steps:={max_steps}", f"sim_bridge.timing_mode:={timing}",
        f"sim_bridge.camera_names:={json.dumps(cams)}", f"sim_bridge.image_size:={recorded_size(bundle)}",
        f"sim_bridge.control_rate_hz:={float(bundle.control_rate_hz)}",
        "sim_bridge.start_delay_s:=3.0", "sim_bridge.action_timeout_s:=30.0", "verifier.warmup_steps:=2",
        # two model processes share the CPU: one torch thread each avoids oversubscription
        "verifier.num_threads:=1", "drafter.num_threads:=1", "coordinator.num_threads:=1", "coordinator.service_timeout_s:=10.0",
    ]
    return apply_overrides(load_config(), overrides)


def run_method(bundle, args: argparse.Namespace, method: str, domain_id: int) -> list:
    from heisd_ros.ros.config import write_params_file
    from heisd_ros.ros.environment import graph_environment
    from heisd_ros.ros.graph import DEFAULT_NODES, NodeGraph
    from heisd_ros.ros.monitor import GraphMonitor

    config = graph_config(bundle, args.bundle, args.task, method, args.seed, args.episodes, args.max_steps, args.timing)
    nodes = list(DEFAULT_NODES) + ["sim_bridge"]
    params = write_params_file({n: config[n] for n in nodes}, Path(tempfile.mkdtemp(prefix="heisd-demo-")) / "params.yaml")
    env = graph_environment(domain_id)
    os.environ.update({k: env[k] for k in ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE", "FASTDDS_DEFAULT_PROFILES_FILE")})
    monitor = GraphMonitor()
    graph = NodeGraph(nodes, params, env=env, stream=None,
                      on_line=None if args.quiet else (lambda n, line: _echo(n, line)))
    print(f"\n== {method}: {args.episodes} episode(s) of '{args.task}', seeds {args.seed}..{args.seed + args.episodes - 1}")
    graph.start()
    try:
        alive = lambda: not graph.poll()  # noqa: E731
        done = monitor.wait_episodes(args.episodes, timeout_s=120 + args.episodes * args.max_steps * 2.0, alive=alive)
        if not done:
            raise RuntimeError(f"{method}: the graph did not finish {args.episodes} episodes "
                               f"(finished {len(monitor.episodes)}); see the node logs above")
    finally:
        graph.stop()
        monitor.close()
    return [monitor.episodes[i] for i in sorted(monitor.episodes)][: args.episodes]


def _echo(node: str, line: str) -> None:
    if "WARN" in line or "ERROR" in line or "FATAL" in line or "episode " in line:
        print(f"  [{node}] {line}", flush=True)


def run(args: argparse.Namespace) -> int:
    from heisd_ros.bundle import load_bundle
    from heisd_ros.ros.monitor import chunk_summary

    t0 = time.monotonic()
    bundle = load_bundle(args.bundle)
    if args.task not in bundle.tasks:
        log.error("bundle %s has no task %r (it has %s)", args.bundle, args.task, ", ".join(bundle.tasks))
        return 2
    domain_id = random.Random(os.getpid()).randint(1, 100)
    results = {}
    for method in args.methods:
        episodes = run_method(bundle, args, method, domain_id)
        chunks = [c for e in episodes for c in e.chunks]
        results[method] = {"episodes": [{"seed": e.seed, "success": e.success, "steps": e.steps, "held_steps": e.held_steps}
                                        for e in episodes],
                           "success_rate": sum(e.success for e in episodes) / len(episodes), **chunk_summary(chunks)}
        for e in episodes:
            print(f"   seed {e.seed}: {'success' if e.success else 'failure'} after {e.steps} steps")
    base = args.methods[0]
    print(f"\n== {args.task}: {args.episodes} episode(s) per method, same seeds, bundle {args.bundle}")
    print(f"{'method':<10} {'success':>8} {'ms/action':>10} {'p99 ms':>8} {'VLA passes':>11} {'speedup':>8}  branch mix")
    for method, r in results.items():
        lat = r.get("latency_ms", {})
        speed = results[base]["latency_ms"]["mean"] / lat["mean"] if lat and results[base].get("latency_ms") else float("nan")
        r["speedup_vs_" + base] = speed
        mix = ", ".join(f"{k} {v:.0%}" for k, v in r.get("branch_mix", {}).items())
        print(f"{method:<10} {r['success_rate']:>8.0%} {lat.get('mean', float('nan')):>10.1f} {lat.get('p99', float('nan')):>8.1f} "
              f"{r.get('vla_forward_passes_per_action', float('nan')):>11.2f} {speed:>7.2f}x  {mix}")
    for method, r in results.items():
        by = r.get("latency_ms_by_branch") or {}
        if len(by) > 1:
            print(f"{method} ms/action by branch: " + ", ".join(f"{k} {v:.1f}" for k, v in by.items()))
    print(f"(latency = inference time per executed action, measured by the coordinator; {time.monotonic() - t0:.0f} s in all)")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=1))
    return 0
