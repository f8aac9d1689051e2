"""Running a scripted expert for one episode, with an optional per-step observer.

Both demonstration recording (which writes every observation and action to a
bag) and success-rate measurement (which records nothing) go through
``run_expert_episode``, so what is measured is exactly what is recorded.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from heisd_ros.sim.env import SimEnv, SimObservation
from heisd_ros.sim.experts import SegmentExpert

# Steps the expert keeps holding after it finishes, so the bag shows the settled outcome.
SETTLE_STEPS = 5

Observer = Callable[[SimObservation, "np.ndarray | None"], None]


@dataclass(frozen=True)
class EpisodeResult:
    task: str
    seed: int
    success: bool
    steps: int
    wall_s: float


def run_expert_episode(env: SimEnv, expert: SegmentExpert, seed: int, max_steps: int | None = None,
                       observer: Observer | None = None, action_noise: float = 0.0,
                       noise_correlation: float = 0.0) -> EpisodeResult:
    """Reset with ``seed`` and let the expert act until its plan ends (plus a few settle steps) or
    ``max_steps``; success is the task's success flag at the last step.

    ``observer(obs, action)`` is called for every observation with the expert's action
    (None for the final observation).

    action_noise: std of Gaussian noise added to the arm dimensions of the EXECUTED
    action (normalised units; grippers untouched), while the observer still gets the
    expert's own action (DART-style noise injection). The robot then visits states a
    little off the expert's path, and the recorded labels show how the expert corrects
    them: what a cloned policy needs to recover from its own small errors, and from a
    relaxed-acceptance decoder's.

    noise_correlation: correlation time of that noise in control steps (0: white
    noise, a fresh draw every step). White noise is corrected as soon as it is made,
    so the robot never strays far; an AR(1) process with correlation time T
    (n_t = rho n_{t-1} + sqrt(1 - rho^2) e_t, rho = exp(-1/T), same std) pushes it
    the same way for about T steps, and the demonstrations then show recoveries from
    the larger drifts a cloned policy makes (a wrist turned tens of degrees off).
    """
    if not np.isfinite(action_noise) or action_noise < 0:
        raise ValueError(f"action_noise must be a finite number >= 0, got {action_noise}")
    if not np.isfinite(noise_correlation) or noise_correlation < 0:
        raise ValueError(f"noise_correlation must be a finite number >= 0 (control steps), got {noise_correlation}")
    rho = float(np.exp(-1.0 / noise_correlation)) if noise_correlation > 0 else 0.0
    innovation = np.sqrt(1.0 - rho**2)  # keeps the AR(1) noise's std at action_noise
    space = env.action_space
    arm_dims = np.ones(space.dim)
    arm_dims[space.gripper_dims] = 0.0
    noise_rng = np.random.default_rng([int(seed), 0xDA27])
    limit = int(max_steps if max_steps is not None else env.task.max_steps)
    if limit <= 0:
        raise ValueError(f"max_steps must be positive, got {limit}")
    start = time.perf_counter()
    obs = env.reset(seed)
    expert.reset(obs, seed)
    settle = SETTLE_STEPS
    noise = noise_rng.normal(0.0, action_noise, space.dim) if action_noise > 0 else np.zeros(space.dim)
    while obs.step < limit and settle > 0:
        action = expert.act(obs)
        if observer is not None:
            observer(obs, action)
        if action_noise > 0:
            action = np.clip(action + arm_dims * noise, space.low, space.high)
            noise = rho * noise + innovation * noise_rng.normal(0.0, action_noise, space.dim)
        obs = env.step(action)
        if expert.done:
            settle -= 1
    if observer is not None:
        observer(obs, None)
    return EpisodeResult(env.task.name, int(seed), bool(obs.success), obs.step, time.perf_counter() - start)
