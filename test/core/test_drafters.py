"""Drafters behind one interface: none, a small model, and a real retrieval datastore."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from heisd_ros.core.decoding import AcceptanceConfig, SpeculativeDecoder
from heisd_ros.core.drafters import Drafter, DraftRequest, ModelDrafter, NoDrafter, RetrievalDrafter
from heisd_ros.core.errors import InvalidInputError
from heisd_ros.core.retrieval import RetrievalDatastore
from heisd_ros.core.stats import Branch

from engine_testkit import build_store, hf_greedy, make_obs, make_vla

OBS = [make_obs(i) for i in range(15)]  # 5 per instruction


@pytest.fixture(scope="module")
def store(vlas):
    return build_store(vlas[0], OBS)


def test_every_drafter_satisfies_the_protocol(vlas, store):
    for drafter in (NoDrafter(), ModelDrafter(vlas[1]), RetrievalDrafter(store, vlas[0])):
        assert isinstance(drafter, Drafter)


def test_no_drafter_proposes_nothing():
    draft = NoDrafter().propose(DraftRequest(make_obs(0), 7))
    assert draft.empty and draft.reason


def test_model_drafter_proposes_its_greedy_output(vlas):
    small = vlas[2]
    draft = ModelDrafter(small, num_tokens=5).propose(DraftRequest(make_obs(1), 7))
    np.testing.assert_array_equal(draft.candidates, hf_greedy(small, make_obs(1), 5)[None])
    assert draft.draft_s > 0 and draft.retrieval_s == 0
    capped = ModelDrafter(small).propose(DraftRequest(make_obs(1), 3))
    assert capped.candidates.shape == (1, 3)


def test_retrieval_drafter_finds_own_entry_first(vlas, store):
    vla = vlas[0]
    drafter = RetrievalDrafter(store, vla, k=3)
    for obs in OBS:
        draft = drafter.propose(DraftRequest(obs, 7))
        ref = hf_greedy(vla, obs, 7)
        assert draft.candidates.shape == (3, 7) and draft.candidates.dtype == np.int64
        np.testing.assert_array_equal(draft.candidates[0], ref)
        np.testing.assert_allclose(draft.actions, vla.tokenizer.decode(ref.reshape(1, 7)))
        assert draft.retrieval_s > 0 and draft.draft_s == 0


def test_retrieval_drafter_with_follow_returns_the_frames_after_its_top_hit(vlas):
    vla = vlas[0]
    group = [o for o in OBS if o.instruction == OBS[0].instruction]  # one demonstration, steps 0..4
    tokens = np.stack([hf_greedy(vla, o, 7) for o in group])
    store = RetrievalDatastore(embed_dim=vla.model.config.hidden_size, horizon=1, action_dim=7)
    store.build(group[0].instruction, np.stack([vla.embed(o) for o in group]), vla.tokenizer.decode(tokens.reshape(-1, 1, 7)),
                tokens, np.zeros(len(group), np.int64), np.arange(len(group)), np.stack([o.joint_positions for o in group]))
    drafter = RetrievalDrafter(store, vla, k=2, follow=2)
    for i, obs in enumerate(group):
        draft = drafter.propose(DraftRequest(obs, 7))
        np.testing.assert_array_equal(draft.candidates[0], tokens[i])
        after = list(range(i + 1, min(i + 3, len(group))))  # two frames, fewer at the end of the demonstration
        assert len(draft.following) == len(after)
        for (bins, actions), j in zip(draft.following, after):
            np.testing.assert_array_equal(bins, tokens[j])
            np.testing.assert_allclose(actions, vla.tokenizer.decode(tokens[j].reshape(1, 7)))
    assert RetrievalDrafter(store, vla).propose(DraftRequest(group[0], 7)).following == ()  # follow=0 by default
    with pytest.raises(InvalidInputError, match="follow"):
        RetrievalDrafter(store, vla, follow=-1)


def test_retrieval_sd_with_familiar_observations(vlas, store):
    """Own entry on top: strict retrieval SD accepts the whole chunk in one fused prefill + verify pass."""
    vla = vlas[0]
    decoder = SpeculativeDecoder(vla, RetrievalDrafter(store, vla), AcceptanceConfig("strict"))
    for obs in OBS[:3]:
        result = decoder.step(obs)
        np.testing.assert_array_equal(result.bins, hf_greedy(vla, obs, 7))
        s = result.stats
        assert (s.branch, s.accepted, s.candidates, s.forward_passes) == (Branch.RETRIEVAL, 7, 5, 1)


def test_retrieval_without_joint_positions_in_the_store(vlas):
    store = build_store(vlas[0], OBS[:6], with_joints=False)
    draft = RetrievalDrafter(store, vlas[0]).propose(DraftRequest(OBS[1], 7))
    np.testing.assert_array_equal(draft.candidates[0], hf_greedy(vlas[0], OBS[1], 7))


def test_unknown_task_and_empty_index_give_empty_drafts_with_reasons(vlas, store):
    vla = vlas[0]
    unknown = RetrievalDrafter(store, vla).propose(DraftRequest(make_obs(0, "fold the towel"), 7))
    assert unknown.empty and "fold the towel" in unknown.reason
    empty_store = RetrievalDatastore(embed_dim=vla.model.config.hidden_size, horizon=1, action_dim=7)
    empty_store.build("lift the red cube", np.zeros((0, 64)), np.zeros((0, 1, 7)), np.zeros((0, 7), np.int64),
                      np.zeros(0, np.int64), np.zeros(0, np.int64))
    empty = RetrievalDrafter(empty_store, vla).propose(DraftRequest(make_obs(0), 7))
    assert empty.empty and "empty" in empty.reason


def test_retrieval_drafter_rejects_mismatched_stores(vlas):
    vla = vlas[0]
    with pytest.raises(InvalidInputError, match="dimension 6"):
        RetrievalDrafter(RetrievalDatastore(embed_dim=64, horizon=1, action_dim=6), vla)
    with pytest.raises(InvalidInputError, match="horizon"):
        RetrievalDrafter(RetrievalDatastore(embed_dim=64, horizon=1, action_dim=7), make_vla(0, horizon=2))
    with pytest.raises(InvalidInputError, match="k must"):
        RetrievalDrafter(RetrievalDatastore(embed_dim=64, horizon=1, action_dim=7), vla, k=0)


def test_bad_requests(vlas, store):
    with pytest.raises(InvalidInputError, match="num_tokens"):
        NoDrafter().propose(DraftRequest(make_obs(0), 0))
    with pytest.raises(InvalidInputError, match="NaN"):
        RetrievalDrafter(store, vlas[0]).propose(
            DraftRequest(dataclasses.replace(make_obs(0), joint_positions=np.array([np.nan, 0, 0])), 7)
        )


def test_model_drafter_adapts_draft_length(vlas):
    drafter = ModelDrafter(vlas[0], num_tokens=3)
    drafter.update(3, 3)
    assert drafter.num_tokens == 5
    drafter.update(5, 5)
    assert drafter.num_tokens == 7  # capped at one step
    drafter.update(7, 2)
    assert drafter.num_tokens == 6
    result = SpeculativeDecoder(vlas[0], drafter, AcceptanceConfig("strict")).step(make_obs(0))
    assert result.stats.drafted == 6
    drafter.reset()
    assert drafter.num_tokens == 3
    with pytest.raises(InvalidInputError, match="min_tokens"):
        ModelDrafter(vlas[0], num_tokens=8)
