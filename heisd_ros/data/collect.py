"""Collecting expert demonstrations: one rosbag2 bag per episode, plus an ``episode.json`` sidecar.

Layout: ``<out>/<task>_seed<seed>/`` is the bag directory (metadata.yaml and the
.mcap or .db3 file) and holds ``episode.json``. An episode is written under
``<out>/.partial/`` and moved to its final name only once bag and sidecar are
complete, so a run that is interrupted leaves no half episode behind a final
name: rerunning skips complete episodes and rewrites the rest.
"""
from __future__ import annotations

import json
import multiprocessing
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

from heisd_ros import __version__
from heisd_ros.data.bag_writer import ACTION, INSTRUCTION, JOINT_STATES, EpisodeBagWriter, ee_pose_topic, image_topic
from heisd_ros.sim.env import SimEnv
from heisd_ros.sim.episodes import run_expert_episode
from heisd_ros.sim.experts import EXPERT_VERSION, make_expert
from heisd_ros.sim.tasks import get_task

SIDECAR = "episode.json"
PARTIAL_DIR = ".partial"
NOISE_FIELDS = ("action_noise", "noise_correlation")  # what a bag's sidecar records of the DART noise


@dataclass(frozen=True)
class CollectConfig:
    """What ``heisd collect`` was asked to do."""

    task: str
    episodes: int
    out: Path
    seed: int = 0
    cameras: tuple[str, ...] | None = None  # None: the task's default views
    image_size: int = 128
    workers: int = 1
    max_steps: int | None = None
    storage: str = "mcap"
    action_noise: float = 0.0  # DART-style: std of noise on the executed arm action; labels stay the expert's
    noise_correlation: float = 0.0  # correlation time of that noise in control steps (0: white noise)

    def __post_init__(self) -> None:
        get_task(self.task)
        if not (self.action_noise >= 0 and self.action_noise < 1):
            raise ValueError(f"action_noise must be in [0, 1), got {self.action_noise}")
        if not (0 <= self.noise_correlation <= 1000):
            raise ValueError(f"noise_correlation must be in [0, 1000] control steps, got {self.noise_correlation}")
        if self.episodes < 1:
            raise ValueError(f"episodes must be >= 1, got {self.episodes}")
        if self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {self.workers}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {self.max_steps}")

    def noise_record(self) -> dict:
        """The sidecar's record of the noise (empty for clean demonstrations)."""
        if not self.action_noise:
            return {}
        return {k: float(getattr(self, k)) for k in NOISE_FIELDS if getattr(self, k)}

    @property
    def views(self) -> tuple[str, ...]:
        return get_task(self.task).cameras if self.cameras is None else tuple(self.cameras)

    def seeds(self) -> range:
        return range(self.seed, self.seed + self.episodes)


@dataclass
class EpisodeRecord:
    """The sidecar's content: everything a consumer needs to know without opening the bag."""

    task: str
    seed: int
    success: bool
    robot: str
    instruction: str
    control_rate: float
    steps: int
    expert_version: str
    cameras: list[str]
    image_size: int
    arms: list[str]
    action_names: list[str]
    joint_names: list[str]
    storage: str
    topics: dict[str, str]
    wall_s: float
    bag_bytes: int
    heisd_ros_version: str = __version__
    complete: bool = True
    extra: dict = field(default_factory=dict)


def episode_dir(out: Path | str, task: str, seed: int) -> Path:
    return Path(out) / f"{task}_seed{seed:05d}"


def read_sidecar(bag_dir: Path | str) -> dict:
    """The episode.json of a bag directory; ValueError if it is missing or unreadable."""
    path = Path(bag_dir) / SIDECAR
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"{bag_dir} has no {SIDECAR}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} does not hold a JSON object")
    return data


def is_complete(bag_dir: Path | str) -> bool:
    """True if the bag directory has its metadata and a sidecar marked complete."""
    bag_dir = Path(bag_dir)
    if not (bag_dir / "metadata.yaml").is_file():
        return False
    try:
        return read_sidecar(bag_dir).get("complete") is True
    except ValueError:
        return False


def list_episodes(root: Path | str, task: str | None = None) -> list[Path]:
    """Complete episode bag directories under ``root`` (optionally of one task), sorted by name."""
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"{root} is not a directory of episodes")
    found = [p for p in sorted(root.iterdir()) if p.is_dir() and p.name != PARTIAL_DIR and is_complete(p)]
    return [p for p in found if task is None or read_sidecar(p).get("task") == task]


_ENV_CACHE: dict[tuple, SimEnv] = {}


def _env_for(task: str, cameras: tuple[str, ...], image_size: int) -> SimEnv:
    """One simulator per (task, cameras, size) per process: building robosuite models takes seconds."""
    key = (task, cameras, image_size)
    if key not in _ENV_CACHE:
        _ENV_CACHE[key] = SimEnv(task, cameras=cameras, image_size=image_size)
    return _ENV_CACHE[key]


