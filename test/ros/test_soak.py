"""The soak benchmark (benchmarks/bench_soak.py), short: the whole graph at 20 Hz for
20 s on the tiny bundle. Asserts what must hold on any machine, however loaded:
nothing died, no tick was lost, the chunk count is near duration x rate, memory
does not run away. Timing itself (late publishes, period) is reported, not asserted."""
from __future__ import annotations

import signal
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from bench_soak import rss_mb, soak, table  # noqa: E402

pytestmark = pytest.mark.ros
DURATION_S, RATE_HZ = 20.0, 20.0


def test_rss_of_this_process_and_of_a_missing_one():
    import os

    assert rss_mb(os.getpid()) > 1.0
    assert rss_mb(2**22 + 12345) is None


def test_short_soak_loses_nothing(ros_node, tiny_bundle, tmp_path):
    result = soak(ros_node.node, tiny_bundle, DURATION_S, RATE_HZ, method="heisd", sample_period_s=2.0, workdir=tmp_path)
    print(table(result))
    assert result["node_deaths"] == {}, result["node_deaths"]
    # at the end, SIGINT; a node still tearing down after the grace period on a loaded machine gets SIGTERM
    assert all(c in (0, -signal.SIGTERM) for c in result["exit_codes"].values()), result["exit_codes"]
    assert result["sequence_contiguous"] and result["missed_sequence_ids"] == 0 and result["duplicate_sequence_ids"] == 0
    assert 0.7 <= result["chunks_per_expected"] <= 1.1, result["chunks"]
    assert result["fresh_fraction"] > 0.0, "the graph never produced a fresh action during the soak"
    for name, m in result["rss"].items():
        assert m["samples"] >= 5, name
        assert m["growth_mb"] < 150.0, f"{name} grew {m['growth_mb']:.0f} MB in {DURATION_S:.0f} s"


def test_soak_rejects_a_nonsense_duration(ros_node, tiny_bundle):
    with pytest.raises(ValueError, match="must be > 0"):
        soak(ros_node.node, tiny_bundle, 0.0)
