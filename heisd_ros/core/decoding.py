"""Decoding strategies with one public surface: ``step(obs, metric) -> StepResult`` and ``reset()``.

Why one surface: the coordinator node, the benchmarks and the evaluation compare plain
autoregressive decoding, drafter SD, retrieval SD and the HeiSD hybrid by swapping the
object, and every strategy fills ``StepStats`` the same way (stats.py conventions).

The shared speculative step (``speculate``): if the draft is not empty, the observation
prefix and all K candidates go through the VLA in ONE forward pass (the model's
optional ``prefill_score``, model.py; a model without it spends 2: ``prefill`` then
``score`` with the tree mask) and the acceptance rule picks a candidate and its
accepted prefix; the VLA's greedy token at the first rejected position comes free from
that pass (the bonus token); greedy decoding then completes the H * D tokens, reusing
the kept chain's cache (1 pass per further token). With strict acceptance the result
is exactly the VLA's greedy output whatever the draft was. An empty draft is plain AR:
prefill (which yields token 0), then 1 pass per further token.

VLA passes per step, T = H * D tokens, m accepted (fused model): AR costs T; a draft
costs 1 + max(0, T - m - 1), i.e. 1 when fully accepted (or m = T - 1) and T - m
otherwise; add 1 for a model without ``prefill_score``. Timings: the fused pass is
reported in ``verify_s`` with ``prefill_s = 0`` (one pass cannot be split); with the
two-pass fallback ``prefill_s`` and ``verify_s`` time their own passes.

Who verifies is pluggable (``Verifier``): ``LocalVerifier`` runs ``verify_draft`` on a
VLA in this process; the coordinator node passes a verifier that calls the verifier
node's ~/verify service, so branch logic, verify-skip and fallbacks are the same code
in a benchmark and on a robot. Decoders accept either a VLAModel (wrapped in a
LocalVerifier) or a Verifier.

``HybridDecoder`` (HeiSD): branch = choose_branch(metric, tau): AR while M is
undefined, drafter SD if M <= tau, retrieval SD if M > tau with verify-skip (a skipped
step executes the top-1 retrieved actions with no VLA call). The skip schedule resets
whenever the drafter or AR branch runs. An unusable retrieval (unknown task, empty
index) falls back to the drafter branch, noted in ``StepResult.note`` and the log.

Gripper guard on verify-skip (``skip_guard_dims``): a skip the schedule grants is
turned into a verified step when the retrieved chunk would open or close a gripper
(the command on a guarded dimension crosses 0 relative to the last emitted action).
Why: a skipped step runs actions from a demonstration frame no model checked, and a
gripper command is the one discrete, irreversible part of an action. Without the
guard, closed-loop lift traces showed skips from pre-grasp frames re-opening a closed
gripper, the next verified step closing it again, and so on: 30-45 grasp attempts per
failed episode against AR's one (docs/evaluation.md). Arm dimensions stay unguarded;
an empty tuple is the reference behaviour.

Consistency guard (``skip_block_check``, ROS/CLI ``skip_guard=block``, on top of the
gripper guard): a skip executes the retrieved chunk only if it passes the retrieval
branch's own block test (HeiSD's sequence-wise relaxed acceptance) against the last
chunk the VLA produced or verified; otherwise the step is verified. The idea: the VLA's
target is unknown on a skipped step and its latest verdict is the nearest stand-in. In
traces it picks out the skips that deviate most from AR (kept skips 2.9 bins from AR's
re-decode, vetoed ones 19.6), but in closed loop it lifted fewer cubes than the gripper
guard alone (59/100 against 68/100 on seeds 1100-1199, at 1.38 VLA passes per action
against 0.84), so it is an option, not the default (docs/evaluation.md).

What a skipped step executes (``skip_pick``). "top1" (the reference): a fresh lookup on
the skipped step's observation, and its top-1 chunk. "continue" (the default of
``Bundle.make_decoder`` and the coordinator): the next frame of the demonstration the
latest lookup's top-1 came from, with no embedding or lookup at all (the retrieval
drafter fetches those frames with each lookup, ``RetrievalDrafter(follow=n)``). Why:
re-retrieving on every skipped step stitches frames of different demonstrations into one
motion, and closed-loop lift traces showed those replays costing success although random
noise of the same size costs AR nothing; continuing one demonstration between two
verifications lifted as many cubes as AR (75/100 on seeds 1100-1199, against 68/100 for
"top1") and makes skipped steps nearly free (docs/evaluation.md). A granted skip with no
frame left to continue (the demonstration ended, or the guard vetoed it) is verified;
the first retrieval step after an AR or drafter step has nothing to continue and uses
the top-1 as in the reference. "nearest": the retrieved candidate closest to the last
verified chunk (an ablation: it lifted fewer calibration seeds).
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Callable, Protocol, Sequence, runtime_checkable

import numpy as np

from heisd_ros.core.acceptance import BlockRule, block_relaxed_accept, strict_accept, token_relaxed_accept
from heisd_ros.core.drafters import Draft, Drafter, DraftRequest, NoDrafter, check_compatible
from heisd_ros.core.errors import InvalidInputError
from heisd_ros.core.fused_metric import MetricValue, choose_branch
from heisd_ros.core.joints import gripper_dims
from heisd_ros.core.model import SupportsPrefillScore, VLAModel
from heisd_ros.core.observation import Observation
from heisd_ros.core.stats import Branch, StepStats
from heisd_ros.core.verify_skip import FixedSkipSchedule, SkipSchedule, make_skip_schedule

log = logging.getLogger(__name__)

_MODES = ("strict", "token", "block")
_EMITS = ("draft", "verifier")
SKIP_GUARDS = ("gripper", "block", "none")
SKIP_PICKS = ("top1", "nearest", "continue")
SKIP_CONTINUE_FRAMES = 16  # frames a lookup fetches for skip_pick="continue": the longest run of skips a ROS skip_count allows
SKIP_VETO_NOTE = "skip vetoed: the retrieved chunk changes a gripper"
SKIP_BLOCK_VETO_NOTE = "skip vetoed: the retrieved chunk fails the block test against the last verified chunk"
SKIP_VETO_NOTES = (SKIP_VETO_NOTE, SKIP_BLOCK_VETO_NOTE)


@dataclass(frozen=True)
class AcceptanceConfig:
    """How verified drafts are accepted: "strict" (exact), "token" (|d - t| <= radius, Spec-VLA), "block" (HeiSD).

    ``emit`` says which tokens fill the accepted positions: "draft" (the drafted tokens,
    as in Spec-VLA and HeiSD) or "verifier" (the VLA's own greedy token at each accepted
    position, which the verification pass computed anyway, given the drafted prefix
    before it). Acceptance, and so the pass count, is the same either way; "verifier"
    keeps the VLA's small per-step corrections that a relaxed draft would replace
    (see docs/evaluation.md). With "strict" both are identical.
    """

    mode: str = "strict"
    radius: int = 9
    block_rule: BlockRule = field(default_factory=BlockRule)
    emit: str = "draft"

    def __post_init__(self) -> None:
        if self.mode not in _MODES:
            raise InvalidInputError(f"acceptance mode must be one of {_MODES}, got {self.mode!r}")
        if not isinstance(self.radius, int) or self.radius < 0:
            raise InvalidInputError(f"radius must be an integer >= 0, got {self.radius!r}")
        if self.emit not in _EMITS:
            raise InvalidInputError(f"emit must be one of {_EMITS}, got {self.emit!r}")

    def decide(self, candidates: np.ndarray, targets: np.ndarray, action_dim: int) -> tuple[int, int]:
        """(kept candidate, accepted tokens) for (K, L) drafts against the VLA's (K, L) greedy targets.

        The kept candidate is the one with the longest accepted prefix (first on ties);
        for "block" the block rule's survivor (candidate 0 with 0 accepted if none).
        """
        best, accepted, _ = self.judge(candidates, targets, action_dim)
        return best, accepted

    def judge(self, candidates: np.ndarray, targets: np.ndarray, action_dim: int) -> tuple[int, int, list[int]]:
        """Like ``decide``, plus each candidate's own accepted length."""
        if self.mode == "block":
            decision = block_relaxed_accept(candidates, targets, self.block_rule, action_dim)
            return max(decision.best, 0), decision.accepted, list(decision.per_candidate)
        if self.mode == "token":
            per = [token_relaxed_accept(c, t, self.radius) for c, t in zip(candidates, targets)]
        else:
            per = [strict_accept(c, t) for c, t in zip(candidates, targets)]
        best = int(np.argmax(per))
        return best, int(per[best]), [int(a) for a in per]


