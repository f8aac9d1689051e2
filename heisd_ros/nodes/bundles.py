"""Model bundles as the nodes load them: resolved by name or path, loaded once per process.

Each node loads only the part it serves: the kinematic encoder reads the
calibration, the retrieval cache node the datastore directory; only the
verifier, drafter and coordinator load networks.
"""
from __future__ import annotations

import functools

import numpy as np

from heisd_ros.bundle import Bundle, BundleError, load_bundle
from heisd_ros.bundle.format import RETRIEVAL_DIR
from heisd_ros.bundle.loader import load_calibration, resolve
from heisd_ros.core.errors import CorruptFileError
from heisd_ros.core.fused_metric import MetricConfig
from heisd_ros.core.observation import Observation
from heisd_ros.core.retrieval import RetrievalDatastore

bundle_path = resolve


@functools.lru_cache(maxsize=4)
def get_bundle(name: str, device: str = "cpu") -> Bundle:
    """The whole bundle (VLA, drafter, datastore, calibration), verified against its manifest."""
    return load_bundle(name, device=device)


def load_metric_config(name: str) -> MetricConfig:
    return load_calibration(resolve(name))[0]


def load_datastore(name: str) -> RetrievalDatastore:
    """Only the retrieval datastore of a bundle (its own manifest and checksums are verified)."""
    try:
        return RetrievalDatastore.load(resolve(name) / RETRIEVAL_DIR)
    except CorruptFileError as exc:
        raise BundleError(f"{resolve(name) / RETRIEVAL_DIR}: {exc}") from None


def example_observation(bundle: Bundle) -> Observation:
    """A valid, neutral observation for warm-up passes (grey images, zero joints, first task)."""
    joints = list(bundle.joint_names) + list(getattr(bundle.interface.inputs, "gripper_joints", []))
    size = bundle.image_size
    return bundle.make_observation(
        images={c: np.full((size, size, 3), 127, np.uint8) for c in bundle.camera_names},
        instruction=next(iter(bundle.tasks.values())), joint_names=joints, joint_positions=np.zeros(len(joints)),
        ee_position=np.zeros(3), ee_quaternion=np.array([0.0, 0.0, 0.0, 1.0]), gripper=1.0, stamp=0.0)
