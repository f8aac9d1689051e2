"""A pluggable Verifier: decoders give the same tokens whether the VLA is local or behind one."""
from __future__ import annotations

import numpy as np

from heisd_ros.core.decoding import AcceptanceConfig, HybridDecoder, LocalVerifier, Verifier, verify_draft
from heisd_ros.core.drafters import Draft, ModelDrafter
from heisd_ros.core.stats import Branch, StepStats
from heisd_ros.core.verify_skip import NoSkipSchedule

from engine_testkit import N_BINS, hf_greedy, make_obs, make_vla
from test_decoding import FixedDrafter, metric

STRICT = AcceptanceConfig("strict")


class RecordingVerifier(LocalVerifier):
    """Stands for a remote verifier: counts the calls it serves."""

    def __init__(self, model):
        super().__init__(model)
        self.calls: list[int] = []

    def verify(self, obs, draft, acceptance, stats):
        self.calls.append(draft.candidates.shape[0])
        return super().verify(obs, draft, acceptance, stats)


def test_hybrid_through_a_verifier_matches_the_oracle_in_every_branch():
    vla = make_vla(3)
    verifier = RecordingVerifier(vla)
    assert isinstance(verifier, Verifier) and not isinstance(vla, Verifier)
    obs = make_obs(1)
    ref = hf_greedy(vla, obs, 7)
    retrieval = FixedDrafter(np.stack([ref, (ref + 40) % N_BINS]))
    hybrid = HybridDecoder(verifier, ModelDrafter(make_vla(8, hidden=32, layers=1)), retrieval, tau=0.3,
                           drafter_acceptance=STRICT, retrieval_acceptance=STRICT, skip_schedule=NoSkipSchedule())
    branches = []
    for value in (None, metric(0.1), metric(0.9)):
        result = hybrid.step(obs, value)
        np.testing.assert_array_equal(result.bins, ref)
        branches.append(result.stats.branch)
    assert branches == [Branch.AR, Branch.DRAFTER, Branch.RETRIEVAL]
    assert verifier.calls == [0, 1, 2]  # AR sends no candidate; retrieval sends both in one call


def test_verification_reports_kept_candidate_and_each_candidates_accepted_length():
    vla = make_vla(4)
    obs = make_obs(2)
    ref = hf_greedy(vla, obs, 7)
    cands = np.stack([np.r_[ref[:2], (ref[2:] + 5) % N_BINS], ref, (ref + 9) % N_BINS])
    out = verify_draft(vla, obs, Draft(candidates=cands), STRICT, StepStats(branch=Branch.DRAFTER))
    assert out.best == 1 and out.per_candidate == [2, 7, 0]
    np.testing.assert_array_equal(out.bins, ref)
    empty = verify_draft(vla, obs, Draft(), STRICT, StepStats(branch=Branch.AR))
    assert empty.best == -1 and empty.per_candidate == []
