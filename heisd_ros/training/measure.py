"""Offline measurement of drafts against the VLA, through the engine's own code path.

Why through the engine: drafter agreement, retrieval hit quality and the tau
calibration must measure what the decoders will actually see at run time, so each
frame is drafted by a real ``Drafter``, scored by the VLA in one tree-verification
pass (``VLAModel.score``) and judged by the same ``AcceptanceConfig`` the decoder uses.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from heisd_ros.core.decoding import AcceptanceConfig
from heisd_ros.core.drafters import Drafter, DraftRequest
from heisd_ros.core.model import VLAModel
from heisd_ros.core.observation import Observation


@dataclass
class DraftMeasurements:
    """Per frame: accepted tokens under the rule, exact-prefix length, token match rate, mean |bin error| of candidate 0.

    Frames whose draft was empty have accepted = exact = 0 and NaN match/deviation.
    """

    accepted: np.ndarray
    exact: np.ndarray
    match: np.ndarray
    deviation: np.ndarray
    draft_ms: np.ndarray
    tokens: int

    def summary(self) -> dict:
        """Means over frames (JSON-friendly), the numbers reported in the bundle."""
        valid = ~np.isnan(self.match)
        return {
            "frames": int(self.accepted.size),
            "empty_drafts": int((~valid).sum()),
            "mean_accepted_tokens": float(self.accepted.mean()) if self.accepted.size else 0.0,
            "full_acceptance_rate": float((self.accepted == self.tokens).mean()) if self.accepted.size else 0.0,
            "mean_exact_prefix": float(self.exact.mean()) if self.exact.size else 0.0,
            "token_agreement": float(np.nanmean(self.match)) if valid.any() else 0.0,
            "mean_abs_bin_error": float(np.nanmean(self.deviation)) if valid.any() else 0.0,
            "draft_ms_p50": float(np.median(self.draft_ms)) if self.draft_ms.size else 0.0,
        }


def measure_drafts(model: VLAModel, drafter: Drafter, observations: list[Observation], acceptance: AcceptanceConfig,
                   progress: bool = False, desc: str = "measure") -> DraftMeasurements:
    """Draft, score and judge every observation (drafter state reset before each frame: no adaptation carried over)."""
    total = model.tokens_per_step
    n = len(observations)
    accepted, exact = np.zeros(n, np.int64), np.zeros(n, np.int64)
    match, deviation, draft_ms = np.full(n, np.nan), np.full(n, np.nan), np.zeros(n)
    for i, obs in enumerate(tqdm(observations, desc=desc, disable=not progress, mininterval=2.0)):
        drafter.reset()
        t0 = time.perf_counter()
        draft = drafter.propose(DraftRequest(obs, total))
        draft_ms[i] = (time.perf_counter() - t0) * 1e3
        if draft.empty:
            continue
        state = model.prefill(obs)
        logits = model.score(state, draft.candidates)
        targets = logits[:, :-1].argmax(axis=-1)
        _, accepted[i] = acceptance.decide(draft.candidates, targets, model.action_dim)
        first, target = draft.candidates[0], targets[0]
        same = first == target
        exact[i] = int(np.argmin(same)) if not same.all() else same.size
        match[i] = float(same.mean())
        deviation[i] = float(np.abs(first - target).mean())
    return DraftMeasurements(accepted, exact, match, deviation, draft_ms, total)
