"""Declare a node's parameters from its ParamSpec table and validate changes.

Ranges go into the ParameterDescriptor (so rclpy itself rejects an
out-of-range value from a YAML file or ``ros2 param set`` with a reason);
choices, read-only-after-start and node-specific checks are enforced by one
on-set callback. Side effects of an accepted change run afterwards, in the
post-set callback, so a rejected change never leaves half-applied state.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable

from rcl_interfaces.msg import (
    FloatingPointRange,
    IntegerRange,
    ParameterDescriptor,
    SetParametersResult,
)
from rclpy.node import Node
from rclpy.parameter import Parameter

from heisd_ros.ros.param_specs import ParamSpec

Validator = Callable[[str, Any], str | None]


def descriptor(spec: ParamSpec) -> ParameterDescriptor:
    d = ParameterDescriptor(description=spec.describe(), read_only=False)
    if spec.range is not None:
        low, high = spec.range
        if isinstance(spec.default, int) and not isinstance(spec.default, bool):
            d.integer_range = [IntegerRange(from_value=int(low), to_value=int(high), step=0)]
        else:
            d.floating_point_range = [FloatingPointRange(from_value=float(low), to_value=float(high), step=0.0)]
    if spec.choices is not None:
        d.additional_constraints = "one of: " + ", ".join(spec.choices)
    return d


class ParameterTable:
    """The declared parameters of one node, with validation and change hooks."""

    def __init__(self, node: Node, specs: Iterable[ParamSpec], validator: Validator | None = None):
        self._node = node
        self._specs = {s.name: s for s in specs}
        self._validator = validator
        self._listeners: list[Callable[[dict[str, Any]], None]] = []
        self._started = False
        # Validate choices of values coming from the YAML file before declaring.
        node.add_on_set_parameters_callback(self._on_set)
        for spec in self._specs.values():
            node.declare_parameter(spec.name, spec.default, descriptor(spec))
        node.add_post_set_parameters_callback(self._after_set)
        self._started = True

    def __getitem__(self, name: str) -> Any:
        if name not in self._specs:
            raise KeyError(f"{self._node.get_name()} has no parameter {name!r}")
        return self._node.get_parameter(name).value

    def values(self) -> dict[str, Any]:
        return {name: self[name] for name in self._specs}

    def on_change(self, listener: Callable[[dict[str, Any]], None]) -> None:
        """Call ``listener({name: value})`` after accepted run-time changes."""
        self._listeners.append(listener)

    def _on_set(self, params: list[Parameter]) -> SetParametersResult:
        for p in params:
            spec = self._specs.get(p.name)
            if spec is None:
                continue  # e.g. use_sim_time, handled by rclpy
            if self._started and not spec.dynamic:
                return SetParametersResult(successful=False, reason=f"{p.name} is read at start-up only; restart the node to change it")
            problem = spec.check(p.value) if spec.choices is not None else None
            if problem is None and self._validator is not None:
                problem = self._validator(p.name, p.value)
            if problem:
                return SetParametersResult(successful=False, reason=f"{p.name}: {problem}")
        return SetParametersResult(successful=True)

    def _after_set(self, params: list[Parameter]) -> None:
        if not self._started:
            return
        changed = {p.name: p.value for p in params if p.name in self._specs}
        if not changed:
            return
        self._node.get_logger().info("parameters changed: " + ", ".join(f"{k}={v!r}" for k, v in changed.items()))
        for listener in self._listeners:
            listener(changed)
