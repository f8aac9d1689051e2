"""Retrieval cache: the bundle's hnswlib datastore behind ~/retrieve and ~/insert.

~/retrieve returns the top-K stored action sequences of the nearest observations
of the same task (Retrieve.srv; with ``follow`` also the entries after the top-1 in
its own episode, which HeiSD's ``skip_pick: continue`` executes on skipped steps); ~/insert adds a verified sequence online when
``online_insert`` is true. A grown store is saved atomically on shutdown when
``save_on_shutdown`` (to ``save_path``, or back into the bundle).
"""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from heisd_msgs.srv import InsertSequence, Retrieve
from heisd_ros.core.errors import HeisdError
from heisd_ros.core.joints import pick_by_name
from heisd_ros.core.retrieval import RetrievalDatastore
from heisd_ros.nodes.base import OK, HeisdNode, run
from heisd_ros.nodes.bundles import bundle_path, load_datastore
from heisd_ros.ros.qos import LATEST_REQUEST


class RetrievalCacheNode(HeisdNode):
    NODE_NAME = "retrieval_cache"

    def __init__(self, datastore: RetrievalDatastore | None = None) -> None:
        super().__init__()
        self.store = datastore if datastore is not None else load_datastore(self.params["bundle"])
        self.inserted = 0
        self._latency: list[float] = []
        self.create_service(Retrieve, "~/retrieve", self._retrieve, qos_profile=LATEST_REQUEST)
        self.create_service(InsertSequence, "~/insert", self._insert)
        sizes = {t: self.store.size(t) for t in self.store.tasks()}
        self.set_status(OK, f"serving {sum(sizes.values())} entries in {len(sizes)} task collections")
        self.get_logger().info(f"retrieval collections: {sizes}")

    def _joints(self, names: list[str], positions: list[float]) -> np.ndarray | None:
        if not positions:
            return None
        order = [n for n in self.params["joint_names"] if n]
        if not order:
            return np.asarray(positions, dtype=np.float64)
        return pick_by_name(order, names, np.asarray(positions), what="joints the store is keyed on")

    def _retrieve(self, req: Retrieve.Request, resp: Retrieve.Response) -> Retrieve.Response:
        start = time.perf_counter()
        try:
            joints = self._joints(list(req.joint_names), list(req.joint_positions))
            if joints is not None and not self.store.has_joints(req.instruction):
                joints = None
            hits = self.store.query(req.instruction, np.asarray(req.embedding, np.float32), k=max(1, int(req.k)),
                                    joint_positions=joints, follow=int(req.follow))
        except (HeisdError, ValueError, KeyError) as exc:
            self.count("failed_queries")
            resp.success, resp.message = False, f"{type(exc).__name__}: {exc}"
            return resp
        resp.success = True
        resp.count = len(hits)
        resp.horizon, resp.dimension = self.store.horizon, self.store.action_dim
        resp.sequence_length = int(np.asarray(hits[0].tokens).size) if hits else 0
        resp.tokens = [int(t) for h in hits for t in np.asarray(h.tokens).ravel()]
        resp.distances = [float(h.distance) for h in hits]
        resp.actions = [float(a) for h in hits for a in np.asarray(h.actions).ravel()]
        resp.episode_ids = [int(h.episode) for h in hits]
        resp.steps = [int(h.step) for h in hits]
        if hits and hits[0].following_tokens is not None:
            resp.follow_count = int(hits[0].following_tokens.shape[0])
            resp.follow_tokens = [int(t) for t in hits[0].following_tokens.ravel()]
            resp.follow_actions = [float(a) for a in hits[0].following_actions.ravel()]
        resp.latency = time.perf_counter() - start
        self._latency = (self._latency + [resp.latency])[-500:]
        self.count("queries")
        return resp

    def _insert(self, req: InsertSequence.Request, resp: InsertSequence.Response) -> InsertSequence.Response:
        if not self.params["online_insert"]:
            resp.success, resp.message = False, "online_insert is false"
            self.count("refused_inserts")
            return resp
        try:
            h, d = int(req.horizon), int(req.dimension)
            actions = np.asarray(req.actions, np.float64).reshape(h, d)
            tokens = np.asarray(req.tokens, np.int64).reshape(h * d)
            joints = self._joints(list(req.joint_names), list(req.joint_positions))
            resp.size = self.store.insert(req.instruction, np.asarray(req.embedding, np.float32), actions, tokens,
                                          int(req.episode_id), int(req.step), joint_positions=joints)
        except (HeisdError, ValueError, KeyError) as exc:
            self.count("failed_inserts")
            resp.success, resp.message = False, f"{type(exc).__name__}: {exc}"
            return resp
        self.inserted += 1
        self.count("inserts")
        resp.success = True
        return resp

    def save(self) -> Path:
        target = Path(self.params["save_path"]) if self.params["save_path"] else bundle_path(self.params["bundle"]) / "retrieval"
        self.store.save(target)
        self.get_logger().info(f"saved the retrieval store ({self.inserted} online inserts) to {target}")
        return target

    def close(self) -> None:
        if self.params["save_on_shutdown"] and self.inserted:
            try:
                self.save()
            except Exception as exc:  # noqa: BLE001 - report, never lose the shutdown
                self.get_logger().error(f"saving the retrieval store failed: {exc}")

    def diagnostic_values(self) -> dict[str, Any]:
        lat = np.asarray(self._latency) * 1e3
        values: dict[str, Any] = {"entries": sum(self.store.size(t) for t in self.store.tasks()), "online_inserts": self.inserted}
        if lat.size:
            values.update(latency_ms_mean=float(lat.mean()), latency_ms_p99=float(np.percentile(lat, 99)))
        return values


def main(args: list[str] | None = None) -> int:
    return run(RetrievalCacheNode, args)


if __name__ == "__main__":
    sys.exit(main())
