"""The coordinator's action queue and output safety filter, without ROS.

LeRobot async-inference style: inference pushes chunks of actions computed
from one observation; the control timer pops one action per tick and asks for
the next inference when the queue is at or below a low watermark, so the timer
never waits for the model. When nothing is queued the timer holds: zero motion
with the last commanded value kept for the dimensions that must not jump (a
gripper holding an object). Every action leaving the queue passes the safety
filter: clamped to limits and rate-limited against the previous command.
"""
from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from heisd_ros.core.errors import InvalidInputError


@dataclass
class QueuedAction:
    action: np.ndarray  # (D,)
    meta: Any = None  # what produced it (branch, stats), handed back when published
    index: int = 0  # position inside its chunk


@dataclass
class SafetyFilter:
    """Limit the change per tick, then clamp to [-limit, limit]; reports whether it changed the action.

    The clamp comes last so the limit holds on every tick, even right after it was
    lowered at run time (the rate limit then gives way: the action jumps to the new
    bound instead of walking there from outside it).
    """

    limit: float = 1.0
    max_change: float = 2.0
    last: np.ndarray | None = None
    clamped_count: int = 0

    def _filter(self, a: np.ndarray, last: np.ndarray | None) -> np.ndarray:
        if not np.all(np.isfinite(a)):
            raise InvalidInputError(f"refusing a non-finite action {a.tolist()}")
        out = a
        if last is not None and last.shape == out.shape:
            out = np.clip(out, last - self.max_change, last + self.max_change)
        return np.clip(out, -self.limit, self.limit)

    def __call__(self, action: np.ndarray) -> tuple[np.ndarray, bool]:
        a = np.asarray(action, dtype=np.float64)
        out = self._filter(a, self.last)
        changed = bool(np.any(out != a))
        self.clamped_count += changed
        self.last = out
        return out, changed

    def preview(self, actions: list[np.ndarray]) -> list[np.ndarray]:
        """What the filter would make of the actions queued after the current one, state untouched.

        Why: the coordinator publishes them too (the chunk's rest, future trajectory
        points); a controller that executes a preview must never see an unfiltered value.
        """
        out, last = [], self.last
        for action in actions:
            last = self._filter(np.asarray(action, dtype=np.float64), last)
            out.append(last)
        return out


@dataclass
class ActionQueue:
    """Thread-safe FIFO of actions, refilled by inference and drained by the control timer."""

    dim: int
    hold_action: np.ndarray
    keep_dims: Sequence[int] = ()
    underruns: int = 0
    _items: deque = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _last: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.hold_action = np.asarray(self.hold_action, dtype=np.float64)
        if self.hold_action.shape != (self.dim,):
            raise InvalidInputError(f"hold action has {self.hold_action.size} values, the action dimension is {self.dim}")
        bad = [i for i in self.keep_dims if not 0 <= i < self.dim]
        if bad:
            raise InvalidInputError(f"keep_dims {bad} outside the action dimension {self.dim}")

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def push(self, actions: np.ndarray, meta: Any = None, replace: bool = True) -> None:
        """Queue an (H, D) chunk. ``replace`` drops what is still queued (newer observation wins)."""
        a = np.asarray(actions, dtype=np.float64)
        if a.ndim == 1:
            a = a[None]
        if a.ndim != 2 or a.shape[1] != self.dim:
            raise InvalidInputError(f"actions must be (H, {self.dim}), got shape {a.shape}")
        with self._lock:
            if replace:
                self._items.clear()
            self._items.extend(QueuedAction(row.copy(), meta, i) for i, row in enumerate(a))

    def pop(self) -> QueuedAction | None:
        """The next action, or None (an underrun) when empty."""
        with self._lock:
            if not self._items:
                self.underruns += 1
                return None
            item = self._items.popleft()
            self._last = item.action
            return item

    def peek_all(self) -> list[np.ndarray]:
        with self._lock:
            return [q.action for q in self._items]

    def hold(self) -> np.ndarray:
        """The safe command: hold_action, with keep_dims taken from the last real command."""
        out = self.hold_action.copy()
        if self._last is not None:
            for i in self.keep_dims:
                out[i] = self._last[i]
        return out

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
