"""Hierarchical retrieval datastore on hnswlib (METHOD.md "The datastore").

Why a hierarchy: a retrieved draft is only useful if it comes from the same task and
a similar arm configuration, so a lookup narrows down in three levels:
1. task collection, chosen by the normalised instruction (lower-case, whitespace
   collapsed), one hnswlib index per task;
2. coarse joint-space filter: joint positions quantised by ``joint_bin_width``
   (``floor(q / width)`` per joint). Candidates come from the query's own bin; if it
   holds fewer than k entries, from the bins within one step in every joint
   (Chebyshev distance 1); if those are still too few, from the whole collection;
3. nearest neighbours over the observation embedding inside that scope.
How the scoped search runs was chosen by measurement (benchmarks/bench_retrieval.py,
100k entries): hnswlib's filter callback is slow for small scopes (~5 ms p50 when a
bin holds a few hundred of 20k rows: the graph walk visits most of the index), so a
scope of at most ``exact_limit`` rows is scored exactly by brute force over a float32
copy of the stored vectors (tens of microseconds). Larger scopes over-fetch
``max(ef, overfetch * k)`` plain neighbours and keep those in scope (as cheap as a
plain query, since ef dominates); only if fewer than k survive does the filter
callback run. The vector copy costs ``4 * embed_dim`` bytes per entry.

Entries: embedding (key), the (H, D) action chunk and its (H*D,) bin tokens,
episode and step, and optionally the joint positions. ``query(..., follow=n)`` also
returns, with the top-1 hit, the entries that follow it in its own demonstration
(steps s + H, s + 2H, ... of the same episode, up to n, stopping at the episode's end):
HeiSD's verify-skip can then continue that demonstration on skipped steps without
another lookup (``skip_pick="continue"``, core/decoding.py). A store on disk is a directory
with one hnswlib index and one ``.npz`` payload per collection and ``manifest.json``
(format version + sha256 of every file); ``save`` is atomic.
"""
from __future__ import annotations

import json
import logging
import math
import os
import shutil
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hnswlib
import numpy as np

from heisd_ros.core.checksums import read_json_object, sha256_file
from heisd_ros.core.errors import CorruptFileError, EmptyIndexError, InvalidInputError, UnknownTaskError

log = logging.getLogger(__name__)

FORMAT_NAME = "heisd-retrieval-datastore"
FORMAT_VERSION = 1
_MANIFEST = "manifest.json"
_SPACES = ("cosine", "ip", "l2")
_MIN_CAPACITY = 64


def normalize_task(task: str) -> str:
    """Canonical collection name of an instruction: lower-case, whitespace collapsed."""
    if not isinstance(task, str) or not task.strip():
        raise InvalidInputError(f"task must be a non-empty instruction string, got {task!r}")
    return " ".join(task.lower().split())


@dataclass
class RetrievalHit:
    """One retrieved entry. ``scope`` says which level of the hierarchy it came from:
    "bin" (same joint bin), "neighbours" (adjacent bins) or "collection" (no filter)."""

    tokens: np.ndarray
    actions: np.ndarray
    distance: float
    episode: int
    step: int
    scope: str = "collection"
    following_tokens: np.ndarray | None = None  # (m, H*D): the entries after this one in its episode (query follow)
    following_actions: np.ndarray | None = None  # (m, H, D)


