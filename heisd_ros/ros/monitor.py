"""An in-process observer of a running node graph: episode results from the sim
bridge and every action chunk the coordinator publishes, for the demo and for
evaluations that run through ROS."""
from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import rclpy
from rclpy.executors import SingleThreadedExecutor

from heisd_msgs.msg import ActionChunk, EpisodeStatus
from heisd_ros.core.stats import Branch
from heisd_ros.ros.qos import COMMAND
from heisd_ros.ros.spinner import BackgroundSpinner


@dataclass
class EpisodeRecord:
    episode: int
    seed: int
    success: bool
    steps: int
    reason: str
    held_steps: int
    chunks: list[ActionChunk] = field(default_factory=list)

    @property
    def fresh(self) -> list[ActionChunk]:
        return [c for c in self.chunks if c.source != ActionChunk.SOURCE_HOLD]


def chunk_summary(chunks: list[ActionChunk]) -> dict:
    """Latency, VLA passes, acceptance and branch mix over fresh chunks (one action each)."""
    fresh = [c for c in chunks if c.source != ActionChunk.SOURCE_HOLD]
    if not fresh:
        return {"actions": 0}
    lat = np.array([c.inference_latency for c in fresh]) * 1e3
    mix = Counter(Branch.from_source(c.source).value for c in fresh)
    drafted = sum(c.drafted_tokens for c in fresh)
    return {
        "actions": len(fresh),
        "latency_ms": {"mean": float(lat.mean()), "p50": float(np.percentile(lat, 50)), "p99": float(np.percentile(lat, 99))},
        "vla_forward_passes_per_action": float(np.mean([c.vla_forward_passes for c in fresh])),
        "mean_accepted_tokens": float(np.mean([c.accepted_tokens for c in fresh])),
        "acceptance_rate": float(sum(c.accepted_tokens for c in fresh) / drafted) if drafted else None,
        "branch_mix": {k: v / len(fresh) for k, v in sorted(mix.items())},
        "latency_ms_by_branch": {k: float(np.mean([c.inference_latency for c in fresh if Branch.from_source(c.source).value == k]) * 1e3)
                                 for k in sorted(mix)},
        "hold_ticks": len(chunks) - len(fresh),
    }


class GraphMonitor:
    """Subscribes to /sim_bridge/episode and the coordinator's chunks on its own rclpy context."""

    def __init__(self, name: str = "heisd_monitor", chunk_topic: str = "/coordinator/action_chunk",
                 status_topic: str = "/sim_bridge/episode") -> None:
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node(name, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.episodes: dict[int, EpisodeRecord] = {}
        self._chunks: list[ActionChunk] = []
        self._lock = threading.Lock()
        self.node.create_subscription(ActionChunk, chunk_topic, self._on_chunk, COMMAND)
        self.node.create_subscription(EpisodeStatus, status_topic, self._on_status, COMMAND)
        self.spinner = BackgroundSpinner(self.executor)

    def _on_chunk(self, msg: ActionChunk) -> None:
        with self._lock:
            self._chunks.append(msg)

    def _on_status(self, msg: EpisodeStatus) -> None:
        if not msg.done or msg.episode in self.episodes:
            return
        with self._lock:
            chunks, self._chunks = self._chunks, []
        self.episodes[msg.episode] = EpisodeRecord(msg.episode, msg.seed, msg.success, msg.step, msg.reason,
                                                   msg.held_steps, chunks)

    def wait_episodes(self, n: int, timeout_s: float, alive=lambda: True) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if len(self.episodes) >= n:
                return True
            if not alive():
                return False
            time.sleep(0.1)
        return False

    def close(self) -> None:
        self.spinner.stop()
        self.node.destroy_node()
        self.context.try_shutdown()
