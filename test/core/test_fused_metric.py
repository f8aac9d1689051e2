"""Kinematic fused metric: R, D, normalisation, calibration and branch choice."""
import math

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from heisd_ros.core.errors import InvalidInputError
from heisd_ros.core.fused_metric import (
    FusedMetric,
    MetricConfig,
    MetricRanges,
    MetricValue,
    calibrate_ranges,
    choose_branch,
    curvature_radius,
    displacement,
)
from heisd_ros.core.stats import Branch

RANGES = MetricRanges(r_min=0.01, r_max=10.0, d_min=0.0, d_max=0.2)


def arc(radius, degrees=20.0, n=5, start=0.0):
    t = np.deg2rad(start + np.linspace(0.0, degrees, n))
    return np.column_stack([radius * np.cos(t), radius * np.sin(t), np.zeros(n)])


@pytest.mark.parametrize("radius", [0.01, 0.1, 1.0])
def test_short_arc_radius_within_one_percent(radius):
    assert curvature_radius(arc(radius)) == pytest.approx(radius, rel=0.01)


def test_rotation_and_translation_invariance():
    rng = np.random.default_rng(3)
    pts = arc(0.07, degrees=35, n=6)
    base = curvature_radius(pts)
    for _ in range(5):
        rot = Rotation.random(random_state=int(rng.integers(1 << 30))).as_matrix()
        moved = pts @ rot.T + rng.uniform(-2.0, 2.0, 3)
        assert curvature_radius(moved) == pytest.approx(base, rel=1e-6)
        assert displacement(moved) == pytest.approx(displacement(pts), rel=1e-9)


def test_straight_and_degenerate_windows_get_max_radius():
    line = np.outer(np.linspace(0, 0.05, 5), [0.3, -0.5, 0.8]) + [0.4, 0.1, 0.9]
    assert curvature_radius(line) == 1e3
    assert curvature_radius(line, max_radius=50.0) == 50.0
    # a huge but finite radius is clipped
    assert curvature_radius(arc(1e5, degrees=0.01)) == 1e3
    cfg = MetricConfig(ranges=RANGES)
    fm = FusedMetric(cfg)
    for p in line:
        value = fm.update(p)
    assert value.defined and value.radius_norm == 1.0


def test_holding_still_reads_as_fine_motion_not_straight():
    still = np.tile([0.1, 0.2, 0.3], (5, 1))
    assert curvature_radius(still) == 0.0
    jitter = still + np.random.default_rng(0).normal(scale=2e-5, size=still.shape)
    assert curvature_radius(jitter) < 1e-3  # continuous with the exactly-still case
    fm = FusedMetric(MetricConfig(ranges=RANGES, tau=0.3))
    for p in still:
        v = fm.update(p)
    assert v.radius_norm == 0.0 and v.displacement_norm == 0.0
    assert choose_branch(v, 0.3) is Branch.DRAFTER


def test_displacement_by_hand():
    pts = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [1, 1, 1]], dtype=float)
    # distances from (1,1,1): sqrt(3), sqrt(2), 1, 0
    assert displacement(pts) == pytest.approx(math.sqrt(3) + math.sqrt(2) + 1)


def test_input_validation():
    with pytest.raises(InvalidInputError, match=r"\(w, 3\)"):
        curvature_radius(np.zeros((2, 3)))
    with pytest.raises(InvalidInputError, match="NaN"):
        curvature_radius(np.array([[0, 0, 0], [1, 0, 0], [np.nan, 1, 0]]))
    with pytest.raises(InvalidInputError):
        MetricConfig(alpha=1.5, ranges=RANGES)
    with pytest.raises(InvalidInputError):
        MetricConfig(window=2, ranges=RANGES)
    with pytest.raises(InvalidInputError, match="r_min < r_max"):
        MetricRanges(0.5, 0.1, 0.0, 1.0)
    with pytest.raises(TypeError):
        MetricConfig()  # ranges are required: an uncalibrated metric is meaningless


