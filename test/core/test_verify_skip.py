"""Verify-skip schedules."""
import pytest

from heisd_ros.core.errors import InvalidInputError
from heisd_ros.core.verify_skip import (
    AdaptiveSkipSchedule,
    FixedSkipSchedule,
    NoSkipSchedule,
    SkipSchedule,
    make_skip_schedule,
)


def _run(schedule, steps, outcome=lambda i: True):
    """Drive a schedule like the decoder does; returns 'S'/'V' per step."""
    out = []
    for i in range(steps):
        if schedule.should_skip():
            out.append("S")
        else:
            out.append("V")
            schedule.record(outcome(i))
    return "".join(out)


def test_fixed_two_to_one_over_long_run():
    pattern = _run(FixedSkipSchedule(), 300, outcome=lambda i: i % 2 == 0)
    assert pattern == "SSV" * 100  # outcomes do not disturb the reference schedule
    assert _run(FixedSkipSchedule(skip=1, verify=2), 6) == "SVVSVV"
    assert _run(FixedSkipSchedule(skip=0, verify=1), 4) == "VVVV"


def test_fixed_reset_restarts_cycle():
    s = FixedSkipSchedule()
    assert _run(s, 4) == "SSVS"
    s.reset()  # e.g. the drafter branch ran
    assert _run(s, 3) == "SSV"


def test_adaptive_grows_while_agreeing_and_shrinks_after_rejection():
    s = AdaptiveSkipSchedule()
    assert _run(s, 10) == "VSVSSVSSSV"
    assert s.current_skip == 4
    assert _run(s, 10) == "SSSSVSSSSV"  # capped at max_skip
    s.record(False)  # a rejection halves the skip run
    assert s.current_skip == 2
    assert _run(s, 3, outcome=lambda i: False) == "SSV"
    assert s.current_skip == 1
    s.reset()
    assert s.current_skip == 0 and _run(s, 1) == "V"


def test_adaptive_grow_after_and_min_skip():
    s = AdaptiveSkipSchedule(min_skip=1, max_skip=3, grow_after=2, shrink_factor=0.0)
    # starts with no pending skips; needs two agreements per increment
    assert _run(s, 8) == "VSVSSVSS"
    assert s.current_skip == 2
    s.record(False)
    assert s.current_skip == 1  # floor(2 * 0) clipped up to min_skip


def test_none_and_factory():
    assert _run(NoSkipSchedule(), 5) == "VVVVV"
    for name, cls in [("none", NoSkipSchedule), ("Fixed", FixedSkipSchedule), ("adaptive", AdaptiveSkipSchedule)]:
        sched = make_skip_schedule(name)
        assert isinstance(sched, cls) and isinstance(sched, SkipSchedule)
    assert make_skip_schedule("fixed", skip=3).skip == 3
    with pytest.raises(InvalidInputError, match="unknown skip schedule"):
        make_skip_schedule("sometimes")
    with pytest.raises(InvalidInputError, match="bad options"):
        make_skip_schedule("none", skip=2)
    with pytest.raises(InvalidInputError):
        AdaptiveSkipSchedule(min_skip=3, max_skip=2)
    with pytest.raises(InvalidInputError):
        FixedSkipSchedule(verify=0)
