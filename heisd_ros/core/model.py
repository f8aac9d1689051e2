"""The model protocol every VLA in the engine satisfies, in action-bin space.

Why a protocol: the decoders (decoding.py) and drafters (drafters.py) must run
unchanged on the bundled small VLA, on any Hugging Face causal LM (hf_adapter.py) and
on a real OpenVLA-style checkpoint. They only ever need four operations, all in *bin
indices* 0..n_bins-1 (token distance == bin distance, see tokenizer.py):

- ``prefill(obs)``: run the vision + language + proprio prefix once and keep its KV
  cache in an opaque ``PrefixState`` (one forward pass).
- ``score(state, candidates)``: K candidate continuations of the prefix, (K, L) bins,
  scored in ONE forward pass with a tree attention mask (causal inside a chain, every
  chain sees the whole prefix but not the other chains, chain position j sits at
  position id prefix_len + j). Returns (K, L+1, n_bins) logits restricted to the
  action tokens: [k, j] predicts token j of chain k given chain k's first j tokens, so
  [k, 0] is the prefix's own next-token logits and [k, L] the bonus position.
- ``decode(state, prefix, n)``: greedy continuation (argmax over action tokens) of n
  tokens after ``prefix`` (bins already fixed for this chunk). Implementations reuse
  whatever of the prefix is already in the cache — including the KV entries of a chain
  just scored — and crop the rest (``DynamicCache.crop``); each model call is one
  forward pass, and when the logits for the first new token are already known it costs
  n - 1 passes.
- ``embed(obs)``: the retrieval key (visual + language), float32 1-D, WITHOUT a pass of
  the language model, so verify-skip steps cost no VLA call.

OPTIONAL fused operation (``SupportsPrefillScore``): drafts from retrieval or from the
drafter do not depend on the VLA's prefill, so they can be verified in the same pass as
the prefix.

- ``prefill_score(obs, candidates) -> (state, logits)``: ONE forward pass over the
  prompt followed by the K chains (prompt causal; each chain sees the whole prompt and
  causally itself, not the other chains; chain position j at position id
  prompt_len + j). ``logits`` are exactly what ``score(prefill(obs), candidates)``
  returns, and ``state`` is what that pair leaves behind: ``decode`` reuses the kept
  chain's KV entries and drops the others. A fully accepted draft then costs a single
  pass per step. Models without it keep working: ``verify_draft`` (decoding.py) falls
  back to ``prefill`` + ``score`` (two passes).

``forward_passes`` counts full-model passes since construction (prefill counts one);
decoders read differences of it to fill StepStats. A step's tokens_per_step = H * D.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import torch

from heisd_ros.core.errors import InvalidInputError
from heisd_ros.core.observation import Observation
from heisd_ros.core.tokenizer import ActionTokenizer


@dataclass
class PrefixState:
    """Handle to one observation's prefilled prefix; models subclass it with their cache.

    prompt_length: tokens (or embedding positions) in the prefix.
    """

    prompt_length: int


@runtime_checkable
class VLAModel(Protocol):
    """A token-based VLA policy in action-bin space (see module docstring)."""

    tokenizer: ActionTokenizer
    action_dim: int
    horizon: int
    n_bins: int
    forward_passes: int

    @property
    def tokens_per_step(self) -> int:
        """H * D action tokens emitted per step."""
        ...

    def prefill(self, obs: Observation) -> PrefixState:
        """Encode the observation prefix into a reusable cache (one forward pass)."""
        ...

    def score(self, state: PrefixState, candidates: np.ndarray) -> np.ndarray:
        """(K, L) candidate bins -> (K, L+1, n_bins) float32 logits in one forward pass."""
        ...

    def decode(self, state: PrefixState, prefix: np.ndarray, n: int) -> np.ndarray:
        """Greedy (n,) bins continuing ``prefix`` (bins after the observation prefix)."""
        ...

    def embed(self, obs: Observation) -> np.ndarray:
        """Retrieval key of the observation, float32 1-D, no language-model pass."""
        ...


@runtime_checkable
class SupportsPrefillScore(Protocol):
    """A VLAModel that can prefill and score a draft in one forward pass (see module docstring)."""

    def prefill_score(self, obs: Observation, candidates: np.ndarray) -> tuple[PrefixState, np.ndarray]:
        """Prefix + (K, L) candidate bins in one pass -> (state as after prefill + score, (K, L+1, n_bins) logits)."""
        ...


def check_candidates(candidates: np.ndarray, n_bins: int, max_length: int) -> np.ndarray:
    """Validate a (K, L) candidate array of bins (K >= 1, 1 <= L <= max_length) and return it as int64."""
    c = np.asarray(candidates)
    if c.ndim != 2 or c.shape[0] < 1 or c.shape[1] < 1:
        raise InvalidInputError(f"candidates must be a non-empty (K, L) array, got shape {c.shape}")
    if c.dtype.kind not in "iu":
        raise InvalidInputError(f"candidates must be integer bin indices, got dtype {c.dtype}")
    if c.shape[1] > max_length:
        raise InvalidInputError(f"candidates have {c.shape[1]} tokens, more than the {max_length} of one step")
    if c.min() < 0 or c.max() >= n_bins:
        raise InvalidInputError(f"candidate bins must lie in [0, {n_bins - 1}], got [{c.min()}, {c.max()}]")
    return c.astype(np.int64)


def check_prefix(prefix: np.ndarray, n: int, n_bins: int, max_length: int) -> np.ndarray:
    """Validate a decode request: a 1-D prefix of bins plus n new tokens within one step."""
    p = np.asarray(prefix)
    if p.ndim != 1 or (p.size and p.dtype.kind not in "iu"):
        raise InvalidInputError(f"prefix must be a 1-D integer array of bins, got shape {p.shape} dtype {p.dtype}")
    if p.size and (p.min() < 0 or p.max() >= n_bins):
        raise InvalidInputError(f"prefix bins must lie in [0, {n_bins - 1}], got [{p.min()}, {p.max()}]")
    if not isinstance(n, (int, np.integer)) or n < 0 or p.size + n > max_length:
        raise InvalidInputError(f"cannot decode n={n!r} tokens after a prefix of {p.size}: a step has {max_length}")
    return p.astype(np.int64)


def _tree_allowed(prompt_length: int, num_chains: int, chain_length: int) -> torch.Tensor:
    """Boolean (K*L, prompt_length + K*L): chain query (k, j) sees the prompt and chain k's 0..j."""
    k, length = num_chains, chain_length
    chain = torch.arange(k).repeat_interleave(length)
    pos = torch.arange(length).repeat(k)
    allowed_tree = (chain[:, None] == chain[None, :]) & (pos[None, :] <= pos[:, None])
    return torch.cat([torch.ones(k * length, prompt_length, dtype=torch.bool), allowed_tree], dim=1)


