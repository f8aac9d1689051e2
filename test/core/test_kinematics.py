"""KinematicTracker: history resets on time jumps and gaps, bad samples leave it intact, phases."""
from __future__ import annotations

import math

import numpy as np
import pytest

from heisd_ros.core.errors import InvalidInputError
from heisd_ros.core.fused_metric import MetricConfig, MetricRanges
from heisd_ros.core.kinematics import KinematicTracker, Phase, estimate_phase

CONFIG = MetricConfig(window=5, alpha=0.5, tau=0.3, ranges=MetricRanges(r_min=0.01, r_max=1.0, d_min=0.0, d_max=0.2))


def line(n, start=0.0, dt=0.05, v=0.1):
    return [(start + i * dt, np.array([v * i * dt, 0.0, 0.0])) for i in range(n)]


def test_metric_defined_after_window_and_reset_when_time_goes_back():
    tr = KinematicTracker(CONFIG)
    out = [tr.update(t, p) for t, p in line(5)]
    assert [s.metric.defined for s in out] == [False] * 4 + [True]
    assert out[-1].speed_m_s == pytest.approx(0.1)
    back = tr.update(0.1, np.zeros(3))
    assert "backwards" in back.reset_reason and not back.metric.defined and tr.resets == 1


def test_gap_longer_than_stale_timeout_restarts_history():
    tr = KinematicTracker(CONFIG, stale_timeout_s=0.5)
    for t, p in line(5):
        tr.update(t, p)
    s = tr.update(5.0, np.array([0.3, 0.0, 0.0]))
    assert "gap" in s.reset_reason and not s.metric.defined


def test_nan_sample_raises_and_keeps_history():
    tr = KinematicTracker(CONFIG)
    for t, p in line(4):
        tr.update(t, p)
    with pytest.raises(InvalidInputError, match="3 finite numbers"):
        tr.update(0.2, np.array([math.nan, 0, 0]))
    assert tr.update(0.2, np.array([0.02, 0.0, 0.0])).metric.defined


def test_window_change_restarts_and_alpha_change_applies_at_once():
    tr = KinematicTracker(CONFIG)
    for t, p in line(5):
        last = tr.update(t, p)
    tr.reconfigure(alpha=1.0)
    s = tr.update(0.25, np.array([0.025, 0.0, 0.0]))
    assert s.metric.fused == pytest.approx(s.metric.radius_norm)
    tr.reconfigure(window=7)
    assert not tr.update(0.3, np.array([0.03, 0.0, 0.0])).metric.defined and last.metric.defined


def test_min_step_holds_the_metric_while_still():
    tr = KinematicTracker(CONFIG, min_step_m=0.01)
    for i in range(5):
        s = tr.update(i * 0.05, np.array([0.02 * i, 0.0, 0.0]))
    still = tr.update(0.25, np.array([0.0801, 0.0, 0.0]))
    assert still.metric is s.metric


@pytest.mark.parametrize("opening,previous,speed,phase", [
    (None, None, 0.0, Phase.UNKNOWN),
    (1.0, 1.0, 0.2, Phase.APPROACH),
    (0.6, 0.9, 0.0, Phase.GRASP),
    (0.3, 0.3, 0.01, Phase.GRASP),
    (0.3, 0.3, 0.2, Phase.TRANSPORT),
    (0.7, 0.3, 0.0, Phase.RELEASE),
])
def test_phase_heuristic(opening, previous, speed, phase):
    assert estimate_phase(opening, previous, speed) is phase
