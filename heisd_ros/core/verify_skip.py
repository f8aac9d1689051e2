"""Verify-skip schedules for the retrieval branch (HeiSD mechanism 2).

Inside the retrieval branch some steps execute a retrieved action with no VLA call at
all (which one: ``HybridDecoder``'s ``skip_pick``). A schedule decides which steps. The decoder calls ``should_skip()`` once per
retrieval-branch step; when it returns False the step is verified and the decoder
reports the outcome with ``record(verified_ok)``; ``reset()`` is called whenever the
drafter or AR branch runs and at the start of an episode.
"""
from __future__ import annotations

import math
from typing import Protocol, runtime_checkable

from heisd_ros.core.errors import InvalidInputError


@runtime_checkable
class SkipSchedule(Protocol):
    """Decides, step by step, whether a retrieval-branch step may skip verification."""

    def should_skip(self) -> bool:
        """True = execute the retrieved action without VLA verification."""
        ...

    def record(self, verified_ok: bool) -> None:
        """Outcome of a verified step (True = the retrieved draft was accepted in full)."""
        ...

    def reset(self) -> None:
        """Forget history: the drafter/AR branch ran, or a new episode started."""
        ...


class NoSkipSchedule:
    """Never skips: every retrieval step is verified (retrieval as a pure drafter)."""

    def should_skip(self) -> bool:
        return False

    def record(self, verified_ok: bool) -> None:
        """Outcomes do not change anything."""

    def reset(self) -> None:
        """Nothing to forget."""


class FixedSkipSchedule:
    """The reference schedule: ``skip`` skipped steps, then ``verify`` verified ones, repeating.

    With the default 2:1 the retrieval steps after a reset go S, S, V, S, S, V, ...
    Outcomes are ignored (as in the reference code); only ``reset`` restarts the cycle.
    """

    def __init__(self, skip: int = 2, verify: int = 1) -> None:
        if skip < 0 or verify < 1:
            raise InvalidInputError(f"FixedSkipSchedule needs skip >= 0 and verify >= 1, got skip={skip}, verify={verify}")
        self.skip = int(skip)
        self.verify = int(verify)
        self._position = 0

    def should_skip(self) -> bool:
        skip = self._position < self.skip
        self._position = (self._position + 1) % (self.skip + self.verify)
        return skip

    def record(self, verified_ok: bool) -> None:
        """Fixed schedule: outcomes do not change the cycle."""

    def reset(self) -> None:
        self._position = 0


class AdaptiveSkipSchedule:
    """Skips more while verifications agree, fewer after a rejection.

    State: ``current_skip`` = how many steps are skipped after each verification
    (starts at ``min_skip``). Exactly:
    - ``should_skip()`` returns True while skips remain from the last verification,
      consuming one; otherwise False (this step is verified).
    - ``record(True)``: after ``grow_after`` consecutive agreements ``current_skip``
      grows by 1 (up to ``max_skip``) and the streak restarts.
    - ``record(False)``: ``current_skip = max(min_skip, floor(current_skip * shrink_factor))``
      and the streak restarts.
    - after either, the next ``current_skip`` steps are skipped.
    - ``reset()``: back to ``min_skip``, no streak, no pending skips; so with
      ``min_skip = 0`` the first retrieval step after a branch change is verified.
    With the defaults, agreeing verifications give V, S, V, S, S, V, S, S, S, V, then
    4 skips per verification; one rejection halves that.
    """

    def __init__(self, min_skip: int = 0, max_skip: int = 4, grow_after: int = 1, shrink_factor: float = 0.5) -> None:
        if min_skip < 0 or max_skip < min_skip:
            raise InvalidInputError(f"need 0 <= min_skip <= max_skip, got min_skip={min_skip}, max_skip={max_skip}")
        if grow_after < 1:
            raise InvalidInputError(f"grow_after must be >= 1, got {grow_after}")
        if not 0.0 <= shrink_factor < 1.0:
            raise InvalidInputError(f"shrink_factor must be in [0, 1), got {shrink_factor}")
        self.min_skip = int(min_skip)
        self.max_skip = int(max_skip)
        self.grow_after = int(grow_after)
        self.shrink_factor = float(shrink_factor)
        self.reset()

    def should_skip(self) -> bool:
        if self._pending > 0:
            self._pending -= 1
            return True
        return False

    def record(self, verified_ok: bool) -> None:
        if verified_ok:
            self._streak += 1
            if self._streak >= self.grow_after:
                self.current_skip = min(self.max_skip, self.current_skip + 1)
                self._streak = 0
        else:
            self.current_skip = max(self.min_skip, math.floor(self.current_skip * self.shrink_factor))
            self._streak = 0
        self._pending = self.current_skip

    def reset(self) -> None:
        self.current_skip = self.min_skip
        self._streak = 0
        self._pending = 0


_SCHEDULES = {"none": NoSkipSchedule, "fixed": FixedSkipSchedule, "adaptive": AdaptiveSkipSchedule}


_COUNT_OPTION = {"fixed": "skip", "adaptive": "max_skip"}  # what one "skip count" means per schedule


def make_skip_schedule(name: str, count: int | None = None, **kw) -> SkipSchedule:
    """Build a schedule by name ("none" | "fixed" | "adaptive"), e.g. from a ROS parameter.

    count: the one number a user tunes (ROS ``skip_count``): the fixed schedule's skips
    per verified step, the adaptive one's most; ignored by "none".
    """
    try:
        kind = name.strip().lower()
        cls = _SCHEDULES[kind]
    except (KeyError, AttributeError):
        raise InvalidInputError(f"unknown skip schedule {name!r}; expected one of {sorted(_SCHEDULES)}") from None
    if count is not None and kind in _COUNT_OPTION:
        kw[_COUNT_OPTION[kind]] = int(count)
    try:
        return cls(**kw)
    except TypeError as exc:
        raise InvalidInputError(f"bad options for skip schedule {name!r}: {exc}") from None
