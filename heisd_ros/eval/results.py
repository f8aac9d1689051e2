"""The machine-readable results document of eval / replay / bench, and its validator.

Schema (documented in docs/results-schema.md): a top-level object with ``schema``,
``command``, ``bundle``, ``setup``, ``results`` (one row per method x task x timing),
optionally ``traces`` and ``notes``. ``validate_document`` is what the tests and the
commands use, so the documentation, the writer and the checks cannot drift apart.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

from heisd_ros.core.errors import InvalidInputError

SCHEMA = "heisd-results/1"
COMMANDS = ("eval", "replay", "bench")
# field -> allowed JSON types (None allowed where listed)
ROW_FIELDS: dict[str, tuple] = {
    "method": (str,),
    "task": (str,),
    "timing": (str,),
    "episodes": (int,),
    "success_rate": (float, int, type(None)),
    "latency_ms": (dict,),
    "speedup_vs_ar": (float, int, type(None)),
    "vla_forward_passes_per_action": (float, int),
    "mean_accepted_tokens": (float, int, type(None)),
    "token_deviation_vs_ar": (dict, type(None)),
    "branch_mix": (dict,),
}


def bundle_info(bundle) -> dict:  # noqa: ANN001
    """What identifies the evaluated model: path, sizes, calibrated tau."""
    return {
        "path": str(bundle.path),
        "vla_params": int(sum(p.numel() for p in bundle.vla_net.parameters())),
        "drafter_params": int(sum(p.numel() for p in bundle.drafter_net.parameters())),
        "tau": float(bundle.metric.tau),
        "control_rate_hz": float(bundle.control_rate_hz),
        "tasks": sorted(bundle.tasks),
    }


def validate_document(doc: dict) -> dict:
    """Raise InvalidInputError naming the first field that breaks the schema; returns doc."""
    if not isinstance(doc, dict):
        raise InvalidInputError("results document must be a JSON object")
    if doc.get("schema") != SCHEMA:
        raise InvalidInputError(f"schema must be {SCHEMA!r}, got {doc.get('schema')!r}")
    if doc.get("command") not in COMMANDS:
        raise InvalidInputError(f"command must be one of {COMMANDS}, got {doc.get('command')!r}")
    for key in ("bundle", "setup"):
        if not isinstance(doc.get(key), dict):
            raise InvalidInputError(f"{key!r} must be an object")
    rows = doc.get("results")
    if not isinstance(rows, list) or not rows:
        raise InvalidInputError("'results' must be a non-empty list")
    for i, row in enumerate(rows):
        for name, types in ROW_FIELDS.items():
            if name not in row:
                raise InvalidInputError(f"results[{i}] lacks {name!r}")
            if not isinstance(row[name], types) or isinstance(row[name], bool):
                raise InvalidInputError(f"results[{i}].{name} has type {type(row[name]).__name__}")
        for q in ("mean", "p50", "p99"):
            v = row["latency_ms"].get(q, "missing")
            if v is not None and not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise InvalidInputError(f"results[{i}].latency_ms.{q} must be a finite number >= 0 or null, got {v!r}")
        mix = row["branch_mix"]
        if mix and abs(sum(mix.values()) - 1.0) > 1e-6:
            raise InvalidInputError(f"results[{i}].branch_mix must sum to 1, got {sum(mix.values())}")
        sr = row["success_rate"]
        if sr is not None and not 0.0 <= sr <= 1.0:
            raise InvalidInputError(f"results[{i}].success_rate must lie in [0, 1], got {sr}")
    return doc


def results_document(command: str, bundle, setup: dict, rows: list[dict], traces: list[dict] | None = None,  # noqa: ANN001
                     notes: list[str] | None = None) -> dict:
    """Assemble and validate a document."""
    doc = {"schema": SCHEMA, "command": command, "bundle": bundle_info(bundle), "setup": setup, "results": rows}
    if traces:
        doc["traces"] = traces
    if notes:
        doc["notes"] = notes
    return validate_document(doc)


def write_document(doc: dict, path: Path) -> Path:
    """Validate and write ``doc`` as indented JSON."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(validate_document(doc), indent=1, allow_nan=False))
    return path