def _additive(allowed: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Boolean (Q, KV) -> additive (1, 1, Q, KV): 0 = attend, dtype's minimum = blocked (eager and SDPA)."""
    mask = torch.zeros(allowed.shape, dtype=dtype)
    mask.masked_fill_(~allowed, torch.finfo(dtype).min)
    return mask[None, None]


def tree_attention_mask(prompt_length: int, num_chains: int, chain_length: int, dtype: torch.dtype) -> torch.Tensor:
    """Additive 4-D mask (1, 1, K*L, prompt_length + K*L) for K chains laid out one after another.

    Query (k, j) may attend to the whole prompt and to chain k's positions 0..j, and to
    nothing of the other chains. 0 = attend, dtype's minimum = blocked (works for both
    eager and SDPA attention).
    """
    return _additive(_tree_allowed(prompt_length, num_chains, chain_length), dtype)


def tree_position_ids(prompt_length: int, num_chains: int, chain_length: int) -> torch.Tensor:
    """(1, K*L) position ids: every chain restarts at prompt_length (shared positions)."""
    return (prompt_length + torch.arange(chain_length).repeat(num_chains))[None]


def fused_attention_mask(prompt_length: int, num_chains: int, chain_length: int, dtype: torch.dtype) -> torch.Tensor:
    """Additive 4-D mask (1, 1, N, N), N = prompt_length + K*L, for prompt + chains in one pass.

    Prompt rows are causal over the prompt and see no chain; chain rows are the
    ``tree_attention_mask`` rows, so the cache holds the same entries as prefill + score.
    """
    n = num_chains * chain_length
    prompt_rows = torch.cat([torch.ones(prompt_length, prompt_length, dtype=torch.bool).tril(),
                             torch.zeros(prompt_length, n, dtype=torch.bool)], dim=1)
    allowed = torch.cat([prompt_rows, _tree_allowed(prompt_length, num_chains, chain_length)], dim=0)
    return _additive(allowed, dtype)


def fused_position_ids(prompt_length: int, num_chains: int, chain_length: int) -> torch.Tensor:
    """(1, prompt_length + K*L) position ids: 0..prompt_length-1, then the shared chain positions."""
    return torch.cat([torch.arange(prompt_length)[None], tree_position_ids(prompt_length, num_chains, chain_length)], dim=1)
