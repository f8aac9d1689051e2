"""Action tokenizer with OpenVLA's exact discretisation, expressed in bin indices.

Why bin indices: every acceptance rule in HeiSD measures distances between action
tokens, and because OpenVLA's action tokens are the last ``n_bins`` ids of the
vocabulary, token distance equals bin distance. The engine therefore works in *bin
indices* ``0 .. n_bins-1`` everywhere and converts to vocabulary ids only at the model
boundary (``bins_to_token_ids`` / ``token_ids_to_bins``).

Convention (OpenVLA):
- normalise: ``a_hat = 2 (a - q01) / (q99 - q01 + 1e-8) - 1`` on dims where
  ``mask`` is True (the default for all dims); dims with ``mask`` False (e.g. a
  gripper already in [-1, 1]) are taken as they are. Then clip to [-1, 1].
- ``edges = linspace(-1, 1, n_bins)``; ``np.digitize(a_hat, edges)`` is in
  ``1 .. n_bins``; our bin index is that minus one, so ``0 .. n_bins-1``. (Only
  ``a_hat == 1.0`` exactly reaches the last index.)
- token id = ``vocab_size - 1 - bin`` (OpenVLA's ``vocab_size - digitize``).
- decode: centre ``centres[clip(bin, 0, n_bins-2)]`` of the ``n_bins-1`` centres
  between consecutive edges, then un-normalise ``a = 0.5 (a_hat + 1)(q99 - q01) + q01``
  on masked-in dims.
So for an in-range value, decode(encode(a)) is within half a bin width
``(q99 - q01) / (n_bins - 1)`` (normalised: ``1 / (n_bins - 1)``) of ``a``.

Shapes: actions are ``(..., D)``; a 1-D array whose length is a multiple of ``D`` is
read as a flattened chunk ``(H*D,)`` and returned flat, so chunk tokens can be
handled as one sequence.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from heisd_ros.core.errors import InvalidInputError

_EPS = 1e-8


class ActionTokenizer:
    """Maps continuous actions to OpenVLA bin indices and back (see module docstring)."""

    def __init__(self, q01: Any, q99: Any, mask: Any = None, n_bins: int = 256) -> None:
        q01 = np.asarray(q01, dtype=np.float64)
        q99 = np.asarray(q99, dtype=np.float64)
        if q01.ndim != 1 or q01.shape != q99.shape or q01.size == 0:
            raise InvalidInputError(f"q01 and q99 must be 1-D of equal non-zero length, got {q01.shape} and {q99.shape}")
        if not (np.all(np.isfinite(q01)) and np.all(np.isfinite(q99))):
            raise InvalidInputError("q01/q99 contain NaN or inf")
        if np.any(q99 < q01):
            raise InvalidInputError(f"q99 must be >= q01 in every dimension; violated in dims {np.flatnonzero(q99 < q01).tolist()}")
        if mask is None:
            mask = np.ones(q01.shape, dtype=bool)
        mask = np.asarray(mask)
        if mask.shape != q01.shape or mask.dtype.kind not in "bi":
            raise InvalidInputError(f"mask must be a boolean vector of length {q01.size}, got shape {mask.shape} dtype {mask.dtype}")
        if not isinstance(n_bins, (int, np.integer)) or isinstance(n_bins, bool) or n_bins < 3:
            raise InvalidInputError(f"n_bins must be an integer >= 3, got {n_bins!r}")
        self.q01 = q01
        self.q99 = q99
        self.mask = mask.astype(bool)
        self.n_bins = int(n_bins)
        self.dim = int(q01.size)
        self._edges = np.linspace(-1.0, 1.0, self.n_bins)
        self._centres = (self._edges[:-1] + self._edges[1:]) / 2.0

    # ----------------------------------------------------------------- shapes
    def _as_actions(self, values: Any, what: str, finite: bool = True) -> tuple[np.ndarray, tuple[int, ...]]:
        """Return values as (..., D) plus the caller's original shape (flat chunks reshaped)."""
        arr = np.asarray(values)
        if arr.ndim == 0:
            raise InvalidInputError(f"{what} must have a last dimension of size {self.dim}, got a scalar")
        shape = arr.shape
        if arr.ndim == 1 and arr.size != self.dim:
            if arr.size == 0 or arr.size % self.dim:
                raise InvalidInputError(
                    f"{what}: a flat array must have a length that is a multiple of D={self.dim}, got {arr.size}"
                )
            arr = arr.reshape(-1, self.dim)
        elif arr.shape[-1] != self.dim:
            raise InvalidInputError(f"{what} must have last dimension D={self.dim}, got shape {shape}")
        if finite and arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
            raise InvalidInputError(f"{what} contain NaN or inf")
        return arr, shape

    def _as_bins(self, bins: Any) -> tuple[np.ndarray, tuple[int, ...]]:
        arr, shape = self._as_actions(bins, "bins")
        if arr.dtype.kind not in "iu":
            raise InvalidInputError(f"bins must be integers, got dtype {arr.dtype}")
        if arr.size and (arr.min() < 0 or arr.max() >= self.n_bins):
            raise InvalidInputError(f"bins must lie in [0, {self.n_bins - 1}], got range [{arr.min()}, {arr.max()}]")
        return arr.astype(np.int64), shape

    # --------------------------------------------------------- normalisation
    def normalize(self, actions: np.ndarray) -> np.ndarray:
        """Actions -> [-1, 1] (clipped); mask-False dims are only clipped."""
        arr, shape = self._as_actions(actions, "actions")
        arr = arr.astype(np.float64)
        scaled = 2.0 * (arr - self.q01) / (self.q99 - self.q01 + _EPS) - 1.0
        return np.clip(np.where(self.mask, scaled, arr), -1.0, 1.0).reshape(shape)

    def unnormalize(self, x: np.ndarray) -> np.ndarray:
        """Inverse of ``normalize`` for values in [-1, 1]."""
        arr, shape = self._as_actions(x, "normalised actions")
        arr = arr.astype(np.float64)
        restored = 0.5 * (arr + 1.0) * (self.q99 - self.q01) + self.q01
        return np.where(self.mask, restored, arr).reshape(shape)

    # ------------------------------------------------------------ bins
    def encode(self, actions: np.ndarray) -> np.ndarray:
        """Actions (..., D) -> int64 bin indices in [0, n_bins-1], same shape."""
        normalised = self.normalize(actions)
        return (np.digitize(normalised, self._edges) - 1).astype(np.int64)

    def decode(self, bins: np.ndarray) -> np.ndarray:
        """Bin indices (..., D) -> actions at the bin centres, un-normalised."""
        arr, shape = self._as_bins(bins)
        centres = self._centres[np.clip(arr, 0, self.n_bins - 2)]
        return self.unnormalize(centres).reshape(shape)

    def _check_vocab(self, vocab_size: int) -> None:
        if not isinstance(vocab_size, (int, np.integer)) or vocab_size < self.n_bins:
            raise InvalidInputError(f"vocab_size must be an integer >= n_bins={self.n_bins}, got {vocab_size!r}")

    def bins_to_token_ids(self, bins: np.ndarray, vocab_size: int) -> np.ndarray:
        """Bin indices -> vocabulary ids (OpenVLA: the last n_bins ids, reversed)."""
        self._check_vocab(vocab_size)
        arr, shape = self._as_bins(bins)
        return (int(vocab_size) - 1 - arr).reshape(shape)

    def token_ids_to_bins(self, ids: np.ndarray, vocab_size: int) -> np.ndarray:
        """Vocabulary ids -> bin indices; ids outside the action range raise InvalidInputError."""
        self._check_vocab(vocab_size)
        arr, shape = self._as_actions(ids, "token ids")
        if arr.dtype.kind not in "iu":
            raise InvalidInputError(f"token ids must be integers, got dtype {arr.dtype}")
        low = int(vocab_size) - self.n_bins
        if arr.size and (arr.min() < low or arr.max() >= vocab_size):
            raise InvalidInputError(
                f"action token ids must lie in [{low}, {int(vocab_size) - 1}], got range [{arr.min()}, {arr.max()}]"
            )
        return (int(vocab_size) - 1 - arr.astype(np.int64)).reshape(shape)

    # ------------------------------------------------------- persistence
    def to_dict(self) -> dict:
        """JSON-friendly description (stored in the model bundle manifest)."""
        return {
            "q01": self.q01.tolist(),
            "q99": self.q99.tolist(),
            "mask": self.mask.tolist(),
            "n_bins": self.n_bins,
        }

    @classmethod
    def from_dict(cls, d: dict) -> "ActionTokenizer":
        """Inverse of ``to_dict``; missing keys raise InvalidInputError."""
        missing = {"q01", "q99"} - set(d)
        if missing:
            raise InvalidInputError(f"tokenizer description lacks keys {sorted(missing)}")
        return cls(d["q01"], d["q99"], d.get("mask"), int(d.get("n_bins", 256)))

    @classmethod
    def fit(cls, actions: np.ndarray, mask: Any = None, n_bins: int = 256) -> "ActionTokenizer":
        """Take q01/q99 (1st/99th percentiles per dimension) from demonstration actions (..., D)."""
        arr = np.asarray(actions, dtype=np.float64)
        if arr.ndim < 2 or arr.shape[-1] == 0 or arr.size == 0:
            raise InvalidInputError(f"fit needs actions of shape (N, D) or (..., D), got {arr.shape}")
        if not np.all(np.isfinite(arr)):
            raise InvalidInputError("fit actions contain NaN or inf")
        flat = arr.reshape(-1, arr.shape[-1])
        q01, q99 = np.quantile(flat, [0.01, 0.99], axis=0)
        return cls(q01, q99, mask, n_bins)

    def __repr__(self) -> str:
        return f"ActionTokenizer(dim={self.dim}, n_bins={self.n_bins}, masked_out={np.flatnonzero(~self.mask).tolist()})"
