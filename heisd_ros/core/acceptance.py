"""Acceptance rules that decide how much of a drafted token sequence the VLA keeps.

All inputs are integer *bin indices* (see tokenizer.py), so every distance here is in
bins, which equals the distance in action-token ids.

- ``strict_accept``: classic speculative decoding, exact match, prefix-wise.
- ``token_relaxed_accept``: Spec-VLA's token-wise relaxation: a drafted token is
  accepted while it is within ``radius`` bins of the VLA's argmax (r = 9 in their code),
  prefix-wise (the first failure ends acceptance; later matches do not count).
- ``block_relaxed_accept``: HeiSD's sequence-wise relaxation for K retrieved drafts
  verified together: tokens are grouped into blocks (position / orientation / gripper
  for D = 7), and a candidate passes a block when the block's summed distance is below
  ``sum_threshold`` and its largest distance is below ``max_threshold``.

For the two single-sequence rules a 2-D input ``(H, D)`` is one chunk read row-major
(action 0's tokens, then action 1's, ...), the order in which the VLA emits them.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from heisd_ros.core.errors import InvalidInputError


def _as_pair(draft: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    d, t = np.asarray(draft), np.asarray(target)
    if d.ndim not in (1, 2) or d.shape != t.shape:
        raise InvalidInputError(f"draft and target must be 1-D or 2-D arrays of equal shape, got {d.shape} and {t.shape}")
    if d.dtype.kind not in "iu" or t.dtype.kind not in "iu":
        raise InvalidInputError(f"draft and target must be integer bin indices, got dtypes {d.dtype} and {t.dtype}")
    return d.reshape(-1).astype(np.int64), t.reshape(-1).astype(np.int64)


def _prefix_length(ok: np.ndarray) -> int:
    """Length of the leading run of True values."""
    failures = np.flatnonzero(~ok)
    return int(failures[0]) if failures.size else int(ok.size)


def strict_accept(draft: np.ndarray, target: np.ndarray) -> int:
    """Length of the longest prefix where draft == target."""
    d, t = _as_pair(draft, target)
    return _prefix_length(d == t)


def token_relaxed_accept(draft: np.ndarray, target: np.ndarray, radius: int) -> int:
    """Length of the longest prefix where |draft - target| <= radius (bins)."""
    if not isinstance(radius, (int, np.integer)) or isinstance(radius, bool) or radius < 0:
        raise InvalidInputError(f"radius must be an integer >= 0, got {radius!r}")
    d, t = _as_pair(draft, target)
    return _prefix_length(np.abs(d - t) <= radius)


@dataclass(frozen=True)
class BlockRule:
    """Ordered block partition of ONE action's D dims plus HeiSD's pass thresholds (strict '<').

    For a sequence of H actions the blocks repeat per action, in the order action 0's
    blocks, action 1's blocks, ...
    """

    blocks: tuple[tuple[int, ...], ...] = ((0, 1, 2), (3, 4, 5), (6,))
    sum_threshold: int = 45
    max_threshold: int = 25

    def __post_init__(self) -> None:
        blocks = tuple(tuple(int(i) for i in b) for b in self.blocks)
        object.__setattr__(self, "blocks", blocks)
        if not blocks or any(len(b) == 0 for b in blocks):
            raise InvalidInputError(f"blocks must be a non-empty tuple of non-empty index tuples, got {self.blocks!r}")
        if self.sum_threshold <= 0 or self.max_threshold <= 0:
            raise InvalidInputError(
                f"thresholds must be > 0, got sum_threshold={self.sum_threshold}, max_threshold={self.max_threshold}"
            )

    @property
    def dim(self) -> int:
        """The action dimension this partition covers."""
        return sum(len(b) for b in self.blocks)

    def validate(self, action_dim: int) -> None:
        """Raise InvalidInputError unless the blocks cut range(action_dim) into ordered, contiguous runs.

        Order matters: accepted tokens must form a prefix of the sequence, so that
        decoding can continue right after them.
        """
        flat = [i for b in self.blocks for i in b]
        if flat != list(range(action_dim)):
            raise InvalidInputError(
                f"blocks {self.blocks} must cover range({action_dim}) exactly once, in order and contiguous"
            )

    @classmethod
    def for_dim(cls, action_dim: int, block_size: int = 3, sum_threshold: int = 45, max_threshold: int = 25) -> "BlockRule":
        """Default partition for D dims: consecutive blocks of ``block_size``, remainder last.

        D = 7 gives the reference ((0,1,2),(3,4,5),(6,)); D = 24 (humanoid: per-arm
        position, orientation, then hand joints) gives eight blocks of 3, which keeps
        the reference's per-token budget (sum < 45 over 3 tokens) for every block.
        """
        if action_dim < 1 or block_size < 1:
            raise InvalidInputError(f"action_dim and block_size must be >= 1, got {action_dim}, {block_size}")
        blocks = tuple(tuple(range(s, min(s + block_size, action_dim))) for s in range(0, action_dim, block_size))
        return cls(blocks, sum_threshold, max_threshold)


@dataclass
class BlockDecision:
    """Outcome of ``block_relaxed_accept``.

    best: index of the kept candidate (-1 if none passed the first block);
    accepted: tokens of all passed blocks; survivors: candidates that passed every
    passed block; per_candidate: accepted length of each candidate on its own.
    """

    best: int
    accepted: int
    survivors: list[int]
    per_candidate: list[int]


def block_relaxed_accept(
    candidates: np.ndarray, targets: np.ndarray, rule: BlockRule, action_dim: int
) -> BlockDecision:
    """Sequence-wise relaxed acceptance over K candidate drafts (HeiSD mechanism 3).

    ``candidates`` (K, L) are drafted bins; ``targets`` (K, L) is the VLA's argmax at
    each position of chain k given chain k's own prefix (what tree verification
    yields). L must be a whole number of actions. Surviving candidates are filtered
    block by block; acceptance stops at the first block no survivor passes; ``best``
    is the survivor with the smallest total distance over the passed blocks (ties ->
    lowest index). A 1-D pair is treated as K = 1.
    """
    c, t = np.asarray(candidates), np.asarray(targets)
    if c.ndim == 1 and t.ndim == 1:
        c, t = c[None, :], t[None, :]
    if c.ndim != 2 or c.shape != t.shape or c.shape[0] == 0 or c.shape[1] == 0:
        raise InvalidInputError(f"candidates and targets must be non-empty (K, L) arrays of equal shape, got {c.shape} and {t.shape}")
    if c.dtype.kind not in "iu" or t.dtype.kind not in "iu":
        raise InvalidInputError(f"candidates and targets must be integer bin indices, got dtypes {c.dtype} and {t.dtype}")
    rule.validate(action_dim)
    k, length = c.shape
    if length % action_dim:
        raise InvalidInputError(f"sequence length {length} is not a whole number of actions of dimension {action_dim}")
    dist = np.abs(c.astype(np.int64) - t.astype(np.int64))
    # blocks of the whole sequence: action a's block b covers a*D + b
    seq_blocks = [np.asarray(b) + a * action_dim for a in range(length // action_dim) for b in rule.blocks]
    passes = np.stack(
        [(dist[:, idx].sum(axis=1) < rule.sum_threshold) & (dist[:, idx].max(axis=1) < rule.max_threshold) for idx in seq_blocks],
        axis=1,
    )  # (K, n_blocks)
    sizes = np.array([len(idx) for idx in seq_blocks])
    alive = np.cumprod(passes, axis=1).astype(bool)  # passed every block so far, on its own
    per_candidate = (alive * sizes).sum(axis=1)
    passed_blocks = int(alive.any(axis=0).sum())  # the set filter stops where nobody is alive
    if passed_blocks == 0:
        return BlockDecision(best=-1, accepted=0, survivors=[], per_candidate=per_candidate.tolist())
    survivors = np.flatnonzero(alive[:, passed_blocks - 1])
    accepted = int(sizes[:passed_blocks].sum())
    totals = dist[survivors, :accepted].sum(axis=1)  # blocks are contiguous and ordered: passed = a prefix
    best = int(survivors[int(np.argmin(totals))])
    return BlockDecision(best=best, accepted=accepted, survivors=survivors.tolist(), per_candidate=per_candidate.tolist())
