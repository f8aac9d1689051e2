"""The model bundle on disk: layout, component files and the manifest that seals them.

Layout (one directory)::

    manifest.json        format + version, heisd_ros version, created, build commands,
                         source data (with sha256), seeds, metrics, sha256 of every file
    vla/                 config.json, model.safetensors, interface.json
    drafter/             config.json, model.safetensors (same interface as the VLA)
    retrieval/           RetrievalDatastore.save (its own manifest and checksums)
    calibration.json     fused-metric window, alpha, ranges, tau and how tau was chosen
    README.md            what it is, how it was built, measured numbers

``interface.json`` is everything a deployment needs to talk to the VLA: the action
tokenizer (q01/q99, gripper mask), action names, control rate, the input recipe
(cameras, image size, joints, proprio statistics) and the tasks (name ->
instruction). Every build stage rewrites the manifest (``seal``), so a bundle
directory is consistent after each command. No pickle anywhere.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from heisd_ros import __version__
from heisd_ros.core.checksums import read_json_object, sha256_file
from heisd_ros.core.errors import CorruptFileError, InvalidInputError
from heisd_ros.core.tokenizer import ActionTokenizer
from heisd_ros.vla.inputs import InputSpec

FORMAT_NAME = "heisd-model-bundle"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
VLA_DIR = "vla"
DRAFTER_DIR = "drafter"
RETRIEVAL_DIR = "retrieval"
CALIBRATION = "calibration.json"
README = "README.md"
INTERFACE = "interface.json"


class BundleError(CorruptFileError):
    """A bundle that cannot be used: missing or corrupt file, wrong format version, incomplete build."""


def sha256_tree(path: Path) -> str:
    """Digest of a file, or of a directory's files (relative names + contents, sorted)."""
    path = Path(path)
    if path.is_file():
        return sha256_file(path)
    digest = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(str(f.relative_to(path)).encode())
        digest.update(sha256_file(f).encode())
    return digest.hexdigest()


@dataclass
class Interface:
    """Contents of vla/interface.json (see module docstring)."""

    tokenizer: ActionTokenizer
    action_names: list[str]
    control_rate_hz: float
    inputs: InputSpec
    tasks: dict[str, str]

    def __post_init__(self) -> None:
        if len(self.action_names) != self.tokenizer.dim:
            raise InvalidInputError(f"{len(self.action_names)} action names for a tokenizer of dimension {self.tokenizer.dim}")
        if not self.control_rate_hz > 0:
            raise InvalidInputError(f"control_rate_hz must be > 0, got {self.control_rate_hz}")
        if not self.tasks:
            raise InvalidInputError("a bundle must name at least one task")

    def to_dict(self) -> dict:
        return {"tokenizer": self.tokenizer.to_dict(), "action_names": self.action_names,
                "control_rate_hz": self.control_rate_hz, "inputs": self.inputs.to_dict(), "tasks": self.tasks}

    @classmethod
    def from_dict(cls, d: dict) -> "Interface":
        try:
            return cls(ActionTokenizer.from_dict(d["tokenizer"]), list(d["action_names"]), float(d["control_rate_hz"]),
                       InputSpec.from_dict(d["inputs"]), dict(d["tasks"]))
        except (KeyError, TypeError) as exc:
            raise InvalidInputError(f"interface lacks or mistypes a field: {exc}") from None


def write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    os.replace(tmp, path)


def read_json(path: Path, what: str) -> dict:
    """A JSON object from ``path``; BundleError naming the file if missing or unreadable."""
    return read_json_object(path, what, BundleError)


def read_interface(bundle: Path) -> Interface:
    path = Path(bundle) / VLA_DIR / INTERFACE
    try:
        return Interface.from_dict(read_json(path, "VLA interface"))
    except InvalidInputError as exc:
        raise BundleError(f"{path}: {exc}") from None


def sealed_files(bundle: Path) -> dict[str, str]:
    """sha256 of every file in the bundle except the manifest itself, by relative POSIX path."""
    bundle = Path(bundle)
    return {p.relative_to(bundle).as_posix(): sha256_file(p) for p in sorted(bundle.rglob("*"))
            if p.is_file() and p.name != MANIFEST and ".tmp" not in p.name}


def seal(bundle: Path, stage: str | None = None, info: dict | None = None, sources: list[dict] | None = None,
         command: str | None = None) -> dict:
    """Record one build stage's info (seeds, settings, metrics, the command that ran it) and re-checksum every file."""
    bundle = Path(bundle)
    path = bundle / MANIFEST
    manifest = read_json(path, "bundle manifest") if path.is_file() else {"stages": {}, "sources": []}
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    manifest.update({"format": FORMAT_NAME, "format_version": FORMAT_VERSION, "heisd_ros_version": __version__,
                     "created": manifest.get("created", now), "updated": now})
    if stage is not None:
        entry = dict(info or {})
        entry["command"] = command if command is not None else " ".join(sys.argv)
        entry["finished"] = now
        manifest["stages"][stage] = entry
    if sources is not None:
        manifest["sources"] = sources
    manifest["seeds"] = {name: s["seed"] for name, s in manifest["stages"].items() if "seed" in s}
    manifest["metrics"] = {name: s["metrics"] for name, s in manifest["stages"].items() if "metrics" in s}
    manifest["files"] = sealed_files(bundle)
    write_json(path, manifest)
    return manifest


def verify(bundle: Path) -> dict:
    """Check format, version and every checksum; return the manifest or raise BundleError saying what is wrong."""
    bundle = Path(bundle)
    if not bundle.is_dir():
        raise BundleError(f"{bundle}: not a directory")
    manifest = read_json(bundle / MANIFEST, "bundle manifest")
    if manifest.get("format") != FORMAT_NAME:
        raise BundleError(f"{bundle / MANIFEST}: format is {manifest.get('format')!r}, expected {FORMAT_NAME!r}")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise BundleError(
            f"{bundle / MANIFEST}: bundle format version {manifest.get('format_version')!r}; "
            f"this heisd_ros ({__version__}) reads version {FORMAT_VERSION}. Rebuild it with 'heisd build-bundle'."
        )
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        raise BundleError(f"{bundle / MANIFEST}: lists no files")
    for rel, digest in sorted(files.items()):
        path = bundle / rel
        if not path.is_file():
            raise BundleError(f"{bundle}: file {rel} listed in the manifest is missing")
        if sha256_file(path) != digest:
            raise BundleError(f"{path}: sha256 mismatch (corrupted or modified after the build)")
    return manifest
