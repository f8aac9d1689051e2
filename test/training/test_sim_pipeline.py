"""The tiny pipeline on the real simulator: collect 2 short bags -> build a bundle -> closed loop with every strategy."""
import pytest

from heisd_ros.bundle import load_bundle
from heisd_ros.cli import main
from heisd_ros.core.stats import Branch
from heisd_ros.eval.rollout import run_rollouts

pytestmark = pytest.mark.sim


def test_collect_build_load_and_decode_through_every_strategy(tmp_path):
    bags, bundle = tmp_path / "bags", tmp_path / "bundle"
    assert main(["collect", "--task", "lift", "--episodes", "2", "--max-steps", "12", "--image-size", "64",
                 "--out", str(bags)]) == 0
    assert main(["build-bundle", "--data", str(bags), "--out", str(bundle), "--include-failures", "--holdout", "1",
                 "--steps", "4", "--batch-size", "8", "--drafter-steps", "2", "--stride", "1", "--quiet"]) == 0
    b = load_bundle(bundle)
    assert b.manifest["stages"]["train"]["recorded_image_size"] == 64
    assert [s["role"] for s in sorted(b.manifest["sources"], key=lambda s: s["seed"])] == ["train", "heldout"]
    assert all(s["sha256"] for s in b.manifest["sources"])
    branches = set()
    for method in ("ar", "drafter", "retrieval", "heisd"):
        overrides = {"tau": 0.0} if method == "heisd" else {}
        report = run_rollouts(b, "lift", method, [1000], max_steps=7, progress=False, **overrides)
        episode = report.episodes[0]
        assert episode.steps == 7 and episode.decoder_calls == 7
        branches |= {s.branch for s in episode.stats}
        assert report.summary()["decoding"]["steps"] == 7
    assert {Branch.AR, Branch.DRAFTER} <= branches
    assert branches & {Branch.RETRIEVAL, Branch.RETRIEVAL_SKIP}
