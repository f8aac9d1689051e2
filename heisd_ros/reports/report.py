"""A report directory: summary.md with the results table and the plots next to it.

Input is the results document that every command writes (docs/results-schema.md), so
a report can be rebuilt from a saved JSON file.
"""
from __future__ import annotations

import json
from pathlib import Path

from heisd_ros.core.errors import InvalidInputError
from heisd_ros.reports import plots


def _fmt(value, spec: str = ".2f", none: str = "-") -> str:  # noqa: ANN001
    return none if value is None else format(value, spec)


def _row_line(r: dict) -> str:
    lat = r["latency_ms"]
    if r.get("success_rate") is None:
        success = "-"
    else:
        lo, hi = r["success_ci95"]
        success = f"{r['successes']}/{r['episodes']} ({r['success_rate']:.0%}, CI {lo:.0%}-{hi:.0%})"
    dev = r.get("token_deviation_vs_ar")
    deviation = "ref" if r["method"] == "ar" else ("-" if dev is None else f"{dev['mean_abs_bins']:.2f} / {dev['exact_match_rate']:.0%}")
    mix = ", ".join(f"{k} {v:.0%}" for k, v in r["branch_mix"].items() if v > 0) or "-"
    flops = r.get("est_gflops_per_action") or {}
    gflops = None if not flops else flops.get("vla", 0.0) + flops.get("drafter", 0.0)
    held = _fmt(r.get("held_tick_fraction"), ".0%")
    return (f"| {r['method']} | {r['task']} | {r['timing']} | {success} | {_fmt(lat['mean'], '.1f')} / {_fmt(lat['p50'], '.1f')} / "
            f"{_fmt(lat['p99'], '.1f')} | {_fmt(r.get('speedup_vs_ar'))}x | {_fmt(r['vla_forward_passes_per_action'])} | "
            f"{_fmt(r['mean_accepted_tokens'])} | {deviation} | {mix} | {_fmt(gflops, '.4f')} | {held} |")


def _time_split(rows: list[dict]) -> list[str]:
    lines = ["", "## Where the time goes (mean ms per decoder call)", "",
             "| method | task | timing | prefill | draft | verify | decode | retrieval | overhead | total |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        t = r.get("time_split_ms")
        if not t:
            continue
        parts = [t["prefill_s"], t["draft_s"], t["verify_s"], t["decode_s"], t["retrieval_s"]]
        overhead = max(t["total_s"] - sum(parts), 0.0)
        lines.append(f"| {r['method']} | {r['task']} | {r['timing']} | " + " | ".join(f"{v:.2f}" for v in parts)
                     + f" | {overhead:.2f} | {t['total_s']:.2f} |")
    return lines


def write_report(doc: dict, out_dir: Path) -> list[Path]:
    """Write summary.md and the PNGs for ``doc``; returns the files written."""
    rows = doc.get("results")
    if not isinstance(rows, list) or not rows:
        raise InvalidInputError("results document has no 'results' rows to report")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = [plots.latency_cdf(rows, out / "latency_cdf.png"), plots.speedup_bars(rows, out / "speedup.png")]
    traces = doc.get("traces") or []
    if traces:
        files.append(plots.branch_timeline(traces[0], out / "branch_timeline.png"))
    if any(r.get("success_rate") is not None for r in rows):
        files.append(plots.success_vs_speedup(rows, out / "success_vs_speedup.png"))
    setup = doc.get("setup", {})
    lines = [f"# heisd {doc.get('command', '?')} report", "",
             f"Bundle: `{doc.get('bundle', {}).get('path', '?')}`", ""]
    lines += [f"- {k}: {json.dumps(v) if not isinstance(v, str) else v}" for k, v in setup.items()]
    lines += ["", "## Results", "",
              "Latency per action in ms (mean / p50 / p99); speedup = AR latency / method latency "
              f"(mean, same task and timing); deviation = mean |bin - AR bin| / exact-chunk match rate vs AR re-decoding the "
              "same observation; GFLOPs: estimated per action (VLA + drafter decoder passes); held = control ticks "
              "without a fresh action (realtime).", "",
              "| method | task | timing | success | latency ms | speedup | VLA passes / action | mean accepted | "
              "deviation vs AR | branch mix | GFLOPs / action | held |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    lines += [_row_line(r) for r in rows]
    lines += _time_split(rows)
    lines += ["", "## Plots", ""] + [f"![{p.stem}]({p.name})" for p in files]
    notes = doc.get("notes") or []
    if notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    summary = out / "summary.md"
    summary.write_text("\n".join(lines) + "\n")
    return [summary] + files