def record_episode(config: CollectConfig, seed: int) -> EpisodeRecord:
    """Run the expert for ``seed`` and write its bag and sidecar (replacing any incomplete copy)."""
    final = episode_dir(config.out, config.task, seed)
    partial = final.parent / PARTIAL_DIR / final.name
    for stale in (partial, final):
        if stale.exists():
            shutil.rmtree(stale)
    partial.parent.mkdir(parents=True, exist_ok=True)
    env = _env_for(config.task, config.views, config.image_size)
    expert = make_expert(config.task, env.action_space, env.control_rate)
    writer = EpisodeBagWriter(partial, env.control_rate, env.action_space.names, env.arms, config.views,
                              storage=config.storage)
    try:
        writer.write_instruction(env.instruction)

        def observe(obs, action) -> None:  # noqa: ANN001
            writer.write_observation(obs)
            if action is not None:
                writer.write_action(obs.step, action)

        result = run_expert_episode(env, expert, seed, config.max_steps, observer=observe, action_noise=config.action_noise,
                                    noise_correlation=config.noise_correlation)
        topics = {JOINT_STATES: "sensor_msgs/msg/JointState", INSTRUCTION: "std_msgs/msg/String",
                  ACTION: "heisd_msgs/msg/ActionChunk"}
        topics.update({image_topic(v): "sensor_msgs/msg/Image" for v in config.views})
        topics.update({ee_pose_topic(a, env.arms): "geometry_msgs/msg/PoseStamped" for a in env.arms})
        record = EpisodeRecord(
            task=config.task, seed=seed, success=result.success, robot=env.robot_name,
            instruction=env.instruction, control_rate=env.control_rate, steps=result.steps,
            expert_version=EXPERT_VERSION, cameras=list(config.views), image_size=config.image_size,
            arms=list(env.arms), action_names=list(env.action_space.names), joint_names=list(env.joint_names),
            storage=config.storage, topics=topics, wall_s=result.wall_s, bag_bytes=0,
            extra=config.noise_record(),
        )
        writer.close({k: v for k, v in asdict(record).items()
                      if k in ("task", "seed", "success", "robot", "control_rate", "steps", "expert_version")})
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    record.bag_bytes = sum(p.stat().st_size for p in partial.iterdir() if p.is_file())
    (partial / SIDECAR).write_text(json.dumps(asdict(record), indent=2))
    partial.rename(final)
    return record


def _record_in_worker(args: tuple[CollectConfig, int]) -> EpisodeRecord:
    return record_episode(*args)


def pending_seeds(config: CollectConfig) -> list[int]:
    """Seeds whose episode is not complete yet.

    A complete episode recorded with another ``action_noise`` or ``noise_correlation``, or by another
    version of the expert, is not silently kept: ValueError names it (resuming must not mix clean and
    perturbed demonstrations, or two experts' motions).
    """
    pending = []
    for s in config.seeds():
        bag = episode_dir(config.out, config.task, s)
        if not is_complete(bag):
            pending.append(s)
            continue
        sidecar = read_sidecar(bag)
        if sidecar.get("expert_version") != EXPERT_VERSION:
            raise ValueError(f"{bag} was recorded by expert version {sidecar.get('expert_version')}, this is version "
                             f"{EXPERT_VERSION} (heisd_ros/sim/experts.py): its demonstrations move differently; "
                             "use another --out")
        extra = sidecar.get("extra", {})
        recorded = {k: float(extra[k]) for k in NOISE_FIELDS if k in extra}
        if recorded != config.noise_record():
            raise ValueError(f"{bag} was recorded with action_noise {recorded.get('action_noise', 0.0)} and noise_correlation "
                             f"{recorded.get('noise_correlation', 0.0)}, not {config.action_noise} and {config.noise_correlation}; "
                             "use another --out or --seed")
    return pending


def collect(config: CollectConfig, progress: bool = True) -> Iterator[EpisodeRecord]:
    """Record every pending episode, yielding each record as it is finished (in completion order)."""
    from tqdm import tqdm

    seeds = pending_seeds(config)
    bar = tqdm(total=len(seeds), desc=f"collect {config.task}", unit="ep", disable=not progress)
    try:
        if config.workers == 1 or len(seeds) <= 1:
            for seed in seeds:
                record = record_episode(config, seed)
                bar.update(1)
                yield record
        else:
            ctx = multiprocessing.get_context("spawn")  # robosuite and GL contexts do not survive fork
            with ctx.Pool(min(config.workers, len(seeds))) as pool:
                for record in pool.imap_unordered(_record_in_worker, [(config, s) for s in seeds]):
                    bar.update(1)
                    yield record
    finally:
        bar.close()


def summarize(records: Sequence[EpisodeRecord]) -> dict:
    """Success rate, sizes and times of the episodes recorded by one run."""
    n = len(records)
    return {
        "episodes": n,
        "successes": sum(r.success for r in records),
        "mean_steps": sum(r.steps for r in records) / n if n else 0.0,
        "mean_bag_mb": sum(r.bag_bytes for r in records) / n / 1e6 if n else 0.0,
        "mean_wall_s": sum(r.wall_s for r in records) / n if n else 0.0,
        "start": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
