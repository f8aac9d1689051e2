"""ActionTokenizer: OpenVLA discretisation in bin indices."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from heisd_ros.core.errors import InvalidInputError
from heisd_ros.core.tokenizer import ActionTokenizer

Q01_7 = np.array([-0.9, -0.8, -1.0, -0.1, -0.2, -0.3, -1.0])
Q99_7 = np.array([0.9, 0.85, 0.95, 0.12, 0.2, 0.31, 1.0])
GRIPPER_MASK = np.array([True] * 6 + [False])


def _half_bin(tok: ActionTokenizer) -> np.ndarray:
    """Half a bin width per dim, in action units (mask-False dims are in normalised units)."""
    span = np.where(tok.mask, tok.q99 - tok.q01, 2.0)
    return span / (tok.n_bins - 1) / 2.0


def test_encode_matches_openvla_digitize_by_hand():
    tok = ActionTokenizer([-1.0], [1.0], mask=[False])  # pass-through: no 1e-8 scaling, exact edges
    edges = np.linspace(-1, 1, 256)
    # just above an edge, exactly on an edge, the extremes
    values = np.array([[-1.0], [edges[10]], [edges[10] - 1e-9], [0.0], [1.0]])
    assert tok.encode(values)[:, 0].tolist() == [0, 10, 9, 127, 255]
    # decode uses the 255 centres with index clipped to 254
    centres = (edges[:-1] + edges[1:]) / 2
    assert np.allclose(tok.decode(np.array([[0], [254], [255]]))[:, 0], [centres[0], centres[254], centres[254]])


@pytest.mark.parametrize("dim", [7, 24])
def test_round_trip_within_half_bin_chunked_and_flat(dim):
    rng = np.random.default_rng(dim)
    q01 = -rng.uniform(0.1, 2.0, dim)
    q99 = rng.uniform(0.1, 2.0, dim)
    tok = ActionTokenizer(q01, q99)
    chunk = rng.uniform(q01, q99, size=(8, dim))
    bins = tok.encode(chunk)
    assert bins.shape == (8, dim) and bins.dtype == np.int64
    assert np.all((bins >= 0) & (bins <= 255))
    assert np.all(np.abs(tok.decode(bins) - chunk) <= _half_bin(tok) + 1e-12)
    flat_bins = tok.encode(chunk.reshape(-1))
    assert flat_bins.shape == (8 * dim,)
    assert np.array_equal(flat_bins, bins.reshape(-1))
    assert np.allclose(tok.decode(flat_bins), tok.decode(bins).reshape(-1))


@settings(max_examples=200, deadline=None)
@given(hnp.arrays(np.float64, (3, 7), elements=st.floats(0.0, 1.0)))
def test_round_trip_property(unit):
    tok = ActionTokenizer(Q01_7, Q99_7, GRIPPER_MASK)
    low = np.where(GRIPPER_MASK, Q01_7, -1.0)
    high = np.where(GRIPPER_MASK, Q99_7, 1.0)
    actions = low + unit * (high - low)
    assert np.all(np.abs(tok.decode(tok.encode(actions)) - actions) <= _half_bin(tok) + 1e-12)


def test_mask_dims_are_not_normalised():
    tok = ActionTokenizer([0.0, 0.0], [10.0, 10.0], mask=[True, False])
    norm = tok.normalize(np.array([5.0, 0.5]))
    assert norm[0] == pytest.approx(0.0, abs=1e-8)  # normalised: mid-range -> 0
    assert norm[1] == 0.5  # passed through unchanged
    assert tok.unnormalize(np.array([0.0, -0.25]))[1] == -0.25
    # out-of-range values are clipped on both kinds of dims
    assert tok.normalize(np.array([20.0, 3.0])).tolist() == [1.0, 1.0]


def test_token_id_mapping_round_trip_and_distance():
    tok = ActionTokenizer(Q01_7, Q99_7)
    vocab = 32000
    bins = np.arange(256 * 7).reshape(-1, 7) % 256
    ids = tok.bins_to_token_ids(bins, vocab)
    assert ids.min() == vocab - 256 and ids.max() == vocab - 1
    assert np.array_equal(tok.token_ids_to_bins(ids, vocab), bins)
    # OpenVLA: token = vocab_size - digitize(a) and digitize = bin + 1
    assert tok.bins_to_token_ids(np.array([0] * 7), vocab).tolist() == [vocab - 1] * 7
    # token distance equals bin distance
    a, b = np.array([3] * 7), np.array([12] * 7)
    assert np.array_equal(
        np.abs(tok.bins_to_token_ids(a, vocab) - tok.bins_to_token_ids(b, vocab)), np.abs(a - b)
    )
    with pytest.raises(InvalidInputError, match="action token ids"):
        tok.token_ids_to_bins(np.array([5] * 7), vocab)


def test_invalid_inputs_raise():
    tok = ActionTokenizer(Q01_7, Q99_7)
    bad = np.zeros((2, 7))
    bad[1, 3] = np.nan
    with pytest.raises(InvalidInputError, match="NaN"):
        tok.encode(bad)
    with pytest.raises(InvalidInputError, match="D=7"):
        tok.encode(np.zeros((2, 6)))
    with pytest.raises(InvalidInputError, match="multiple of D=7"):
        tok.encode(np.zeros(10))
    with pytest.raises(InvalidInputError, match="bins must lie"):
        tok.decode(np.full(7, 256))
    with pytest.raises(InvalidInputError, match="integers"):
        tok.decode(np.zeros(7))
    with pytest.raises(InvalidInputError, match="q99 must be >= q01"):
        ActionTokenizer([1.0], [0.0])
    with pytest.raises(InvalidInputError, match="mask"):
        ActionTokenizer([0.0, 0.0], [1.0, 1.0], mask=[True])


def test_fit_and_dict_round_trip():
    rng = np.random.default_rng(0)
    actions = rng.normal(size=(5000, 24)) * np.linspace(0.1, 3.0, 24)
    tok = ActionTokenizer.fit(actions)
    assert tok.dim == 24
    assert np.allclose(tok.q01, np.quantile(actions, 0.01, axis=0))
    assert np.allclose(tok.q99, np.quantile(actions, 0.99, axis=0))
    clone = ActionTokenizer.from_dict(tok.to_dict())
    assert np.array_equal(clone.encode(actions[:50]), tok.encode(actions[:50]))
    with pytest.raises(InvalidInputError, match="lacks keys"):
        ActionTokenizer.from_dict({"q01": [0.0]})