class _Collection:
    """One task: an hnswlib index plus payload arrays indexed by hnswlib label (= row)."""

    def __init__(self, store: "RetrievalDatastore", joint_dim: int | None, capacity: int, index_file: Path | None = None) -> None:
        """A new empty collection, or (``index_file``) one whose index is read from disk."""
        self.joint_dim = joint_dim
        self.size = 0
        self.capacity = max(_MIN_CAPACITY, int(capacity))
        self.index = hnswlib.Index(space=store.space, dim=store.embed_dim)
        if index_file is None:
            self.index.init_index(max_elements=self.capacity, ef_construction=store.ef_construction, M=store.M)
        else:
            self.index.load_index(str(index_file), max_elements=self.capacity)
        self.index.set_num_threads(store.num_threads)
        self.index.set_ef(store.ef)
        h, d = store.horizon, store.action_dim
        self.actions = np.zeros((self.capacity, h, d))
        self.tokens = np.zeros((self.capacity, h * d), dtype=np.int64)
        self.episodes = np.zeros(self.capacity, dtype=np.int64)
        self.steps = np.zeros(self.capacity, dtype=np.int64)
        self.joints = np.zeros((self.capacity, joint_dim or 0))
        self.row_bin = np.zeros(self.capacity, dtype=np.int64)
        self.vectors = np.zeros((self.capacity, store.embed_dim), dtype=np.float32)  # as hnswlib stores them
        self.bin_rows: list[list[int]] = []
        self.row_of: dict[tuple[int, int], int] = {}  # (episode, step) -> row, for query(follow=...)
        # joint bins: key tuple -> small integer id; arrays over ids grow by doubling; keys are
        # stored joint-major so the neighbour scan can narrow down one joint at a time
        self.bin_ids: dict[tuple[int, ...], int] = {}
        self._bin_keys = np.zeros((joint_dim or 0, _MIN_CAPACITY), dtype=np.int32)
        self._bin_counts = np.zeros(_MIN_CAPACITY, dtype=np.int64)

    @property
    def bin_keys(self) -> np.ndarray:
        """(J, n_bins) integer bin coordinates."""
        return self._bin_keys[:, : len(self.bin_ids)]

    @property
    def bin_counts(self) -> np.ndarray:
        return self._bin_counts[: len(self.bin_ids)]

    def _grow(self, needed: int) -> None:
        if needed <= self.capacity:
            return
        new_cap = max(needed, 2 * self.capacity)
        self.index.resize_index(new_cap)
        for name in ("actions", "tokens", "episodes", "steps", "joints", "row_bin", "vectors"):
            old = getattr(self, name)
            grown = np.zeros((new_cap,) + old.shape[1:], dtype=old.dtype)
            grown[: self.size] = old[: self.size]
            setattr(self, name, grown)
        self.capacity = new_cap

    def add(self, store: "RetrievalDatastore", emb, actions, tokens, episodes, steps, joints) -> None:
        """Index ``emb`` under the next labels and store their payload."""
        self._grow(self.size + emb.shape[0])
        self.index.add_items(emb, np.arange(self.size, self.size + emb.shape[0]), num_threads=store.num_threads)
        if store.space == "cosine":
            emb = emb / np.linalg.norm(emb, axis=1, keepdims=True)
        self.add_payload(store, emb, actions, tokens, episodes, steps, joints)

    def add_payload(self, store: "RetrievalDatastore", vectors, actions, tokens, episodes, steps, joints) -> None:
        """Store payload rows for labels already in the index (also used by load)."""
        start, end = self.size, self.size + actions.shape[0]
        self._grow(end)
        self.vectors[start:end] = vectors
        self.actions[start:end] = actions
        self.tokens[start:end] = tokens
        self.episodes[start:end] = episodes
        self.steps[start:end] = steps
        self.row_of.update(zip(zip(self.episodes[start:end].tolist(), self.steps[start:end].tolist()), range(start, end)))
        if self.joint_dim:
            self.joints[start:end] = joints
            keys = np.floor(joints / store.joint_bin_width).astype(np.int64)
            for row, key in enumerate(map(tuple, keys.tolist()), start=start):
                bid = self._bin_id(key)
                self.row_bin[row] = bid
                self.bin_rows[bid].append(row)
        self.size = end

    def _bin_id(self, key: tuple[int, ...]) -> int:
        bid = self.bin_ids.get(key)
        if bid is None:
            bid = len(self.bin_ids)
            if bid == len(self._bin_counts):
                self._bin_keys = np.concatenate([self._bin_keys, np.zeros_like(self._bin_keys)], axis=1)
                self._bin_counts = np.concatenate([self._bin_counts, np.zeros_like(self._bin_counts)])
            self.bin_ids[key] = bid
            self._bin_keys[:, bid] = key
            self.bin_rows.append([])
        self._bin_counts[bid] += 1
        return bid


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class RetrievalDatastore:
    """Task collections of (embedding -> action chunk) entries with a joint-space coarse filter.

    Not safe for concurrent writers across processes; within a process an internal
    lock serialises inserts and queries.
    """

    def __init__(
        self,
        embed_dim: int,
        horizon: int,
        action_dim: int,
        joint_bin_width: float = 0.25,
        ef: int = 64,
        M: int = 16,
        space: str = "cosine",
        ef_construction: int = 200,
        overfetch: int = 4,
        exact_limit: int = 2048,
        num_threads: int = 1,
    ) -> None:
        for name, value in (("embed_dim", embed_dim), ("horizon", horizon), ("action_dim", action_dim),
                            ("ef", ef), ("M", M), ("ef_construction", ef_construction), ("num_threads", num_threads)):
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                raise InvalidInputError(f"{name} must be an integer >= 1, got {value!r}")
        if not isinstance(exact_limit, (int, np.integer)) or exact_limit < 0:
            raise InvalidInputError(f"exact_limit must be an integer >= 0 (0 = never brute force), got {exact_limit!r}")
        if not isinstance(overfetch, (int, np.integer)) or overfetch < 0:
            raise InvalidInputError(f"overfetch must be an integer >= 0 (0 = always use the filter callback), got {overfetch!r}")
        if not (isinstance(joint_bin_width, (int, float)) and math.isfinite(joint_bin_width) and joint_bin_width > 0):
            raise InvalidInputError(f"joint_bin_width must be a finite number > 0, got {joint_bin_width!r}")
        if space not in _SPACES:
            raise InvalidInputError(f"space must be one of {_SPACES}, got {space!r}")
        self.embed_dim = int(embed_dim)
        self.horizon = int(horizon)
        self.action_dim = int(action_dim)
        self.joint_bin_width = float(joint_bin_width)
        self.ef = int(ef)
        self.M = int(M)
        self.space = space
        self.ef_construction = int(ef_construction)
        self.overfetch = int(overfetch)
        self.exact_limit = int(exact_limit)
        self.num_threads = int(num_threads)
        self._collections: dict[str, _Collection] = {}
        self._lock = threading.RLock()

    # ------------------------------------------------------------ validation
    def _embeddings(self, x: Any, n: int | None) -> np.ndarray:
        arr = np.asarray(x, dtype=np.float32)
        if arr.ndim == 1:
            arr = arr[None]
        if arr.ndim != 2 or arr.shape[1] != self.embed_dim or (n is not None and arr.shape[0] != n):
            want = f"({n}, {self.embed_dim})" if n is not None else f"({self.embed_dim},)"
            raise InvalidInputError(f"embedding must have shape {want}, got {np.shape(x)}")
        if not np.all(np.isfinite(arr)):
            raise InvalidInputError("embedding contains NaN or inf")
        if self.space == "cosine" and np.any(np.linalg.norm(arr, axis=1) == 0):
            raise InvalidInputError("a zero embedding has no cosine distance")
        return arr

    def _payload(self, actions, tokens, episodes, steps, joint_positions, n: int):
        h, d = self.horizon, self.action_dim
        acts = np.asarray(actions, dtype=np.float64)
        if acts.shape != (n, h, d):
            raise InvalidInputError(f"actions must have shape ({n}, {h}, {d}) = (N, horizon, action_dim), got {acts.shape}")
        if not np.all(np.isfinite(acts)):
            raise InvalidInputError("actions contain NaN or inf")
        toks = np.asarray(tokens)
        if toks.shape in ((n, h, d), (n, h * d)):
            toks = toks.reshape(n, h * d)
        else:
            raise InvalidInputError(f"tokens must have shape ({n}, {h * d}) or ({n}, {h}, {d}), got {toks.shape}")
        if toks.dtype.kind not in "iu" or (toks.size and toks.min() < 0):
            raise InvalidInputError(f"tokens must be non-negative integer bin indices, got dtype {toks.dtype}")
        meta = []
        for name, values in (("episodes", episodes), ("steps", steps)):
            arr = np.asarray(values)
            if arr.shape != (n,) or arr.dtype.kind not in "iu":
                raise InvalidInputError(f"{name} must be {n} integers, got shape {arr.shape} dtype {arr.dtype}")
            meta.append(arr.astype(np.int64))
        joints = None
        if joint_positions is not None:
            joints = np.asarray(joint_positions, dtype=np.float64)
            if joints.ndim != 2 or joints.shape[0] != n or joints.shape[1] == 0:
                raise InvalidInputError(f"joint_positions must have shape ({n}, J), got {joints.shape}")
            if not np.all(np.isfinite(joints)):
                raise InvalidInputError("joint_positions contain NaN or inf")
            if np.abs(joints).max(initial=0.0) / self.joint_bin_width >= 2**31 - 1:
                raise InvalidInputError(f"joint_positions too large for bins of width {self.joint_bin_width}")
        return acts, toks.astype(np.int64), meta[0], meta[1], joints

    def _collection(self, task: str) -> _Collection:
        name = normalize_task(task)
        coll = self._collections.get(name)
        if coll is None:
            raise UnknownTaskError(f"no retrieval collection for task {name!r}; known tasks: {sorted(self._collections)}")
        return coll

    # ------------------------------------------------------------ writing
    def build(self, task: str, embeddings, actions, tokens, episodes, steps, joint_positions=None) -> None:
        """Create (or replace) the collection of ``task`` from N demonstration entries (N may be 0)."""
        name = normalize_task(task)
        n = int(np.shape(embeddings)[0]) if np.ndim(embeddings) == 2 else -1
        if n < 0:
            raise InvalidInputError(f"embeddings must have shape (N, {self.embed_dim}), got {np.shape(embeddings)}")
        emb = self._embeddings(embeddings, n) if n else np.zeros((0, self.embed_dim), np.float32)
        acts, toks, eps, stp, joints = self._payload(actions, tokens, episodes, steps, joint_positions, n)
        coll = _Collection(self, None if joints is None else joints.shape[1], n)
        if n:
            coll.add(self, emb, acts, toks, eps, stp, joints)
        with self._lock:
            self._collections[name] = coll

    def insert(self, task: str, embedding, actions, tokens, episode: int, step: int, joint_positions=None) -> int:
        """Append one entry online (creating the collection if needed); returns the collection size."""
        name = normalize_task(task)
        emb = self._embeddings(embedding, 1)
        joints = None if joint_positions is None else np.asarray(joint_positions, dtype=np.float64).reshape(1, -1)
        acts, toks, eps, stp, joints = self._payload(
            np.asarray(actions)[None], np.asarray(tokens)[None], [episode], [step], joints, 1
        )
        with self._lock:
            coll = self._collections.get(name)
            if coll is None:
                coll = self._collections[name] = _Collection(self, None if joints is None else joints.shape[1], 1)
            self._check_joints(coll, None if joints is None else joints[0], name, "insert")
            coll.add(self, emb, acts, toks, eps, stp, joints)
            return coll.size

    @staticmethod
    def _check_joints(coll: _Collection, joints: np.ndarray | None, name: str, what: str) -> None:
        if joints is None:
            if coll.joint_dim and what == "insert":
                raise InvalidInputError(f"collection {name!r} stores joint positions ({coll.joint_dim}); insert must give them")
            return
        if not coll.joint_dim:
            raise InvalidInputError(f"collection {name!r} has no joint positions; pass joint_positions=None")
        if joints.shape != (coll.joint_dim,):
            raise InvalidInputError(f"joint_positions must have shape ({coll.joint_dim},), got {joints.shape}")
        if not np.all(np.isfinite(joints)):
            raise InvalidInputError("joint_positions contain NaN or inf")

    # ------------------------------------------------------------ reading
    def tasks(self) -> list[str]:
        """Normalised names of all collections, sorted."""
        return sorted(self._collections)

    def size(self, task: str) -> int:
        """Number of entries in the collection of ``task``."""
        return self._collection(task).size

    def has_joints(self, task: str) -> bool:
        """Whether the collection of ``task`` stores joint positions (enables the coarse filter)."""
        return bool(self._collection(task).joint_dim)

    def query(self, task: str, embedding, k: int = 5, joint_positions=None, follow: int = 0) -> list[RetrievalHit]:
        """Up to k nearest entries of ``task``, ascending distance (see module docstring for the hierarchy).

        follow: also return up to this many entries that follow the top-1 hit in its own
        episode (``following_tokens`` / ``following_actions`` of hits[0]).
        """
        if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
            raise InvalidInputError(f"k must be an integer >= 1, got {k!r}")
        if not isinstance(follow, (int, np.integer)) or isinstance(follow, bool) or follow < 0:
            raise InvalidInputError(f"follow must be an integer >= 0, got {follow!r}")
        emb = self._embeddings(embedding, 1)
        joints = None if joint_positions is None else np.asarray(joint_positions, dtype=np.float64)
        with self._lock:
            coll = self._collection(task)
            self._check_joints(coll, joints, normalize_task(task), "query")
            if coll.size == 0:
                raise EmptyIndexError(f"retrieval collection {normalize_task(task)!r} is empty")
            k = min(int(k), coll.size)
            scope, bins = ("collection", None) if joints is None else self._scope(coll, joints, k)
            labels, dists = self._search(coll, emb, k, bins)
            hits = [
                RetrievalHit(
                    tokens=coll.tokens[i].copy(),
                    actions=coll.actions[i].copy(),
                    distance=float(dist),
                    episode=int(coll.episodes[i]),
                    step=int(coll.steps[i]),
                    scope=scope,
                )
                for i, dist in zip(labels.tolist(), dists.tolist())
            ]
            if follow and hits:
                rows = self._following(coll, hits[0].episode, hits[0].step, int(follow))
                hits[0].following_tokens = coll.tokens[rows].copy()
                hits[0].following_actions = coll.actions[rows].copy()
            return hits

    def _following(self, coll: _Collection, episode: int, step: int, n: int) -> list[int]:
        """Rows of the entries at steps step + H, step + 2H, ... of ``episode``, up to n, until one is missing."""
        rows = []
        for j in range(1, n + 1):
            row = coll.row_of.get((episode, step + j * self.horizon))
            if row is None:
                break
            rows.append(row)
        return rows

    def _scope(self, coll: _Collection, joints: np.ndarray, k: int) -> tuple[str, np.ndarray | None]:
        """Narrowest joint-bin scope with >= k entries: (name, bin ids, or None for the whole collection)."""
        key = np.floor(joints / self.joint_bin_width).astype(np.int64)
        own = coll.bin_ids.get(tuple(key.tolist()))
        if own is not None and coll.bin_counts[own] >= k:
            return "bin", np.array([own])
        keys = coll.bin_keys
        near = np.flatnonzero(np.abs(keys[0] - key[0]) <= 1)  # Chebyshev distance <= 1, joint by joint
        for j in range(1, len(key)):
            near = near[np.abs(keys[j, near] - key[j]) <= 1]
        if coll.bin_counts[near].sum() >= k:
            return "neighbours", near
        return "collection", None

    def _search(self, coll: _Collection, emb: np.ndarray, k: int, bins: np.ndarray | None):
        """k nearest labels (and distances) among the rows of ``bins`` (all rows if None)."""
        index = coll.index
        if bins is None:
            index.set_ef(max(self.ef, k))
            labels, dists = index.knn_query(emb, k=k)
            return labels[0], dists[0]
        if coll.bin_counts[bins].sum() <= self.exact_limit:
            rows = np.fromiter((r for b in bins.tolist() for r in coll.bin_rows[b]), dtype=np.int64)
            dist = self._distances(coll.vectors[rows], emb[0])
            top = np.argpartition(dist, k - 1)[:k] if len(rows) > k else np.arange(len(rows))
            top = top[np.argsort(dist[top], kind="stable")]
            return rows[top], dist[top]
        wanted = np.zeros(len(coll.bin_counts), dtype=bool)
        wanted[bins] = True
        if self.overfetch:
            fetch = min(coll.size, max(self.ef, self.overfetch * k))
            index.set_ef(max(self.ef, fetch))
            labels, dists = index.knn_query(emb, k=fetch)
            keep = wanted[coll.row_bin[labels[0]]]
            if keep.sum() >= k:
                return labels[0][keep][:k], dists[0][keep][:k]
        allowed = wanted[coll.row_bin[: coll.size]]
        index.set_ef(max(self.ef, k))
        labels, dists = index.knn_query(emb, k=k, filter=lambda label: bool(allowed[label]))
        return labels[0], dists[0]

    def _distances(self, vecs: np.ndarray, q: np.ndarray) -> np.ndarray:
        """hnswlib's distance from q to rows stored as hnswlib stores them (cosine: unit vectors)."""
        if self.space == "l2":
            return np.sum((vecs - q) ** 2, axis=1)
        if self.space == "cosine":
            q = q / np.linalg.norm(q)
        return 1.0 - vecs @ q

    # ------------------------------------------------------------ persistence
    def _settings(self) -> dict:
        return {
            "embed_dim": self.embed_dim,
            "horizon": self.horizon,
            "action_dim": self.action_dim,
            "joint_bin_width": self.joint_bin_width,
            "ef": self.ef,
            "M": self.M,
            "space": self.space,
            "ef_construction": self.ef_construction,
            "overfetch": self.overfetch,
            "exact_limit": self.exact_limit,
        }

    def save(self, path: str | os.PathLike) -> None:
        """Write the store to directory ``path`` atomically.

        Everything is written and fsynced in a sibling temp directory, which then
        replaces ``path`` by rename. A previous store at ``path`` is first renamed to
        ``<path>.old`` and deleted after the swap; if the process dies between the
        two renames, ``load`` finds the complete old store there. A killed save
        leaves at most a ``<path>.tmp-*`` directory behind, never a partial ``path``.
        """
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.parent / f"{target.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        try:
            with self._lock:
                manifest = self._write_files(tmp)
            (tmp / _MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True))
            _fsync_file(tmp / _MANIFEST)
            _fsync_dir(tmp)
            backup = target.parent / f"{target.name}.old"
            if backup.exists():
                shutil.rmtree(backup)
            if target.exists():
                os.rename(target, backup)
            os.rename(tmp, target)
            _fsync_dir(target.parent)
            shutil.rmtree(backup, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def _write_files(self, folder: Path) -> dict:
        collections, checksums = [], {}
        for i, (name, coll) in enumerate(sorted(self._collections.items())):
            stem = f"c{i:04d}"
            n = coll.size
            index_file, payload_file = f"{stem}.hnsw", f"{stem}.npz"
            if n:
                coll.index.save_index(str(folder / index_file))
            arrays = {
                "actions": coll.actions[:n],
                "tokens": coll.tokens[:n],
                "episodes": coll.episodes[:n],
                "steps": coll.steps[:n],
            }
            if coll.joint_dim:
                arrays["joint_positions"] = coll.joints[:n]
            with open(folder / payload_file, "wb") as fh:
                np.savez(fh, **arrays)
            files = [payload_file] + ([index_file] if n else [])
            for f in files:
                _fsync_file(folder / f)
                checksums[f] = sha256_file(folder / f)
            collections.append({"task": name, "size": n, "joint_dim": coll.joint_dim, "index": index_file if n else None,
                                "payload": payload_file})
        return {"format": FORMAT_NAME, "version": FORMAT_VERSION, "settings": self._settings(),
                "collections": collections, "checksums": checksums}

    @classmethod
    def load(cls, path: str | os.PathLike) -> "RetrievalDatastore":
        """Read a store written by ``save``; any mismatch raises CorruptFileError saying what is wrong."""
        folder = Path(path)
        if not folder.exists() and Path(f"{folder}.old").is_dir():
            log.warning("retrieval store %s missing; loading the previous copy left by an interrupted save", folder)
            folder = Path(f"{folder}.old")
        manifest_path = folder / _MANIFEST
        if not manifest_path.is_file():
            raise CorruptFileError(f"{folder}: no {_MANIFEST}; not a retrieval datastore (or a truncated copy)")
        manifest = read_json_object(manifest_path, "manifest", CorruptFileError)
        if manifest.get("format") != FORMAT_NAME:
            raise CorruptFileError(f"{manifest_path}: format is {manifest.get('format')!r}, expected {FORMAT_NAME!r}")
        if manifest.get("version") != FORMAT_VERSION:
            raise CorruptFileError(
                f"{manifest_path}: format version {manifest.get('version')!r}; this heisd_ros reads version {FORMAT_VERSION}"
            )
        try:
            checksums: dict = manifest["checksums"]
            entries: list = manifest["collections"]
            store = cls(**manifest["settings"])
        except (KeyError, TypeError, InvalidInputError) as exc:
            raise CorruptFileError(f"{manifest_path}: incomplete or invalid manifest ({exc})") from None
        for fname, digest in checksums.items():
            fpath = folder / fname
            if not fpath.is_file():
                raise CorruptFileError(f"{folder}: file {fname} listed in the manifest is missing")
            if sha256_file(fpath) != digest:
                raise CorruptFileError(f"{fpath}: sha256 mismatch (file corrupted or modified after save)")
        for entry in entries:
            store._load_collection(folder, entry, checksums)
        return store

    def _load_collection(self, folder: Path, entry: dict, checksums: dict) -> None:
        try:
            name, n, joint_dim = entry["task"], int(entry["size"]), entry["joint_dim"]
            files = [entry["payload"]] + ([entry["index"]] if n else [])
        except (KeyError, TypeError, ValueError) as exc:
            raise CorruptFileError(f"{folder}: bad collection entry in manifest ({exc})") from None
        if joint_dim is not None and (not isinstance(joint_dim, int) or joint_dim < 1):
            raise CorruptFileError(f"{folder}: collection {name!r} has invalid joint_dim {joint_dim!r}")
        unchecked = [f for f in files if f not in checksums]
        if unchecked:
            raise CorruptFileError(f"{folder}: manifest has no checksum for {unchecked}")
        try:
            with np.load(folder / entry["payload"], allow_pickle=False) as data:
                arrays = {key: data[key] for key in data.files}
        except (OSError, ValueError) as exc:
            raise CorruptFileError(f"{folder / entry['payload']}: unreadable payload ({exc})") from None
        try:
            acts, toks, eps, stp, joints = self._payload(
                arrays["actions"], arrays["tokens"], arrays["episodes"], arrays["steps"], arrays.get("joint_positions"), n
            )
        except (KeyError, InvalidInputError) as exc:
            raise CorruptFileError(f"{folder / entry['payload']}: payload does not match the manifest ({exc})") from None
        if (joints is None) != (not joint_dim):
            raise CorruptFileError(f"{folder / entry['payload']}: joint positions disagree with the manifest")
        index_file = folder / entry["index"] if n else None
        try:
            coll = _Collection(self, joint_dim, n, index_file)
        except RuntimeError as exc:
            raise CorruptFileError(f"{index_file}: unreadable hnswlib index ({exc})") from None
        if coll.index.get_current_count() != n:
            raise CorruptFileError(f"{index_file}: index holds {coll.index.get_current_count()} entries, manifest says {n}")
        if n:
            vectors = coll.index.get_items(np.arange(n), return_type="numpy").astype(np.float32)
            coll.add_payload(self, vectors, acts, toks, eps, stp, joints)
        self._collections[name] = coll
