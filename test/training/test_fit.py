"""The training loss and the CLI's light import path."""
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from heisd_ros.core.errors import InvalidInputError
from heisd_ros.training.fit import FitConfig, proprio_noise_mask, soft_cross_entropy
from heisd_ros.vla.inputs import PROPRIO_FEATURES


def test_soft_cross_entropy_is_plain_cross_entropy_at_sigma_zero():
    torch.manual_seed(0)
    logits, y = torch.randn(4, 7, 256), torch.randint(0, 256, (4, 7))
    assert torch.allclose(soft_cross_entropy(logits, y, 0.0), F.cross_entropy(logits.reshape(-1, 256), y.reshape(-1)))


def test_soft_targets_reward_a_near_miss_over_a_far_miss():
    """Plain CE scores both misses the same; with soft targets one bin off is much better than 100 off."""
    target = torch.tensor([[100]])
    near, far = torch.full((1, 1, 256), -10.0), torch.full((1, 1, 256), -10.0)
    near[0, 0, 101], far[0, 0, 200] = 10.0, 10.0
    assert torch.isclose(soft_cross_entropy(near, target, 0.0), soft_cross_entropy(far, target, 0.0))
    assert soft_cross_entropy(near, target, 2.0) < soft_cross_entropy(far, target, 2.0) - 2.0
    # the loss is smallest for a prediction centred on the target, not on a neighbour
    bins = torch.arange(256.0)
    centred = (-0.5 * ((bins - 100) / 2.0) ** 2).reshape(1, 1, 256)
    shifted = (-0.5 * ((bins - 101) / 2.0) ** 2).reshape(1, 1, 256)
    assert soft_cross_entropy(centred, target, 2.0) < soft_cross_entropy(shifted, target, 2.0)


@pytest.mark.parametrize("kw, name", [({"label_sigma": -1.0}, "label_sigma"), ({"proprio_noise": -0.1}, "proprio_noise")])
def test_out_of_range_regularisers_are_rejected(kw, name):
    with pytest.raises(InvalidInputError, match=name):
        FitConfig(**kw)


def test_proprio_noise_goes_to_the_named_features_only():
    default = proprio_noise_mask(len(PROPRIO_FEATURES))
    assert default[PROPRIO_FEATURES.index("gripper")] == 0 and default.sum() == len(PROPRIO_FEATURES) - 1
    position = proprio_noise_mask(len(PROPRIO_FEATURES), ["ee_x", "ee_y", "ee_z"])
    assert [name for name, m in zip(PROPRIO_FEATURES, position.tolist()) if m] == ["ee_x", "ee_y", "ee_z"]
    with pytest.raises(InvalidInputError, match="proprio_noise_features"):
        FitConfig(proprio_noise_features=["ee_w"])


def test_cli_help_does_not_import_torch():
    """`heisd --help` builds every subcommand's parser; none of them may pull in torch (seconds at start-up)."""
    code = ("import sys, contextlib, io\nfrom heisd_ros.cli import build_parser\nbuild_parser()\n"
            "print('torch' in sys.modules, 'transformers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"], out
