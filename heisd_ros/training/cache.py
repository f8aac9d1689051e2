"""``heisd build-cache``: the retrieval datastore of a bundle, built from the demonstrations.

One collection per task instruction; key = the VLA's ``embed(obs)`` (keypoints of
every camera + normalised proprio, computed by the CNN alone, so a lookup costs no
decoder pass); joint positions for the coarse bins; payload = the demonstration's
action chunk from that step on and its tokens. Space "l2": the key mixes
coordinates and standardised proprio, for which Euclidean distance is the natural
measure.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from heisd_ros.bundle.format import RETRIEVAL_DIR, VLA_DIR, read_interface
from heisd_ros.bundle.loader import load_network
from heisd_ros.core.errors import InvalidInputError
from heisd_ros.core.retrieval import RetrievalDatastore
from heisd_ros.training.demos import Episode, frames
from heisd_ros.training.fit import batch_tensors


@torch.no_grad()
def build_cache(bundle: Path, episodes: list[Episode], horizon: int | None = None, joint_bin_width: float = 0.25,
                batch_size: int = 512) -> dict:
    """Build and save ``bundle/retrieval`` from ``episodes``; returns the stage info (sizes, timing)."""
    bundle = Path(bundle)
    start = time.perf_counter()
    interface = read_interface(bundle)
    net = load_network(bundle / VLA_DIR)
    horizon = net.cfg.horizon if horizon is None else int(horizon)
    if horizon < net.cfg.horizon:
        raise InvalidInputError(f"cache horizon {horizon} is shorter than the VLA's {net.cfg.horizon}")
    data = frames(episodes, interface.inputs, net.prompt.ids, horizon)
    keys = np.concatenate([net.encode(*batch_tensors(data, np.arange(s, min(s + batch_size, len(data))))[:2])[1].numpy()
                           for s in range(0, len(data), batch_size)])
    joints = np.concatenate([interface.inputs.select_joints(ep.joint_names, ep.joint_positions) for ep in episodes])
    store = RetrievalDatastore(embed_dim=net.cfg.embed_dim, horizon=horizon, action_dim=net.cfg.action_dim,
                               joint_bin_width=joint_bin_width, space="l2")
    tokens = interface.tokenizer.encode(data.chunks).reshape(len(data), -1)
    seeds = np.array([ep.seed for ep in episodes])
    sizes = {}
    for instruction in sorted({ep.instruction for ep in episodes}):
        rows = np.flatnonzero([episodes[i].instruction == instruction for i in data.episode])
        store.build(instruction, keys[rows], data.chunks[rows], tokens[rows], seeds[data.episode[rows]], data.step[rows],
                    joint_positions=joints[rows])
        sizes[instruction] = int(rows.size)
    store.save(bundle / RETRIEVAL_DIR)
    return {"entries": sizes, "horizon": horizon, "embed_dim": net.cfg.embed_dim, "joint_bin_width": joint_bin_width,
            "joint_names": interface.inputs.joint_names, "build_s": time.perf_counter() - start}


def scope_statistics(store: RetrievalDatastore, keys: np.ndarray, joints: np.ndarray, instructions: list[str],
                     k: int = 5) -> dict:
    """Which level of the hierarchy answered each query (bin / neighbours / collection), and lookup latency."""
    scopes: dict[str, int] = {}
    times = []
    for key, q, instr in zip(keys, joints, instructions):
        t0 = time.perf_counter()
        hits = store.query(instr, key, k=k, joint_positions=q)
        times.append((time.perf_counter() - t0) * 1e3)
        scopes[hits[0].scope] = scopes.get(hits[0].scope, 0) + 1
    n = max(1, len(times))
    return {"scope_fraction": {s: c / n for s, c in sorted(scopes.items())},
            "lookup_ms_p50": float(np.median(times)) if times else 0.0,
            "lookup_ms_p99": float(np.percentile(times, 99)) if times else 0.0}
