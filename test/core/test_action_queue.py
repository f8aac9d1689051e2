"""Action queue and safety filter: order, underruns, hold semantics, clamping and rate limits."""
from __future__ import annotations

import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from heisd_ros.core.action_queue import ActionQueue, SafetyFilter
from heisd_ros.core.errors import InvalidInputError

HOLD = np.array([0, 0, 0, 0, 0, 0, -1.0])


def test_fifo_replace_and_underrun():
    q = ActionQueue(7, HOLD, keep_dims=[6])
    q.push(np.arange(14.0).reshape(2, 7), meta="a")
    first = q.pop()
    assert first.meta == "a" and first.index == 0 and first.action[0] == 0.0
    q.push(np.full((1, 7), 5.0), meta="b")  # a newer observation replaces what is left
    assert len(q) == 1 and q.pop().meta == "b"
    assert q.pop() is None and q.underruns == 1


def test_hold_keeps_the_gripper_of_the_last_command():
    q = ActionQueue(7, HOLD, keep_dims=[6])
    assert q.hold().tolist() == HOLD.tolist()
    q.push(np.array([[0.3, 0, 0, 0, 0, 0, 1.0]]))
    q.pop()
    assert q.hold().tolist() == [0, 0, 0, 0, 0, 0, 1.0]


def test_bad_shapes_are_rejected():
    with pytest.raises(InvalidInputError, match="hold action has 6 values"):
        ActionQueue(7, HOLD[:6])
    with pytest.raises(InvalidInputError, match="keep_dims \\[9\\]"):
        ActionQueue(7, HOLD, keep_dims=[9])
    with pytest.raises(InvalidInputError, match="must be \\(H, 7\\)"):
        ActionQueue(7, HOLD).push(np.zeros((2, 6)))


def test_concurrent_push_and_pop_lose_nothing():
    q = ActionQueue(1, np.zeros(1))
    popped = []

    def consumer():
        while len(popped) < 1000:
            item = q.pop()
            if item is not None:
                popped.append(item.action[0])

    t = threading.Thread(target=consumer)
    t.start()
    for i in range(1000):
        q.push(np.array([[float(i)]]), replace=False)
    t.join(10)
    assert popped == [float(i) for i in range(1000)]


def test_safety_filter_clamps_and_rate_limits():
    f = SafetyFilter(limit=1.0, max_change=0.5)
    out, changed = f(np.array([2.0, -0.2]))
    assert out.tolist() == [1.0, -0.2] and changed
    out, changed = f(np.array([-1.0, -0.2]))
    assert out.tolist() == [0.5, -0.2] and changed
    out, changed = f(np.array([0.4, 0.1]))
    assert out.tolist() == [0.4, 0.1] and not changed
    assert f.clamped_count == 2
    with pytest.raises(InvalidInputError, match="non-finite"):
        f(np.array([np.nan, 0.0]))


def test_a_lowered_limit_holds_on_the_very_next_tick():
    """Lowering the limit at run time must not leave the output outside it while the rate limit walks in."""
    f = SafetyFilter(limit=1.0, max_change=0.005)
    f(np.array([-1.0, 0.5]))
    f.limit = 0.01
    out, changed = f(np.array([-1.0, 0.5]))
    assert changed and np.all(np.abs(out) <= 0.01), out


def test_preview_filters_queued_actions_without_changing_state():
    f = SafetyFilter(limit=1.0, max_change=0.5)
    f(np.array([0.0]))
    rest = f.preview([np.array([3.0]), np.array([3.0]), np.array([-3.0])])
    assert [float(r[0]) for r in rest] == [0.5, 1.0, 0.5]
    assert f.last.tolist() == [0.0] and f.clamped_count == 0
    out, _ = f(np.array([3.0]))
    assert out.tolist() == [0.5]  # the real call agrees with the preview's first step


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.floats(-50, 50), min_size=3, max_size=3), min_size=1, max_size=20),
       st.floats(0.01, 5), st.floats(0.01, 5))
def test_filtered_actions_always_respect_limits(actions, limit, max_change):
    f = SafetyFilter(limit=limit, max_change=max_change)
    prev = None
    for a in actions:
        out, _ = f(np.array(a))
        assert np.all(np.abs(out) <= limit + 1e-12)
        if prev is not None:  # within the limit from the start, so the rate limit never has to give way
            assert np.all(np.abs(out - prev) <= max_change + 1e-9)
        prev = out
