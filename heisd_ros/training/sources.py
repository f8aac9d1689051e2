"""Where demonstrations come from, and which of them are held out.

``load_episodes`` reads a directory of ``heisd collect`` bags through the data
reader (heisd_ros.data), or ``synthetic:<n>[:<length>]`` procedural episodes (tests,
dry runs). Held-out episodes (the highest seeds of every task) are never trained on;
drafter agreement, retrieval statistics and tau are measured on them.
"""
from __future__ import annotations

from pathlib import Path

from heisd_ros.bundle.format import sha256_tree
from heisd_ros.core.errors import InvalidInputError
from heisd_ros.training.demos import Episode

SYNTHETIC = "synthetic:"


def load_episodes(source: str, tasks: list[str] | None = None, include_failures: bool = False) -> list[Episode]:
    """Episodes from a bag directory or a ``synthetic:`` spec, optionally only the named tasks.

    Demonstrations whose expert failed are skipped unless ``include_failures``.
    """
    if source.startswith(SYNTHETIC):
        from heisd_ros.training.synthetic import synthetic_episodes

        parts = source[len(SYNTHETIC):].split(":")
        try:
            n, length = int(parts[0]), int(parts[1]) if len(parts) > 1 else 30
        except ValueError:
            raise InvalidInputError(f"synthetic source must be 'synthetic:<episodes>[:<length>]', got {source!r}") from None
        episodes = synthetic_episodes(n, length)
    else:
        path = Path(source)
        if not path.is_dir():
            raise InvalidInputError(f"demonstration source {source!r} is not a directory of bags")
        from heisd_ros.training.bag_episodes import episodes_from_bags

        episodes = episodes_from_bags(path, include_failures)
    if tasks:
        unknown = set(tasks) - {ep.task for ep in episodes}
        if unknown:
            raise InvalidInputError(f"no demonstrations for task(s) {sorted(unknown)} in {source}")
        episodes = [ep for ep in episodes if ep.task in tasks]
    if not episodes:
        raise InvalidInputError(f"no demonstration episodes in {source}")
    return episodes


def split_holdout(episodes: list[Episode], per_task: int) -> tuple[list[Episode], list[Episode]]:
    """(train, held out): the ``per_task`` highest-seed episodes of every task are held out."""
    if per_task < 0:
        raise InvalidInputError(f"held-out episodes per task must be >= 0, got {per_task}")
    held: set[int] = set()
    for task in sorted({ep.task for ep in episodes}):
        mine = sorted((i for i, ep in enumerate(episodes) if ep.task == task), key=lambda i: episodes[i].seed)
        if per_task and len(mine) <= per_task:
            raise InvalidInputError(f"task {task!r} has {len(mine)} episodes; cannot hold out {per_task} and train on the rest")
        held.update(mine[len(mine) - per_task:] if per_task else [])
    return ([ep for i, ep in enumerate(episodes) if i not in held], [ep for i, ep in enumerate(episodes) if i in held])


def source_records(episodes: list[Episode], heldout: list[Episode]) -> list[dict]:
    """Manifest entries: each source (bag) with its sha256, task, seed, length and role."""
    held = {id(ep) for ep in heldout}
    records = []
    for ep in episodes:
        path = Path(ep.source)
        digest = sha256_tree(path) if ep.source and path.exists() else None
        records.append({"source": ep.source, "sha256": digest, "task": ep.task, "seed": ep.seed, "steps": ep.length,
                        "role": "heldout" if id(ep) in held else "train"})
    return records
