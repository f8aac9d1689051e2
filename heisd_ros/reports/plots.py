"""The four plots of a report, each from a results document (docs/results-schema.md).

Why from the document and not from live objects: a report can be redrawn from a
saved JSON (``heisd eval --report-only``-style use, CI artefacts) and eval, replay and
bench share one drawing code.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

BRANCH_COLOURS = {"ar": "#7f7f7f", "drafter": "#1f77b4", "retrieval": "#2ca02c", "retrieval_skip": "#98df8a",
                  "hold": "#d62728", "replay": "#9467bd"}
METHOD_COLOURS = {"ar": "#7f7f7f", "drafter": "#1f77b4", "retrieval": "#2ca02c", "heisd": "#d62728",
                  "hf_generate": "#ff7f0e", "hf_assisted": "#9467bd", "hf_prompt_lookup": "#8c564b"}


def _colour(method: str, i: int) -> str:
    return METHOD_COLOURS.get(method, plt.cm.tab10(i % 10))


def _groups(rows: list[dict]) -> dict[str, list[dict]]:
    """Rows by "task / timing"."""
    out: dict[str, list[dict]] = {}
    for r in rows:
        out.setdefault(f"{r['task']} / {r['timing']}", []).append(r)
    return out


def latency_cdf(rows: list[dict], path: Path) -> Path:
    """Empirical CDF of per-action latency, one line per method, one panel per task and timing."""
    groups = _groups(rows)
    fig, axes = plt.subplots(1, len(groups), figsize=(5.5 * len(groups) + 1.5, 4), squeeze=False)
    for ax, (name, members) in zip(axes[0], groups.items()):
        for i, r in enumerate(members):
            ms = np.sort(np.asarray(r.get("latency_samples_ms") or [], float))
            if ms.size:
                ax.step(ms, np.arange(1, ms.size + 1) / ms.size, where="post", label=r["method"], color=_colour(r["method"], i))
        ax.set_xscale("log")
        ax.set_xlabel("latency per action (ms, log)")
        ax.set_ylabel("fraction of actions")
        ax.set_title(name)
        ax.grid(True, which="both", alpha=0.3)
    axes[0][-1].legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)  # same methods in every panel
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def speedup_bars(rows: list[dict], path: Path) -> Path:
    """Speedup over AR per method (ratio of mean latencies), grouped by task and timing; 1x marked."""
    groups = _groups(rows)
    methods = list(dict.fromkeys(r["method"] for r in rows))
    width = 0.8 / max(len(methods), 1)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.8 * len(groups) * len(methods) + 3), 4))
    for j, method in enumerate(methods):
        xs, ys = [], []
        for g, members in enumerate(groups.values()):
            r = next((m for m in members if m["method"] == method), None)
            if r is not None and r.get("speedup_vs_ar") is not None:
                xs.append(g + (j - (len(methods) - 1) / 2) * width)
                ys.append(r["speedup_vs_ar"])
        bars = ax.bar(xs, ys, width, label=method, color=_colour(method, j))
        ax.bar_label(bars, fmt="%.2fx", fontsize=8)
    ax.axhline(1.0, color="black", lw=0.8, ls="--")
    top = max([r["speedup_vs_ar"] for r in rows if r.get("speedup_vs_ar") is not None], default=1.0)
    ax.set_ylim(0, max(top, 1.0) * 1.15)  # room for the bar labels
    ax.set_xticks(range(len(groups)), list(groups))
    ax.set_ylabel("speedup vs AR (mean latency)")
    ax.set_title("Speedup per action over plain AR")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def branch_timeline(trace: dict, path: Path) -> Path:
    """One episode: the fused metric M against tau, and the branch each decoder call took."""
    steps = trace["steps"]
    x = np.array([s["step"] for s in steps])
    m = np.array([np.nan if s["metric"] is None else s["metric"] for s in steps], float)
    fig, (ax, bx) = plt.subplots(2, 1, figsize=(9, 4.5), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    ax.plot(x, m, color="black", lw=1.2, label="fused metric M")
    if trace.get("tau") is not None:
        ax.axhline(trace["tau"], color="#d62728", ls="--", lw=1, label=f"tau = {trace['tau']:.2f}")
    ax.set_ylabel("M")
    ax.set_ylim(-0.05, 1.05)
    ax.legend(loc="upper right")
    ax.set_title(f"{trace['method']} on {trace['task']} ({trace['timing']}), episode seed {trace['seed']}: "
                 "M > tau -> retrieval, M <= tau -> drafter, undefined -> AR")
    ax.title.set_fontsize(9)
    seen = []
    for s in steps:
        b = s["branch"]
        bx.bar(s["step"], 1, width=1.0, color=BRANCH_COLOURS.get(b, "#000000"), label=None if b in seen else b)
        if b not in seen:
            seen.append(b)
    bx.set_yticks([])
    bx.set_xlabel("control step")
    bx.set_ylabel("branch")
    bx.legend(loc="upper center", bbox_to_anchor=(0.5, -0.55), ncol=len(seen), fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def success_vs_speedup(rows: list[dict], path: Path) -> Path:
    """Success rate (95 % Wilson interval) against speedup; colour = method, marker = timing, label = task if several."""
    from matplotlib.lines import Line2D

    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    markers = {"lockstep": "o", "realtime": "s"}
    several_tasks = len({r["task"] for r in rows}) > 1
    methods: dict[str, str] = {}
    for i, r in enumerate(rows):
        if r.get("success_rate") is None or r.get("speedup_vs_ar") is None:
            continue
        lo, hi = r["success_ci95"]
        y = r["success_rate"]
        colour = _colour(r["method"], i)
        methods.setdefault(r["method"], colour)
        # clipped at 0: a results file rounded or written by another tool may put y a hair outside its interval
        ax.errorbar(r["speedup_vs_ar"], y, yerr=[[max(0.0, y - lo)], [max(0.0, hi - y)]], fmt=markers.get(r["timing"], "^"),
                    color=colour, capsize=3, alpha=0.85)
        if several_tasks:
            ax.annotate(r["task"], (r["speedup_vs_ar"], y), fontsize=7, xytext=(4, 4), textcoords="offset points")
    handles = [Line2D([], [], color=c, marker="o", ls="", label=m) for m, c in methods.items()]
    handles += [Line2D([], [], color="black", marker=mk, ls="", label=t) for t, mk in markers.items()]
    ax.legend(handles=handles, fontsize=8, loc="best")
    ax.axvline(1.0, color="black", lw=0.8, ls="--")
    ax.set_xlabel("speedup vs AR (mean latency)")
    ax.set_ylabel("success rate (95 % Wilson interval)")
    ax.set_ylim(-0.05, 1.05)
    ax.set_title("Task success against speed")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
