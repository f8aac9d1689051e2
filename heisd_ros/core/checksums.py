"""Verifying saved artefacts (datastores, bundles): streamed SHA-256 of files and strict JSON manifest reading."""
from __future__ import annotations

import hashlib
from pathlib import Path


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_json_object(path: Path, what: str, error: type[Exception]) -> dict:
    """A JSON object from ``path``, or ``error`` naming the file: missing, unreadable, not an object."""
    import json

    path = Path(path)
    if not path.is_file():
        raise error(f"{path}: missing ({what})")
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise error(f"{path}: unreadable {what} ({exc})") from None
    if not isinstance(data, dict):
        raise error(f"{path}: {what} must be a JSON object")
    return data
