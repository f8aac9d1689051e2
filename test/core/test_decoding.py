"""Decoding strategies against the HF generate oracle: exact under strict acceptance, bounded under relaxed."""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from heisd_ros.core.acceptance import BlockRule
from heisd_ros.core.decoding import (SKIP_BLOCK_VETO_NOTE, SKIP_VETO_NOTE, AcceptanceConfig, ARDecoder, HybridDecoder, SpeculativeDecoder,
                                     skip_guard_options)
from heisd_ros.core.drafters import Draft, ModelDrafter, NoDrafter, RetrievalDrafter
from heisd_ros.core.errors import InvalidInputError
from heisd_ros.core.fused_metric import MetricValue
from heisd_ros.core.hf_adapter import HFCausalVLA
from heisd_ros.core.retrieval import RetrievalDatastore
from heisd_ros.core.stats import Branch
from heisd_ros.core.tokenizer import ActionTokenizer
from heisd_ros.core.verify_skip import FixedSkipSchedule, NoSkipSchedule

from engine_testkit import N_BINS, build_store, hf_greedy, make_obs, make_vla, tiny_llama

L = 7
STRICT = AcceptanceConfig("strict")


class FixedDrafter:
    """Test drafter proposing given candidates (built from the oracle's own output)."""

    action_dim = None
    n_bins = None

    def __init__(self, candidates, actions=None, branch=Branch.RETRIEVAL):
        self.candidates = np.atleast_2d(np.asarray(candidates, np.int64))
        self.actions = actions
        self.branch = branch
        self.feedback = []

    def propose(self, request):
        return Draft(candidates=self.candidates, actions=self.actions)

    def update(self, drafted, accepted):
        self.feedback.append((drafted, accepted))

    def reset(self):
        self.feedback.clear()


def metric(fused: float | None) -> MetricValue:
    if fused is None:
        return MetricValue(False, *(math.nan,) * 5)
    return MetricValue(True, 1.0, 0.1, fused, fused, fused)


def relaxed_chain(vla, obs, deltas) -> np.ndarray:
    """Chain whose token j is the VLA's greedy token after chain[:j], shifted by deltas[j] bins."""
    chain: list[int] = []
    for d in deltas:
        target = int(hf_greedy(vla, obs, 1, prefix_bins=np.asarray(chain, np.int64))[0])
        shifted = target + d if 0 <= target + d < N_BINS else target - d
        chain.append(shifted)
    return np.asarray(chain, np.int64)


def test_ar_decoder_is_hf_generate(vlas):
    for vla in vlas:
        for i in range(3):
            obs = make_obs(i)
            result = ARDecoder(vla).step(obs)
            np.testing.assert_array_equal(result.bins, hf_greedy(vla, obs, L))
            s = result.stats
            assert (s.branch, s.drafted, s.accepted, s.emitted, s.forward_passes) == (Branch.AR, 0, 0, L, L)
            assert result.actions.shape == (1, 7)
            np.testing.assert_allclose(result.actions, vla.tokenizer.decode(result.bins.reshape(1, 7)))
            assert s.total_s >= s.prefill_s + s.decode_s > 0


@pytest.mark.parametrize("accepted_right", [7, 0, 1, 3, 6])
def test_strict_sd_is_exact_for_right_wrong_and_partly_right_drafts(vlas, accepted_right):
    for vla in vlas:
        for i in range(2):
            obs = make_obs(i)
            ref = hf_greedy(vla, obs, L)
            draft = ref.copy()
            draft[accepted_right:] = (ref[accepted_right:] + 1) % N_BINS
            drafter = FixedDrafter(draft, branch=Branch.DRAFTER)
            result = SpeculativeDecoder(vla, drafter, STRICT).step(obs)
            np.testing.assert_array_equal(result.bins, ref)
            s = result.stats
            assert (s.drafted, s.accepted, s.candidates) == (L, accepted_right, 1)
            # one fused prefill + verify pass (bonus token free), then one pass per remaining token
            assert s.forward_passes == (1 if accepted_right == L else L - accepted_right)
            assert s.accepted_per_position == [1] * accepted_right + [0] * (L - accepted_right)
            assert drafter.feedback == [(L, accepted_right)]


