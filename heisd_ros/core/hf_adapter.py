"""Any Hugging Face causal LM as a VLAModel (model.py), OpenVLA style.

Why: a real OpenVLA-style checkpoint on disk, a small Llama trained in this project
and the randomly initialised models of the tests all run through one adapter, so the
speculative decoders are tested against Hugging Face's own ``generate`` on the very
code path a deployment uses.

Conventions: the action tokens are the last ``n_bins`` ids of the vocabulary, bin b
at id ``vocab_size - 1 - b`` (ActionTokenizer); greedy decoding is argmax over those
ids only (the same restriction as a ``generate`` call whose logits processor blocks
every other id). The prompt is built from the instruction and proprioception by a
``PromptBuilder``; images enter, when the backbone has a vision part, as prefix
embeddings from an optional ``image_prefix`` callable.

Cache handling (transformers 5.x): one ``DynamicCache`` per observation. ``score``
appends K chains to it under a 4-D additive tree mask with shared position ids;
``decode`` then keeps the prompt plus the matching chain's KV entries (a gather along
the sequence axis) and drops the rest, or crops (``DynamicCache.crop(-n)``) when the
prefix diverges from what is cached. ``prefill_score`` (the optional fused operation of
model.py) lays the K chains out after the prompt in the very pass that fills the cache
(``fused_attention_mask``), leaving the same cache and tree bookkeeping as ``prefill``
followed by ``score``.
"""
from __future__ import annotations

import inspect
import os
from dataclasses import dataclass, field
from typing import Callable, Protocol, Sequence

import numpy as np
import torch
from transformers import AutoModelForCausalLM, DynamicCache, PreTrainedModel
from transformers.cache_utils import DynamicLayer

from heisd_ros.core.errors import InvalidInputError
from heisd_ros.core.model import (
    PrefixState,
    check_candidates,
    check_prefix,
    fused_attention_mask,
    fused_position_ids,
    tree_attention_mask,
    tree_position_ids,
)
from heisd_ros.core.observation import Observation
from heisd_ros.core.tokenizer import ActionTokenizer


class PromptBuilder(Protocol):
    """Observation -> prefix token ids (text part: instruction and proprioception)."""

    def __call__(self, obs: Observation) -> list[int]: ...


class CharVocabulary:
    """Character-level text vocabulary for small backbones that have no tokenizer.

    Id 0 is reserved for characters outside the alphabet; text is lower-cased.
    """

    def __init__(self, alphabet: str = "abcdefghijklmnopqrstuvwxyz0123456789 .,:;?!-+|\n") -> None:
        if len(set(alphabet)) != len(alphabet) or not alphabet:
            raise InvalidInputError("alphabet must be a non-empty string without repeated characters")
        self.alphabet = alphabet
        self._ids = {ch: i + 1 for i, ch in enumerate(alphabet)}

    def __len__(self) -> int:
        return len(self.alphabet) + 1

    def encode(self, text: str) -> list[int]:
        """Text -> ids in [0, len(self))."""
        return [self._ids.get(ch, 0) for ch in text.lower()]


class TextPromptBuilder:
    """Fills a text template with the instruction and proprioception and encodes it.

    ``{proprio}`` expands to the joint positions followed by ``obs.proprio``, each with
    ``decimals`` decimals, so the language model sees the robot state as text (works
    with any tokenizer). ``encode`` is e.g. a Hugging Face tokenizer's
    ``lambda s: tok(s).input_ids`` or ``CharVocabulary.encode``.
    """

    def __init__(
        self,
        encode: Callable[[str], Sequence[int]],
        template: str = "In: What action should the robot take to {instruction}?\nState: {proprio}\nOut:",
        decimals: int = 2,
    ) -> None:
        if "{instruction}" not in template:
            raise InvalidInputError("template must contain {instruction}")
        self.encode = encode
        self.template = template
        self.decimals = decimals

    def __call__(self, obs: Observation) -> list[int]:
        state = np.concatenate([np.asarray(obs.joint_positions, float), np.asarray(obs.proprio, float)])
        proprio = " ".join(f"{v:.{self.decimals}f}" for v in state)
        ids = list(self.encode(self.template.format(instruction=obs.instruction.strip(), proprio=proprio)))
        if not ids:
            raise InvalidInputError("the prompt encoded to zero tokens")
        return ids


