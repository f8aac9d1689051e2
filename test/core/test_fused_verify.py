"""Prefix and draft verified in ONE forward pass (``prefill_score``): same logits, cache and tokens, fewer passes.

Pass count of a speculative step with the fused operation, T = H * D tokens per step,
m tokens accepted: the fused pass yields the VLA's logits after the prompt and after
every prefix of every chain, so tokens 0..m (the m accepted ones plus the VLA's own
token at position m, the bonus) are known after 1 pass; each of the T - m - 1 tokens
still missing costs one decode pass. Hence 1 + max(0, T - m - 1): 1 for a fully
accepted draft (and for m = T - 1), T - m otherwise. AR: the prefill yields token 0,
then T - 1 passes, T in all. A model without ``prefill_score`` pays 1 more per draft.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from transformers import LogitsProcessorList

from heisd_ros.core.decoding import AcceptanceConfig, ARDecoder, HybridDecoder, SpeculativeDecoder, verify_draft
from heisd_ros.core.drafters import Draft, ModelDrafter
from heisd_ros.core.errors import InvalidInputError
from heisd_ros.core.hf_adapter import HFCausalVLA, TextPromptBuilder
from heisd_ros.core.model import SupportsPrefillScore, VLAModel
from heisd_ros.core.stats import Branch, StepStats
from heisd_ros.core.verify_skip import NoSkipSchedule

from engine_testkit import N_BINS, VOCAB, VOCAB_SIZE, ActionTokensOnly, hf_greedy, make_obs, make_tokenizer, make_vla, tiny_llama
from test_decoding import FixedDrafter, metric

STRICT = AcceptanceConfig("strict")


def fused_passes(total: int, accepted: int) -> int:
    """VLA passes of a speculative step with the fused operation (module docstring)."""
    return 1 + max(0, total - accepted - 1)


class TwoPassVLA:
    """The same VLA seen only through the VLAModel protocol, without the optional fused operation."""

    def __init__(self, vla: HFCausalVLA) -> None:
        self.vla = vla
        self.tokenizer, self.action_dim, self.horizon, self.n_bins = vla.tokenizer, vla.action_dim, vla.horizon, vla.n_bins

    @property
    def forward_passes(self) -> int:
        return self.vla.forward_passes

    @property
    def tokens_per_step(self) -> int:
        return self.vla.tokens_per_step

    def prefill(self, obs):
        return self.vla.prefill(obs)

    def score(self, state, candidates):
        return self.vla.score(state, candidates)

    def decode(self, state, prefix, n):
        return self.vla.decode(state, prefix, n)

    def embed(self, obs):
        return self.vla.embed(obs)


def image_vla(seed: int, horizon: int = 1) -> HFCausalVLA:
    """A VLA whose prefix starts with 4 "vision token" embeddings (the inputs_embeds path)."""
    model = tiny_llama(seed)
    hidden = model.config.hidden_size

    def image_prefix(obs):
        pixels = torch.as_tensor(obs.images["agentview"], dtype=torch.float32).reshape(-1, 3)[:4] / 255.0
        return torch.nn.functional.pad(pixels, (0, hidden - 3))

    return HFCausalVLA(model, make_tokenizer(), horizon, TextPromptBuilder(VOCAB.encode, "{instruction}:"),
                       image_prefix=image_prefix)


def image_greedy(vla: HFCausalVLA, obs, n: int, prefix_bins: np.ndarray | None = None) -> np.ndarray:
    """HF generate(inputs_embeds=image + text [+ forced action tokens]) greedy bins: the image path's oracle."""
    parts = [vla.image_prefix(obs), vla.model.get_input_embeddings()(torch.tensor(vla.prompt_builder(obs)))]
    if prefix_bins is not None and len(prefix_bins):
        parts.append(vla.model.get_input_embeddings()(torch.tensor([VOCAB_SIZE - 1 - int(b) for b in prefix_bins])))
    embeds = torch.cat(parts)[None]
    with torch.no_grad():
        out = vla.model.generate(inputs_embeds=embeds, attention_mask=torch.ones(embeds.shape[:2], dtype=torch.long),
                                 max_new_tokens=n, min_new_tokens=n, do_sample=False,
                                 logits_processor=LogitsProcessorList([ActionTokensOnly()]), pad_token_id=0)
    return VOCAB_SIZE - 1 - out[0, -n:].numpy()