def test_strict_sd_with_a_real_drafter_model_is_exact(vlas):
    small = make_vla(7, hidden=32, layers=1)
    for vla in vlas:
        decoder = SpeculativeDecoder(vla, ModelDrafter(small, adaptive=False), STRICT)
        for i in range(3):
            obs = make_obs(i)
            result = decoder.step(obs)
            np.testing.assert_array_equal(result.bins, hf_greedy(vla, obs, L))
            assert result.stats.draft_s > 0 and result.stats.branch is Branch.DRAFTER


def test_self_drafting_accepts_everything_in_one_pass(vlas):
    vla = vlas[0]
    result = SpeculativeDecoder(vla, ModelDrafter(vla), STRICT).step(make_obs(1))
    assert (result.stats.accepted, result.stats.forward_passes) == (L, 1)  # the drafter's own passes are not the verifier's


def test_multi_candidate_strict_keeps_longest_match(vlas):
    vla = vlas[1]
    obs = make_obs(2)
    ref = hf_greedy(vla, obs, L)
    cands = np.stack([np.r_[ref[:2], (ref[2:] + 3) % N_BINS], np.r_[ref[:5], (ref[5:] + 3) % N_BINS], (ref + 9) % N_BINS])
    result = SpeculativeDecoder(vla, FixedDrafter(cands), STRICT).step(obs)
    np.testing.assert_array_equal(result.bins, ref)
    assert (result.stats.accepted, result.stats.candidates, result.stats.forward_passes) == (5, 3, 2)


def test_token_relaxed_accepts_within_radius(vlas):
    vla, obs, r = vlas[2], make_obs(0), 9
    chain = relaxed_chain(vla, obs, [r, -r, 4, 0, -7, r, 2])
    result = SpeculativeDecoder(vla, FixedDrafter(chain), AcceptanceConfig("token", r)).step(obs)
    assert (result.stats.accepted, result.stats.forward_passes) == (L, 1)
    np.testing.assert_array_equal(result.bins, chain)
    assert abs(int(result.bins[0]) - int(hf_greedy(vla, obs, 1)[0])) <= r  # token 0 vs AR
    # strict acceptance of the same draft stops at the first shifted token and stays exact
    strict = SpeculativeDecoder(vla, FixedDrafter(chain), STRICT).step(obs)
    np.testing.assert_array_equal(strict.bins, hf_greedy(vla, obs, L))
    assert strict.stats.accepted == 0


def test_token_relaxed_rejects_outside_radius_and_continues_with_the_vla(vlas):
    vla, obs, r = vlas[0], make_obs(1), 9
    chain = relaxed_chain(vla, obs, [3, 0, -5, r + 1, 0, 0, 0])
    result = SpeculativeDecoder(vla, FixedDrafter(chain), AcceptanceConfig("token", r)).step(obs)
    assert result.stats.accepted == 3
    np.testing.assert_array_equal(result.bins[:3], chain[:3])
    np.testing.assert_array_equal(result.bins[3:], hf_greedy(vla, obs, 4, prefix_bins=chain[:3]))


def test_verifier_emission_puts_the_vlas_own_tokens_at_accepted_positions(vlas):
    vla, obs, r = vlas[2], make_obs(0), 9
    chain = relaxed_chain(vla, obs, [r, -r, 4, 0, -7, r, 2])
    drafted = SpeculativeDecoder(vla, FixedDrafter(chain), AcceptanceConfig("token", r)).step(obs)
    own = SpeculativeDecoder(vla, FixedDrafter(chain), AcceptanceConfig("token", r, emit="verifier")).step(obs)
    # same acceptance, same cost; token j is the VLA's greedy token after the drafted chain[:j]
    assert (own.stats.accepted, own.stats.forward_passes) == (drafted.stats.accepted, drafted.stats.forward_passes) == (L, 1)
    expected = [int(hf_greedy(vla, obs, 1, prefix_bins=chain[:j])[0]) for j in range(L)]
    np.testing.assert_array_equal(own.bins, expected)
    assert own.bins[0] == hf_greedy(vla, obs, 1)[0]  # the first token is AR's exactly
    assert np.any(own.bins != chain)
    # a partly accepted chain: verifier tokens up to the rejection, then greedy completion from the drafted prefix
    partial = relaxed_chain(vla, obs, [3, 0, -5, r + 1, 0, 0, 0])
    out = SpeculativeDecoder(vla, FixedDrafter(partial), AcceptanceConfig("token", r, emit="verifier")).step(obs)
    assert out.stats.accepted == 3
    np.testing.assert_array_equal(out.bins[:3], [int(hf_greedy(vla, obs, 1, prefix_bins=partial[:j])[0]) for j in range(3)])
    np.testing.assert_array_equal(out.bins[3], hf_greedy(vla, obs, 1, prefix_bins=partial[:3])[0])