def test_undefined_until_window_full_and_nan_leaves_window():
    fm = FusedMetric(MetricConfig(window=5, ranges=RANGES))
    pts = arc(0.1, degrees=40)
    for p in pts[:4]:
        v = fm.update(p)
        assert not v.defined and math.isnan(v.fused)
        assert choose_branch(v, 0.3) is Branch.AR
    with pytest.raises(InvalidInputError):
        fm.update(np.array([np.nan, 0.0, 0.0]))
    with pytest.raises(InvalidInputError):
        fm.update(np.zeros(2))
    v = fm.update(pts[4])  # the bad updates did not enter the window
    assert v.defined
    assert v.radius == pytest.approx(0.1, rel=0.01)
    assert v.displacement == pytest.approx(displacement(pts))
    r_hat = (math.log(v.radius) - math.log(0.01)) / (math.log(10.0) - math.log(0.01))
    assert v.radius_norm == pytest.approx(r_hat)
    assert v.displacement_norm == pytest.approx(displacement(pts) / 0.2)
    assert v.fused == pytest.approx(0.5 * v.radius_norm + 0.5 * v.displacement_norm)
    fm.reset()
    assert not fm.update(pts[0]).defined


def test_calibrate_ranges_on_synthetic_trajectories():
    rng = np.random.default_rng(0)
    trajs = []
    for _ in range(6):
        straight = np.outer(np.linspace(0, 0.3, 40), rng.normal(size=3)) + rng.normal(size=3)
        turn = arc(rng.uniform(0.02, 0.2), degrees=90, n=30) + straight[-1]
        trajs.append(np.vstack([straight, turn]))
    trajs[0] = np.vstack([trajs[0], np.tile(trajs[0][-1], (10, 1))])  # the arm holds still at the end
    ranges = calibrate_ranges(trajs, window=5, low_pct=1.0, high_pct=99.0)
    radii = [curvature_radius(t[i : i + 5]) for t in trajs for i in range(len(t) - 4)]
    assert radii.count(0.0) == 7  # 11 equal positions = 7 still windows
    radii = [r for r in radii if r > 0]  # still windows are left out of the R range
    disps = [displacement(t[i : i + 5]) for t in trajs for i in range(len(t) - 4)]
    assert ranges.r_min == pytest.approx(np.percentile(radii, 1.0))
    assert ranges.r_max == pytest.approx(np.percentile(radii, 99.0))
    assert ranges.d_max == pytest.approx(np.percentile(disps, 99.0))
    assert 0.01 < ranges.r_min < 0.25 and ranges.r_max == 1e3  # straight segments sit at the top
    # with log normalisation the turns still spread over the R range instead of collapsing at 0
    cfg = MetricConfig(ranges=ranges)
    turn_r = cfg.ranges.normalize_radius(0.1)
    assert 0.05 < turn_r < 0.6
    assert MetricRanges.from_dict(ranges.to_dict()) == ranges
    assert MetricConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(InvalidInputError, match="at least window"):
        calibrate_ranges([np.zeros((3, 3))])
    with pytest.raises(InvalidInputError, match="cannot calibrate R"):
        calibrate_ranges([np.outer(np.arange(20.0), [1, 0, 0])])
    with pytest.raises(InvalidInputError, match="never moves"):
        calibrate_ranges([np.zeros((20, 3))])


def test_choose_branch_each_side_of_tau():
    def value(m):
        return MetricValue(True, 1.0, 0.1, m, m, m)

    assert choose_branch(value(0.31), 0.3) is Branch.RETRIEVAL
    assert choose_branch(value(0.30), 0.3) is Branch.DRAFTER
    assert choose_branch(value(0.10), 0.3) is Branch.DRAFTER


def test_fast_straight_motion_prefers_retrieval_and_slow_turn_drafter():
    ranges = MetricRanges(r_min=0.01, r_max=1.0, d_min=0.0, d_max=0.1)
    fm = FusedMetric(MetricConfig(ranges=ranges, tau=0.3))
    fast_line = np.outer(np.linspace(0, 0.1, 5), [1, 0, 0])
    for p in fast_line:
        v = fm.update(p)
    assert choose_branch(v, 0.3) is Branch.RETRIEVAL
    fm.reset()
    for p in arc(0.015, degrees=20) + [0.5, 0.5, 0.5]:
        v = fm.update(p)
    assert choose_branch(v, 0.3) is Branch.DRAFTER
