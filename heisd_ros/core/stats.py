"""One statistics record for every decoding strategy, node, benchmark and report.

Modelled on vLLM's speculative-decoding metrics: every strategy fills the same
``StepStats`` per action chunk, and ``StatsAggregate`` turns a run of them into the
numbers we report (mean accepted length, per-position acceptance, branch mix,
latency percentiles).

Counting conventions (shared by all strategies, so numbers are comparable):
- ``drafted`` / ``accepted`` count tokens of the *chosen* candidate only. When K
  retrieved sequences are verified together, ``drafted`` is the length of the one
  candidate that was kept (the best survivor, or candidate 0 if none survived), not
  K times that; ``candidates`` records K. This keeps ``accepted / drafted`` an
  acceptance rate in [0, 1] whatever K is.
- ``forward_passes`` counts full-VLA passes; a prefill is one pass. Verify-skip steps
  have zero.
- ``accepted_per_position`` holds one 1/0 per drafted position of the chosen
  candidate (prefix semantics: a run of 1s then 0s).
"""
from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field

import numpy as np

from heisd_ros.core.errors import InvalidInputError


class Branch(str, enum.Enum):
    """Which mechanism produced an action chunk (values mirror heisd_msgs/ActionChunk)."""

    AR = "ar"
    DRAFTER = "drafter"
    RETRIEVAL = "retrieval"
    RETRIEVAL_SKIP = "retrieval_skip"
    HOLD = "hold"
    REPLAY = "replay"

    @property
    def source(self) -> int:
        """The heisd_msgs/ActionChunk ``SOURCE_*`` constant of this branch."""
        return _SOURCE_OF[self]

    @classmethod
    def from_source(cls, source: int) -> "Branch":
        """Inverse of ``source``; raises InvalidInputError for an unknown value."""
        for branch, value in _SOURCE_OF.items():
            if value == source:
                return branch
        raise InvalidInputError(f"unknown ActionChunk source {source!r}; expected one of {sorted(_SOURCE_OF.values())}")


_SOURCE_OF = {
    Branch.AR: 0,
    Branch.DRAFTER: 1,
    Branch.RETRIEVAL: 2,
    Branch.RETRIEVAL_SKIP: 3,
    Branch.HOLD: 4,
    Branch.REPLAY: 5,
}

_TIME_FIELDS = ("prefill_s", "draft_s", "verify_s", "decode_s", "retrieval_s", "total_s")
_COUNT_FIELDS = ("drafted", "accepted", "emitted", "forward_passes", "candidates")


@dataclass
class StepStats:
    """Counters and timings of one decoding step (one action chunk); see module docstring."""

    branch: Branch
    drafted: int = 0
    accepted: int = 0
    emitted: int = 0
    forward_passes: int = 0
    candidates: int = 0
    prefill_s: float = 0.0
    draft_s: float = 0.0
    verify_s: float = 0.0
    decode_s: float = 0.0
    retrieval_s: float = 0.0
    total_s: float = 0.0
    accepted_per_position: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.branch = Branch(self.branch)
        for name in _COUNT_FIELDS:
            if getattr(self, name) < 0:
                raise InvalidInputError(f"StepStats.{name} must be >= 0, got {getattr(self, name)}")
        for name in _TIME_FIELDS:
            value = getattr(self, name)
            if not np.isfinite(value) or value < 0:
                raise InvalidInputError(f"StepStats.{name} must be a finite time >= 0, got {value}")
        if self.accepted > self.drafted:
            raise InvalidInputError(f"accepted ({self.accepted}) cannot exceed drafted ({self.drafted})")
        if any(v not in (0, 1) for v in self.accepted_per_position):
            raise InvalidInputError("accepted_per_position must hold only 0/1 flags")

    def to_dict(self) -> dict:
        """Plain JSON-friendly dict (branch as its string value)."""
        d = asdict(self)
        d["branch"] = self.branch.value
        d["accepted_per_position"] = [int(v) for v in self.accepted_per_position]
        return d


class StatsAggregate:
    """Accumulates StepStats of a run and summarises them for reports and diagnostics."""

    def __init__(self) -> None:
        self._steps: list[StepStats] = []

    def add(self, s: StepStats) -> None:
        """Record one step."""
        if not isinstance(s, StepStats):
            raise InvalidInputError(f"expected StepStats, got {type(s).__name__}")
        self._steps.append(s)

    def __len__(self) -> int:
        return len(self._steps)

    def summary(self) -> dict:
        """Aggregate numbers of all recorded steps.

        ``mean_accepted_length`` averages accepted tokens over steps that drafted
        anything (AR and hold steps propose nothing and would dilute it);
        ``acceptance_rate`` is total accepted / total drafted; per-position acceptance
        at position i is the fraction of steps drafting >= i+1 tokens that accepted
        position i. Latencies are of ``total_s``, in milliseconds.
        ``tokens_per_forward_pass`` is None when no VLA pass ran (all steps skipped).
        """
        steps = self._steps
        n = len(steps)
        if n == 0:
            return {
                "steps": 0,
                "mean_accepted_length": 0.0,
                "acceptance_rate": 0.0,
                "per_position_acceptance": [],
                "branch_mix": {},
                "latency_ms": {"mean": 0.0, "p50": 0.0, "p99": 0.0},
                "forward_passes_per_step": 0.0,
                "emitted_per_step": 0.0,
                "tokens_per_forward_pass": None,
                "time_split_ms": {name: 0.0 for name in _TIME_FIELDS},
            }
        drafting = [s for s in steps if s.drafted > 0]
        drafted = sum(s.drafted for s in steps)
        accepted = sum(s.accepted for s in steps)
        emitted = sum(s.emitted for s in steps)
        passes = sum(s.forward_passes for s in steps)
        longest = max((len(s.accepted_per_position) for s in steps), default=0)
        per_position = []
        for i in range(longest):
            flags = [s.accepted_per_position[i] for s in steps if len(s.accepted_per_position) > i]
            per_position.append(float(np.mean(flags)))
        mix: dict[str, float] = {}
        for s in steps:
            mix[s.branch.value] = mix.get(s.branch.value, 0.0) + 1.0 / n
        total_ms = np.array([s.total_s for s in steps]) * 1e3
        return {
            "steps": n,
            "mean_accepted_length": float(np.mean([s.accepted for s in drafting])) if drafting else 0.0,
            "acceptance_rate": accepted / drafted if drafted else 0.0,
            "per_position_acceptance": per_position,
            "branch_mix": mix,
            "latency_ms": {
                "mean": float(total_ms.mean()),
                "p50": float(np.percentile(total_ms, 50)),
                "p99": float(np.percentile(total_ms, 99)),
            },
            "forward_passes_per_step": passes / n,
            "emitted_per_step": emitted / n,
            "tokens_per_forward_pass": emitted / passes if passes else None,
            "time_split_ms": {name: float(np.mean([getattr(s, name) for s in steps]) * 1e3) for name in _TIME_FIELDS},
        }
