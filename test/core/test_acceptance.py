"""Acceptance rules: strict, token-relaxed (Spec-VLA) and block-relaxed (HeiSD)."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from heisd_ros.core.acceptance import (
    BlockRule,
    block_relaxed_accept,
    strict_accept,
    token_relaxed_accept,
)
from heisd_ros.core.errors import InvalidInputError

RULE = BlockRule()
BASE = np.array([100, 120, 140, 60, 80, 200, 255], dtype=np.int64)


def test_strict_prefix_semantics():
    target = np.array([5, 6, 7, 8, 9])
    assert strict_accept(target.copy(), target) == 5
    assert strict_accept(np.array([5, 6, 0, 8, 9]), target) == 2  # later matches are not accepted
    assert strict_accept(np.array([0, 6, 7, 8, 9]), target) == 0
    # a 2-D (H, D) chunk is read row-major
    chunk = np.arange(14).reshape(2, 7)
    wrong = chunk.copy()
    wrong[1, 2] += 1
    assert strict_accept(wrong, chunk) == 9


def test_token_relaxed_radius_boundary_and_prefix():
    target = np.full(6, 100)
    assert token_relaxed_accept(target + 9, target, radius=9) == 6
    assert token_relaxed_accept(target - 9, target, radius=9) == 6
    draft = np.array([109, 91, 110, 100, 100, 100])  # |d| = 9, 9, 10 (r+1), then exact
    assert token_relaxed_accept(draft, target, radius=9) == 2
    assert token_relaxed_accept(draft, target, radius=10) == 6
    assert token_relaxed_accept(draft, target, radius=0) == 0


def test_input_validation():
    with pytest.raises(InvalidInputError, match="equal shape"):
        strict_accept(np.zeros(3, int), np.zeros(4, int))
    with pytest.raises(InvalidInputError, match="integer"):
        strict_accept(np.zeros(3), np.zeros(3))
    with pytest.raises(InvalidInputError, match="radius"):
        token_relaxed_accept(np.zeros(3, int), np.zeros(3, int), radius=-1)
    with pytest.raises(InvalidInputError, match="whole number of actions"):
        block_relaxed_accept(np.zeros((2, 9), int), np.zeros((2, 9), int), RULE, 7)
    with pytest.raises(InvalidInputError, match="cover range"):
        block_relaxed_accept(np.zeros((2, 8), int), np.zeros((2, 8), int), RULE, 8)
    with pytest.raises(InvalidInputError, match="in order"):
        BlockRule(blocks=((0, 2), (1,))).validate(3)
    with pytest.raises(InvalidInputError, match="integer"):
        block_relaxed_accept(np.zeros((1, 7)), np.zeros((1, 7)), RULE, 7)


def _with_offsets(offsets):
    return BASE + np.asarray(offsets, dtype=np.int64)


@pytest.mark.parametrize(
    "offsets, accepted",
    [
        ([15, 15, 14, 0, 0, 0, 0], 7),  # sum 44 < 45 passes
        ([15, 15, 15, 0, 0, 0, 0], 0),  # sum exactly 45 fails the first block
        ([24, 0, 0, 0, 0, 0, 0], 7),  # max 24 < 25 passes
        ([25, 0, 0, 0, 0, 0, 0], 0),  # max exactly 25 fails
    ],
)
def test_threshold_boundaries_single_candidate(offsets, accepted):
    cand = _with_offsets(offsets)[None]
    d = block_relaxed_accept(cand, BASE[None], RULE, 7)
    assert d.accepted == accepted
    assert d.best == (0 if accepted else -1)


def test_boundaries_in_later_blocks_stop_there():
    ok_orient = _with_offsets([0, 0, 0, -14, -15, 15, 0])  # sum 44
    bad_orient = _with_offsets([0, 0, 0, -15, -15, 15, 0])  # sum 45
    bad_gripper = _with_offsets([0, 0, 0, 0, 0, 0, -25])
    ok_gripper = _with_offsets([0, 0, 0, 0, 0, 0, -24])
    t = BASE[None]
    assert block_relaxed_accept(ok_orient[None], t, RULE, 7).accepted == 7
    assert block_relaxed_accept(bad_orient[None], t, RULE, 7).accepted == 3
    assert block_relaxed_accept(bad_gripper[None], t, RULE, 7).accepted == 6
    assert block_relaxed_accept(ok_gripper[None], t, RULE, 7).accepted == 7


def test_block_filtering_across_candidates():
    targets = np.tile(BASE, (4, 1))
    cands = np.stack(
        [
            _with_offsets([30, 0, 0, 0, 0, 0, 0]),  # fails position
            _with_offsets([10, 10, 10, 20, 0, 0, 0]),  # passes all, total 50
            _with_offsets([1, 1, 1, 0, 0, 0, 40]),  # fails gripper only
            _with_offsets([2, 2, 2, 2, 2, 2, 2]),  # passes all, total 14 -> best
        ]
    )
    d = block_relaxed_accept(cands, targets, RULE, 7)
    assert d.accepted == 7
    assert d.survivors == [1, 3]
    assert d.best == 3
    assert d.per_candidate == [0, 7, 6, 7]
    # survivors shrink block by block: the one that reaches farthest alone decides
    cands[3, 6] += 30
    cands[1, 4] += 30
    d = block_relaxed_accept(cands, targets, RULE, 7)
    assert d.per_candidate == [0, 3, 6, 6]
    assert d.accepted == 6 and d.survivors == [2, 3]
    # distance over the passed blocks (first 6 tokens): cand 2 -> 3, cand 3 -> 12
    assert d.best == 2


def test_best_ties_go_to_lowest_index_and_none_pass():
    targets = np.tile(BASE, (3, 1))
    cands = np.stack([_with_offsets([40] + [0] * 6), _with_offsets([1] + [0] * 6), _with_offsets([0, 1] + [0] * 5)])
    assert block_relaxed_accept(cands, targets, RULE, 7).best == 1
    all_bad = np.tile(_with_offsets([40] + [0] * 6), (3, 1))
    d = block_relaxed_accept(all_bad, targets, RULE, 7)
    assert (d.best, d.accepted, d.survivors, d.per_candidate) == (-1, 0, [], [0, 0, 0])


def test_multi_action_sequence_blocks_repeat_per_action():
    target = np.tile(BASE, 3)  # H = 3 actions, L = 21
    cand = target.copy()
    cand[7 + 3] += 30  # action 1, orientation block fails
    d = block_relaxed_accept(cand[None], target[None], RULE, 7)
    assert d.accepted == 7 + 3
    cand[7 + 3] -= 30
    cand[14 + 6] += 25  # action 2's gripper fails
    assert block_relaxed_accept(cand[None], target[None], RULE, 7).accepted == 20
    # a 1-D pair is K = 1
    assert block_relaxed_accept(cand, target, RULE, 7).accepted == 20


def test_for_dim_partitions():
    assert BlockRule.for_dim(7).blocks == RULE.blocks
    rule24 = BlockRule.for_dim(24)
    rule24.validate(24)
    assert len(rule24.blocks) == 8 and all(len(b) == 3 for b in rule24.blocks)
    assert BlockRule.for_dim(5).blocks == ((0, 1, 2), (3, 4))
    target = np.zeros((1, 48), dtype=np.int64) + 128
    cand = target.copy()
    cand[0, 24 + 13] = 128 + 25  # action 1, block 4 (dims 12-14)
    assert block_relaxed_accept(cand, target, rule24, 24).accepted == 24 + 12


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 6), st.integers(1, 3), st.integers(0, 2**32 - 1))
def test_block_decision_invariants(k, horizon, seed):
    rng = np.random.default_rng(seed)
    targets = rng.integers(0, 256, size=(k, 7 * horizon))
    cands = np.clip(targets + rng.integers(-30, 31, size=targets.shape) * (rng.random(targets.shape) < 0.3), 0, 255)
    d = block_relaxed_accept(cands, targets, RULE, 7)
    # accepted = what the farthest-reaching candidate accepts alone; survivors = those reaching it
    assert d.accepted == max(d.per_candidate)
    if d.accepted:
        assert d.survivors == [i for i, n in enumerate(d.per_candidate) if n == d.accepted]
        totals = [int(np.abs(cands[i, : d.accepted] - targets[i, : d.accepted]).sum()) for i in d.survivors]
        assert d.best == d.survivors[int(np.argmin(totals))]
    else:
        assert d.best == -1 and d.survivors == []
    # radius 0 is strict acceptance
    for i in range(k):
        assert token_relaxed_accept(cands[i], targets[i], radius=0) == strict_accept(cands[i], targets[i])
