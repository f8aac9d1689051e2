"""Kinematic fused metric: the boundary between the retrieval and drafter branches.

HeiSD mechanism 1 (METHOD.md). Over a sliding window of the last ``w`` end-effector
positions (absolute xyz, metres):
- R, curvature radius: project the window onto its best-fit plane (SVD) and fit a
  circle in closed form (Kasa's algebraic least squares on coordinates centred and
  scaled to unit RMS, which keeps it well conditioned at any scale). Straight (collinear)
  or numerically degenerate windows get ``max_radius``. A window that does not move
  at all (extent below 1 micrometre) gets R = 0 instead: an arm holding still is in
  a fine phase (grasping, contact) and must not read as "perfectly straight" and be
  sent to retrieval with verify-skip; with jitter the fit gives a tiny R anyway, so
  this keeps R continuous as motion stops. The reference's iterative fit
  underestimates R (see METHOD.md); this fit is exact on noise-free arcs.
- D, displacement: ``sum_i ||p_last - p_i||``, exactly the reference's.
- ``M = alpha * R_hat + (1 - alpha) * D_hat``; large M = smooth, fast, straight
  motion (retrieval), small M = slow or tightly curving motion (drafter).

Normalisation choice for R: R spans orders of magnitude (centimetres on a tight
turn, ``max_radius`` on a straight segment), so a linear min-max over the calibration
range would squash every curved window to ~0 as soon as straight windows set the
maximum. R is therefore normalised in log space,
``R_hat = clip((ln R - ln r_min) / (ln r_max - ln r_min), 0, 1)``, with r_min/r_max
the calibrated low/high percentiles of R (itself clipped at ``max_radius``): a
straight window always gets R_hat = 1, and curved windows spread evenly between.
D is normalised linearly, ``D_hat = clip((D - d_min) / (d_max - d_min), 0, 1)``.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import asdict, dataclass, field

import numpy as np

from heisd_ros.core.errors import InvalidInputError
from heisd_ros.core.stats import Branch

# A window whose second principal extent is below this fraction of the first is a line.
_COLLINEAR_RATIO = 1e-9
# A window whose largest principal extent (m) is below this has not moved.
_STILL_EXTENT = 1e-6


def _as_window(points: np.ndarray, min_points: int) -> np.ndarray:
    arr = np.asarray(points, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 3 or arr.shape[0] < min_points:
        raise InvalidInputError(f"points must have shape (w, 3) with w >= {min_points}, got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise InvalidInputError("points contain NaN or inf")
    return arr


def curvature_radius(points: np.ndarray, max_radius: float = 1e3) -> float:
    """Radius of the circle best fitting ``points`` (w, 3), metres.

    ``max_radius`` for collinear or degenerate input, 0.0 for a window that does not move.
    """
    if not max_radius > 0:
        raise InvalidInputError(f"max_radius must be > 0, got {max_radius}")
    centred = _as_window(points, 3)
    centred = centred - centred.mean(axis=0)
    _, sing, vt = np.linalg.svd(centred, full_matrices=False)
    if sing[0] <= _STILL_EXTENT:
        return 0.0
    if sing[1] <= _COLLINEAR_RATIO * sing[0]:
        return float(max_radius)
    plane = centred @ vt[:2].T  # (w, 2) coordinates in the best-fit plane
    scale = math.sqrt(float(np.mean(np.sum(plane**2, axis=1))))
    xy = plane / scale
    # Kasa: x^2 + y^2 + a x + b y + c = 0 in least squares; centre (-a/2, -b/2)
    design = np.column_stack([xy, np.ones(len(xy))])
    rhs = -np.sum(xy**2, axis=1)
    (a, b, c), *_ = np.linalg.lstsq(design, rhs, rcond=None)
    r_squared = (a * a + b * b) / 4.0 - c
    if not np.isfinite(r_squared) or r_squared <= 0.0:
        return float(max_radius)
    return float(min(math.sqrt(r_squared) * scale, max_radius))


def displacement(points: np.ndarray) -> float:
    """Sum of distances from the last point to every point of the window (metres)."""
    arr = _as_window(points, 1)
    return float(np.linalg.norm(arr[-1] - arr, axis=1).sum())


@dataclass
class MetricRanges:
    """Calibrated normalisation ranges: R in metres (normalised in log space), D in metres."""

    r_min: float
    r_max: float
    d_min: float
    d_max: float

    def __post_init__(self) -> None:
        values = [self.r_min, self.r_max, self.d_min, self.d_max]
        if not all(isinstance(v, (int, float, np.floating, np.integer)) and math.isfinite(v) for v in values):
            raise InvalidInputError(f"metric ranges must be finite numbers, got {values}")
        if not 0 < self.r_min < self.r_max:
            raise InvalidInputError(f"need 0 < r_min < r_max, got r_min={self.r_min}, r_max={self.r_max}")
        if not 0 <= self.d_min < self.d_max:
            raise InvalidInputError(f"need 0 <= d_min < d_max, got d_min={self.d_min}, d_max={self.d_max}")
        self.r_min, self.r_max, self.d_min, self.d_max = (float(v) for v in values)

    def normalize_radius(self, radius: float) -> float:
        """Log-space min-max normalisation of R, clipped to [0, 1]."""
        lo, hi = math.log(self.r_min), math.log(self.r_max)
        return float(np.clip((math.log(max(radius, 1e-300)) - lo) / (hi - lo), 0.0, 1.0))

    def normalize_displacement(self, disp: float) -> float:
        """Linear min-max normalisation of D, clipped to [0, 1]."""
        return float(np.clip((disp - self.d_min) / (self.d_max - self.d_min), 0.0, 1.0))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "MetricRanges":
        missing = {"r_min", "r_max", "d_min", "d_max"} - set(d)
        if missing:
            raise InvalidInputError(f"metric ranges lack keys {sorted(missing)}")
        return cls(d["r_min"], d["r_max"], d["d_min"], d["d_max"])


@dataclass
class MetricConfig:
    """Fused-metric parameters, validated on construction (``ranges`` is keyword-only and required)."""

    window: int = 5
    alpha: float = 0.5
    tau: float = 0.3
    max_radius: float = 1e3
    ranges: MetricRanges = field(kw_only=True)

    def __post_init__(self) -> None:
        if isinstance(self.ranges, dict):
            self.ranges = MetricRanges.from_dict(self.ranges)
        if not isinstance(self.ranges, MetricRanges):
            raise InvalidInputError(f"ranges must be MetricRanges, got {type(self.ranges).__name__}")
        if not isinstance(self.window, (int, np.integer)) or self.window < 3:
            raise InvalidInputError(f"window must be an integer >= 3 (a circle needs 3 points), got {self.window!r}")
        if not 0.0 <= self.alpha <= 1.0:
            raise InvalidInputError(f"alpha must be in [0, 1], got {self.alpha}")
        if not 0.0 <= self.tau <= 1.0:
            raise InvalidInputError(f"tau must be in [0, 1] (M is), got {self.tau}")
        if not self.max_radius > 0:
            raise InvalidInputError(f"max_radius must be > 0, got {self.max_radius}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["ranges"] = self.ranges.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "MetricConfig":
        if "ranges" not in d:
            raise InvalidInputError("metric config lacks 'ranges'")
        known = {"window", "alpha", "tau", "max_radius"}
        unknown = set(d) - known - {"ranges"}
        if unknown:
            raise InvalidInputError(f"metric config has unknown keys {sorted(unknown)}")
        return cls(**{k: d[k] for k in known if k in d}, ranges=MetricRanges.from_dict(d["ranges"]))


@dataclass
class MetricValue:
    """One evaluation of the metric; all numbers are NaN while ``defined`` is False."""

    defined: bool
    radius: float
    displacement: float
    radius_norm: float
    displacement_norm: float
    fused: float


_UNDEFINED = (math.nan,) * 5


class FusedMetric:
    """Sliding window over end-effector positions that yields the fused metric M per step."""

    def __init__(self, config: MetricConfig) -> None:
        if not isinstance(config, MetricConfig):
            raise InvalidInputError(f"expected MetricConfig, got {type(config).__name__}")
        self.config = config
        self._window: deque[np.ndarray] = deque(maxlen=config.window)

    def update(self, position: np.ndarray) -> MetricValue:
        """Add the newest EE position (3,); NaN/inf or a wrong shape raise and leave the window unchanged."""
        p = np.asarray(position, dtype=np.float64)
        if p.shape != (3,):
            raise InvalidInputError(f"position must have shape (3,), got {p.shape}")
        if not np.all(np.isfinite(p)):
            raise InvalidInputError(f"position contains NaN or inf: {p.tolist()}")
        self._window.append(p.copy())
        if len(self._window) < self.config.window:
            return MetricValue(False, *_UNDEFINED)
        pts = np.stack(self._window)
        cfg = self.config
        radius = curvature_radius(pts, cfg.max_radius)
        disp = displacement(pts)
        r_hat = cfg.ranges.normalize_radius(radius)
        d_hat = cfg.ranges.normalize_displacement(disp)
        return MetricValue(True, radius, disp, r_hat, d_hat, cfg.alpha * r_hat + (1.0 - cfg.alpha) * d_hat)

    def reset(self) -> None:
        """Forget the history (new episode)."""
        self._window.clear()


def calibrate_ranges(
    trajectories: list[np.ndarray],
    window: int = 5,
    low_pct: float = 1.0,
    high_pct: float = 99.0,
    max_radius: float = 1e3,
) -> MetricRanges:
    """Ranges from demonstration EE trajectories (T_i, 3): low/high percentiles of R and D over all windows.

    R is clipped at ``max_radius`` as at run time, so straight segments count at the
    top of the R range rather than being dropped. Windows that do not move (R = 0)
    are left out of the R percentiles (they normalise to 0 whatever the range) but
    count for D.
    """
    if not 0.0 <= low_pct < high_pct <= 100.0:
        raise InvalidInputError(f"need 0 <= low_pct < high_pct <= 100, got {low_pct}, {high_pct}")
    if window < 3:
        raise InvalidInputError(f"window must be >= 3, got {window}")
    radii, disps = [], []
    for i, traj in enumerate(trajectories):
        arr = np.asarray(traj, dtype=np.float64)
        if arr.ndim != 2 or arr.shape[1] != 3:
            raise InvalidInputError(f"trajectory {i} must have shape (T, 3), got {arr.shape}")
        if not np.all(np.isfinite(arr)):
            raise InvalidInputError(f"trajectory {i} contains NaN or inf")
        for start in range(arr.shape[0] - window + 1):
            pts = arr[start : start + window]
            radii.append(curvature_radius(pts, max_radius))
            disps.append(displacement(pts))
    if not radii:
        raise InvalidInputError(f"no trajectory is at least window={window} positions long")
    moving = [r for r in radii if r > 0.0]
    if not moving:
        raise InvalidInputError("cannot calibrate R: the end effector never moves in the demonstrations")
    r_min, r_max = np.percentile(moving, [low_pct, high_pct])
    d_min, d_max = np.percentile(disps, [low_pct, high_pct])
    if not r_max > r_min:
        raise InvalidInputError(
            f"cannot calibrate R: its {low_pct}-{high_pct} percentiles are equal ({r_min:g} m); "
            "the demonstrations need both curved and straight motion"
        )
    if not d_max > d_min:
        raise InvalidInputError(f"cannot calibrate D: its {low_pct}-{high_pct} percentiles are equal ({d_min:g} m)")
    return MetricRanges(float(r_min), float(r_max), float(d_min), float(d_max))


def choose_branch(value: MetricValue, tau: float) -> Branch:
    """RETRIEVAL if M > tau, DRAFTER if M <= tau, AR while M is undefined."""
    if not value.defined:
        return Branch.AR
    return Branch.RETRIEVAL if value.fused > tau else Branch.DRAFTER
