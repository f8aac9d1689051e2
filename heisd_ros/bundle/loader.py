"""Loading a model bundle: verify the manifest, then build the engine objects a deployment uses.

Why here and not in each node: the ROS nodes, the evaluation and the benchmarks all
need the same objects (VLA and drafter behind the VLAModel protocol, datastore,
metric config, the robot-signal -> Observation recipe, decoders by name), and they
must refuse a bad bundle with one clear message naming the bad file.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from heisd_ros.bundle.format import (
    CALIBRATION,
    DRAFTER_DIR,
    RETRIEVAL_DIR,
    VLA_DIR,
    BundleError,
    Interface,
    read_interface,
    read_json,
    verify,
)
from heisd_ros.core.decoding import build_decoder, skip_guard_options
from heisd_ros.core.drafters import ModelDrafter, RetrievalDrafter
from heisd_ros.core.errors import CorruptFileError, InvalidInputError
from heisd_ros.core.fused_metric import MetricConfig
from heisd_ros.core.model import VLAModel
from heisd_ros.core.observation import Observation
from heisd_ros.core.retrieval import RetrievalDatastore
from heisd_ros.core.tokenizer import ActionTokenizer
from heisd_ros.eval.methods import METHODS
from heisd_ros.vla.policy import SmallVLA

SHIPPED = Path(__file__).resolve().parents[1] / "bundles"


def resolve(name_or_path: str | Path) -> Path:
    """A bundle directory, or the name of one shipped in heisd_ros/bundles ("default")."""
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return path
    shipped = SHIPPED / str(name_or_path)
    if shipped.is_dir():
        return shipped
    raise BundleError(f"bundle {str(name_or_path)!r} is neither a directory nor a bundle shipped in {SHIPPED}")


def load_network(folder: Path, device: str = "cpu") -> SmallVLA:
    """A SmallVLA from ``folder`` (vla/ or drafter/), with BundleError on any bad file."""
    if not folder.is_dir():
        raise BundleError(f"{folder}: missing (model directory)")
    try:
        return SmallVLA.load(folder).to(device)
    except CorruptFileError as exc:
        raise BundleError(str(exc)) from None


def load_calibration(bundle: Path) -> tuple[MetricConfig, dict]:
    """The fused-metric config and the calibration record (how tau was chosen)."""
    path = Path(bundle) / CALIBRATION
    record = read_json(path, "calibration")
    try:
        return MetricConfig.from_dict(record["metric"]), record
    except (KeyError, TypeError, InvalidInputError) as exc:
        raise BundleError(f"{path}: invalid calibration ({exc})") from None


@dataclass
class Bundle:
    """Everything a deployment needs, loaded and verified (see load_bundle)."""

    path: Path
    manifest: dict
    interface: Interface
    vla_net: SmallVLA
    drafter_net: SmallVLA
    vla: VLAModel
    drafter_model: VLAModel
    datastore: RetrievalDatastore
    metric: MetricConfig
    calibration: dict = field(default_factory=dict)

    @property
    def tokenizer(self) -> ActionTokenizer:
        return self.interface.tokenizer

    @property
    def action_names(self) -> list[str]:
        return list(self.interface.action_names)

    @property
    def control_rate_hz(self) -> float:
        return self.interface.control_rate_hz

    @property
    def camera_names(self) -> list[str]:
        return list(self.interface.inputs.cameras)

    @property
    def image_size(self) -> int:
        return self.interface.inputs.image_size

    @property
    def joint_names(self) -> list[str]:
        return list(self.interface.inputs.joint_names)

    @property
    def tasks(self) -> dict[str, str]:
        return dict(self.interface.tasks)

    def make_observation(self, images: dict[str, np.ndarray], instruction: str, joint_names: list[str],
                         joint_positions: np.ndarray, ee_position: np.ndarray | None, ee_quaternion: np.ndarray | None,
                         gripper: float | None, stamp: float) -> Observation:
        """Robot signals (cameras, joint states by name, EE pose xyz + quaternion xyzw, gripper opening 1 = open) -> Observation."""
        return self.interface.inputs.observation(images, instruction, joint_names, joint_positions, ee_position,
                                                 ee_quaternion, gripper, stamp)

    def make_decoder(self, method: str, **overrides: Any):
        """A decoding strategy by name: "ar" | "drafter" | "retrieval" | "heisd".

        Overrides: ``tau`` (heisd; default the calibrated one), ``skip_schedule``
        (heisd: a SkipSchedule or a name for make_skip_schedule, default "fixed"),
        ``skip_count`` (with a schedule name: the fixed schedule's skips per verified
        step, the adaptive one's most), ``block_sum_threshold`` / ``block_max_threshold``
        (block acceptance, default 45 / 25 bins),
        ``skip_guard`` (heisd: "gripper", the default, verifies a skip that would open or
        close a gripper; "block" also verifies a skip whose retrieved chunk fails the block
        test against the last verified chunk, measured worse; "none" is the reference
        behaviour; HybridDecoder), ``skip_pick``
        (heisd: what a skipped step executes: "continue", the default, the next frame of the
        demonstration the latest lookup's top-1 came from; "top1", a fresh lookup's top-1 as
        in the reference; "nearest", the candidate nearest the last verified chunk;
        docs/evaluation.md),
        ``relax_radius`` (drafter token-relaxed acceptance, default 9), ``top_k``
        (retrieved candidates, default 5), ``acceptance`` (retrieval mode, default
        "block"), ``emit`` (tokens at accepted positions, AcceptanceConfig.emit:
        "verifier" for heisd, "draft" for the drafter and retrieval SD baselines, as
        their papers define them).
        """
        if method not in METHODS:
            raise InvalidInputError(f"unknown decoding method {method!r}; expected one of {METHODS}")
        block_keys = {"block_sum_threshold", "block_max_threshold"}
        allowed = {"ar": set(), "drafter": {"relax_radius", "emit"}, "retrieval": {"top_k", "acceptance", "emit"} | block_keys,
                   "heisd": {"tau", "skip_schedule", "skip_count", "skip_guard", "skip_pick", "relax_radius", "top_k", "acceptance", "emit"} | block_keys}[method]
        unknown = set(overrides) - allowed
        if unknown:
            raise InvalidInputError(f"method {method!r} takes overrides {sorted(allowed)}, got unknown {sorted(unknown)}")
        options = {k: v for k, v in overrides.items() if k not in ("tau", "top_k", "skip_guard")}
        options.setdefault("emit", "verifier" if method == "heisd" else "draft")
        if method == "heisd":
            options.update(skip_guard_options(overrides.get("skip_guard", "gripper"), self.action_names))
            options.setdefault("skip_pick", "continue")
        k = int(overrides.get("top_k", 5))
        return build_decoder(method, self.vla, lambda: ModelDrafter(self.drafter_model),
                             lambda follow=0: RetrievalDrafter(self.datastore, self.vla, k=k, follow=follow),
                             float(overrides.get("tau", self.metric.tau)), **options)


def load_bundle(name_or_path: str | Path = "default", device: str = "cpu") -> Bundle:
    """Load and verify a bundle ("default" = the one shipped with heisd_ros); BundleError says what is wrong."""
    path = resolve(name_or_path)
    manifest = verify(path)
    interface = read_interface(path)
    vla_net = load_network(path / VLA_DIR, device)
    drafter_net = load_network(path / DRAFTER_DIR, device)
    for which, net in (("vla", vla_net), ("drafter", drafter_net)):
        if net.cfg.action_dim != interface.tokenizer.dim or net.cfg.cameras != interface.inputs.cameras:
            raise BundleError(f"{path / which}: model config does not match {VLA_DIR}/interface.json (actions or cameras)")
    if not (path / RETRIEVAL_DIR).is_dir():
        raise BundleError(f"{path}: missing {RETRIEVAL_DIR}/ (run 'heisd build-cache')")
    try:
        datastore = RetrievalDatastore.load(path / RETRIEVAL_DIR)
    except CorruptFileError as exc:
        raise BundleError(f"{path / RETRIEVAL_DIR}: {exc}") from None
    metric, record = load_calibration(path)
    vla = vla_net.as_vla_model(interface.tokenizer)
    drafter = drafter_net.as_vla_model(interface.tokenizer)
    return Bundle(path, manifest, interface, vla_net, drafter_net, vla, drafter, datastore, metric, record)