def test_verifier_emission_under_strict_acceptance_is_exact(vlas):
    vla, obs = vlas[0], make_obs(3)
    chain = relaxed_chain(vla, obs, [0, 0, 4, 0, 0, 0, 0])
    result = SpeculativeDecoder(vla, FixedDrafter(chain), AcceptanceConfig("strict", emit="verifier")).step(obs)
    np.testing.assert_array_equal(result.bins, hf_greedy(vla, obs, L))
    with pytest.raises(InvalidInputError, match="emit"):
        AcceptanceConfig("token", 9, emit="both")


def test_block_relaxed_over_candidates_in_one_pass(vlas):
    vla, obs = vlas[1], make_obs(2)
    passing = relaxed_chain(vla, obs, [10, -10, 10, 20, 0, -20, 5])  # sums 30 / 40 / 5, max 20 < 25
    failing_second_block = relaxed_chain(vla, obs, [0, 0, 0, 24, 24, 0, 0])  # sum 48 >= 45
    decoder = SpeculativeDecoder(vla, FixedDrafter(np.stack([failing_second_block, passing])), AcceptanceConfig("block"))
    result = decoder.step(obs)
    assert (result.stats.accepted, result.stats.candidates, result.stats.forward_passes) == (L, 2, 1)
    np.testing.assert_array_equal(result.bins, passing)
    alone = SpeculativeDecoder(vla, FixedDrafter(failing_second_block), AcceptanceConfig("block")).step(obs)
    assert alone.stats.accepted == 3  # decoding continues from the failed block with the VLA
    np.testing.assert_array_equal(alone.bins[:3], failing_second_block[:3])
    np.testing.assert_array_equal(alone.bins[3:], hf_greedy(vla, obs, 4, prefix_bins=failing_second_block[:3]))


def test_block_with_longer_horizon_and_strict_oracle():
    vla = make_vla(5, horizon=2)
    obs = make_obs(1)
    ref = hf_greedy(vla, obs, 14)
    wrong = np.r_[ref[:10], (ref[10:] + 40) % N_BINS]
    result = SpeculativeDecoder(vla, FixedDrafter(wrong), STRICT).step(obs)
    np.testing.assert_array_equal(result.bins, ref)
    assert result.actions.shape == (2, 7)
    block = SpeculativeDecoder(vla, FixedDrafter(wrong), AcceptanceConfig("block")).step(obs)
    assert block.stats.accepted == 10  # action 1's orientation block fails: 7 + 3 tokens kept
    np.testing.assert_array_equal(block.bins, ref)


def _hybrid(vla, retrieval, schedule=None, drafter=None):
    return HybridDecoder(
        vla,
        drafter or ModelDrafter(make_vla(7, hidden=32, layers=1)),
        retrieval,
        tau=0.3,
        drafter_acceptance=STRICT,
        retrieval_acceptance=STRICT,
        skip_schedule=schedule or NoSkipSchedule(),
    )


