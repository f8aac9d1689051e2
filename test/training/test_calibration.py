"""The tau rule: fewest expected VLA passes per step within the retrieval error bound."""
import numpy as np
import pytest

from heisd_ros.core.errors import InvalidInputError
from heisd_ros.training.calibration import choose_tau, passes_per_step

T = 7


def test_cost_model_counts_the_fused_pass_and_completion():
    np.testing.assert_array_equal(passes_per_step(np.array([0, 3, 6, 7]), T), [7, 4, 1, 1])


def test_high_metric_frames_go_to_retrieval_when_it_is_good_there():
    metric = np.array([0.1, 0.2, 0.3, 0.8, 0.9, 0.95])
    retrieval_ok = np.array([0, 0, 0, 7, 7, 7])  # retrieval only right on fast smooth frames
    drafter = np.full(6, 4)
    error = np.array([40, 40, 40, 1, 1, 1.0])
    tau, table = choose_tau(metric, retrieval_ok, drafter, error, T, max_error=8)
    assert 0.3 <= tau < 0.8
    chosen = next(r for r in table if r["tau"] == tau)
    assert chosen["within_bound"] and chosen["retrieval_share"] == pytest.approx(0.5)


def test_bound_on_retrieval_error_keeps_bad_retrieval_out():
    metric = np.array([0.5, 0.6, 0.7])
    tau, _ = choose_tau(metric, np.full(3, 7), np.zeros(3), np.full(3, 30.0), T, max_error=8)
    assert tau >= 0.7  # retrieval would be cheaper but too far from the VLA


def test_no_frames_is_an_error():
    with pytest.raises(InvalidInputError, match="held-out"):
        choose_tau(np.zeros(0), np.zeros(0), np.zeros(0), np.zeros(0), T)


def test_eval_episode_counts_per_task():
    from heisd_ros.core.errors import HeisdError
    from heisd_ros.training.pipeline import eval_counts

    assert eval_counts(["10", "nut=3"], ["lift", "nut"]) == {"lift": 10, "nut": 3}
    assert eval_counts(["sort=2"], ["lift", "sort"]) == {"lift": 0, "sort": 2}
    with pytest.raises(HeisdError, match="humanoid"):
        eval_counts(["humanoid=1"], ["lift"])
    with pytest.raises(HeisdError, match="N or TASK=N"):
        eval_counts(["many"], ["lift"])
