"""Retrieval datastore benchmark: single-query latency and recall@k at VLA-cache scale.

Synthetic but structured data, so that the joint-bin filter behaves as on a robot:
episodes are smooth random walks in joint space, and the embedding is a fixed random
non-linear view of the joint state plus a per-episode scene offset and noise (the
camera sees the arm). Every index is built once and reused for every measurement.

Measured per embedding dimension, at N entries:
- plain query (task collection, no joint filter),
- joint-bin filtered query as configured by default (exact scoring of small scopes,
  over-fetch then filter callback for large ones),
- the same without exact scoring (exact_limit=0): over-fetch, then filter callback,
- the hnswlib filter callback only (exact_limit=0, overfetch=0),
each: p50/p99 latency of single queries (wall time of ``RetrievalDatastore.query``,
Python overhead included; and the thread's CPU time, which excludes preemption by
other processes on a shared machine) and recall@k against brute force over the same
scope. The callback-only mode is slow, so it runs on at most 200 of the queries.

Usage: python benchmarks/bench_retrieval.py [--n 100000] [--dims 128 512] [--queries 1000]
Uses one thread (the control loop's budget), so it never takes both cores.
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np

from heisd_ros.core.retrieval import RetrievalDatastore

TASK = "benchmark task"
HORIZON, ACTION_DIM, JOINTS = 4, 7, 7


def make_data(n: int, dim: int, rng: np.random.Generator, steps_per_episode: int = 250):
    episodes = np.arange(n) // steps_per_episode
    steps = np.arange(n) % steps_per_episode
    starts = rng.uniform(-1.5, 1.5, size=(episodes.max() + 1, JOINTS))
    increments = rng.normal(scale=0.02, size=(n, JOINTS))
    increments[steps == 0] = 0.0
    walk = np.cumsum(increments, axis=0)
    walk -= walk[episodes * steps_per_episode]  # restart the walk at each episode
    joints = starts[episodes] + walk
    view = np.tanh(joints @ rng.normal(size=(JOINTS, dim)))
    scene = rng.normal(scale=0.3, size=(episodes.max() + 1, dim))
    emb = (view + scene[episodes] + 0.05 * rng.normal(size=(n, dim))).astype(np.float32)
    actions = rng.uniform(-1, 1, size=(n, HORIZON, ACTION_DIM))
    tokens = rng.integers(0, 256, size=(n, HORIZON * ACTION_DIM))
    return emb, actions, tokens, episodes, steps, joints


def scope_rows(bins: np.ndarray, qbin: np.ndarray, scope: str) -> np.ndarray:
    """Rows the datastore searched for a query that reported ``scope`` (ground truth for recall)."""
    if scope == "bin":
        return np.flatnonzero((bins == qbin).all(axis=1))
    if scope == "neighbours":
        return np.flatnonzero(np.abs(bins - qbin).max(axis=1) <= 1)
    return np.arange(len(bins))


def measure(ds, queries, qjoints, unit, bins, keys, width, k):
    times, cpu, recalls, scopes = [], [], [], []
    for q, jq in zip(queries, qjoints):
        t0, c0 = time.perf_counter(), time.thread_time()
        hits = ds.query(TASK, q, k=k, joint_positions=jq)
        cpu.append(time.thread_time() - c0)
        times.append(time.perf_counter() - t0)
        scope = hits[0].scope
        scopes.append(scope)
        rows = scope_rows(bins, np.floor(jq / width).astype(np.int64), scope) if jq is not None else np.arange(len(bins))
        qn = q / np.linalg.norm(q)
        exact = rows[np.argsort(1.0 - unit[rows] @ qn, kind="stable")[:k]]
        got = {(h.episode, h.step) for h in hits}
        recalls.append(len(got & {keys[r] for r in exact.tolist()}) / k)
    wall, cpu_ms = np.array(times) * 1e3, np.array(cpu) * 1e3
    latency = [np.percentile(wall, 50), np.percentile(wall, 99), np.percentile(cpu_ms, 50), np.percentile(cpu_ms, 99)]
    return latency, float(np.mean(recalls)), scopes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--dims", type=int, nargs="+", default=[128, 512])
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--ef", type=int, default=64)
    parser.add_argument("--ef-construction", type=int, default=200)
    parser.add_argument("--joint-bin-width", type=float, default=0.25)
    args = parser.parse_args()
    rows_out = []
    for dim in args.dims:
        rng = np.random.default_rng(dim)
        emb, actions, tokens, episodes, steps, joints = make_data(args.n, dim, rng)
        keys = list(zip(episodes.tolist(), steps.tolist()))  # row -> (episode, step), unique
        ds = RetrievalDatastore(dim, HORIZON, ACTION_DIM, joint_bin_width=args.joint_bin_width, ef=args.ef,
                                ef_construction=args.ef_construction, num_threads=1)
        t0 = time.perf_counter()
        ds.build(TASK, emb, actions, tokens, episodes, steps, joints)
        build_s = time.perf_counter() - t0
        pick = rng.choice(args.n, args.queries, replace=False)
        queries = emb[pick] + 0.05 * rng.normal(size=(args.queries, dim)).astype(np.float32)
        qjoints = joints[pick] + rng.normal(scale=0.02, size=(args.queries, JOINTS))
        unit = emb / np.linalg.norm(emb, axis=1, keepdims=True)
        bins = np.floor(joints / args.joint_bin_width).astype(np.int64)
        for q in queries[:50]:  # warm-up
            ds.query(TASK, q, k=args.k)
        modes = (  # (label, exact_limit, overfetch, joint filter)
            ("plain", 2048, 4, False),
            ("joint-bin (default)", 2048, 4, True),
            ("joint-bin, overfetch+cb", 0, 4, True),
            ("joint-bin, callback only", 0, 0, True),
        )
        for label, exact_limit, overfetch, use_joints in modes:
            ds.exact_limit, ds.overfetch = exact_limit, overfetch
            count = len(queries) if exact_limit or overfetch else min(len(queries), 200)
            jq = qjoints[:count] if use_joints else [None] * count
            latency, recall, scopes = measure(ds, queries[:count], jq, unit, bins, keys, args.joint_bin_width, args.k)
            mix = {s: scopes.count(s) / len(scopes) for s in ("bin", "neighbours", "collection")}
            rows_out.append((dim, label, count, latency, recall, mix, build_s))
    print(f"\nRetrievalDatastore, N={args.n}, k={args.k}, ef={args.ef}, M=16, cosine, 1 thread, "
          f"joint bin width {args.joint_bin_width} rad, {args.queries} queries")
    print(f"load average at the end: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    head = ("dim", "mode", "queries", "wall p50", "wall p99", "cpu p50", "cpu p99", "recall@k", "scope bin/nbr/all", "build s")
    print(f"{head[0]:>5} {head[1]:<26} {head[2]:>7} " + " ".join(f"{h:>8}" for h in head[3:8]) + f"  {head[8]:<18} {head[9]:>7}")
    for dim, label, count, latency, recall, mix, build_s in rows_out:
        scope = f"{mix['bin']:.2f}/{mix['neighbours']:.2f}/{mix['collection']:.2f}"
        cols = " ".join(f"{v:>8.3f}" for v in latency)
        print(f"{dim:>5} {label:<26} {count:>7} {cols} {recall:>8.3f}  {scope:<18} {build_s:>7.1f}")
    print("latencies in ms")


if __name__ == "__main__":
    main()