def test_hybrid_every_branch_is_exact_under_strict_acceptance(vlas):
    for vla in vlas:
        obs = make_obs(0)
        ref = hf_greedy(vla, obs, L)
        retrieval = FixedDrafter(np.stack([np.r_[ref[:4], (ref[4:] + 1) % N_BINS], (ref + 50) % N_BINS]))
        hybrid = _hybrid(vla, retrieval)
        for value, branch in [(None, Branch.AR), (metric(None), Branch.AR), (metric(0.1), Branch.DRAFTER),
                              (metric(0.3), Branch.DRAFTER), (metric(0.9), Branch.RETRIEVAL)]:
            result = hybrid.step(obs, value)
            assert result.stats.branch is branch
            np.testing.assert_array_equal(result.bins, ref)
        assert result.stats.accepted == 4 and result.stats.candidates == 2


def test_hybrid_verify_skip_executes_retrieved_actions_without_vla(vlas):
    vla = vlas[0]
    obs = make_obs(1)
    ref = hf_greedy(vla, obs, L)
    payload = np.full((1, 7), 0.25)
    hybrid = _hybrid(vla, FixedDrafter(ref, actions=payload), FixedSkipSchedule(2, 1))
    branches = []
    for value in [0.9, 0.9, 0.9, 0.9, 0.1, 0.9]:
        before = vla.forward_passes
        result = hybrid.step(obs, metric(value))
        branches.append(result.stats.branch)
        if result.stats.branch is Branch.RETRIEVAL_SKIP:
            assert vla.forward_passes == before and result.stats.forward_passes == 0
            np.testing.assert_array_equal(result.bins, ref)
            np.testing.assert_array_equal(result.actions, payload)
    S, V, D = Branch.RETRIEVAL_SKIP, Branch.RETRIEVAL, Branch.DRAFTER
    assert branches == [S, S, V, S, D, S]  # the drafter branch restarts the 2:1 cycle


def test_gripper_guard_verifies_a_skip_that_would_open_or_close_the_gripper(vlas):
    vla = vlas[0]
    obs = make_obs(1)
    ref = hf_greedy(vla, obs, L)
    ar_grip = float(vla.tokenizer.decode(ref.reshape(1, 7))[0, 6])
    assert ar_grip != 0.0
    same = np.full((1, 7), 0.25)
    same[0, 6] = math.copysign(0.8, ar_grip)  # keeps the gripper as AR left it
    flip = same.copy()
    flip[0, 6] = -same[0, 6]  # opens a closed gripper, or closes an open one
    S, V = Branch.RETRIEVAL_SKIP, Branch.RETRIEVAL
    for payload, guard, expected in [(same, [6], [S, S, V]), (flip, [6], [V, V, V]), (flip, [], [S, S, V])]:
        hybrid = HybridDecoder(vla, ModelDrafter(make_vla(7, hidden=32, layers=1)), FixedDrafter(ref, actions=payload),
                               tau=0.3, drafter_acceptance=STRICT, retrieval_acceptance=STRICT,
                               skip_schedule=FixedSkipSchedule(2, 1), skip_guard_dims=guard)
        assert hybrid.step(obs, metric(None)).stats.branch is Branch.AR
        results = [hybrid.step(obs, metric(0.9)) for _ in expected]
        assert [r.stats.branch for r in results] == expected
        for r in results:
            if r.stats.branch is V:  # verified: the VLA's own chunk, never the flipping payload
                np.testing.assert_array_equal(r.bins, ref)
                assert r.stats.forward_passes >= 1
        vetoed = 2 if payload is flip and guard else 0
        assert hybrid.vetoed_skips == vetoed
        assert sum("gripper" in r.note for r in results) == vetoed
    # the first chunk of an episode has nothing to compare against, so a guarded skip is verified
    hybrid = HybridDecoder(vla, NoDrafter(), FixedDrafter(ref, actions=same), tau=0.3, retrieval_acceptance=STRICT,
                           skip_schedule=FixedSkipSchedule(2, 1), skip_guard_dims=[6])
    assert hybrid.step(obs, metric(0.9)).stats.branch is V
    assert hybrid.step(obs, metric(0.9)).stats.branch is S
    hybrid.reset()
    assert hybrid.step(obs, metric(0.9)).stats.branch is V
    with pytest.raises(InvalidInputError, match="skip_guard_dims"):
        HybridDecoder(vla, NoDrafter(), NoDrafter(), tau=0.3, skip_guard_dims=[7])