@dataclass
class _HFState(PrefixState):
    """Cache of one observation plus bookkeeping of what sits in it after the prompt."""

    cache: DynamicCache
    first_logits: torch.Tensor  # (n_bins,) after the prompt
    tokens: list[int] = field(default_factory=list)  # bins cached linearly after the prompt
    after: list[torch.Tensor] = field(default_factory=list)  # logits after tokens[: i + 1]
    tree: tuple[np.ndarray, torch.Tensor] | None = None  # (candidates, logits) of chains in the cache


class HFCausalVLA:
    """VLAModel over a Hugging Face causal LM (see module docstring).

    model: any ``PreTrainedModel`` causal LM (eval mode is set here). tokenizer: the
    ActionTokenizer (D = tokenizer.dim). horizon: H actions per step. prompt_builder:
    Observation -> ids. vocab_size: size whose last n_bins ids are action tokens
    (default: the model's output size). image_prefix: Observation -> (N, hidden)
    embeddings put before the text. embedder: Observation -> retrieval key; default the
    L2-normalised mean of the prefix input embeddings (no transformer pass).
    """

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: ActionTokenizer,
        horizon: int,
        prompt_builder: PromptBuilder,
        vocab_size: int | None = None,
        image_prefix: Callable[[Observation], torch.Tensor] | None = None,
        embedder: Callable[[Observation], np.ndarray] | None = None,
    ) -> None:
        if not isinstance(horizon, int) or horizon < 1:
            raise InvalidInputError(f"horizon must be an integer >= 1, got {horizon!r}")
        out_size = model.get_output_embeddings().weight.shape[0]
        vocab_size = out_size if vocab_size is None else vocab_size
        if vocab_size > out_size:
            raise InvalidInputError(f"vocab_size {vocab_size} exceeds the model's {out_size} output logits")
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.action_dim = tokenizer.dim
        self.horizon = horizon
        self.n_bins = tokenizer.n_bins
        self.vocab_size = vocab_size
        self.prompt_builder = prompt_builder
        self.image_prefix = image_prefix
        self.embedder = embedder
        self.forward_passes = 0
        self._device = next(model.parameters()).device
        self._dtype = next(model.parameters()).dtype
        # bin -> vocabulary id table (the tokenizer maps whole actions, so ask it for every bin in each dim)
        every_bin = np.repeat(np.arange(self.n_bins)[:, None], self.action_dim, axis=1)
        ids = tokenizer.bins_to_token_ids(every_bin, vocab_size)[:, 0]
        self.action_token_ids = torch.as_tensor(ids, device=self._device)  # column b of our logits = bin b
        params = inspect.signature(model.forward).parameters
        self._cache_kw = "cache" if "cache" in params else "past_key_values"

    @classmethod
    def from_pretrained(cls, path: str, tokenizer: ActionTokenizer, horizon: int, prompt_builder: PromptBuilder, **kw) -> "HFCausalVLA":
        """Load a checkpoint from a local directory only (never from a model hub)."""
        if not os.path.isdir(path):
            raise InvalidInputError(f"{path!r} is not a local checkpoint directory")
        model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True)
        return cls(model, tokenizer, horizon, prompt_builder, **kw)

    @property
    def tokens_per_step(self) -> int:
        """H * D action tokens per step."""
        return self.horizon * self.action_dim

    # ------------------------------------------------------------ prefix
    def _prefix_embeddings(self, obs: Observation) -> tuple[torch.Tensor | None, torch.Tensor]:
        """(prompt ids or None, (T, hidden) input embeddings) of the observation prefix."""
        ids = self.prompt_builder(obs)
        if min(ids) < 0 or max(ids) >= self.model.get_input_embeddings().num_embeddings:
            raise InvalidInputError(f"prompt ids out of the model's vocabulary: range [{min(ids)}, {max(ids)}]")
        id_tensor = torch.as_tensor(ids, device=self._device)
        embeds = self.model.get_input_embeddings()(id_tensor)
        if self.image_prefix is None:
            return id_tensor, embeds
        image = self.image_prefix(obs).to(device=self._device, dtype=embeds.dtype)
        if image.ndim != 2 or image.shape[1] != embeds.shape[1]:
            raise InvalidInputError(f"image_prefix must return (N, {embeds.shape[1]}) embeddings, got {tuple(image.shape)}")
        return None, torch.cat([image, embeds], dim=0)

    def _forward(self, cache: DynamicCache, ids: torch.Tensor | None = None, embeds: torch.Tensor | None = None,
                 **kw) -> torch.Tensor:
        """One model pass over (1, T) new tokens appended to cache -> (T, n_bins) action logits."""
        inputs = {"input_ids": ids[None]} if ids is not None else {"inputs_embeds": embeds[None]}
        out = self.model(**inputs, **{self._cache_kw: cache}, use_cache=True, **kw)
        self.forward_passes += 1
        return out.logits[0, :, self.action_token_ids].float()

    @torch.inference_mode()
    def prefill(self, obs: Observation) -> PrefixState:
        """Run the prompt once; the state keeps its cache and next-token logits."""
        obs.validate()
        ids, embeds = self._prefix_embeddings(obs)
        cache = DynamicCache(config=self.model.config)
        logits = self._forward(cache, ids=ids) if ids is not None else self._forward(cache, embeds=embeds)
        return _HFState(prompt_length=int(embeds.shape[0]), cache=cache, first_logits=logits[-1])

    @torch.inference_mode()
    def embed(self, obs: Observation) -> np.ndarray:
        """Retrieval key: the custom embedder, else the normalised mean prefix input embedding."""
        obs.validate()
        if self.embedder is not None:
            key = np.asarray(self.embedder(obs), dtype=np.float32)
        else:
            key = self._prefix_embeddings(obs)[1].float().mean(dim=0).cpu().numpy()
            key = key / max(float(np.linalg.norm(key)), 1e-12)
        if key.ndim != 1 or not np.all(np.isfinite(key)):
            raise InvalidInputError(f"embedding must be a finite 1-D vector, got shape {key.shape}")
        return key.astype(np.float32)

    # ------------------------------------------------------------ verify
    @torch.inference_mode()
    def score(self, state: PrefixState, candidates: np.ndarray) -> np.ndarray:
        """All K chains after the prompt in one pass under a tree mask -> (K, L+1, n_bins)."""
        st = self._state(state)
        cands = check_candidates(candidates, self.n_bins, self.tokens_per_step)
        k, length = cands.shape
        self._truncate(st, 0)
        ids = self.action_token_ids[torch.as_tensor(cands.reshape(-1), device=self._device)]
        mask = tree_attention_mask(st.prompt_length, k, length, self._dtype).to(self._device)
        positions = tree_position_ids(st.prompt_length, k, length).to(self._device)
        chain_logits = self._forward(st.cache, ids=ids, attention_mask=mask, position_ids=positions).view(k, length, -1)
        logits = torch.cat([st.first_logits.expand(k, 1, -1), chain_logits], dim=1)
        st.tree = (cands, logits)
        return logits.cpu().numpy()

    @torch.inference_mode()
    def prefill_score(self, obs: Observation, candidates: np.ndarray) -> tuple[PrefixState, np.ndarray]:
        """``prefill`` and ``score`` in ONE pass: prompt + K chains under the fused mask.

        Returns the state (cache: prompt, then the chains, as after prefill + score) and
        the (K, L+1, n_bins) logits; works on the token-id and the image-prefix
        (``inputs_embeds``) path alike.
        """
        obs.validate()
        cands = check_candidates(candidates, self.n_bins, self.tokens_per_step)
        k, length = cands.shape
        ids, embeds = self._prefix_embeddings(obs)
        prompt_length = int(embeds.shape[0])
        chain_ids = self.action_token_ids[torch.as_tensor(cands.reshape(-1), device=self._device)]
        mask = fused_attention_mask(prompt_length, k, length, self._dtype).to(self._device)
        positions = fused_position_ids(prompt_length, k, length).to(self._device)
        cache = DynamicCache(config=self.model.config)
        kw = {"attention_mask": mask, "position_ids": positions}
        if ids is not None:
            out = self._forward(cache, ids=torch.cat([ids, chain_ids]), **kw)
        else:
            chain_embeds = self.model.get_input_embeddings()(chain_ids).to(embeds.dtype)
            out = self._forward(cache, embeds=torch.cat([embeds, chain_embeds]), **kw)
        first = out[prompt_length - 1]
        logits = torch.cat([first.expand(k, 1, -1), out[prompt_length:].view(k, length, -1)], dim=1)
        state = _HFState(prompt_length=prompt_length, cache=cache, first_logits=first, tree=(cands, logits))
        return state, logits.cpu().numpy()

    # ------------------------------------------------------------ decode
    @torch.inference_mode()
    def decode(self, state: PrefixState, prefix: np.ndarray, n: int) -> np.ndarray:
        """Greedy n bins after ``prefix``, reusing every cached token that matches it."""
        st = self._state(state)
        prefix = check_prefix(prefix, n, self.n_bins, self.tokens_per_step)
        if n == 0:
            return np.zeros(0, np.int64)  # nothing to predict: feeding the prefix would waste a pass
        self._sync(st, prefix)
        out: list[int] = []
        for i in range(n):
            nxt = int(torch.argmax(st.after[-1] if st.tokens else st.first_logits))
            out.append(nxt)
            if i < n - 1:
                self._append(st, [nxt])
        return np.asarray(out, dtype=np.int64)

    def _state(self, state: PrefixState) -> _HFState:
        if not isinstance(state, _HFState):
            raise InvalidInputError(f"state must come from this model's prefill, got {type(state).__name__}")
        return state

    def _append(self, st: _HFState, bins: Sequence[int]) -> None:
        """Feed bins after the cached linear tokens in one pass."""
        ids = self.action_token_ids[torch.as_tensor(np.asarray(bins, np.int64), device=self._device)]
        logits = self._forward(st.cache, ids=ids)
        st.tokens.extend(int(b) for b in bins)
        st.after.extend(logits.unbind(0))

    def _truncate(self, st: _HFState, keep: int) -> None:
        """Keep the prompt plus the first ``keep`` linear tokens; drop any scored chains."""
        cached = st.cache.get_seq_length() - st.prompt_length
        if cached > keep:
            st.cache.crop(keep - cached)
        del st.tokens[keep:], st.after[keep:]
        st.tree = None

    def _sync(self, st: _HFState, prefix: np.ndarray) -> None:
        """Make the cache hold exactly prompt + prefix, reusing scored chains or cached tokens."""
        if st.tree is not None:
            cands, logits = st.tree
            common = [_common_length(c, prefix) for c in cands]
            k = int(np.argmax(common))
            c = common[k]
            if c and _gather_supported(st.cache):
                length = cands.shape[1]
                start = st.prompt_length + k * length
                keep = torch.cat([torch.arange(st.prompt_length), torch.arange(start, start + c)]).to(self._device)
                for layer in st.cache.layers:
                    layer.keys, layer.values = layer.keys[..., keep, :], layer.values[..., keep, :]
                st.tokens, st.after, st.tree = [int(b) for b in cands[k, :c]], list(logits[k, 1 : c + 1].unbind(0)), None
            else:
                self._truncate(st, 0)
        else:
            self._truncate(st, _common_length(np.asarray(st.tokens, np.int64), prefix))
        if len(st.tokens) < prefix.size:
            self._append(st, prefix[len(st.tokens):].tolist())


def _common_length(a: np.ndarray, b: np.ndarray) -> int:
    """Length of the common leading run of two 1-D arrays."""
    n = min(a.size, b.size)
    diff = np.flatnonzero(a[:n] != b[:n])
    return int(diff[0]) if diff.size else n


def _gather_supported(cache: DynamicCache) -> bool:
    """Whether every cache layer stores plain (B, heads, T, dim) key/value tensors we may index."""
    return all(isinstance(layer, DynamicLayer) and not layer.is_sliding for layer in cache.layers)
