"""Hugging Face ``generate`` baselines (greedy, assisted, prompt lookup) on the same model and observation as ours.

Why here: ``heisd bench`` and benchmarks/bench_engine.py compare our decoders with
HF's own decoding loops on the very network our adapter runs, so the restriction to
action tokens and the observation -> prompt mapping must be the same for both.

Models with a visual prefix (the bundled SmallVLA: CNN tokens + proprio embedding
before the instruction words) enter ``generate`` as ``input_ids`` whose first N ids are
a placeholder (id 0); a forward hook on the LM's input embedding replaces those N
rows with the model's own prefix embeddings for the current observation. Only a
prefill call starts with N placeholders (action tokens never use id 0), so the
assistant model of assisted generation gets its own prefix the same way. Greedy HF
``generate`` then reproduces our AR bins exactly (checked by ``heisd bench``:
``exact_match_vs_ar``).
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from transformers import LogitsProcessor, LogitsProcessorList

from heisd_ros.core.errors import InvalidInputError
from heisd_ros.core.observation import Observation

PLACEHOLDER_ID = 0


class ActionTokensOnly(LogitsProcessor):
    """Blocks every id below ``first_action_id``: HF's equivalent of our argmax over the action tokens."""

    def __init__(self, first_action_id: int) -> None:
        if first_action_id < 0:
            raise InvalidInputError(f"first_action_id must be >= 0, got {first_action_id}")
        self.first_action_id = int(first_action_id)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        scores = scores.clone()
        scores[:, : self.first_action_id] = -float("inf")
        return scores


class PrefixInjector:
    """Puts an observation's prefix embeddings into the first N positions of a prefill (see module docstring)."""

    def __init__(self, lm: torch.nn.Module, prefix_of: Callable[[Observation], torch.Tensor]) -> None:
        self.prefix_of = prefix_of
        self._prefix: torch.Tensor | None = None
        self._handle = lm.get_input_embeddings().register_forward_hook(self._hook)

    def set(self, obs: Observation) -> int:
        """Compute the prefix of ``obs``; returns its length N."""
        with torch.inference_mode():
            self._prefix = self.prefix_of(obs)
        return int(self._prefix.shape[0])

    def _hook(self, module: torch.nn.Module, inputs: tuple, output: torch.Tensor) -> torch.Tensor | None:
        ids = inputs[0]
        p = self._prefix
        if p is None or ids.shape[-1] < p.shape[0] or not bool((ids[..., : p.shape[0]] == PLACEHOLDER_ID).all()):
            return None
        out = output.clone()
        out[..., : p.shape[0], :] = p.to(out.dtype)
        return out

    def close(self) -> None:
        self._handle.remove()


class HFGenerate:
    """One HF ``generate`` configuration as a callable: observation -> (bins (T,), target forward passes)."""

    def __init__(self, lm: torch.nn.Module, n_bins: int, tokens: int, prompt_ids: Callable[[Observation], list[int]],
                 extra: dict | None = None, injectors: tuple[PrefixInjector, ...] = ()) -> None:
        self.lm = lm
        self.vocab_size = int(lm.get_output_embeddings().weight.shape[0])
        self.n_bins = int(n_bins)
        self.tokens = int(tokens)
        self.prompt_ids = prompt_ids
        self.extra = dict(extra or {})
        self.injectors = injectors
        self.passes = 0
        self._handle = lm.register_forward_pre_hook(lambda *a: self._count())
        self.kwargs = dict(max_new_tokens=self.tokens, min_new_tokens=self.tokens, do_sample=False, pad_token_id=0,
                           logits_processor=LogitsProcessorList([ActionTokensOnly(self.vocab_size - self.n_bins)]))

    def _count(self) -> None:
        self.passes += 1

    def __call__(self, obs: Observation) -> tuple[np.ndarray, int]:
        for injector in self.injectors:
            injector.set(obs)
        ids = torch.tensor([self.prompt_ids(obs)])
        before = self.passes
        with torch.inference_mode():
            out = self.lm.generate(ids, attention_mask=torch.ones_like(ids), **self.kwargs, **self.extra)
        return (self.vocab_size - 1 - out[0, ids.shape[1]:].numpy()).astype(np.int64), self.passes - before

    def close(self) -> None:
        self._handle.remove()