def test_block_guard_verifies_a_skip_whose_chunk_fails_the_block_test_against_the_last_verified_chunk(vlas):
    vla = vlas[0]
    obs = make_obs(3)
    ref = hf_greedy(vla, obs, L)
    step = np.where(ref[:6] < N_BINS // 2, 1, -1)  # moves every arm bin towards the middle, so it stays in range
    near = ref.copy()
    near[:6] += 4 * step  # block sums 12 < 45, largest 4 < 25: consistent with the last verified chunk
    far = ref.copy()
    far[0] += 30 * step[0]  # one position bin 30 away: fails max < 25
    payload = np.full((1, 7), 0.25)
    S, V = Branch.RETRIEVAL_SKIP, Branch.RETRIEVAL
    for candidate, check, expected in [(near, True, S), (far, True, V), (far, False, S)]:
        hybrid = HybridDecoder(vla, NoDrafter(), FixedDrafter(candidate, actions=payload), tau=0.3,
                               retrieval_acceptance=STRICT, skip_schedule=FixedSkipSchedule(2, 1), skip_block_check=check)
        assert hybrid.step(obs, metric(None)).stats.branch is Branch.AR  # the last verified chunk is ref
        result = hybrid.step(obs, metric(0.9))
        assert result.stats.branch is expected
        if expected is V:  # verified instead: the VLA's chunk, the veto counted and noted
            np.testing.assert_array_equal(result.bins, ref)
            assert result.stats.forward_passes >= 1
            assert hybrid.vetoed_skips == 1 and result.note == SKIP_BLOCK_VETO_NOTE
        else:
            np.testing.assert_array_equal(result.actions, payload)
            assert hybrid.vetoed_skips == 0
    # no verdict yet this episode: the check cannot pass, so the step is verified
    hybrid = HybridDecoder(vla, NoDrafter(), FixedDrafter(near, actions=payload), tau=0.3,
                           retrieval_acceptance=STRICT, skip_schedule=FixedSkipSchedule(2, 1), skip_block_check=True)
    assert hybrid.step(obs, metric(0.9)).note == SKIP_BLOCK_VETO_NOTE
    names = ["x", "y", "z", "roll", "pitch", "yaw", "gripper"]
    assert skip_guard_options("block", names) == {"skip_guard_dims": [6], "skip_block_check": True}
    assert skip_guard_options("gripper", names) == {"skip_guard_dims": [6], "skip_block_check": False}
    assert skip_guard_options("none", names) == {"skip_guard_dims": [], "skip_block_check": False}
    with pytest.raises(InvalidInputError, match="skip_guard"):
        skip_guard_options("blocks", names)


class FollowingDrafter(FixedDrafter):
    """FixedDrafter whose drafts carry the frames after the top-1 in its demonstration; counts lookups."""

    follow = 2

    def __init__(self, candidates, actions, following):
        super().__init__(candidates, actions)
        self.following = tuple(following)
        self.lookups = 0

    def propose(self, request):
        self.lookups += 1
        return dataclasses.replace(super().propose(request), following=self.following)


def test_skip_pick_continue_skips_along_the_demonstration_of_the_latest_lookup(vlas):
    vla = vlas[0]
    obs = make_obs(4)
    ref = hf_greedy(vla, obs, L)
    top = (ref + 3) % N_BINS
    frames = [((ref + 5 + i) % N_BINS, np.full((1, 7), 0.1 * (i + 2))) for i in range(2)]
    top_actions = np.full((1, 7), 0.05)
    S, V, D = Branch.RETRIEVAL_SKIP, Branch.RETRIEVAL, Branch.DRAFTER
    retrieval = FollowingDrafter(top, top_actions, frames)
    hybrid = HybridDecoder(vla, ModelDrafter(make_vla(7, hidden=32, layers=1)), retrieval, tau=0.3, retrieval_acceptance=STRICT,
                           skip_schedule=FixedSkipSchedule(2, 1), skip_pick="continue")
    assert hybrid.step(obs, metric(None)).stats.branch is Branch.AR
    steps = [(0.9, S, top_actions, 1),  # first retrieval step of the run: a lookup, its top-1
             (0.9, S, frames[0][1], 1),  # then the next frame of that demonstration, with no lookup
             (0.9, V, None, 2),  # the scheduled verification looks up afresh
             (0.9, S, frames[0][1], 2),  # and continues the new lookup's demonstration from its start
             (0.1, D, None, 2),  # the drafter branch ends the run
             (0.9, S, top_actions, 3)]  # so the next retrieval step starts from a lookup's top-1 again
    for value, branch, actions, lookups in steps:
        before = vla.forward_passes
        result = hybrid.step(obs, metric(value))
        assert result.stats.branch is branch and retrieval.lookups == lookups
        if branch is S:
            assert vla.forward_passes == before
            np.testing.assert_array_equal(result.actions, actions)
        if branch is V:
            np.testing.assert_array_equal(result.bins, ref)
    result = hybrid.step(obs, metric(0.9))
    assert result.stats.branch is S and retrieval.lookups == 3
    np.testing.assert_array_equal(result.bins, frames[0][0])  # a continued skip carries the frame's bins too
    # a skip granted with no frame left is verified; a frame that would flip the gripper is vetoed and verified
    ar_grip = float(vla.tokenizer.decode(ref.reshape(1, 7))[0, 6])
    flip = np.full((1, 7), 0.2)
    flip[0, 6] = -math.copysign(0.8, ar_grip)
    keep = flip.copy()
    keep[0, 6] = -flip[0, 6]
    for following, guard, expected in [([frames[0]], (), [S, S, V, V]), ([(top, keep), (top, flip)], [6], [S, S, V, V])]:
        retrieval = FollowingDrafter(top, keep, following)
        hybrid = HybridDecoder(vla, NoDrafter(), retrieval, tau=0.3, retrieval_acceptance=STRICT,
                               skip_schedule=FixedSkipSchedule(3, 1), skip_pick="continue", skip_guard_dims=guard)
        assert hybrid.step(obs, metric(None)).stats.branch is Branch.AR
        results = [hybrid.step(obs, metric(0.9)) for _ in expected]
        assert [r.stats.branch for r in results] == expected
        assert hybrid.vetoed_skips == (1 if guard else 0) and (results[2].note == SKIP_VETO_NOTE) == bool(guard)
    with pytest.raises(InvalidInputError, match="follow"):
        HybridDecoder(vla, NoDrafter(), FixedDrafter(top), tau=0.3, skip_pick="continue")


def test_skip_pick_nearest_executes_the_candidate_closest_to_the_last_verified_chunk(vlas):
    vla = vlas[0]
    obs = make_obs(2)
    ref = hf_greedy(vla, obs, L)
    far = (ref + 40) % N_BINS
    payload = np.full((1, 7), 0.25)  # the top-1 candidate's stored actions
    for pick, expected in [("top1", far), ("nearest", ref)]:
        hybrid = HybridDecoder(vla, NoDrafter(), FixedDrafter(np.stack([far, ref]), actions=payload), tau=0.3,
                               retrieval_acceptance=STRICT, skip_schedule=FixedSkipSchedule(2, 1), skip_pick=pick)
        assert hybrid.step(obs, metric(None)).stats.branch is Branch.AR  # the last verified chunk is ref
        skipped = hybrid.step(obs, metric(0.9))
        assert skipped.stats.branch is Branch.RETRIEVAL_SKIP
        np.testing.assert_array_equal(skipped.bins, expected)
        if pick == "top1":
            np.testing.assert_array_equal(skipped.actions, payload)
        else:
            np.testing.assert_allclose(skipped.actions, vla.tokenizer.decode(ref.reshape(1, 7)))
    with pytest.raises(InvalidInputError, match="skip_pick"):
        HybridDecoder(vla, NoDrafter(), NoDrafter(), tau=0.3, skip_pick="closest")


@pytest.mark.parametrize("problem", ["unknown task", "empty index"])
def test_hybrid_falls_back_to_drafter_when_retrieval_is_unusable(vlas, caplog, problem):
    vla = vlas[1]
    obs = make_obs(0)
    store = RetrievalDatastore(embed_dim=vla.model.config.hidden_size, horizon=1, action_dim=7)
    task = "wipe the table" if problem == "unknown task" else obs.instruction
    store.build(task, np.zeros((0, 64)), np.zeros((0, 1, 7)), np.zeros((0, 7), np.int64), np.zeros(0, np.int64),
                np.zeros(0, np.int64))
    result = _hybrid(vla, RetrievalDrafter(store, vla)).step(obs, metric(0.9))
    assert result.stats.branch is Branch.DRAFTER
    expected = "no retrieval collection" if problem == "unknown task" else "is empty"
    assert expected in result.note and "drafter branch" in result.note
    assert expected in caplog.text
    assert result.stats.retrieval_s > 0
    np.testing.assert_array_equal(result.bins, hf_greedy(vla, obs, L))


def test_hybrid_with_real_datastore_matches_oracle_and_skips(vlas):
    vla = vlas[2]
    observations = [make_obs(i) for i in range(6)]
    hybrid = _hybrid(vla, RetrievalDrafter(build_store(vla, observations), vla), FixedSkipSchedule(1, 1))
    for obs in observations:
        ref = hf_greedy(vla, obs, L)
        skipped = hybrid.step(obs, metric(0.9))
        assert skipped.stats.branch is Branch.RETRIEVAL_SKIP
        np.testing.assert_array_equal(skipped.bins, ref)  # its own stored greedy chunk
        verified = hybrid.step(obs, metric(0.9))
        assert verified.stats.branch is Branch.RETRIEVAL and verified.stats.accepted == L
        np.testing.assert_array_equal(verified.bins, ref)


def test_bad_inputs(vlas):
    vla = vlas[0]
    with pytest.raises(InvalidInputError, match="NaN"):
        ARDecoder(vla).step(dataclasses.replace(make_obs(0), proprio=np.array([np.nan])))
    six = HFCausalVLA(tiny_llama(0), ActionTokenizer(-np.ones(6), np.ones(6)), 1, vla.prompt_builder)
    with pytest.raises(InvalidInputError, match="dimension 6"):
        SpeculativeDecoder(vla, ModelDrafter(six))
    with pytest.raises(InvalidInputError, match="dimension 6"):
        HybridDecoder(vla, ModelDrafter(six), NoDrafter(), tau=0.3)
    with pytest.raises(InvalidInputError, match="mode"):
        AcceptanceConfig("fuzzy")
    with pytest.raises(InvalidInputError, match="radius"):
        AcceptanceConfig("token", -1)
    with pytest.raises(InvalidInputError, match="cover"):
        SpeculativeDecoder(vla, NoDrafter(), AcceptanceConfig("block", block_rule=BlockRule(((0, 1, 2), (3, 4)))))
    with pytest.raises(InvalidInputError, match="tau"):
        HybridDecoder(vla, NoDrafter(), NoDrafter(), tau=float("nan"))
    with pytest.raises(InvalidInputError, match="MetricValue"):
        HybridDecoder(vla, NoDrafter(), NoDrafter(), tau=0.3).step(make_obs(0), 0.5)


def test_retrieval_sd_with_an_empty_draft_is_reported_as_ar(vlas):
    """An unusable drafter (here: no collection for the task) gives AR's tokens, labelled AR, not the drafter's branch."""
    vla = vlas[1]
    obs = make_obs(0)
    store = RetrievalDatastore(embed_dim=vla.model.config.hidden_size, horizon=1, action_dim=7)
    store.build("wipe the table", np.zeros((0, 64)), np.zeros((0, 1, 7)), np.zeros((0, 7), np.int64),
                np.zeros(0, np.int64), np.zeros(0, np.int64))
    result = SpeculativeDecoder(vla, RetrievalDrafter(store, vla), AcceptanceConfig("block")).step(obs)
    assert result.stats.branch is Branch.AR and result.stats.drafted == 0
    assert "no retrieval collection" in result.note
    np.testing.assert_array_equal(result.bins, hf_greedy(vla, obs, L))
