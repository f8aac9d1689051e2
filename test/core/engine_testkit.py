"""Shared helpers of the engine tests: tiny random Llama VLAs and the HF-generate oracle.

The oracle is Hugging Face's own greedy ``generate`` restricted to the action tokens
by a logits processor, so every strategy is checked against code we did not write.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM, LogitsProcessor, LogitsProcessorList

from heisd_ros.core.hf_adapter import CharVocabulary, HFCausalVLA, TextPromptBuilder
from heisd_ros.core.observation import Observation
from heisd_ros.core.tokenizer import ActionTokenizer

N_BINS = 256
ACTION_DIM = 7
VOCAB = CharVocabulary()
VOCAB_SIZE = len(VOCAB) + N_BINS
TEMPLATE = "{instruction}|{proprio}:"
INSTRUCTIONS = ["lift the red cube", "open the drawer", "stack blocks"]


def tiny_llama(seed: int, hidden: int = 64, layers: int = 2) -> LlamaForCausalLM:
    """A randomly initialised Llama over the char vocabulary + 256 action tokens."""
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=VOCAB_SIZE,
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        initializer_range=0.2,  # sharp logits: no near-ties for fp32 noise to flip
        bos_token_id=None,
        eos_token_id=None,
        pad_token_id=0,
    )
    return LlamaForCausalLM(config).eval()


def make_tokenizer(dim: int = ACTION_DIM) -> ActionTokenizer:
    return ActionTokenizer(-np.ones(dim), np.ones(dim))


def make_vla(seed: int, horizon: int = 1, **kw) -> HFCausalVLA:
    return HFCausalVLA(tiny_llama(seed, **kw), make_tokenizer(), horizon, TextPromptBuilder(VOCAB.encode, TEMPLATE))


def make_obs(i: int = 0, instruction: str | None = None) -> Observation:
    """A valid observation whose prompt differs with i."""
    rng = np.random.default_rng(i)
    return Observation(
        images={"agentview": rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)},
        instruction=instruction or INSTRUCTIONS[i % len(INSTRUCTIONS)],
        joint_names=["j0", "j1", "j2"],
        joint_positions=rng.uniform(-1, 1, 3),
        proprio=np.zeros(0),
        ee_position=rng.uniform(-0.5, 0.5, 3),
        stamp=float(i),
    )


class ActionTokensOnly(LogitsProcessor):
    """Blocks every id that is not an action token (the oracle's restriction)."""

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        scores = scores.clone()
        scores[:, : VOCAB_SIZE - N_BINS] = -float("inf")
        return scores


def hf_greedy(vla: HFCausalVLA, obs: Observation, n: int, prefix_bins: np.ndarray | None = None) -> np.ndarray:
    """HF generate(do_sample=False) bins for the observation, optionally after forced prefix bins."""
    ids = list(vla.prompt_builder(obs))
    if prefix_bins is not None and len(prefix_bins):
        ids += [VOCAB_SIZE - 1 - int(b) for b in prefix_bins]  # OpenVLA: bin b is id vocab_size - 1 - b
    inputs = torch.tensor([ids])
    with torch.no_grad():
        out = vla.model.generate(
            inputs,
            attention_mask=torch.ones_like(inputs),
            max_new_tokens=n,
            min_new_tokens=n,
            do_sample=False,
            logits_processor=LogitsProcessorList([ActionTokensOnly()]),
            pad_token_id=0,
        )
    return VOCAB_SIZE - 1 - out[0, len(ids):].numpy()


def build_store(vla: HFCausalVLA, observations: list[Observation], with_joints: bool = True):
    """A real RetrievalDatastore whose entries are the VLA's own greedy chunks for the observations.

    One collection per instruction; a lookup with one of these observations finds its own
    entry first (a familiar-motion regime where retrieval is right).
    """
    from heisd_ros.core.retrieval import RetrievalDatastore

    store = RetrievalDatastore(embed_dim=vla.model.config.hidden_size, horizon=vla.horizon, action_dim=vla.action_dim)
    for task in sorted({o.instruction for o in observations}):
        group = [o for o in observations if o.instruction == task]
        tokens = np.stack([hf_greedy(vla, o, vla.tokens_per_step) for o in group])
        store.build(
            task,
            embeddings=np.stack([vla.embed(o) for o in group]),
            actions=vla.tokenizer.decode(tokens.reshape(len(group), vla.horizon, vla.action_dim)),
            tokens=tokens,
            episodes=np.arange(len(group)),
            steps=np.zeros(len(group), np.int64),
            joint_positions=np.stack([o.joint_positions for o in group]) if with_joints else None,
        )
    return store
