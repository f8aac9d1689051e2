"""``heisd bench`` on the tiny bundle: HF baselines see the same observation, warm-up excluded, schema holds."""
from __future__ import annotations

import json

import numpy as np
import pytest

from heisd_ros.bundle import load_bundle
from heisd_ros.cli import main
from heisd_ros.core.decoding import ARDecoder
from heisd_ros.data.reader import ReaderConfig, read_frames
from heisd_ros.eval.bench import hf_runners
from heisd_ros.eval.replay import frame_observation
from heisd_ros.eval.results import validate_document

pytestmark = pytest.mark.sim  # the bundle comes from simulated demonstrations


def test_hf_greedy_and_assisted_reproduce_our_ar_bins(sim_bundle):
    bags, bundle_dir = sim_bundle
    bundle = load_bundle(bundle_dir)
    frames = read_frames(sorted(p.parent for p in bags.rglob("metadata.yaml"))[0], ReaderConfig(chunk=1))
    runners, closers = hf_runners(bundle)
    ar = ARDecoder(bundle.vla)
    try:
        for frame in frames[:4]:
            obs = frame_observation(bundle, frame)
            ours = ar.step(obs).bins
            bins, passes = runners["hf_generate"](obs)
            np.testing.assert_array_equal(bins, ours)
            assert passes == bundle.vla.tokens_per_step  # prefill + one pass per further token
            np.testing.assert_array_equal(runners["hf_assisted"](obs)[0], ours)  # greedy assisted is lossless
    finally:
        for c in closers:
            c.close()


def test_bench_cli_table(sim_bundle, tmp_path):
    bags, bundle_dir = sim_bundle
    bag = sorted(p.parent for p in bags.rglob("metadata.yaml"))[0]
    out = tmp_path / "bench"
    assert main(["bench", "--bundle", str(bundle_dir), "--bags", str(bag), "--reps", "2", "--out", str(out)]) == 0
    doc = validate_document(json.loads((out / "results.json").read_text()))
    rows = {r["method"]: r for r in doc["results"]}
    assert list(rows) == ["ar", "hf_generate", "hf_assisted", "hf_prompt_lookup", "drafter", "retrieval", "heisd"]
    n = doc["setup"]["observations"]
    for m, r in rows.items():
        s = r["latency_spread_ms"]
        assert s["min"] <= s["median"] <= s["max"]
        assert len(r["latency_samples_ms"]) == 2 * n  # warm-up excluded
        # a ratio of means: medians hide verified steps when most steps are near-free skips
        assert r["speedup_vs_ar"] == pytest.approx(np.mean(rows["ar"]["latency_samples_ms"]) / np.mean(r["latency_samples_ms"]))
    assert rows["ar"]["speedup_vs_ar"] == pytest.approx(1.0)
    assert rows["hf_generate"]["exact_match_vs_ar"] == 1.0
    assert rows["hf_generate"]["vla_forward_passes_per_action"] == 7.0
    assert rows["hf_assisted"]["est_gflops_per_action"]["drafter"] > 0
    assert rows["ar"]["est_gflops_per_action"]["drafter"] == 0
    assert (out / "report" / "summary.md").read_text().count("| hf_") == 3  # HF rows have no time split
