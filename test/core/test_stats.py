"""StepStats / StatsAggregate: the shared decoding statistics."""
import json

import pytest

from heisd_ros.core.errors import InvalidInputError
from heisd_ros.core.stats import Branch, StatsAggregate, StepStats


def test_branch_sources_match_action_chunk_constants():
    msg = pytest.importorskip("heisd_msgs.msg")
    chunk = msg.ActionChunk
    expected = {
        Branch.AR: chunk.SOURCE_AR,
        Branch.DRAFTER: chunk.SOURCE_DRAFTER,
        Branch.RETRIEVAL: chunk.SOURCE_RETRIEVAL,
        Branch.RETRIEVAL_SKIP: chunk.SOURCE_RETRIEVAL_SKIP,
        Branch.HOLD: chunk.SOURCE_HOLD,
        Branch.REPLAY: chunk.SOURCE_REPLAY,
    }
    for branch, source in expected.items():
        assert branch.source == source
        assert Branch.from_source(source) is branch
    with pytest.raises(InvalidInputError):
        Branch.from_source(99)


def test_step_validation_and_to_dict():
    s = StepStats("drafter", drafted=7, accepted=3, emitted=7, forward_passes=2, accepted_per_position=[1, 1, 1, 0])
    assert s.branch is Branch.DRAFTER
    d = s.to_dict()
    assert json.loads(json.dumps(d)) == d and d["branch"] == "drafter"
    with pytest.raises(InvalidInputError, match="exceed"):
        StepStats(Branch.AR, drafted=1, accepted=2)
    with pytest.raises(InvalidInputError, match="total_s"):
        StepStats(Branch.AR, total_s=float("nan"))
    with pytest.raises(InvalidInputError, match="0/1"):
        StepStats(Branch.AR, drafted=1, accepted_per_position=[2])


def test_summary_numbers():
    agg = StatsAggregate()
    assert agg.summary()["steps"] == 0
    agg.add(StepStats(Branch.AR, emitted=7, forward_passes=8, total_s=0.100))
    agg.add(StepStats(Branch.DRAFTER, drafted=4, accepted=2, emitted=7, forward_passes=3,
                      accepted_per_position=[1, 1, 0, 0], total_s=0.050))
    agg.add(StepStats(Branch.RETRIEVAL, drafted=7, accepted=7, emitted=7, forward_passes=2, candidates=5,
                      accepted_per_position=[1] * 7, total_s=0.030))
    agg.add(StepStats(Branch.RETRIEVAL_SKIP, emitted=7, total_s=0.001))
    out = agg.summary()
    assert len(agg) == 4 and out["steps"] == 4
    assert out["mean_accepted_length"] == pytest.approx(4.5)  # (2 + 7) / 2 drafting steps
    assert out["acceptance_rate"] == pytest.approx(9 / 11)
    assert out["per_position_acceptance"] == pytest.approx([1, 1, 0.5, 0.5, 1, 1, 1])
    assert out["branch_mix"] == pytest.approx({"ar": 0.25, "drafter": 0.25, "retrieval": 0.25, "retrieval_skip": 0.25})
    assert out["latency_ms"]["mean"] == pytest.approx(181 / 4)
    assert out["latency_ms"]["p50"] == pytest.approx(40.0)
    assert out["forward_passes_per_step"] == pytest.approx(13 / 4)
    assert out["tokens_per_forward_pass"] == pytest.approx(28 / 13)
    assert json.loads(json.dumps(out)) == out
    with pytest.raises(InvalidInputError):
        agg.add({"branch": "ar"})