@dataclass
class StepResult:
    """One action chunk: bins (H*D,), actions (H, D) in controller units, its stats, and a note on fallbacks."""

    bins: np.ndarray
    actions: np.ndarray
    stats: StepStats
    note: str = ""


@dataclass
class Verification:
    """Outcome of verifying one draft: the emitted bins (H*D,), the kept candidate (-1: no draft)
    and every candidate's own accepted length."""

    bins: np.ndarray
    best: int = -1
    per_candidate: list[int] = field(default_factory=list)


def speculate(model: VLAModel, obs: Observation, draft: Draft, acceptance: AcceptanceConfig, stats: StepStats) -> np.ndarray:
    """Prefill and verify ``draft`` (one fused pass where the model has it), complete greedily; fills stats."""
    return verify_draft(model, obs, draft, acceptance, stats).bins


def verify_draft(model: VLAModel, obs: Observation, draft: Draft, acceptance: AcceptanceConfig,
                 stats: StepStats) -> Verification:
    """``speculate`` with the acceptance details a remote caller needs."""
    total = model.tokens_per_step
    passes0 = model.forward_passes
    t0 = time.perf_counter()
    prefix = np.zeros(0, np.int64)
    best, per_candidate = -1, []
    if draft.empty:
        state = model.prefill(obs)
        t1 = time.perf_counter()
    else:
        candidates = draft.candidates
        if isinstance(model, SupportsPrefillScore):  # one pass for prefix and draft, all timed as verification
            t1 = t0
            state, logits = model.prefill_score(obs, candidates)
        else:
            state = model.prefill(obs)
            t1 = time.perf_counter()
            logits = model.score(state, candidates)
        targets = logits[:, :-1].argmax(axis=-1)
        best, accepted, per_candidate = acceptance.judge(candidates, targets, model.action_dim)
        length = candidates.shape[1]
        prefix = (targets if acceptance.emit == "verifier" else candidates)[best, :accepted].astype(np.int64)
        if accepted < total:  # the VLA's own token right after the accepted prefix comes with the pass
            prefix = np.append(prefix, int(logits[best, accepted].argmax()))
        stats.drafted, stats.accepted, stats.candidates = length, accepted, candidates.shape[0]
        stats.accepted_per_position = [1] * accepted + [0] * (length - accepted)
    t2 = time.perf_counter()
    rest = model.decode(state, prefix, total - prefix.size)
    t3 = time.perf_counter()
    stats.prefill_s, stats.verify_s, stats.decode_s = t1 - t0, t2 - t1, t3 - t2
    stats.forward_passes = model.forward_passes - passes0
    bins = np.concatenate([prefix, rest]).astype(np.int64)
    stats.emitted = bins.size
    return Verification(bins, best, per_candidate)


