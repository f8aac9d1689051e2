"""A tiny bundle trained on two short simulated lift demonstrations, shared by the eval tests."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from heisd_ros.cli import main


@pytest.fixture(scope="session")
def sim_bundle(tmp_path_factory) -> tuple[Path, Path]:  # noqa: ANN001
    """(bag directory, bundle directory): 2 lift episodes of 12 steps at 64 px, one camera."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("eval_bundle")
    bags, bundle = root / "bags", root / "bundle"
    assert main(["collect", "--task", "lift", "--episodes", "2", "--max-steps", "12", "--image-size", "64",
                 "--cameras", "agentview", "--out", str(bags)]) == 0
    assert main(["build-bundle", "--data", str(bags), "--out", str(bundle), "--include-failures", "--holdout", "1",
                 "--steps", "20", "--batch-size", "8", "--drafter-steps", "10", "--stride", "1",
                 "--cameras", "agentview", "--quiet"]) == 0
    return bags, bundle
