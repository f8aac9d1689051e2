"""Model bundles as the nodes load them: resolved by name or path, loaded once per process.

Each node loads only the part it serves (the retrieval cache node reads the
datastore directory, never the VLA weights).
"""
from __future__ import annotations

import functools
from pathlib import Path

from heisd_ros.core.fused_metric import MetricConfig
from heisd_ros.core.retrieval import RetrievalDatastore

SHIPPED = Path(__file__).resolve().parents[1] / "bundles"


def bundle_path(name: str) -> Path:
    """A directory path, or the name of a bundle shipped under heisd_ros/bundles/."""
    path = Path(name).expanduser()
    if path.is_dir():
        return path.resolve()
    shipped = SHIPPED / name
    if shipped.is_dir():
        return shipped
    known = sorted(p.name for p in SHIPPED.iterdir() if p.is_dir()) if SHIPPED.is_dir() else []
    raise FileNotFoundError(f"bundle {name!r} is neither a directory nor a shipped bundle (shipped: {', '.join(known) or 'none'})")


@functools.lru_cache(maxsize=4)
def get_bundle(name: str, device: str = "cpu"):
    """The whole bundle (VLA, drafter, datastore, calibration), verified against its manifest."""
    from heisd_ros.bundle import load_bundle

    return load_bundle(str(bundle_path(name)), device=device)


def load_metric_config(name: str) -> MetricConfig:
    return get_bundle(name).metric


def load_datastore(name: str) -> RetrievalDatastore:
    """Only the retrieval datastore of a bundle (its own manifest and checksums are verified)."""
    return RetrievalDatastore.load(bundle_path(name) / "retrieval")
