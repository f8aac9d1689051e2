"""heisd collect: bag + sidecar per episode, resumable, CLI wiring (real simulator, state only)."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from heisd_ros.cli import build_parser
from heisd_ros.data.collect import (
    PARTIAL_DIR,
    CollectConfig,
    collect,
    episode_dir,
    is_complete,
    list_episodes,
    pending_seeds,
)
from heisd_ros.data.reader import ReaderConfig, read_frames

pytestmark = pytest.mark.sim


def config(out: Path, episodes: int = 2, **kw) -> CollectConfig:  # noqa: ANN003
    return CollectConfig(task="lift", episodes=episodes, out=out, seed=7, cameras=(), max_steps=12, **kw)


def test_each_episode_is_a_bag_with_a_complete_sidecar(tmp_path: Path) -> None:
    records = list(collect(config(tmp_path), progress=False))
    assert sorted(r.seed for r in records) == [7, 8]
    for seed in (7, 8):
        bag = episode_dir(tmp_path, "lift", seed)
        assert is_complete(bag)
        meta = json.loads((bag / "episode.json").read_text())
        assert meta["task"] == "lift" and meta["seed"] == seed and meta["robot"] == "Panda"
        assert meta["steps"] == 12 and meta["control_rate"] == 20.0 and meta["success"] is False  # cut short
        assert meta["expert_version"] and meta["bag_bytes"] == (bag / f"{bag.name}.mcap").stat().st_size + \
            (bag / "metadata.yaml").stat().st_size
        assert len(read_frames(bag, ReaderConfig(require_images=False))) == 12
    assert not any((tmp_path / PARTIAL_DIR).iterdir())


def test_rerun_skips_complete_and_rewrites_interrupted_episodes(tmp_path: Path) -> None:
    list(collect(config(tmp_path, episodes=1), progress=False))
    done = episode_dir(tmp_path, "lift", 7) / "episode.json"
    before = done.stat().st_mtime_ns
    broken = episode_dir(tmp_path, "lift", 8)  # an episode whose sidecar never got written
    broken.mkdir()
    (broken / "metadata.yaml").write_text("truncated")
    (tmp_path / PARTIAL_DIR / "lift_seed00009").mkdir()  # left by a killed run
    cfg = config(tmp_path, episodes=3)
    assert pending_seeds(cfg) == [8, 9]
    records = list(collect(cfg, progress=False))
    assert sorted(r.seed for r in records) == [8, 9]
    assert done.stat().st_mtime_ns == before
    assert all(is_complete(episode_dir(tmp_path, "lift", s)) for s in (7, 8, 9))
    assert [p.name for p in list_episodes(tmp_path)] == ["lift_seed00007", "lift_seed00008", "lift_seed00009"]
    assert list_episodes(tmp_path, task="nut") == []
    # resuming with action noise must not keep the clean episodes as if they were perturbed
    with pytest.raises(ValueError, match="recorded with action_noise 0.0 and noise_correlation 0.0, not 0.1"):
        pending_seeds(dataclasses.replace(cfg, action_noise=0.1))
    with pytest.raises(ValueError, match="not 0.1 and 10"):
        pending_seeds(dataclasses.replace(cfg, action_noise=0.1, noise_correlation=10.0))
    # nor episodes of an older expert, whose motions differ
    sidecar = json.loads(done.read_text())
    done.write_text(json.dumps({**sidecar, "expert_version": "2"}))
    with pytest.raises(ValueError, match="recorded by expert version 2, this is version"):
        pending_seeds(cfg)


def test_bad_configs_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown task"):
        CollectConfig(task="juggle", episodes=1, out=tmp_path)
    with pytest.raises(ValueError, match="episodes"):
        CollectConfig(task="lift", episodes=0, out=tmp_path)
    with pytest.raises(ValueError, match="workers"):
        CollectConfig(task="lift", episodes=1, out=tmp_path, workers=0)
    with pytest.raises(ValueError, match="action_noise"):
        CollectConfig(task="lift", episodes=1, out=tmp_path, action_noise=-0.1)
    with pytest.raises(ValueError, match="noise_correlation"):
        CollectConfig(task="lift", episodes=1, out=tmp_path, action_noise=0.1, noise_correlation=-1.0)
    assert CollectConfig(task="lift", episodes=1, out=tmp_path, action_noise=0.2, noise_correlation=10.0).noise_record() == \
        {"action_noise": 0.2, "noise_correlation": 10.0}
    assert CollectConfig(task="lift", episodes=1, out=tmp_path).noise_record() == {}


def test_cli_collects_sqlite3_bags(tmp_path: Path) -> None:
    args = build_parser().parse_args(["collect", "--task", "lift", "--episodes", "1", "--out", str(tmp_path),
                                      "--cameras", "--max-steps", "5", "--storage", "sqlite3", "--seed", "3"])
    assert args.func(args) == 0
    bag = episode_dir(tmp_path, "lift", 3)
    assert is_complete(bag) and list(bag.glob("*.db3"))
    assert len(read_frames(bag, ReaderConfig(require_images=False))) == 5


def test_cli_requires_out_unless_dry_run() -> None:
    args = build_parser().parse_args(["collect", "--task", "lift"])
    assert args.func(args) == 2


def test_parallel_workers_record_every_episode(tmp_path: Path) -> None:
    records = list(collect(config(tmp_path, episodes=2, workers=2), progress=False))
    assert sorted(r.seed for r in records) == [7, 8]
    assert [p.name for p in list_episodes(tmp_path)] == ["lift_seed00007", "lift_seed00008"]
