"""Soak test of the whole node graph: every node in its own process, the scripted
stand-in robot publishing at the control rate, for a long time (default 10 minutes).

Counts what a long run loses: published chunks against expected ticks, gaps in the
coordinator's sequence ids, late publishes (a period longer than 1.5x nominal, from
the chunks' own stamps), HOLD ticks, queue underruns (the coordinator's
/diagnostics), node deaths, and every node's resident memory (VmRSS sampled from
/proc every few seconds: growth and a linear slope per hour).

    python benchmarks/bench_soak.py [--bundle default] [--duration 600] [--rate 20]
        [--method heisd] [--sample-period 5] [--out soak.json]
"""
from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

LATE_FACTOR = 1.5  # a publish period longer than this x nominal counts as late


def rss_mb(pid: int) -> float | None:
    """Resident set size of a process in MB (Linux /proc), None once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


class CoordinatorDiagnostics:
    """The latest /diagnostics key/values of the coordinator."""

    def __init__(self, node: Any) -> None:
        from diagnostic_msgs.msg import DiagnosticArray

        self.values: dict[str, str] = {}
        node.create_subscription(DiagnosticArray, "/diagnostics", self._on, 50)

    def _on(self, msg: Any) -> None:
        for status in msg.status:
            if status.name == "heisd/coordinator":
                self.values = {kv.key: kv.value for kv in status.values}

    def number(self, key: str) -> float:
        return float(self.values.get(key, 0))


def soak(node: Any, bundle: str, duration_s: float, rate_hz: float = 20.0, method: str = "heisd",
         sample_period_s: float = 5.0, warmup_timeout_s: float = 180.0, workdir: Path | None = None,
         progress: bool = False) -> dict[str, Any]:
    """Run the graph against the scripted robot for ``duration_s`` after warm-up; ``node`` is an rclpy
    node that someone spins (the robot and the observers live on it). Returns the measurements."""
    from heisd_msgs.msg import ActionChunk
    from heisd_ros.bundle import load_bundle
    from heisd_ros.ros.config import apply_overrides, load_config, write_params_file
    from heisd_ros.ros.graph import DEFAULT_NODES, NodeGraph
    from heisd_ros.ros.scripted_robot import ScriptedRobot

    if duration_s <= 0 or rate_hz <= 0 or sample_period_s <= 0:
        raise ValueError(f"duration ({duration_s}), rate ({rate_hz}) and sample period ({sample_period_s}) must be > 0")
    b = load_bundle(bundle)
    nodes = list(DEFAULT_NODES)
    cams = [f"/camera/{c}/image_raw" for c in b.camera_names]
    config = apply_overrides(load_config(), [f"{n}.bundle:={bundle}" for n in nodes] + [
        f"coordinator.control_rate_hz:={rate_hz}", f"coordinator.method:={method}",
        f"coordinator.camera_topics:={json.dumps(cams)}", "kinematic_encoder.gripper_joints:=['']",
        "verifier.num_threads:=1", "drafter.num_threads:=1", "coordinator.num_threads:=1"])
    workdir = workdir or Path(tempfile.mkdtemp(prefix="heisd_soak_"))
    params = write_params_file({n: config[n] for n in nodes}, workdir / "params.yaml")
    joints = list(b.joint_names) + list(getattr(b.interface.inputs, "gripper_joints", []))
    robot = ScriptedRobot(node, joints, list(b.camera_names), b.image_size, next(iter(b.tasks.values())), rate_hz=rate_hz)
    diagnostics = CoordinatorDiagnostics(node)
    graph = NodeGraph(nodes, params, stream=None)
    rss: dict[str, list[tuple[float, float]]] = {n: [] for n in nodes}
    deaths: dict[str, int | None] = {}

    def sample(t0: float) -> None:
        for name, code in graph.poll():
            deaths.setdefault(name, code)
        for n in graph.nodes:
            mb = rss_mb(n.process.pid) if n.process is not None and n.process.poll() is None else None
            if mb is not None:
                rss[n.name].append((time.monotonic() - t0, mb))

    graph.start()
    try:
        robot.start()
        deadline = time.monotonic() + warmup_timeout_s
        while sum(c.source != ActionChunk.SOURCE_HOLD for _, c in list(robot.chunks)) < 10:
            if time.monotonic() > deadline or graph.poll():
                raise RuntimeError(f"the graph produced no fresh chunks within {warmup_timeout_s:.0f} s "
                                   f"(node output: { {n.name: n.output[-3:] for n in graph.nodes} })")
            time.sleep(0.1)
        mark = len(robot.chunks)
        underruns0 = diagnostics.number("underruns")
        t0 = time.monotonic()
        end = t0 + duration_s
        next_sample = t0
        while time.monotonic() < end:
            if time.monotonic() >= next_sample:
                sample(t0)
                next_sample += sample_period_s
                if progress:
                    print(f"  {time.monotonic() - t0:6.0f} s: {len(robot.chunks) - mark} chunks, "
                          f"{len(deaths)} deaths", flush=True)
            time.sleep(0.05)
        sample(t0)
        window = list(robot.chunks)[mark:]
        underruns = diagnostics.number("underruns") - underruns0
        counters = dict(diagnostics.values)
    finally:
        robot.stop()
        codes = graph.stop()
    return summarize(window, rate_hz, duration_s, rss, deaths, underruns, counters, codes, method, bundle)


def summarize(window: list, rate_hz: float, duration_s: float, rss: dict[str, list[tuple[float, float]]],
              deaths: dict[str, int | None], underruns: float, counters: dict[str, str],
              exit_codes: dict[str, int | None], method: str, bundle: str) -> dict[str, Any]:
    from heisd_msgs.msg import ActionChunk
    from heisd_ros.ros.convert import stamp_to_seconds

    msgs = [m for _, m in window]
    seqs = np.array([m.sequence_id for m in msgs], dtype=np.int64)
    stamps = np.array([stamp_to_seconds(m.header.stamp) for m in msgs])
    period = np.diff(stamps) if stamps.size > 1 else np.zeros(0)
    nominal = 1.0 / rate_hz
    expected = duration_s * rate_hz
    span = int(seqs.max() - seqs.min() + 1) if seqs.size else 0
    memory = {}
    for name, samples in rss.items():
        if not samples:
            memory[name] = {"samples": 0}
            continue
        t, mb = np.array(samples).T
        slope = float(np.polyfit(t, mb, 1)[0] * 3600.0) if len(t) >= 3 and np.ptp(t) > 0 else 0.0
        memory[name] = {"samples": len(samples), "first_mb": float(mb[0]), "last_mb": float(mb[-1]),
                        "max_mb": float(mb.max()), "growth_mb": float(mb[-1] - mb[0]), "slope_mb_per_hour": slope}
    return {
        "bundle": bundle, "method": method, "rate_hz": rate_hz, "duration_s": duration_s,
        "expected_ticks": expected, "chunks": len(msgs), "chunks_per_expected": len(msgs) / expected,
        "missed_sequence_ids": span - int(np.unique(seqs).size), "duplicate_sequence_ids": int(seqs.size - np.unique(seqs).size),
        "sequence_contiguous": bool(seqs.size and np.all(np.diff(seqs) == 1)),
        "late_publishes": int(np.sum(period > LATE_FACTOR * nominal)),
        "publish_period_ms": ({"mean": float(period.mean() * 1e3), "p99": float(np.percentile(period, 99) * 1e3),
                               "max": float(period.max() * 1e3)} if period.size else {}),
        "hold_ticks": sum(m.source == ActionChunk.SOURCE_HOLD for m in msgs),
        "fresh_fraction": sum(m.source != ActionChunk.SOURCE_HOLD for m in msgs) / max(1, len(msgs)),
        "queue_underruns": underruns,
        "node_deaths": deaths,
        "exit_codes": exit_codes,
        "rss": memory,
        "coordinator_diagnostics": counters,
    }


def table(result: dict[str, Any]) -> str:
    rows = [
        ("duration", f"{result['duration_s']:.0f} s at {result['rate_hz']:g} Hz ({result['method']})"),
        ("chunks / expected ticks", f"{result['chunks']} / {result['expected_ticks']:.0f} ({result['chunks_per_expected']:.3f})"),
        ("missed / duplicate sequence ids", f"{result['missed_sequence_ids']} / {result['duplicate_sequence_ids']}"),
        ("late publishes (> 1.5x period)", str(result["late_publishes"])),
        ("publish period mean / p99 / max", " / ".join(f"{result['publish_period_ms'].get(k, float('nan')):.1f}"
                                                     for k in ("mean", "p99", "max")) + " ms"),
        ("HOLD ticks", f"{result['hold_ticks']} (fresh {result['fresh_fraction']:.1%})"),
        ("queue underruns", f"{result['queue_underruns']:.0f}"),
        ("node deaths", str(result["node_deaths"] or "none")),
    ]
    for name, m in result["rss"].items():
        if m.get("samples"):
            rows.append((f"RSS {name}", f"{m['first_mb']:.0f} -> {m['last_mb']:.0f} MB (max {m['max_mb']:.0f}, "
                                        f"{m['slope_mb_per_hour']:+.1f} MB/h)"))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", default="default", help="bundle directory or shipped bundle name")
    ap.add_argument("--duration", type=float, default=600.0, help="seconds measured after warm-up")
    ap.add_argument("--rate", type=float, default=20.0, help="coordinator control rate (Hz)")
    ap.add_argument("--method", default="heisd", choices=["ar", "drafter", "retrieval", "heisd"])
    ap.add_argument("--sample-period", type=float, default=5.0, help="seconds between RSS samples")
    ap.add_argument("--out", type=Path, default=Path("soak.json"), help="JSON results")
    args = ap.parse_args()

    from heisd_ros.ros.environment import graph_environment

    os.environ.update(graph_environment(random.Random(os.getpid()).randint(1, 100)))
    import rclpy
    from rclpy.executors import SingleThreadedExecutor

    from heisd_ros.ros.spinner import BackgroundSpinner

    rclpy.init()
    node = rclpy.create_node("bench_soak")
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    spinner = BackgroundSpinner(executor)
    try:
        result = soak(node, args.bundle, args.duration, args.rate, args.method, args.sample_period, progress=True)
    finally:
        spinner.stop()
        node.destroy_node()
        rclpy.try_shutdown()
    print(table(result))
    args.out.write_text(json.dumps(result, indent=1))
    print(f"wrote {args.out}")
    return 0 if not result["node_deaths"] and result["sequence_contiguous"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
