"""The build stages as commands: one runner per stage, the final summary (options: arguments.py).

Why one module: ``heisd train``, ``train-drafter``, ``build-cache``, ``calibrate`` and
``build-bundle`` must split the demonstrations the same way (same held-out
episodes), seed the same way and reseal the manifest after every stage, so the CLI
modules only register their parsers and call the runners here.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from heisd_ros.bundle.format import MANIFEST, README, read_json, seal
from heisd_ros.core.errors import HeisdError
from heisd_ros.training.cache import build_cache
from heisd_ros.training.calibration import calibrate
from heisd_ros.training.demos import Episode
from heisd_ros.training.distill import train_drafter
from heisd_ros.training.fit import FitConfig
from heisd_ros.training.sources import load_episodes, source_records, split_holdout
from heisd_ros.training.train_vla import train_vla
from heisd_ros.vla.config import VLAConfig


def episodes_for(args: argparse.Namespace) -> tuple[list[Episode], list[Episode], list[Episode]]:
    """(all, train, held out) of the command's data."""
    episodes = load_episodes(args.data, args.tasks, args.include_failures)
    train, held = split_holdout(episodes, args.holdout)
    return episodes, train, held


def command_line(args: argparse.Namespace) -> str:
    """The command with every effective option (defaults included), as recorded in the manifest."""
    parts = ["heisd", args.command]
    for key, value in sorted(vars(args).items()):
        if key in ("command", "func", "verbose") or value is None or value is False:
            continue
        flag = "--" + key.replace("_", "-")
        if value is True:
            parts.append(flag)
        elif isinstance(value, (list, tuple)):
            parts += [flag] + [str(v) for v in value]
        else:
            parts += [flag, str(value)]
    return " ".join(parts)


def _report(stage: str, info: dict, started: float) -> None:
    """The final summary line(s) of a stage."""
    summary = {"stage": stage, "seconds": round(time.perf_counter() - started, 1), "metrics": info.get("metrics", {})}
    print(json.dumps(summary, indent=1, default=float))


def _seal_stage(bundle: Path, stage: str, info: dict, **kw) -> None:
    """Seal one stage; a bundle that already has its README (a stage re-run on a built
    bundle) gets the README regenerated, so it never describes the previous stage."""
    seal(bundle, stage, info, **kw)
    if (Path(bundle) / README).is_file():
        built = read_json(Path(bundle) / MANIFEST, "bundle manifest").get("stages", {}).get("build-bundle", {})
        write_readme(bundle, built.get("seconds"))
        seal(bundle)


def run_train(args: argparse.Namespace, bundle: Path) -> dict:
    started = time.perf_counter()
    episodes, train, held = episodes_for(args)
    cfg = VLAConfig(cameras=list(args.cameras), image_size=args.image_size, horizon=args.horizon,
                    hidden=args.hidden, layers=args.layers, intermediate=int(args.hidden * 2.6875),
                    conv_channels=list(args.conv_channels), coord_channels=args.coord_channels,
                    keypoints=args.keypoints)
    fit_cfg = FitConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                        label_sigma=args.label_sigma, proprio_noise=args.proprio_noise,
                        proprio_noise_features=args.proprio_noise_features)
    info = train_vla(train, bundle, cfg, fit_cfg, joint_names=args.joints, progress=not args.quiet)
    info["heldout_per_task"] = args.holdout
    info["seconds"] = time.perf_counter() - started
    _seal_stage(bundle, "train", info, sources=source_records(episodes, held), command=command_line(args))
    _report("train", info, started)
    return info


def run_train_drafter(args: argparse.Namespace, bundle: Path) -> dict:
    started = time.perf_counter()
    _, train, _ = episodes_for(args)
    fit_cfg = FitConfig(steps=args.drafter_steps, batch_size=64, lr=2e-3, seed=args.drafter_seed, shift=0)
    info = train_drafter(bundle, train, fit_cfg, progress=not args.quiet)
    info["seconds"] = time.perf_counter() - started
    _seal_stage(bundle, "train-drafter", info, command=command_line(args))
    _report("train-drafter", info, started)
    return info