@runtime_checkable
class Verifier(Protocol):
    """Checks drafts with the full VLA: in this process or behind a service."""

    tokenizer: object  # ActionTokenizer
    action_dim: int
    horizon: int
    n_bins: int

    @property
    def tokens_per_step(self) -> int: ...

    def verify(self, obs: Observation, draft: Draft, acceptance: AcceptanceConfig, stats: StepStats) -> Verification:
        """Prefill, verify the draft (may be empty: plain AR) and complete the step; fill stats."""
        ...


class LocalVerifier:
    """The VLA in this process."""

    def __init__(self, model: VLAModel) -> None:
        self.model = model
        self.tokenizer = model.tokenizer
        self.action_dim = model.action_dim
        self.horizon = model.horizon
        self.n_bins = model.n_bins

    @property
    def tokens_per_step(self) -> int:
        return self.model.tokens_per_step

    def verify(self, obs: Observation, draft: Draft, acceptance: AcceptanceConfig, stats: StepStats) -> Verification:
        return verify_draft(self.model, obs, draft, acceptance, stats)


def as_verifier(model: VLAModel | Verifier) -> Verifier:
    return model if isinstance(model, Verifier) else LocalVerifier(model)


def _finish(model: Verifier, bins: np.ndarray, stats: StepStats, draft: Draft, start: float, note: str = "") -> StepResult:
    """Attach draft timings and total latency; de-tokenise."""
    stats.draft_s += draft.draft_s
    stats.retrieval_s += draft.retrieval_s
    stats.total_s = time.perf_counter() - start
    actions = model.tokenizer.decode(bins.reshape(model.horizon, model.action_dim))
    return StepResult(bins=bins, actions=actions, stats=stats, note=note)


