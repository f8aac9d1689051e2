"""HFCausalVLA against Hugging Face itself: generate() greedy, and plain full forwards."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from transformers import LogitsProcessorList

from heisd_ros.core.errors import InvalidInputError
from heisd_ros.core.hf_adapter import CharVocabulary, HFCausalVLA, TextPromptBuilder

from engine_testkit import (
    N_BINS,
    VOCAB,
    VOCAB_SIZE,
    ActionTokensOnly,
    hf_greedy,
    make_obs,
    make_tokenizer,
    make_vla,
    tiny_llama,
)

EMPTY = np.zeros(0, np.int64)


def full_forward_logits(vla: HFCausalVLA, obs, chain: np.ndarray) -> np.ndarray:
    """Action logits of prompt + chain by one cache-free forward: (len(chain)+1, n_bins)."""
    ids = list(vla.prompt_builder(obs)) + [VOCAB_SIZE - 1 - int(b) for b in chain]
    with torch.no_grad():
        logits = vla.model(torch.tensor([ids])).logits[0]
    action = logits[:, VOCAB_SIZE - 1 - np.arange(N_BINS)]
    return action[-(len(chain) + 1):].numpy()


@pytest.mark.parametrize("horizon", [1, 2])
def test_greedy_decode_matches_hf_generate(horizon):
    for seed in (0, 1, 2):
        vla = make_vla(seed, horizon=horizon)
        for i in range(3):
            obs = make_obs(i)
            n = vla.tokens_per_step
            before = vla.forward_passes
            bins = vla.decode(vla.prefill(obs), EMPTY, n)
            np.testing.assert_array_equal(bins, hf_greedy(vla, obs, n))
            assert vla.forward_passes - before == n  # prefill yields token 0, then n - 1 steps


def test_one_pass_tree_scores_equal_separate_scores(vlas):
    rng = np.random.default_rng(0)
    for vla in vlas:
        obs = make_obs(1)
        ref = hf_greedy(vla, obs, 7)
        cands = np.stack([ref, rng.integers(0, N_BINS, 7), np.r_[ref[:4], rng.integers(0, N_BINS, 3)], ref])
        state = vla.prefill(obs)
        before = vla.forward_passes
        tree = vla.score(state, cands)
        assert vla.forward_passes - before == 1
        assert tree.shape == (4, 8, N_BINS) and tree.dtype == np.float32
        for k, chain in enumerate(cands):
            alone = vla.score(vla.prefill(obs), chain[None])[0]
            np.testing.assert_allclose(tree[k], alone, atol=1e-4)
            np.testing.assert_allclose(tree[k], full_forward_logits(vla, obs, chain), atol=1e-4)


def test_tree_argmax_is_greedy_after_each_chain_prefix(vlas):
    vla = vlas[1]
    obs = make_obs(2)
    chain = np.random.default_rng(5).integers(0, N_BINS, 7)
    argmax = vla.score(vla.prefill(obs), np.stack([hf_greedy(vla, obs, 7), chain])).argmax(-1)
    for j in (0, 2, 5):
        assert argmax[1, j] == hf_greedy(vla, obs, 1, prefix_bins=chain[:j])[0]


def test_decode_after_score_reuses_chain_cache(vlas):
    """The accepted chain prefix is kept from the tree: no pass is spent re-feeding it."""
    vla = vlas[2]
    obs = make_obs(0)
    ref = hf_greedy(vla, obs, 7)
    wrong = np.r_[ref[:5], (ref[5:] + 17) % N_BINS]
    state = vla.prefill(obs)
    vla.score(state, np.stack([np.random.default_rng(1).integers(0, N_BINS, 7), wrong]))
    before = vla.forward_passes
    rest = vla.decode(state, wrong[:5], 2)
    assert vla.forward_passes - before == 1  # logits after the kept 5 tokens are known: 1 pass for token 7
    np.testing.assert_array_equal(rest, ref[5:])


def test_decode_with_diverging_prefixes_crops_cache(vlas):
    vla = vlas[0]
    obs = make_obs(1)
    state = vla.prefill(obs)
    forced = np.array([3, 250, 17])
    np.testing.assert_array_equal(vla.decode(state, forced, 4), hf_greedy(vla, obs, 4, prefix_bins=forced))
    np.testing.assert_array_equal(vla.decode(state, forced[:1], 2), hf_greedy(vla, obs, 2, prefix_bins=forced[:1]))
    np.testing.assert_array_equal(vla.decode(state, EMPTY, 7), hf_greedy(vla, obs, 7))


def test_image_prefix_embeddings_match_generate_with_inputs_embeds():
    model = tiny_llama(3)
    hidden = model.config.hidden_size

    def image_prefix(obs):
        pixels = torch.as_tensor(obs.images["agentview"], dtype=torch.float32).reshape(-1, 3)[:4] / 255.0
        return torch.nn.functional.pad(pixels, (0, hidden - 3))  # 4 "vision tokens"

    builder = TextPromptBuilder(VOCAB.encode, "{instruction}:")
    vla = HFCausalVLA(model, make_tokenizer(), 1, builder, image_prefix=image_prefix)
    obs = make_obs(4)
    text = torch.tensor(builder(obs))
    embeds = torch.cat([image_prefix(obs), model.get_input_embeddings()(text)])[None]
    with torch.no_grad():
        out = model.generate(
            inputs_embeds=embeds,
            attention_mask=torch.ones(embeds.shape[:2], dtype=torch.long),
            max_new_tokens=7,
            do_sample=False,
            logits_processor=LogitsProcessorList([ActionTokensOnly()]),
            pad_token_id=0,
        )
    state = vla.prefill(obs)
    assert state.prompt_length == 4 + len(text)
    np.testing.assert_array_equal(vla.decode(state, EMPTY, 7), VOCAB_SIZE - 1 - out[0, -7:].numpy())


def test_embedding_is_normalised_and_observation_specific(vlas):
    vla = vlas[0]
    a, b = vla.embed(make_obs(0)), vla.embed(make_obs(1))
    assert a.dtype == np.float32 and a.ndim == 1
    assert np.isclose(np.linalg.norm(a), 1.0, atol=1e-5)
    np.testing.assert_array_equal(a, vla.embed(make_obs(0)))
    assert not np.allclose(a, b)
    before = vla.forward_passes
    vla.embed(make_obs(2))
    assert vla.forward_passes == before


def test_bad_inputs(vlas):
    vla = vlas[0]
    state = vla.prefill(make_obs(0))
    with pytest.raises(InvalidInputError, match="NaN"):
        vla.prefill(dataclasses.replace(make_obs(0), joint_positions=np.array([np.nan, 0.0, 0.0])))
    with pytest.raises(InvalidInputError, match="more than"):
        vla.score(state, np.zeros((2, 8), np.int64))
    with pytest.raises(InvalidInputError, match="cannot decode"):
        vla.decode(state, np.zeros(3, np.int64), 5)
    with pytest.raises(InvalidInputError, match="prefill"):
        vla.decode(object(), EMPTY, 1)
    with pytest.raises(InvalidInputError, match="exceeds"):
        HFCausalVLA(tiny_llama(0), make_tokenizer(), 1, vla.prompt_builder, vocab_size=VOCAB_SIZE + 1)
    with pytest.raises(InvalidInputError, match="horizon"):
        HFCausalVLA(tiny_llama(0), make_tokenizer(), 0, vla.prompt_builder)
    too_big = HFCausalVLA(tiny_llama(0), make_tokenizer(), 1, lambda obs: [VOCAB_SIZE + 5])
    with pytest.raises(InvalidInputError, match="vocabulary"):
        too_big.prefill(make_obs(0))
    with pytest.raises(InvalidInputError, match="local checkpoint"):
        HFCausalVLA.from_pretrained("/nonexistent/openvla", make_tokenizer(), 1, vla.prompt_builder)


def test_from_pretrained_loads_local_checkpoint(tmp_path):
    model = tiny_llama(4)
    model.save_pretrained(tmp_path)
    builder = TextPromptBuilder(CharVocabulary().encode, "{instruction}:")
    loaded = HFCausalVLA.from_pretrained(str(tmp_path), make_tokenizer(), 1, builder)
    original = HFCausalVLA(model, make_tokenizer(), 1, builder)
    obs = make_obs(0)
    np.testing.assert_array_equal(
        loaded.decode(loaded.prefill(obs), EMPTY, 7), original.decode(original.prefill(obs), EMPTY, 7)
    )