def run_build_cache(args: argparse.Namespace, bundle: Path) -> dict:
    started = time.perf_counter()
    _, train, _ = episodes_for(args)
    info = build_cache(bundle, train, horizon=args.cache_horizon, joint_bin_width=args.joint_bin_width)
    info["seconds"] = time.perf_counter() - started
    _seal_stage(bundle, "build-cache", info, command=command_line(args))
    _report("build-cache", info, started)
    return info


def run_calibrate(args: argparse.Namespace, bundle: Path) -> dict:
    started = time.perf_counter()
    _, train, held = episodes_for(args)
    info = calibrate(bundle, train, held, window=args.window, alpha=args.alpha, max_error=args.max_error,
                     frame_stride=args.stride, progress=not args.quiet)
    info["seconds"] = time.perf_counter() - started
    _seal_stage(bundle, "calibrate", info, command=command_line(args))
    _report("calibrate", info, started)
    return info


def parse_eval_episodes(spec: list[str]) -> tuple[int, dict[str, int]]:
    """``--eval-episodes`` tokens -> (count for every task, per-task counts): "N" or "TASK=N"."""
    default, named = 0, {}
    for token in spec:
        name, _, value = token.rpartition("=")
        try:
            n = int(value)
        except ValueError:
            raise HeisdError(f"--eval-episodes takes N or TASK=N, got {token!r}") from None
        if n < 0:
            raise HeisdError(f"--eval-episodes must be >= 0, got {token!r}")
        if name:
            named[name] = n
        else:
            default = n
    return default, named


def eval_counts(spec: list[str], tasks: list[str]) -> dict[str, int]:
    """Episodes per task of the bundle; a task name the bundle lacks is an error."""
    default, named = parse_eval_episodes(spec)
    unknown = sorted(set(named) - set(tasks))
    if unknown:
        raise HeisdError(f"--eval-episodes names task(s) {unknown}; the bundle covers {tasks}")
    return {t: named.get(t, default) for t in tasks}


def run_eval(args: argparse.Namespace, bundle: Path) -> dict:
    """Closed-loop success per task and method on held-out seeds, recorded in the manifest."""
    from heisd_ros.bundle.loader import load_bundle
    from heisd_ros.eval.rollout import run_rollouts

    started = time.perf_counter()
    loaded = load_bundle(bundle)
    counts = eval_counts(args.eval_episodes, sorted(loaded.tasks))
    results = {}
    for task in sorted(loaded.tasks):
        seeds = list(range(args.eval_seed_start, args.eval_seed_start + counts[task]))
        if not seeds:
            continue
        for method in args.eval_methods:
            summary = run_rollouts(loaded, task, method, seeds, progress=not args.quiet).summary()
            results[f"{task}/{method}"] = {k: summary[k] for k in ("success_rate", "successes", "episodes", "seeds", "mean_steps")}
            results[f"{task}/{method}"]["decoding"] = {k: summary["decoding"][k] for k in
                                                       ("mean_accepted_length", "forward_passes_per_step", "latency_ms", "branch_mix")}
    info = {"seed_start": args.eval_seed_start, "episodes": counts, "metrics": results, "seconds": time.perf_counter() - started}
    _seal_stage(bundle, "eval", info, command=command_line(args))
    _report("eval", info, started)
    return info


def bundle_size(bundle: Path) -> int:
    return sum(p.stat().st_size for p in Path(bundle).rglob("*") if p.is_file())