class SpeculativeDecoder:
    """Speculative decoding with one drafter and one acceptance rule (drafter SD or retrieval SD).

    The step is reported under ``drafter.branch``; an empty draft (drafter node down,
    unknown task) degrades to plain autoregressive decoding for that step (no
    verification pass is spent) and is reported as AR, so a branch mix never credits
    the drafter with actions it did not propose.
    """

    def __init__(self, model: VLAModel | Verifier, drafter: Drafter, acceptance: AcceptanceConfig | None = None) -> None:
        model = as_verifier(model)
        check_compatible(model, drafter)
        acceptance = acceptance or AcceptanceConfig()
        if acceptance.mode == "block":
            acceptance.block_rule.validate(model.action_dim)
        self.model = model
        self.drafter = drafter
        self.acceptance = acceptance

    def step(self, obs: Observation, metric: MetricValue | None = None) -> StepResult:
        """Draft, verify, complete one chunk; ``metric`` is accepted for a uniform surface and unused."""
        start = time.perf_counter()
        obs.validate()
        draft = self.drafter.propose(DraftRequest(obs, self.model.tokens_per_step))
        stats = StepStats(branch=Branch.AR if draft.empty else self.drafter.branch)
        bins = self.model.verify(obs, draft, self.acceptance, stats).bins
        if not draft.empty:
            self.drafter.update(stats.drafted, stats.accepted)
        return _finish(self.model, bins, stats, draft, start, draft.reason if draft.empty else "")

    def reset(self) -> None:
        """New episode."""
        self.drafter.reset()


class ARDecoder(SpeculativeDecoder):
    """Plain autoregressive greedy decoding: the baseline every speedup is measured against."""

    def __init__(self, model: VLAModel | Verifier) -> None:
        super().__init__(model, NoDrafter())


