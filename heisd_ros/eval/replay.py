"""``heisd replay``'s engine: every method on every recorded observation of rosbag2 bags, offline.

Why offline replay: it measures speed and fidelity on the user's own data (any robot
stack's bags: topic names and joint names are mapped through the data reader's
ReaderConfig) without a simulator, so there is no task success here, only speed,
VLA passes, acceptance and deviation. Per bag, the fused metric follows the recorded
end-effector path exactly as on the robot, and every method's decoder is reset.

Deviation: plain AR decodes every frame once (it is also the timed AR row when "ar"
is among the methods; otherwise untimed), and every other method is compared with
those bins; ``recorded_action_deviation`` compares each method with the action the
bag recorded (tokenised with the bundle's tokenizer: mean |bin difference|).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from heisd_ros.core.decoding import ARDecoder
from heisd_ros.core.errors import InvalidInputError
from heisd_ros.core.fused_metric import FusedMetric
from heisd_ros.core.observation import Observation
from heisd_ros.data.reader import ReaderConfig, TrainingFrame, read_frames
from heisd_ros.eval.methods import METHODS
from heisd_ros.eval.measures import Meter, MethodRun


def frame_observation(bundle, frame: TrainingFrame, arm: str | None = None, instruction: str | None = None) -> Observation:  # noqa: ANN001
    """A bag frame -> the bundle's Observation (joints by name; the EE pose of ``arm``, default right or the only one)."""
    arms = sorted(frame.ee_positions)
    if not arms:
        raise InvalidInputError("the bag has no end-effector pose topic; the fused metric and the proprio need one "
                                "(map it with --ee-pose-topic)")
    arm = arm or ("right" if "right" in arms else arms[0])
    if arm not in frame.ee_positions:
        raise InvalidInputError(f"no end-effector pose for arm {arm!r}; the bag has {arms}")
    text = frame.instruction or instruction
    if not text:
        raise InvalidInputError("the bag has no instruction; pass one (--instruction)")
    return bundle.make_observation(frame.images, text, list(frame.joint_names), frame.joint_positions,
                                   frame.ee_positions[arm], frame.ee_orientations[arm], None, frame.stamp)


def task_of(bundle, instruction: str, fallback: str) -> str:  # noqa: ANN001
    """The bundle task whose instruction this is (case and spacing ignored), else ``fallback``."""
    norm = " ".join(instruction.lower().split())
    return next((t for t, text in sorted(bundle.tasks.items()) if " ".join(text.lower().split()) == norm), fallback)


def recorded_actions(bundle, frames: Sequence[TrainingFrame], bag: Path) -> np.ndarray:  # noqa: ANN001
    """(T, D) recorded actions in the bundle's dimension order (by name where the bag names them all)."""
    names, wanted = list(frames[0].action_names), bundle.action_names
    actions = np.stack([f.action for f in frames])
    if actions.shape[1] != len(wanted):
        raise InvalidInputError(f"bag {bag} records {actions.shape[1]}-D actions {names}, the bundle emits {wanted}")
    if set(names) == set(wanted):
        actions = actions[:, [names.index(n) for n in wanted]]
    return actions


@dataclass
class ReplayResult:
    """One MethodRun per (task, method) and the recorded-action deviation per (task, method)."""

    runs: list[MethodRun] = field(default_factory=list)
    recorded_deviation: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    frames: int = 0

    def rows(self, tau: float | None) -> list[dict]:
        out = []
        for run in self.runs:
            ar = next((r for r in self.runs if r.method == "ar" and r.task == run.task), None)
            row = run.summary(ar.summary(None)["latency_ms"]["mean"] if ar else None, tau if run.method == "heisd" else None)
            dev = self.recorded_deviation.get((run.task, run.method), [])
            row["recorded_action_deviation"] = {"mean_abs_bins": float(np.mean(dev))} if dev else None
            row["episodes"] = len(run.seeds)  # bags
            row["latency_samples_ms"] = [r.stats.total_s * 1e3 / run.horizon for r in run.records]
            out.append(row)
        return out


def replay(bundle, bags: Sequence[Path], methods: Sequence[str], config: ReaderConfig | None = None,  # noqa: ANN001
           arm: str | None = None, instruction: str | None = None, overrides: dict[str, dict] | None = None,
           progress: Callable[[str], None] | None = print) -> ReplayResult:
    """Run every method on every frame of every bag (see module docstring)."""
    bad = [m for m in methods if m not in METHODS]
    if bad or not methods:
        raise InvalidInputError(f"methods must be among {METHODS}, got {list(methods)}")
    if not bags:
        raise InvalidInputError("no bags to replay")
    config = config or ReaderConfig(chunk=1)
    overrides = overrides or {}
    ordered = ["ar"] + [m for m in methods if m != "ar"]  # AR first: its bins are every method's reference
    horizon = int(bundle.vla.horizon)
    result = ReplayResult()
    runs: dict[tuple[str, str], MethodRun] = {}
    decoders = {m: bundle.make_decoder(m, **overrides.get(m, {})) for m in ordered}
    for b_index, bag in enumerate(bags):
        frames = read_frames(bag, config)
        if not frames:
            raise InvalidInputError(f"bag {bag} yields no frames (no action messages after the first image?)")
        observations = [frame_observation(bundle, f, arm, instruction) for f in frames]
        task = task_of(bundle, observations[0].instruction, Path(bag).name)
        recorded = bundle.tokenizer.encode(recorded_actions(bundle, frames, bag))
        ar_bins: dict[int, np.ndarray] = {}
        warm = ARDecoder(bundle.vla)
        warm.step(observations[0])  # first-call costs stay out of the figures
        for method in ordered:
            if method == "ar" and "ar" not in methods:
                ref = ARDecoder(bundle.vla)
                ar_bins = {i: ref.step(o).bins for i, o in enumerate(observations)}
                continue
            run = runs.setdefault((task, method), MethodRun(method, task, "offline", horizon=horizon))
            run.seeds.append(b_index)
            meter = Meter(bundle, run, None if method == "ar" else (lambda i, obs: ar_bins[i]))
            decoder = decoders[method]
            decoder.reset()
            metric = FusedMetric(bundle.metric)
            meter.start_episode(b_index)
            devs = result.recorded_deviation.setdefault((task, method), [])
            try:
                for i, obs in enumerate(observations):
                    value = metric.update(obs.ee_position)
                    step = decoder.step(obs, value)
                    meter.record(i, obs, value, step)
                    if method == "ar":
                        ar_bins[i] = step.bins
                    devs.append(float(np.abs(step.bins.reshape(-1, bundle.tokenizer.dim)[0] - recorded[i]).mean()))
            finally:
                meter.close()
            if progress:
                progress(f"[replay] {bag}: {method} on {len(observations)} frames")
        result.frames += len(observations)
    result.runs = list(runs.values())
    for run in result.runs:  # successes are not defined offline
        run.successes = []
    return result
