"""Kinematic state of the robot from a stream of samples: fused metric, phase, resets.

The ROS-free half of the kinematic_encoder node. It owns the history that the
fused metric needs and decides when that history is no longer valid: time going
backwards (a bag looped, the simulator reset), a gap longer than the stale
timeout, or an explicit reset on a new instruction. A bad sample (NaN, wrong
shape) raises and leaves the history untouched.
"""
from __future__ import annotations

import enum
import math
from dataclasses import dataclass, replace

import numpy as np

from heisd_ros.core.errors import InvalidInputError
from heisd_ros.core.fused_metric import FusedMetric, MetricConfig, MetricValue


class Phase(enum.IntEnum):
    """Task phase (values match heisd_msgs/KinematicState PHASE_*)."""

    UNKNOWN = 0
    APPROACH = 1
    GRASP = 2
    TRANSPORT = 3
    RELEASE = 4


@dataclass(frozen=True)
class PhaseRule:
    """Thresholds of the phase heuristic: gripper opening in [0, 1] (1 = open) and EE speed."""

    open_above: float = 0.8  # opening above this: the hand is open
    moving_above_m_s: float = 0.02  # EE speed above this: transporting / approaching
    trend_eps: float = 0.02  # opening change per sample that counts as closing / opening


def estimate_phase(opening: float | None, previous_opening: float | None, speed_m_s: float, rule: PhaseRule = PhaseRule()) -> Phase:
    """Approach (open), grasp (closing, or closed and still), transport (closed, moving), release (opening)."""
    if opening is None or not math.isfinite(opening):
        return Phase.UNKNOWN
    trend = 0.0 if previous_opening is None else opening - previous_opening
    if trend > rule.trend_eps:
        return Phase.RELEASE
    if trend < -rule.trend_eps:
        return Phase.GRASP
    if opening > rule.open_above:
        return Phase.APPROACH
    return Phase.TRANSPORT if speed_m_s > rule.moving_above_m_s else Phase.GRASP


@dataclass
class KinematicSample:
    """What the tracker reports for one sample."""

    stamp: float
    metric: MetricValue
    phase: Phase
    speed_m_s: float
    reset_reason: str = ""  # non-empty when this sample started a new history


class KinematicTracker:
    """Feeds the fused metric with end-effector positions and watches time."""

    def __init__(self, config: MetricConfig, stale_timeout_s: float = 0.5, min_step_m: float = 0.0,
                 phase_rule: PhaseRule = PhaseRule()) -> None:
        if stale_timeout_s <= 0:
            raise InvalidInputError(f"stale_timeout_s must be > 0, got {stale_timeout_s}")
        self.metric = FusedMetric(config)
        self.stale_timeout_s = float(stale_timeout_s)
        self.min_step_m = float(min_step_m)
        self.phase_rule = phase_rule
        self.resets = 0
        self._last_stamp: float | None = None
        self._last_position: np.ndarray | None = None
        self._last_opening: float | None = None
        self._last_value: MetricValue | None = None

    @property
    def config(self) -> MetricConfig:
        return self.metric.config

    def reconfigure(self, **changes: float) -> None:
        """New window / alpha / tau / ranges; the history restarts if the window changes."""
        config = replace(self.metric.config, **changes)
        if config.window != self.metric.config.window:
            self.reset()
            self.metric = FusedMetric(config)
        else:
            self.metric.config = config

    def reset(self) -> None:
        self.metric.reset()
        self._last_stamp = self._last_position = self._last_opening = self._last_value = None
        self.resets += 1

    def update(self, stamp: float, position: np.ndarray, opening: float | None = None) -> KinematicSample:
        p = np.asarray(position, dtype=np.float64)
        if p.shape != (3,) or not np.all(np.isfinite(p)):
            raise InvalidInputError(f"end-effector position must be 3 finite numbers, got {np.asarray(position).tolist()}")
        if not math.isfinite(stamp):
            raise InvalidInputError(f"stamp must be finite, got {stamp}")
        reason = ""
        if self._last_stamp is not None:
            if stamp < self._last_stamp:
                reason = f"time went backwards by {self._last_stamp - stamp:.3f} s"
            elif stamp - self._last_stamp > self.stale_timeout_s:
                reason = f"gap of {stamp - self._last_stamp:.3f} s since the last sample"
        if reason:
            self.reset()
        speed = 0.0
        if self._last_position is not None and self._last_stamp is not None and stamp > self._last_stamp:
            speed = float(np.linalg.norm(p - self._last_position) / (stamp - self._last_stamp))
        moved = self._last_position is None or np.linalg.norm(p - self._last_position) >= self.min_step_m
        if moved or self._last_value is None:
            value = self.metric.update(p)
            self._last_position = p
        else:
            value = self._last_value
        phase = estimate_phase(opening, self._last_opening, speed, self.phase_rule)
        self._last_stamp, self._last_opening, self._last_value = stamp, opening, value
        return KinematicSample(stamp, value, phase, speed, reason)
