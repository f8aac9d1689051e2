"""``heisd eval`` end to end: 2 episodes per method and timing mode on a tiny sim-trained bundle."""
from __future__ import annotations

import json

import matplotlib.image
import pytest

from heisd_ros.cli import main
from heisd_ros.eval.results import validate_document

pytestmark = pytest.mark.sim
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def check_png(path) -> None:  # noqa: ANN001
    assert path.read_bytes()[:8] == PNG_MAGIC, path
    img = matplotlib.image.imread(path)
    assert img.ndim == 3 and img.shape[0] > 200 and img.shape[1] > 200
    assert img.std() > 0.01, f"{path} is blank"


def test_eval_two_episodes_every_method_both_timings(sim_bundle, tmp_path):
    _, bundle = sim_bundle
    out = tmp_path / "eval"
    assert main(["eval", "--bundle", str(bundle), "--episodes", "2", "--max-steps", "5", "--tau", "0.0",
                 "--option", "heisd.skip_count=1", "--out", str(out)]) == 0
    doc = validate_document(json.loads((out / "results.json").read_text()))
    assert doc["setup"]["options"] == {"heisd": {"skip_count": 1, "tau": 0.0}}
    rows = {(r["method"], r["timing"]): r for r in doc["results"]}
    assert set(rows) == {(m, t) for m in ("ar", "drafter", "retrieval", "heisd") for t in ("lockstep", "realtime")}
    for (method, timing), r in rows.items():
        assert r["seeds"] == [1000, 1001] and r["episodes"] == 2
        assert 0.0 <= r["success_rate"] <= 1.0
        lo, hi = r["success_ci95"]
        assert lo <= r["success_rate"] <= hi
        assert r["control_ticks"] <= 10 and r["decoder_calls"] >= 1
        assert r["latency_ms"]["p50"] <= r["latency_ms"]["p99"]
        assert len(r["latency_samples_ms"]) == r["decoder_calls"]
        assert r["est_gflops_per_action"]["vla"] > 0 or method == "heisd"
        if timing == "lockstep":
            assert r["decoder_calls"] == r["control_ticks"] and r["held_tick_fraction"] == 0.0
            if method != "ar":
                assert r["token_deviation_vs_ar"]["compared_calls"] == r["decoder_calls"]
        else:
            assert 0.0 < r["held_tick_fraction"] <= 1.0  # the first tick never has an action yet
            assert r["token_deviation_vs_ar"] is None
    assert rows[("ar", "lockstep")]["vla_forward_passes_per_action"] == 7.0  # D = 7 tokens, one pass each
    assert rows[("ar", "lockstep")]["speedup_vs_ar"] == pytest.approx(1.0)
    assert rows[("ar", "lockstep")]["branch_mix"]["ar"] == 1.0
    # tau = 0: after the 5-step window HeiSD leaves AR; the trace has M for the defined steps
    heisd = rows[("heisd", "lockstep")]
    assert heisd["branch_mix"]["ar"] < 1.0 and heisd["tau"] == 0.0
    trace = doc["traces"][0]
    assert trace["method"] == "heisd" and [s["step"] for s in trace["steps"]] == list(range(5))
    assert all(s["metric"] is None for s in trace["steps"][:4]) and trace["steps"][4]["metric"] is not None
    report = out / "report"
    summary = (report / "summary.md").read_text()
    for method in ("ar", "drafter", "retrieval", "heisd"):
        assert f"| {method} | lift | lockstep |" in summary and f"| {method} | lift | realtime |" in summary
    for name in ("latency_cdf", "speedup", "branch_timeline", "success_vs_speedup"):
        check_png(report / f"{name}.png")
        assert f"({name}.png)" in summary


def test_eval_refuses_unknown_task(sim_bundle, tmp_path):
    _, bundle = sim_bundle
    with pytest.raises(SystemExit, match="no task 'nut'"):
        main(["eval", "--bundle", str(bundle), "--tasks", "nut", "--episodes", "1", "--out", str(tmp_path)])


@pytest.mark.parametrize("option, message", [("heisd.skip_guard", "not METHOD.KEY=VALUE"), ("skip_guard=none", "not METHOD.KEY=VALUE"),
                                             ("fast.skip_guard=none", "method 'fast'"), ("heisd.warp=9", "unknown \\['warp'\\]"),
                                             ("heisd.skip_guard=maybe", "skip_guard must be one of")])
def test_eval_refuses_malformed_or_unknown_options(sim_bundle, tmp_path, option, message):
    _, bundle = sim_bundle
    with pytest.raises(SystemExit, match=message):
        main(["eval", "--bundle", str(bundle), "--methods", "heisd", "--episodes", "1", "--max-steps", "2",
              "--option", option, "--out", str(tmp_path)])
