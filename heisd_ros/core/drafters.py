"""Drafting strategies behind one small interface (in the style of transformers' candidate generators).

Why: the decoders (decoding.py) verify whatever a drafter proposes and report back how
much was accepted; they never ask which drafter they hold. Each strategy is one class:

- ``NoDrafter``: proposes nothing (plain autoregressive decoding).
- ``ModelDrafter``: a small VLAModel decodes greedily; its draft length adapts to the
  acceptance history like Hugging Face's assisted generation (+2 after a fully
  accepted draft, -1 otherwise).
- ``RetrievalDrafter``: the top-K action sequences stored for the nearest
  observations of the same task (RetrievalDatastore, keyed by the VLA's own
  ``embed(obs)`` plus joint positions); its Draft also carries the top-1 hit's actions
  so verify-skip can execute them without any VLA call, and with ``follow=n`` the
  frames after the top-1 in its demonstration (``Draft.following``), which HeiSD's
  ``skip_pick="continue"`` executes on the next skipped steps without a lookup.

A drafter that cannot propose (unknown task, empty index) returns an empty Draft with
a ``reason`` instead of raising, so a hybrid policy can fall back to another branch.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from heisd_ros.core.errors import EmptyIndexError, InvalidInputError, UnknownTaskError
from heisd_ros.core.model import VLAModel
from heisd_ros.core.observation import Observation
from heisd_ros.core.retrieval import RetrievalDatastore
from heisd_ros.core.stats import Branch


@dataclass
class DraftRequest:
    """What a decoder asks for: drafts for ``obs`` of at most ``num_tokens`` tokens (H * D)."""

    obs: Observation
    num_tokens: int


@dataclass
class Draft:
    """K candidate bin sequences (K may be 0) plus what it cost and, for retrieval, the top-1 actions.

    candidates: (K, L) int64 bins. actions: (H, D) actions of candidate 0 in controller
    units, or None. draft_s / retrieval_s: seconds spent by a drafter model / by
    embedding + lookup. reason: why the draft is empty.
    """

    candidates: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.int64))
    actions: np.ndarray | None = None
    draft_s: float = 0.0
    retrieval_s: float = 0.0
    reason: str = ""
    following: tuple[tuple[np.ndarray, np.ndarray], ...] = ()  # retrieval: (bins, actions) of the frames after candidate 0 in its demonstration

    @property
    def empty(self) -> bool:
        """True when there is nothing to verify."""
        return self.candidates.shape[0] == 0 or self.candidates.shape[1] == 0


@runtime_checkable
class Drafter(Protocol):
    """One drafting strategy. ``action_dim`` / ``n_bins`` are None when any model fits."""

    branch: Branch  # how a step drafted by this strategy is reported
    action_dim: int | None
    n_bins: int | None

    def propose(self, request: DraftRequest) -> Draft:
        """Draft continuations of the observation prefix."""
        ...

    def update(self, drafted: int, accepted: int) -> None:
        """Feedback after verification: tokens drafted and accepted of the kept candidate."""
        ...

    def reset(self) -> None:
        """New episode."""
        ...


def check_compatible(model: VLAModel, drafter: Drafter) -> None:
    """Raise InvalidInputError when a drafter proposes in another action space than the model verifies."""
    if drafter.action_dim is not None and drafter.action_dim != model.action_dim:
        raise InvalidInputError(
            f"drafter {type(drafter).__name__} proposes actions of dimension {drafter.action_dim}, "
            f"the model emits dimension {model.action_dim}"
        )
    if drafter.n_bins is not None and drafter.n_bins != model.n_bins:
        raise InvalidInputError(f"drafter uses {drafter.n_bins} bins, the model {model.n_bins}")


def _check_request(request: DraftRequest) -> None:
    if not isinstance(request.num_tokens, (int, np.integer)) or request.num_tokens < 1:
        raise InvalidInputError(f"num_tokens must be an integer >= 1, got {request.num_tokens!r}")


class NoDrafter:
    """Proposes nothing: a speculative decoder holding it is plain autoregressive decoding."""

    branch = Branch.AR
    action_dim = None
    n_bins = None

    def propose(self, request: DraftRequest) -> Draft:
        _check_request(request)
        return Draft(reason="no drafter")

    def update(self, drafted: int, accepted: int) -> None:
        """Nothing adapts."""

    def reset(self) -> None:
        """Nothing to forget."""


class ModelDrafter:
    """A small VLAModel proposing its greedy continuation; adaptive draft length.

    num_tokens: initial draft length (default: the drafter's whole step). With
    ``adaptive`` the length grows by 2 after a fully accepted draft and shrinks by 1
    (not below ``min_tokens``) otherwise, always capped by the request.
    """

    branch = Branch.DRAFTER

    def __init__(self, model: VLAModel, num_tokens: int | None = None, adaptive: bool = True, min_tokens: int = 1) -> None:
        limit = model.tokens_per_step
        num_tokens = limit if num_tokens is None else num_tokens
        if not 1 <= min_tokens <= num_tokens <= limit:
            raise InvalidInputError(
                f"need 1 <= min_tokens <= num_tokens <= {limit} (the drafter's step), got {min_tokens}, {num_tokens}"
            )
        self.model = model
        self.action_dim = model.action_dim
        self.n_bins = model.n_bins
        self.adaptive = adaptive
        self.min_tokens = min_tokens
        self.initial_tokens = num_tokens
        self.num_tokens = num_tokens

    def propose(self, request: DraftRequest) -> Draft:
        _check_request(request)
        start = time.perf_counter()
        n = min(self.num_tokens, request.num_tokens, self.model.tokens_per_step)
        state = self.model.prefill(request.obs)
        bins = self.model.decode(state, np.zeros(0, np.int64), n)
        return Draft(candidates=bins[None, :], draft_s=time.perf_counter() - start)

    def update(self, drafted: int, accepted: int) -> None:
        if not self.adaptive or drafted <= 0:
            return
        if accepted >= drafted:
            self.num_tokens = min(self.num_tokens + 2, self.model.tokens_per_step)
        else:
            self.num_tokens = max(self.num_tokens - 1, self.min_tokens)

    def reset(self) -> None:
        self.num_tokens = self.initial_tokens


class RetrievalDrafter:
    """Top-K stored action sequences of the nearest observations of the same task.

    datastore: a RetrievalDatastore; model: the VLA whose ``embed(obs)`` produced the datastore keys (no
    VLA forward pass is spent). The collection is chosen by ``obs.instruction``; joint
    positions refine the lookup when ``use_joints``, the observation has any and the
    collection stores them.
    """

    branch = Branch.RETRIEVAL

    def __init__(self, datastore: RetrievalDatastore, model: VLAModel, k: int = 5, use_joints: bool = True, follow: int = 0) -> None:
        if not isinstance(k, int) or k < 1:
            raise InvalidInputError(f"k must be an integer >= 1, got {k!r}")
        if not isinstance(follow, int) or isinstance(follow, bool) or follow < 0:
            raise InvalidInputError(f"follow must be an integer >= 0, got {follow!r}")
        if datastore.action_dim != model.action_dim:
            raise InvalidInputError(
                f"datastore stores actions of dimension {datastore.action_dim}, the model emits {model.action_dim}"
            )
        if datastore.horizon < model.horizon:
            raise InvalidInputError(f"datastore horizon {datastore.horizon} is shorter than the model's {model.horizon}")
        self.datastore = datastore
        self.model = model
        self.k = k
        self.follow = follow  # frames after the top-1 in its demonstration, fetched with each lookup (Draft.following)
        self.use_joints = use_joints
        self.action_dim = model.action_dim
        self.n_bins = model.n_bins

    def propose(self, request: DraftRequest) -> Draft:
        _check_request(request)
        start = time.perf_counter()
        obs = request.obs
        key = self.model.embed(obs)
        try:
            with_joints = self.use_joints and len(obs.joint_positions) and self.datastore.has_joints(obs.instruction)
            joints = obs.joint_positions if with_joints else None
            hits = self.datastore.query(obs.instruction, key, k=self.k, joint_positions=joints, follow=self.follow)
        except (UnknownTaskError, EmptyIndexError) as exc:
            return Draft(retrieval_s=time.perf_counter() - start, reason=f"retrieval unavailable: {exc}")
        if not hits:
            return Draft(retrieval_s=time.perf_counter() - start, reason="retrieval returned no hits")
        length = min(request.num_tokens, min(np.asarray(h.tokens).size for h in hits))
        candidates = np.stack([np.asarray(h.tokens, np.int64).reshape(-1)[:length] for h in hits])
        steps = length // self.action_dim
        actions = np.asarray(hits[0].actions, np.float64)[:steps] if steps else None
        following = ()
        if hits[0].following_tokens is not None and length == self.model.tokens_per_step:  # whole steps only
            following = tuple(zip(hits[0].following_tokens, hits[0].following_actions))
        return Draft(candidates=candidates, actions=actions, retrieval_s=time.perf_counter() - start, following=following)

    def update(self, drafted: int, accepted: int) -> None:
        """Stored sequences do not adapt to feedback."""

    def reset(self) -> None:
        """Nothing to forget."""
