"""``heisd eval``'s engine: every method closed loop in simulation on the same seeds, in two timing modes.

- lockstep: the simulator waits for each action (rollout.run_episode), which isolates
  decoding fidelity; here the deviation from AR is measured by re-decoding each
  observation with plain AR outside the timed step (doubling the wall time of an
  evaluation, not the reported latencies).
- realtime: the simulator advances at the control rate on the wall clock while the
  decoder runs in a thread on the newest observation; a tick without a fresh action
  holds (zero motion, gripper kept: core.action_queue.ActionQueue), as a robot does.
  The fraction of held ticks is where latency turns into task success. Ticks on which
  the simulator itself could not keep the rate (slow rendering on a busy CPU) are
  counted separately (``overrun_tick_fraction``) so such a run is not mistaken for a
  real-time one.

Every method gets a fresh decoder per (task, timing) and runs the same seeds.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from heisd_ros.core.action_queue import ActionQueue
from heisd_ros.core.decoding import ARDecoder
from heisd_ros.core.errors import InvalidInputError
from heisd_ros.core.fused_metric import FusedMetric
from heisd_ros.core.joints import gripper_dims
from heisd_ros.core.observation import Observation
from heisd_ros.eval.methods import METHODS, TIMINGS
from heisd_ros.eval.measures import Meter, MethodRun
from heisd_ros.eval.rollout import open_env, run_episode

# Dimensions a hold keeps at their last command (grippers, hands); the rest go to zero motion.
hold_dims = gripper_dims


def _ar_reference(bundle) -> Callable[[int, Observation], np.ndarray]:  # noqa: ANN001
    """Plain AR re-decoding of the observation a method just decoded (the deviation baseline)."""
    ar = ARDecoder(bundle.vla)
    return lambda step, obs: ar.step(obs).bins


def _realtime_episode(bundle, env, decoder, seed: int, max_steps: int, arm: str, meter: Meter) -> tuple[bool, int, int, int]:
    """(success, ticks, held ticks, overrun ticks) of one wall-clock episode."""
    period = 1.0 / float(bundle.control_rate_hz)
    sim = env.reset(seed)
    decoder.reset()
    metric = FusedMetric(bundle.metric)
    queue = ActionQueue(len(bundle.action_names), np.zeros(len(bundle.action_names)), hold_dims(bundle.action_names))
    cond = threading.Condition()
    latest: dict[str, Any] = {"tick": -1, "obs": None, "value": None, "stop": False}
    failure: list[BaseException] = []

    def infer() -> None:
        done = -1
        try:
            while True:
                with cond:
                    cond.wait_for(lambda: latest["stop"] or latest["tick"] > done)
                    if latest["stop"]:
                        return
                    done, obs, value = latest["tick"], latest["obs"], latest["value"]
                result = decoder.step(obs, value)
                meter.record(done, obs, value, result)
                queue.push(result.actions, replace=True)
        except BaseException as exc:  # surfaced in the main thread below
            failure.append(exc)

    worker = threading.Thread(target=infer, name="heisd-eval-inference", daemon=True)
    worker.start()
    held = overruns = ticks = 0
    success = False
    deadline = time.perf_counter()
    try:
        for step in range(max_steps):
            if failure:
                break
            ee = sim.ee_poses[arm]
            value = metric.update(ee.position)
            obs = bundle.make_observation(sim.images, sim.instruction, list(sim.joint_names), sim.joint_positions,
                                          ee.position, ee.orientation, sim.gripper_openings[arm], sim.time)
            with cond:
                latest.update(tick=step, obs=obs, value=value)
                cond.notify()
            item = queue.pop()
            held += item is None
            sim = env.step(item.action if item is not None else queue.hold())
            ticks += 1
            if sim.success:
                success = True
                break
            deadline += period
            now = time.perf_counter()
            if now > deadline:
                overruns += 1
                deadline = now  # no catching up: a late tick does not shorten the next one
            else:
                time.sleep(deadline - now)
    finally:
        with cond:
            latest["stop"] = True
            cond.notify()
        worker.join()
    if failure:
        raise failure[0]
    return success, ticks, held, overruns


def _warm_up(bundle, env, arm: str, methods: Sequence[str], overrides: dict[str, dict], seed: int) -> None:
    """Two untimed calls of every method on one observation: first-call costs (allocations, caches) stay out of the figures."""
    sim = env.reset(seed)
    ee = sim.ee_poses[arm]
    obs = bundle.make_observation(sim.images, sim.instruction, list(sim.joint_names), sim.joint_positions,
                                  ee.position, ee.orientation, sim.gripper_openings[arm], sim.time)
    for method in methods:
        decoder = bundle.make_decoder(method, **overrides.get(method, {}))
        for _ in range(2):
            decoder.step(obs, None)


@dataclass
class EvalResult:
    """What ``evaluate`` measured: one MethodRun per (task, timing, method), in run order."""

    runs: list[MethodRun] = field(default_factory=list)
    overruns: dict[tuple[str, str, str], int] = field(default_factory=dict)

    def rows(self, tau: float | None) -> list[dict]:
        """Results rows; speedup is against AR of the same task and timing."""
        out = []
        for run in self.runs:
            ar = next((r for r in self.runs if r.method == "ar" and r.task == run.task and r.timing == run.timing), None)
            ar_mean = ar.summary(None)["latency_ms"]["mean"] if ar is not None else None
            row = run.summary(ar_mean, tau if run.method == "heisd" else None)
            if run.ticks:
                row["overrun_tick_fraction"] = self.overruns.get((run.task, run.timing, run.method), 0) / run.ticks
            row["latency_samples_ms"] = [r.stats.total_s * 1e3 / run.horizon for r in run.records]
            out.append(row)
        return out


    def traces(self, tau: float | None) -> list[dict]:
        """Per task, the first episode of the HeiSD lockstep run (else the first run): step, branch, M for the timeline."""
        out = []
        for task in dict.fromkeys(r.task for r in self.runs):
            mine = [r for r in self.runs if r.task == task]
            run = next((r for r in mine if r.method == "heisd" and r.timing == "lockstep"),
                       next((r for r in mine if r.method == "heisd"), mine[0]))
            steps = [rec.to_dict() for rec in run.records if rec.episode == 0]
            out.append({"method": run.method, "task": task, "timing": run.timing, "seed": run.seeds[0],
                        "tau": tau if run.method == "heisd" else None, "steps": steps})
        return out


def evaluate(bundle, tasks: Sequence[str], methods: Sequence[str], seeds: Sequence[int],
             timings: Sequence[str] = ("lockstep",), max_steps: int | None = None, deviation: bool = True,
             render_size: int | None = None, overrides: dict[str, dict] | None = None,
             progress: Callable[[str], None] | None = print) -> EvalResult:
    """Run every method on every task and timing mode with the same seeds (see module docstring).

    overrides: per-method keyword arguments for ``Bundle.make_decoder`` (e.g. {"heisd": {"tau": 0.3}}).
    """
    bad = [m for m in methods if m not in METHODS]
    if bad or not methods:
        raise InvalidInputError(f"methods must be among {METHODS}, got {list(methods)}")
    bad = [t for t in timings if t not in TIMINGS]
    if bad or not timings:
        raise InvalidInputError(f"timing modes must be among {TIMINGS}, got {list(timings)}")
    if not seeds:
        raise InvalidInputError("no seeds to evaluate")
    if not tasks:
        raise InvalidInputError("no tasks to evaluate")
    overrides = overrides or {}
    ordered = ["ar"] + [m for m in methods if m != "ar"] if "ar" in methods else list(methods)
    result = EvalResult()
    horizon = int(bundle.vla.horizon)
    for task in tasks:
        with open_env(bundle, task, render_size) as env:
            steps = int(max_steps or env.task.max_steps)
            arm = env.arms[0]
            _warm_up(bundle, env, arm, ordered, overrides, int(seeds[0]))
            for timing in timings:
                for method in ordered:
                    decoder = bundle.make_decoder(method, **overrides.get(method, {}))
                    run = MethodRun(method, task, timing, seeds=[int(s) for s in seeds], horizon=horizon)
                    meter = Meter(bundle, run, _ar_reference(bundle) if deviation and timing == "lockstep" and method != "ar" else None)
                    overruns = 0
                    try:
                        for episode, seed in enumerate(seeds):
                            meter.start_episode(episode)
                            if timing == "lockstep":
                                ep = run_episode(bundle, env, decoder, int(seed), steps, arm, on_step=meter.record)
                                success, ticks, held, over = ep.success, ep.steps, 0, 0
                            else:
                                success, ticks, held, over = _realtime_episode(bundle, env, decoder, int(seed), steps, arm, meter)
                            run.successes.append(bool(success))
                            run.ticks += ticks
                            run.held_ticks += held
                            overruns += over
                            if progress:
                                progress(f"[eval] {task} {timing} {method} seed {seed}: "
                                         f"{'success' if success else 'failure'} in {ticks} steps"
                                         + (f", {held} held" if timing == "realtime" else ""))
                    finally:
                        meter.close()
                    result.overruns[(task, timing, method)] = overruns
                    result.runs.append(run)
    return result
