"""Tree-mask helpers and request validation shared by every VLAModel implementation."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from heisd_ros.core.errors import InvalidInputError
from heisd_ros.core.model import (
    SupportsPrefillScore,
    VLAModel,
    check_candidates,
    check_prefix,
    fused_attention_mask,
    fused_position_ids,
    tree_attention_mask,
    tree_position_ids,
)


def test_tree_mask_pattern():
    """Chains see the prompt and their own past, never each other."""
    mask = tree_attention_mask(prompt_length=2, num_chains=2, chain_length=3, dtype=torch.float32)
    assert mask.shape == (1, 1, 6, 8)
    allowed = (mask[0, 0] == 0).int().numpy()
    expected = np.array(
        [
            [1, 1, 1, 0, 0, 0, 0, 0],
            [1, 1, 1, 1, 0, 0, 0, 0],
            [1, 1, 1, 1, 1, 0, 0, 0],
            [1, 1, 0, 0, 0, 1, 0, 0],
            [1, 1, 0, 0, 0, 1, 1, 0],
            [1, 1, 0, 0, 0, 1, 1, 1],
        ]
    )
    np.testing.assert_array_equal(allowed, expected)
    assert float(mask.min()) == torch.finfo(torch.float32).min


def test_fused_mask_is_causal_prompt_over_tree_rows():
    """Prompt rows: causal, blind to the chains; chain rows: exactly the tree mask's rows."""
    mask = fused_attention_mask(prompt_length=2, num_chains=2, chain_length=3, dtype=torch.float32)
    assert mask.shape == (1, 1, 8, 8)
    allowed = (mask[0, 0] == 0).int().numpy()
    np.testing.assert_array_equal(allowed[:2], [[1, 0, 0, 0, 0, 0, 0, 0], [1, 1, 0, 0, 0, 0, 0, 0]])
    np.testing.assert_array_equal(mask[0, 0, 2:], tree_attention_mask(2, 2, 3, torch.float32)[0, 0])
    np.testing.assert_array_equal(fused_position_ids(2, 2, 3).numpy(), [[0, 1, 2, 3, 4, 2, 3, 4]])


def test_tree_positions_are_shared():
    np.testing.assert_array_equal(tree_position_ids(5, 2, 3).numpy(), [[5, 6, 7, 5, 6, 7]])


@pytest.mark.parametrize(
    "cands, message",
    [
        (np.zeros((0, 3), np.int64), "non-empty"),
        (np.zeros(3, np.int64), "non-empty"),
        (np.zeros((1, 3)), "integer"),
        (np.full((1, 3), 256), r"\[0, 255\]"),
        (np.zeros((1, 8), np.int64), "more than"),
    ],
)
def test_bad_candidates(cands, message):
    with pytest.raises(InvalidInputError, match=message):
        check_candidates(cands, 256, 7)


def test_bad_prefix_requests():
    with pytest.raises(InvalidInputError, match="cannot decode"):
        check_prefix(np.zeros(3, np.int64), 5, 256, 7)
    with pytest.raises(InvalidInputError, match="1-D"):
        check_prefix(np.zeros((1, 2), np.int64), 1, 256, 7)
    with pytest.raises(InvalidInputError, match="bins"):
        check_prefix(np.array([-1]), 1, 256, 7)
    assert check_prefix(np.zeros(0), 7, 256, 7).dtype == np.int64


def test_adapter_satisfies_protocol(vlas):
    assert isinstance(vlas[0], VLAModel) and isinstance(vlas[0], SupportsPrefillScore)
