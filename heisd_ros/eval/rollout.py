"""Closed-loop evaluation: a bundle's decoding strategy drives the simulated robot for N seeds.

Why a runner of its own: success rates and per-step decoding statistics must come
from the same loop that a deployment runs (robot signals -> ``Bundle.make_observation``
-> fused metric on the EE position -> ``decoder.step`` -> execute the action chunk),
so ``heisd eval`` (issue 8), the bundle build and the tests all call this one
function. Seeds given here should be held out from the demonstrations (e.g. 1000+).
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from heisd_ros.core.errors import InvalidInputError
from heisd_ros.core.decoding import StepResult
from heisd_ros.core.fused_metric import FusedMetric, MetricValue
from heisd_ros.core.observation import Observation
from heisd_ros.core.stats import StatsAggregate, StepStats


@dataclass
class EpisodeResult:
    """One closed-loop episode."""

    seed: int
    success: bool
    steps: int
    decoder_calls: int
    wall_s: float
    stats: list[StepStats] = field(default_factory=list)


@dataclass
class RolloutReport:
    """All episodes of one (task, method) pair."""

    task: str
    method: str
    episodes: list[EpisodeResult]

    @property
    def success_rate(self) -> float:
        return float(np.mean([e.success for e in self.episodes])) if self.episodes else 0.0

    def summary(self) -> dict:
        """Success rate, steps and the decoding statistics of every step (StatsAggregate.summary)."""
        agg = StatsAggregate()
        for ep in self.episodes:
            for s in ep.stats:
                agg.add(s)
        return {"task": self.task, "method": self.method, "episodes": len(self.episodes),
                "seeds": [e.seed for e in self.episodes], "successes": int(sum(e.success for e in self.episodes)),
                "success_rate": self.success_rate, "mean_steps": float(np.mean([e.steps for e in self.episodes])) if self.episodes else 0.0,
                "decoding": agg.summary()}


StepHook = Callable[[int, Observation, MetricValue, StepResult], None]


def run_episode(bundle, env, decoder, seed: int, max_steps: int, arm: str, on_step: StepHook | None = None) -> EpisodeResult:
    """One episode: reset with ``seed`` and act until success or ``max_steps`` control steps.

    on_step(step, observation, metric value, result) runs after every decoder call,
    outside the timed step (``heisd eval`` records the metric and compares with AR there).
    """
    start = time.perf_counter()
    sim = env.reset(seed)
    decoder.reset()
    metric = FusedMetric(bundle.metric)
    queue: list[np.ndarray] = []
    stats: list[StepStats] = []
    for step in range(max_steps):
        ee = sim.ee_poses[arm]
        value = metric.update(ee.position)
        if not queue:
            obs = bundle.make_observation(sim.images, sim.instruction, list(sim.joint_names), sim.joint_positions,
                                          ee.position, ee.orientation, sim.gripper_openings[arm], sim.time)
            result = decoder.step(obs, value)
            stats.append(result.stats)
            if on_step is not None:
                on_step(step, obs, value, result)
            queue = list(np.asarray(result.actions, dtype=np.float64))
        sim = env.step(queue.pop(0))
        if sim.success:
            return EpisodeResult(seed, True, step + 1, len(stats), time.perf_counter() - start, stats)
    return EpisodeResult(seed, False, max_steps, len(stats), time.perf_counter() - start, stats)


@contextmanager
def open_env(bundle, task: str, render_size: int | None = None) -> Iterator[Any]:
    """The simulator of ``task`` set up as the bundle expects (cameras, resolution, control rate, action names)."""
    from heisd_ros.sim.env import SimEnv  # the simulator is optional for everything else

    if task not in bundle.tasks:
        raise InvalidInputError(f"bundle has no task {task!r}; it covers {sorted(bundle.tasks)}")
    size = render_size or bundle.manifest.get("stages", {}).get("train", {}).get("recorded_image_size") or bundle.image_size
    with SimEnv(task, cameras=bundle.camera_names, image_size=int(size), control_rate=bundle.control_rate_hz) as env:
        if list(env.action_space.names) != bundle.action_names:
            raise InvalidInputError(f"task {task!r} takes actions {list(env.action_space.names)}, the bundle emits {bundle.action_names}")
        yield env


def run_rollouts(bundle, task: str, method: str, seeds: Sequence[int], max_steps: int | None = None,
                 render_size: int | None = None, progress: bool = True, **overrides: Any) -> RolloutReport:
    """Evaluate ``bundle.make_decoder(method, **overrides)`` on ``task`` for every seed.

    render_size: camera resolution of the simulator (default: the resolution the
    demonstrations were recorded at, from the manifest, else the model's own);
    make_observation resizes to the model's size exactly as for the demonstrations.
    """
    if not seeds:
        raise InvalidInputError("no seeds to evaluate")
    decoder = bundle.make_decoder(method, **overrides)
    episodes = []
    with open_env(bundle, task, render_size) as env:
        steps = int(max_steps or env.task.max_steps)
        arm = env.arms[0]
        for seed in seeds:
            result = run_episode(bundle, env, decoder, int(seed), steps, arm)
            episodes.append(result)
            if progress:
                print(f"[eval] {task} {method} seed {seed}: {'success' if result.success else 'failure'} "
                      f"in {result.steps} steps ({result.wall_s:.1f} s)", flush=True)
    return RolloutReport(task, method, episodes)