@pytest.fixture(scope="module")
def image_vlas() -> list[HFCausalVLA]:
    return [image_vla(seed) for seed in (3, 4)]


def candidate_sets(ref: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    """K=1 full, K=3 mixed, K=2 short, K=4 single-token candidate arrays around the greedy chunk."""
    t = ref.size
    return [
        ref[None],
        np.stack([ref, rng.integers(0, N_BINS, t), np.r_[ref[:4], rng.integers(0, N_BINS, t - 4)]]),
        np.stack([ref[:3], rng.integers(0, N_BINS, 3)]),
        rng.integers(0, N_BINS, (4, 1)),
    ]


def test_fused_logits_and_cache_equal_prefill_plus_score(vlas, image_vlas):
    rng = np.random.default_rng(0)
    for vla, oracle in [(v, hf_greedy) for v in vlas] + [(v, image_greedy) for v in image_vlas]:
        for i in range(2):
            obs = make_obs(i)
            for cands in candidate_sets(oracle(vla, obs, 7), rng):
                before = vla.forward_passes
                state, fused = vla.prefill_score(obs, cands)
                assert vla.forward_passes - before == 1
                two_pass = vla.prefill(obs)
                separate = vla.score(two_pass, cands)
                assert fused.shape == (cands.shape[0], cands.shape[1] + 1, N_BINS) and fused.dtype == np.float32
                np.testing.assert_allclose(fused, separate, atol=1e-4)
                assert state.prompt_length == two_pass.prompt_length
                assert state.cache.get_seq_length() == two_pass.cache.get_seq_length() == state.prompt_length + cands.size
                for a, b in zip(state.cache.layers, two_pass.cache.layers):
                    np.testing.assert_allclose(a.keys.numpy(), b.keys.numpy(), atol=1e-4)
                    np.testing.assert_allclose(a.values.numpy(), b.values.numpy(), atol=1e-4)


@pytest.mark.parametrize("use_image", [False, True])
def test_decode_after_fused_pass_reuses_the_kept_chain(vlas, image_vlas, use_image):
    vla, oracle = (image_vlas[0], image_greedy) if use_image else (vlas[1], hf_greedy)
    obs = make_obs(2)
    ref = oracle(vla, obs, 7)
    cands = np.stack([(ref + 11) % N_BINS, np.r_[ref[:5], (ref[5:] + 17) % N_BINS]])
    for keep in range(0, 8):
        state, _ = vla.prefill_score(obs, cands)
        before = vla.forward_passes
        rest = vla.decode(state, cands[1, :keep], 7 - keep)
        np.testing.assert_array_equal(rest, oracle(vla, obs, 7 - keep, prefix_bins=cands[1, :keep]) if keep < 7 else [])
        # logits after the kept tokens come with the fused pass: one pass per further token only
        assert vla.forward_passes - before == max(0, 7 - keep - 1)
    state, logits = vla.prefill_score(obs, cands)
    bonus = np.r_[ref[:5], int(logits[1, 5].argmax())]  # diverges from every chain at position 5
    before = vla.forward_passes
    np.testing.assert_array_equal(vla.decode(state, bonus, 1), ref[6:])
    assert vla.forward_passes - before == 1  # the bonus token is fed, the 5 chain tokens are reused


@pytest.mark.parametrize("horizon", [1, 2])
def test_strict_sd_is_exact_and_costs_the_derived_passes(horizon):
    for seed in (0, 1, 2):
        vla = make_vla(seed, horizon=horizon)
        total = vla.tokens_per_step
        for i in range(2):
            obs = make_obs(i)
            ref = hf_greedy(vla, obs, total)
            ar = ARDecoder(vla).step(obs)
            np.testing.assert_array_equal(ar.bins, ref)
            assert ar.stats.forward_passes == total
            for right in sorted({total, 0, 1, total // 2, total - 1}):
                draft = np.r_[ref[:right], (ref[right:] + 1 + seed) % N_BINS]
                for model, extra in [(vla, 0), (TwoPassVLA(vla), 1)]:
                    result = SpeculativeDecoder(model, FixedDrafter(draft), STRICT).step(obs)
                    np.testing.assert_array_equal(result.bins, ref)
                    s = result.stats
                    assert (s.drafted, s.accepted, s.emitted) == (total, right, total)
                    assert s.forward_passes == fused_passes(total, right) + extra
            short = SpeculativeDecoder(vla, FixedDrafter(ref[:3]), STRICT).step(obs)  # a draft shorter than the step
            np.testing.assert_array_equal(short.bins, ref)
            assert (short.stats.accepted, short.stats.forward_passes) == (3, fused_passes(total, 3))


def test_image_prefix_path_is_exact_with_fused_verification(image_vlas):
    for vla in image_vlas:
        for i in range(3):
            obs = make_obs(i)
            ref = image_greedy(vla, obs, 7)
            np.testing.assert_array_equal(ARDecoder(vla).step(obs).bins, ref)
            for right in (7, 0, 3, 6):
                draft = np.r_[ref[:right], (ref[right:] + 5) % N_BINS]
                result = SpeculativeDecoder(vla, FixedDrafter(draft), STRICT).step(obs)
                np.testing.assert_array_equal(result.bins, ref)
                assert (result.stats.accepted, result.stats.forward_passes) == (right, fused_passes(7, right))


def test_multi_candidate_fused_keeps_longest_match(vlas):
    vla = vlas[2]
    obs = make_obs(1)
    ref = hf_greedy(vla, obs, 7)
    cands = np.stack([np.r_[ref[:2], (ref[2:] + 3) % N_BINS], (ref + 9) % N_BINS, np.r_[ref[:6], (ref[6:] + 3) % N_BINS]])
    out = verify_draft(vla, obs, Draft(candidates=cands), STRICT, stats := StepStats(branch=Branch.RETRIEVAL))
    np.testing.assert_array_equal(out.bins, ref)
    assert (out.best, out.per_candidate, stats.forward_passes) == (2, [2, 0, 6], fused_passes(7, 6))
    assert stats.prefill_s == 0 and stats.verify_s > 0  # one pass: timed as verification


def test_hybrid_every_branch_is_exact_with_fused_verification(vlas):
    small = make_vla(7, hidden=32, layers=1)
    for vla in vlas:
        obs = make_obs(0)
        ref = hf_greedy(vla, obs, 7)
        retrieval = FixedDrafter(np.stack([(ref + 50) % N_BINS, ref]))
        hybrid = HybridDecoder(vla, ModelDrafter(small, adaptive=False), retrieval, tau=0.3, drafter_acceptance=STRICT,
                               retrieval_acceptance=STRICT, skip_schedule=NoSkipSchedule())
        for value, branch in [(None, Branch.AR), (metric(0.1), Branch.DRAFTER), (metric(0.9), Branch.RETRIEVAL)]:
            result = hybrid.step(obs, value)
            assert result.stats.branch is branch
            np.testing.assert_array_equal(result.bins, ref)
            expected = 7 if branch is Branch.AR else fused_passes(7, result.stats.accepted)
            assert result.stats.forward_passes == expected
        assert result.stats.accepted == 7 and result.stats.forward_passes == 1


def test_fused_operation_is_optional_in_the_protocol(vlas):
    plain = TwoPassVLA(vlas[0])
    assert isinstance(plain, VLAModel) and not isinstance(plain, SupportsPrefillScore)
    assert isinstance(vlas[0], SupportsPrefillScore)


def test_bad_inputs_cost_no_pass(vlas):
    vla = vlas[0]
    before = vla.forward_passes
    for cands, message in [(np.zeros((0, 3), np.int64), "non-empty"), (np.zeros((1, 8), np.int64), "more than"),
                           (np.full((1, 2), N_BINS), "bins must lie"), (np.zeros((1, 2)), "integer")]:
        with pytest.raises(InvalidInputError, match=message):
            vla.prefill_score(make_obs(0), cands)
    with pytest.raises(InvalidInputError, match="NaN"):
        vla.prefill_score(dataclasses.replace(make_obs(0), proprio=np.array([np.nan])), np.zeros((1, 2), np.int64))
    assert vla.forward_passes == before
