"""The node-graph parameter file (config/heisd.yaml): load, override, validate.

Shared by ``heisd bringup``, ``heisd demo`` and the launch file, so the three
start the same nodes with the same values, and a bad value is reported before
any process starts.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

from heisd_ros.ros.param_specs import NODE_PARAMS, validate_overrides

PACKAGE_CONFIG = Path(__file__).resolve().parents[2] / "config" / "heisd.yaml"


class ConfigError(ValueError):
    """A parameter file or override that cannot be used; the message lists every problem."""


def parse_pairs(values: Iterable[str], what: str) -> dict[str, str]:
    """['A=B', ...] -> {A: B}; empty entries are skipped ([''] is ROS's empty string list)."""
    out = {}
    for v in values:
        if not v:
            continue
        key, sep, val = v.partition("=")
        if not sep or not key or not val:
            raise ConfigError(f"{what} entries must be KEY=VALUE, got {v!r}")
        out[key] = val
    return out


def camera_topics(configured: Iterable[str], camera_names: Iterable[str]) -> list[str]:
    """The coordinator's image topics, in the bundle's camera order.

    [''] (the default) means ``/camera/<name>/image_raw`` for every camera of the
    bundle, so one parameter file serves bundles with any cameras; an explicit list
    must name one topic per camera.
    """
    names = list(camera_names)
    topics = [t for t in configured if t] or [f"/camera/{c}/image_raw" for c in names]
    if len(topics) != len(names):
        raise ConfigError(f"coordinator.camera_topics {topics} must list one topic per bundle camera {names} (or [''] for /camera/<name>/image_raw)")
    return topics


def default_config_path() -> Path:
    """config/heisd.yaml of the source tree, else the installed share/heisd_ros copy."""
    if PACKAGE_CONFIG.is_file():
        return PACKAGE_CONFIG
    try:
        from ament_index_python.packages import get_package_share_directory

        return Path(get_package_share_directory("heisd_ros")) / "config" / "heisd.yaml"
    except Exception as exc:  # noqa: BLE001 - any lookup failure means "not installed"
        raise ConfigError(f"no config/heisd.yaml found next to the package or in the ament index: {exc}") from exc


def load_config(path: str | Path | None = None) -> dict[str, dict[str, Any]]:
    """Return {node: {param: value}} from a ROS 2 parameter file, validated."""
    path = Path(path) if path is not None else default_config_path()
    try:
        doc = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"parameter file {path} does not exist") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"parameter file {path} is not valid YAML: {exc}") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"parameter file {path} must map node names to 'ros__parameters'")
    config: dict[str, dict[str, Any]] = {}
    problems = []
    for node, section in doc.items():
        node = str(node).lstrip("/")
        if node not in NODE_PARAMS:
            problems.append(f"{node}: unknown node (known: {', '.join(NODE_PARAMS)})")
            continue
        if not isinstance(section, dict) or not isinstance(section.get("ros__parameters", {}), dict):
            problems.append(f"{node}: expected a 'ros__parameters' mapping")
            continue
        params = dict(section.get("ros__parameters") or {})
        problems += validate_overrides(node, params)
        config[node] = params
    if problems:
        raise ConfigError(f"{path}:\n  " + "\n  ".join(problems))
    return config


def parse_override(text: str) -> tuple[str, str, Any]:
    """'coordinator.tau:=0.2' or 'coordinator.tau=0.2' -> ('coordinator', 'tau', 0.2)."""
    key, sep, raw = text.partition(":=") if ":=" in text else text.partition("=")
    node, dot, name = key.partition(".")
    if not sep or not dot or not node or not name:
        raise ConfigError(f"override {text!r} must look like node.param:=value")
    return node, name, yaml.safe_load(raw)


def apply_overrides(config: Mapping[str, Mapping[str, Any]], overrides: Iterable[str]) -> dict[str, dict[str, Any]]:
    merged = copy.deepcopy({k: dict(v) for k, v in config.items()})
    problems = []
    for text in overrides:
        node, name, value = parse_override(text)
        if node not in NODE_PARAMS:
            problems.append(f"{text}: unknown node {node!r}")
            continue
        problems += validate_overrides(node, {name: value})
        merged.setdefault(node, {})[name] = value
    if problems:
        raise ConfigError("bad overrides:\n  " + "\n  ".join(problems))
    return merged


def write_params_file(config: Mapping[str, Mapping[str, Any]], path: str | Path) -> Path:
    path = Path(path)
    doc = {node: {"ros__parameters": dict(params)} for node, params in config.items()}
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path