class HybridDecoder:
    """HeiSD: fused-metric branch choice between AR, drafter SD and retrieval SD with verify-skip."""

    def __init__(
        self,
        model: VLAModel | Verifier,
        model_drafter: Drafter,
        retrieval_drafter: Drafter,
        tau: float,
        drafter_acceptance: AcceptanceConfig | None = None,
        retrieval_acceptance: AcceptanceConfig | None = None,
        skip_schedule: SkipSchedule | None = None,
        skip_guard_dims: Sequence[int] = (),
        skip_pick: str = "top1",
        skip_block_check: bool = False,
    ) -> None:
        if not np.isfinite(tau):
            raise InvalidInputError(f"tau must be a finite number, got {tau!r}")
        model = as_verifier(model)
        self.model = model
        self.tau = float(tau)
        self.drafter_sd = SpeculativeDecoder(model, model_drafter, drafter_acceptance or AcceptanceConfig("token", 9))
        self.retrieval_sd = SpeculativeDecoder(model, retrieval_drafter, retrieval_acceptance or AcceptanceConfig("block"))
        self.ar = ARDecoder(model)
        self.skip_schedule = skip_schedule if skip_schedule is not None else FixedSkipSchedule()
        dims = [int(d) for d in skip_guard_dims]
        if any(not 0 <= d < model.action_dim for d in dims) or len(set(dims)) != len(dims):
            raise InvalidInputError(f"skip_guard_dims must be distinct action indices in [0, {model.action_dim}), got {list(skip_guard_dims)}")
        self.skip_guard_dims = dims
        if skip_pick not in SKIP_PICKS:
            raise InvalidInputError(f"skip_pick must be one of {SKIP_PICKS}, got {skip_pick!r}")
        if skip_pick == "continue" and not getattr(retrieval_drafter, "follow", 0):
            raise InvalidInputError("skip_pick='continue' needs a retrieval drafter that fetches the following frames "
                                    "(RetrievalDrafter(follow=n), n >= 1)")
        self.skip_pick = skip_pick
        # skip_pick="continue": frames left of the demonstration being continued; None = no lookup yet in this run
        # of the retrieval branch (the first retrieval step after AR / the drafter uses the top-1)
        self._following: list[tuple[np.ndarray, np.ndarray]] | None = None
        self.skip_block_check = bool(skip_block_check)
        self._last_action: np.ndarray | None = None
        self._last_verified: np.ndarray | None = None
        self.vetoed_skips = 0

    def step(self, obs: Observation, metric: MetricValue | None = None) -> StepResult:
        """One chunk from the branch the metric selects (AR when metric is None or undefined)."""
        if metric is not None and not isinstance(metric, MetricValue):
            raise InvalidInputError(f"metric must be a MetricValue or None, got {type(metric).__name__}")
        branch = Branch.AR if metric is None else choose_branch(metric, self.tau)
        if branch is Branch.RETRIEVAL:
            result = self._retrieval_step(obs)
        else:
            self.skip_schedule.reset()
            result = (self.drafter_sd if branch is Branch.DRAFTER else self.ar).step(obs)
        if result.stats.branch not in (Branch.RETRIEVAL, Branch.RETRIEVAL_SKIP):
            self._following = None  # the demonstration's position is stale once another branch has acted
        self._last_action = np.asarray(result.actions, dtype=np.float64)[-1].copy()
        if result.stats.branch is not Branch.RETRIEVAL_SKIP:
            self._last_verified = result.bins
        return result

    def _skip_chunk(self, draft: Draft) -> tuple[np.ndarray, np.ndarray]:
        """(bins, actions) a skipped step executes: the top-1 retrieved chunk, or with
        ``skip_pick="nearest"`` the retrieved candidate closest (sum of bin distances) to
        the last chunk the VLA produced or verified."""
        k = 0
        if self.skip_pick == "nearest" and self._last_verified is not None:
            k = int(np.argmin(np.abs(draft.candidates - self._last_verified).sum(axis=1)))
        bins = draft.candidates[k].copy()
        if k == 0:  # the retrieved actions themselves, not their bin centres
            return bins, draft.actions.copy()
        return bins, self.model.tokenizer.decode(bins.reshape(self.model.horizon, self.model.action_dim))

    def _skip_changes_gripper(self, actions: np.ndarray) -> bool:
        """True when executing ``actions`` (H, D) would open or close a guarded gripper."""
        dims = self.skip_guard_dims
        if not dims:
            return False
        if self._last_action is None:  # nothing emitted yet this episode: verify
            return True
        return bool(np.any((np.asarray(actions)[:, dims] > 0.0) != (self._last_action[dims] > 0.0)))

    def _skip_inconsistent(self, bins: np.ndarray) -> bool:
        """True when the skip chunk's bins fail the retrieval block test against the last verified chunk."""
        if not self.skip_block_check:
            return False
        if self._last_verified is None or self._last_verified.shape != bins.shape:  # no verdict to compare with: verify
            return True
        rule = self.retrieval_sd.acceptance.block_rule
        decision = block_relaxed_accept(bins, self._last_verified, rule, self.model.action_dim)
        return decision.accepted < bins.shape[0]

    def _retrieval_step(self, obs: Observation) -> StepResult:
        start = time.perf_counter()
        obs.validate()
        if self.skip_pick == "continue" and self._following is not None:
            return self._continued_step(obs, start)
        draft = self._lookup(obs)
        if draft.empty:
            return self._without_retrieval(obs, draft, start)
        full = self._full(draft)
        if full and self.skip_schedule.should_skip():
            bins, actions = self._skip_chunk(draft)
            veto = self._skip_veto(bins, actions)
            if veto:
                return self._verified_retrieval(obs, draft, start, full, veto)
            return self._skipped(bins, actions, draft.candidates.shape[0], draft.retrieval_s, start)
        return self._verified_retrieval(obs, draft, start, full)

    def _full(self, draft: Draft) -> bool:
        """Whether a draft covers a whole step and carries actions (only then can it be skipped or scheduled)."""
        return draft.candidates.shape[1] == self.model.tokens_per_step and draft.actions is not None

    def _skip_veto(self, bins: np.ndarray, actions: np.ndarray) -> str:
        """The note of the guard that vetoes executing this chunk unverified ("" = none), counted in vetoed_skips."""
        if self._skip_changes_gripper(actions):
            note = SKIP_VETO_NOTE
        elif self._skip_inconsistent(bins):
            note = SKIP_BLOCK_VETO_NOTE
        else:
            return ""
        self.vetoed_skips += 1
        return note

    def _skipped(self, bins: np.ndarray, actions: np.ndarray, candidates: int, retrieval_s: float, start: float) -> StepResult:
        """A verify-skip step: the chunk as retrieved, no VLA call."""
        stats = StepStats(branch=Branch.RETRIEVAL_SKIP, emitted=self.model.tokens_per_step, candidates=candidates)
        stats.retrieval_s = retrieval_s
        stats.total_s = time.perf_counter() - start
        return StepResult(bins=bins, actions=actions, stats=stats)

    def _lookup(self, obs: Observation) -> Draft:
        """A retrieval draft; with skip_pick="continue" its following frames become the ones to continue."""
        draft = self.retrieval_sd.drafter.propose(DraftRequest(obs, self.model.tokens_per_step))
        if self.skip_pick == "continue":
            self._following = None if draft.empty else list(draft.following)
        return draft

    def _without_retrieval(self, obs: Observation, draft: Draft, start: float) -> StepResult:
        """An unusable lookup (unknown task, empty index): this step runs the drafter branch."""
        note = f"{draft.reason}; used the drafter branch"
        log.warning(note)
        self.skip_schedule.reset()
        result = self.drafter_sd.step(obs)
        result.stats.retrieval_s += draft.retrieval_s
        result.stats.total_s = time.perf_counter() - start
        result.note = note
        return result

    def _continued_step(self, obs: Observation, start: float) -> StepResult:
        """skip_pick="continue" after a lookup in this run: a granted skip executes the next frame of the
        demonstration being continued (no lookup, no VLA call); otherwise (scheduled verification, no frame
        left, a guard's veto) a fresh lookup is verified and its top-1 becomes the demonstration to continue."""
        note = ""
        if self.skip_schedule.should_skip() and self._following:
            bins, actions = self._following.pop(0)  # owned by this decoder once popped: no copy
            note = self._skip_veto(bins, actions)
            if not note:
                return self._skipped(bins, actions, 1, 0.0, start)
        draft = self._lookup(obs)
        if draft.empty:
            return self._without_retrieval(obs, draft, start)
        return self._verified_retrieval(obs, draft, start, self._full(draft), note)

    def _verified_retrieval(self, obs: Observation, draft: Draft, start: float, full: bool, note: str = "") -> StepResult:
        sd = self.retrieval_sd
        stats = StepStats(branch=Branch.RETRIEVAL)
        bins = self.model.verify(obs, draft, sd.acceptance, stats).bins
        sd.drafter.update(stats.drafted, stats.accepted)
        if full:
            self.skip_schedule.record(stats.accepted == self.model.tokens_per_step)
        return _finish(self.model, bins, stats, draft, start, note)

    def reset(self) -> None:
        """New episode: schedules and drafters forget their history."""
        self._last_action = None
        self._last_verified = None
        self._following = None
        self.skip_schedule.reset()
        self.drafter_sd.reset()
        self.retrieval_sd.reset()