def write_readme(bundle: Path, build_seconds: float | None = None) -> None:
    """README.md from the manifest: what the bundle is, how it was built, what was measured."""
    m = read_json(Path(bundle) / MANIFEST, "bundle manifest")
    st = m.get("stages", {})
    train = st.get("train", {})
    lines = [
        "# heisd_ros model bundle", "",
        "A small OpenVLA-style VLA (CNN visual prefix + proprio + instruction words -> Llama decoder emitting",
        "OpenVLA action tokens), its distilled drafter, the retrieval datastore built from the demonstrations and",
        "the calibrated HeiSD fused-metric ranges and tau. Load it with `heisd_ros.bundle.load_bundle(path)`.", "",
        "## Contents", "",
        "- `vla/`: config.json, model.safetensors (fp16 storage), interface.json (tokenizer, actions, inputs, tasks)",
        "- `drafter/`: the drafter (same interface)",
        "- `retrieval/`: RetrievalDatastore (one collection per instruction)",
        "- `calibration.json`: window, alpha, ranges, tau, the tau rule and its sweep",
        "- `manifest.json`: versions, sources with sha256, seeds, metrics, sha256 of every file", "",
        "## Tasks", "",
    ]
    interface = read_json(Path(bundle) / "vla" / "interface.json", "interface")
    lines += [f"- `{name}`: \"{instr}\"" for name, instr in sorted(interface.get("tasks", {}).items())]
    sources = m.get("sources", [])
    lines += ["", "## How it was built", "",
              f"From {sum(s['role'] == 'train' for s in sources)} training and {sum(s['role'] == 'heldout' for s in sources)} "
              f"held-out demonstration episodes ({sum(s['steps'] for s in sources)} steps). Commands:", ""]
    lines += [f"- `{name}`: `{s.get('command', '')}`" for name, s in st.items()]
    lines += ["", "## Measured", "", "```", json.dumps(m.get("metrics", {}), indent=1, default=float), "```", ""]
    tau_rule = st.get("calibrate", {}).get("rule")
    if tau_rule:
        lines += [f"tau = {st['calibrate']['metric_config']['tau']}: {tau_rule}.", ""]
    if build_seconds is not None:
        lines += [f"Build time: {build_seconds / 60:.1f} min on the build machine.", ""]
    lines += [f"Parameters: VLA {train.get('parameters', '?')}, drafter {st.get('train-drafter', {}).get('parameters', '?')}.", ""]
    (Path(bundle) / README).write_text("\n".join(lines))


def run_build_bundle(args: argparse.Namespace, bundle: Path) -> dict:
    """All stages in order into one bundle, then evaluation (optional), README and the final seal.

    With ``resume`` the stages the manifest already records are kept (e.g. after an
    interrupted evaluation); their recorded commands and metrics stay as they were.
    """
    started = time.perf_counter()
    bundle.mkdir(parents=True, exist_ok=True)
    done = set(read_json(bundle / MANIFEST, "bundle manifest").get("stages", {})) if args.resume and (bundle / MANIFEST).is_file() else set()
    if any(bundle.iterdir()) and not (args.force or args.resume):
        raise HeisdError(f"{bundle} is not empty; pass --force to rebuild into it or --resume to finish it")
    stages = {"train": run_train, "train-drafter": run_train_drafter, "build-cache": run_build_cache, "calibrate": run_calibrate}
    default, named = parse_eval_episodes(args.eval_episodes)
    if default or any(named.values()):
        stages["eval"] = run_eval
    infos = {}
    for name, runner in stages.items():
        if name in done:
            print(f"[build-bundle] {name}: already done (--resume), kept")
            continue
        infos[name] = runner(args, bundle)
    seconds = time.perf_counter() - started
    write_readme(bundle, seconds)
    manifest = seal(bundle, "build-bundle", {"seconds": seconds, "size_bytes": bundle_size(bundle)},
                    command=command_line(args))
    write_readme(bundle, seconds)  # README is sealed: regenerate with the final stage table, then reseal
    seal(bundle)
    print(json.dumps({"bundle": str(bundle), "build_minutes": round(seconds / 60, 1),
                      "size_mb": round(bundle_size(bundle) / 2**20, 2), "metrics": manifest["metrics"]}, indent=1, default=float))
    return infos