def skip_guard_dims(guard: str, action_names: Sequence[str]) -> list[int]:
    """The action dimensions HeiSD's verify-skip guard watches: every gripper / hand for "gripper" and "block", none for "none"."""
    if guard not in SKIP_GUARDS:
        raise InvalidInputError(f"skip_guard must be one of {SKIP_GUARDS}, got {guard!r}")
    return gripper_dims(action_names) if guard != "none" else []


def skip_guard_options(guard: str, action_names: Sequence[str]) -> dict:
    """build_decoder keywords for a skip guard name (ROS ``skip_guard``, ``heisd eval --option heisd.skip_guard=``):
    "gripper" = gripper guard, "block" = gripper guard + consistency check, "none" = the reference skip."""
    return {"skip_guard_dims": skip_guard_dims(guard, action_names), "skip_block_check": guard == "block"}


def build_decoder(method: str, model: VLAModel | Verifier, model_drafter: Callable[[], Drafter],
                  retrieval_drafter: Callable[..., Drafter], tau: float, *, relax_radius: int = 9, emit: str = "draft",
                  acceptance: str = "block", block_sum_threshold: int = 45, block_max_threshold: int = 25,
                  skip_schedule: str | SkipSchedule = "fixed", skip_count: int | None = None,
                  skip_guard_dims: Sequence[int] = (), skip_pick: str = "top1", skip_block_check: bool = False):
    """A decoder by method name ("ar" | "drafter" | "retrieval" | "heisd") and its tunables.

    Why one builder: a bundle in this process (``Bundle.make_decoder``) and the
    coordinator node (remote verifier, drafter and cache) must turn the same options
    into the same decoder. The drafters are factories, built only for a method that
    drafts. Drafter SD uses token-relaxed acceptance (``relax_radius``); retrieval SD
    uses ``acceptance`` (default block, with the given thresholds); both emit ``emit``.
    ``skip_guard_dims`` / ``skip_block_check``: HeiSD's guards on verify-skip (HybridDecoder;
    ``skip_guard_options`` turns a guard name into both). ``retrieval_drafter`` takes
    ``follow``: for ``skip_pick="continue"`` it is built to fetch SKIP_CONTINUE_FRAMES
    frames after each top-1.
    """
    radius = int(relax_radius)
    token = AcceptanceConfig("token", radius, emit=emit)
    rule = BlockRule.for_dim(model.action_dim, sum_threshold=int(block_sum_threshold), max_threshold=int(block_max_threshold))
    retrieval_acc = AcceptanceConfig(acceptance, radius, block_rule=rule, emit=emit)
    if method == "ar":
        return ARDecoder(model)
    if method == "drafter":
        return SpeculativeDecoder(model, model_drafter(), token)
    if method == "retrieval":
        return SpeculativeDecoder(model, retrieval_drafter(), retrieval_acc)
    if method != "heisd":
        raise InvalidInputError(f"unknown decoding method {method!r}; expected ar, drafter, retrieval or heisd")
    schedule = make_skip_schedule(skip_schedule, skip_count) if isinstance(skip_schedule, str) else skip_schedule
    if not isinstance(schedule, SkipSchedule):
        raise InvalidInputError(f"skip_schedule must be a SkipSchedule or its name, got {type(schedule).__name__}")
    follow = SKIP_CONTINUE_FRAMES if skip_pick == "continue" else 0
    return HybridDecoder(model, model_drafter(), retrieval_drafter(follow=follow), tau, token, retrieval_acc, schedule,
                         skip_guard_dims, skip_pick, skip_block_check)
