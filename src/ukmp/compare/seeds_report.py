"""The aggregate of `ukmp compare --seeds N`: results.json, results.md and the plot with min-max bars.

Every cell as mean [min-max] with the 95% t-interval of the mean, then every paired ordering as
holds / does not hold / within noise (`ukmp.compare.seeds`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ukmp.atomic import write_if_drawn, write_json_atomic, write_text_atomic
from ukmp.compare.config import CompareConfig
from ukmp.compare.figures import finish_figure
from ukmp.compare.layout import PLOT
from ukmp.compare.metrics import better_than, lower_is_better
from ukmp.compare.report import held_out_text, held_out_windows, is_text_settings, records_used
from ukmp.compare.seeds import SEEDS_FORMAT, STAGES, aggregate, orderings
from ukmp.compare.task_vs_text_plot import TASK_VS_TEXT_PLOT, task_vs_text_figure
from ukmp.seed_stats import spread


def _cell_text(values: dict[str, Any] | None, digits: int) -> str:
    if not values:
        return "n/a"
    s = spread(values)
    half = "" if s.n < 2 else f" ±{s.ci95:.{digits}f}"
    return s.text(digits) + half


def _digits(metric: str) -> int:
    return 1 if "%" in metric or lower_is_better(metric) else 3


def seeds_markdown(config: CompareConfig, data: dict[str, Any]) -> str:
    """Tables of mean [min-max] ±95% half-width per cell, then the paired orderings."""
    first = data["per_seed"][0]
    s = first["settings"]
    metrics = list(first["dense"]["metrics"]) or sorted({m for c in data["cells"] for m in c.get("metrics", {})})
    lines = [
        f"# ukmp compare over {len(data['seeds'])} seeds: {data['model']}",
        "",
        seeds_settings_line(data["seeds"], s),
        "",
        "Cells: mean [min–max] over the seeds ±95% t-interval half-width of the mean. Per-seed tables: "
        "`seed-<s>/results.md`.",
    ]
    if config.extra.get("command"):
        lines += ["", "```", config.extra["command"], "```"]
    dense = first["dense"]["metrics"]
    for key, stage in STAGES:
        cells = [c for c in data["cells"] if key in c]
        if not cells:
            continue
        lines += ["", f"## {stage.capitalize()}", "", "| method | target | achieved | " + " | ".join(metrics) + " |"]
        lines.append("|" + "---|" * (3 + len(metrics)))
        if key == "metrics":
            lines.append("| dense | 0 | 0 | " + " | ".join(f"{dense.get(m, float('nan')):.4g}" for m in metrics) + " |")
        for c in sorted(cells, key=lambda c: (c["target_ratio"], c["method"])):
            name = c["method"] + (f" + {c['recovery']}" if key == "recovered_metrics" and c.get("recovery") else "")
            achieved = sum(c["achieved"]) / len(c["achieved"])
            values = [_cell_text(c[key].get(m), _digits(m)) for m in metrics]
            lines.append(f"| {name} | {c['target_ratio']:g} | {achieved:.4f} | " + " | ".join(values) + " |")
        lines += _lacking_lines(cells, key)
        lines += ["", f"### Orderings {stage}, paired by seed", ""]
        lines += ["| ratio | ordering | metric | verdict | mean difference [min–max] ±95% |", "|---|---|---|---|---|"]
        for o in data["orderings"][key]:
            d = o["difference"]
            digits = _digits(o["metric"])
            half = "" if d["n"] < 2 else f" ±{d['ci95']:.{digits}f}"
            ordering = f"{o['better']} {better_than(o['metric'])} {o['worse']}"
            lines.append(
                f"| {o['ratio']:g} | {ordering} | {o['metric']} | {o['verdict']} | "
                f"{d['mean']:+.{digits}f} [{d['min']:+.{digits}f}–{d['max']:+.{digits}f}]{half}{_paired_over(o)} |"
            )
    lines += [
        "",
        "An ordering holds when the 95% t-interval of the mean per-seed difference lies above zero, does not",
        "hold when it lies below, and is within noise otherwise.",
        *(TEXT_ORDERINGS if "eval_text" in s else ()),
        "",
    ]
    return "\n".join(lines)


#: how a perplexity ordering reads (only a text comparison's tables say it)
TEXT_ORDERINGS = ("Perplexity: lower is better, so `a < b` holds when b's perplexity minus a's is above zero.",)


def seeds_settings_line(seeds: list[int], s: dict[str, Any]) -> str:
    """The sentence under the title: the draws, the calibration, the evaluation, the ratio basis, the recovery."""
    drawn = f"Seeds {', '.join(map(str, seeds))}: each draws its own calibration samples"
    if is_text_settings(s):
        held_out, windows = held_out_windows(s)
        return (
            f"{drawn} ({s['calib']}, {s['num_samples']} prefix-LM windows of {s['seq_len'] or 'default'} tokens per "
            f"pass) and prefix splits. Evaluation: perplexity on {held_out} ({windows} of {s['eval_seq_len']} "
            f"tokens each). Ratios are fractions of {s['ratio_of']} parameters removed. Recovery: {s['recover']}."
        )
    return (
        f"{drawn} ({s['calib']}, split "
        f"{s['calib_split']}, {s['num_samples']} per pass) and prefix splits. Evaluation: {s['eval']} "
        f"{s['eval_split']}, {records_used(s['limit'])} per task, captions on {s['caption_limit']} images"
        f"{held_out_text(s)}. "
        f"Ratios are fractions of {s['ratio_of']} parameters removed. Recovery: {s['recover']}."
    )


def _lacking_lines(cells: list[dict[str, Any]], key: str) -> list[str]:
    """One line per (cell, metric) that some draws lack: its mean is over the others, and pairs skip them."""
    lines = []
    for c in sorted(cells, key=lambda c: (c["target_ratio"], c["method"])):
        for metric, seeds in (c.get(f"{key}_lacking") or {}).items():
            which = ("seed " if len(seeds) == 1 else "seeds ") + ", ".join(map(str, seeds))
            lines.append(f"- {c['method']} at {c['target_ratio']:g} has no {metric} in {which}.")
    return ["", *lines] if lines else []


def _paired_over(ordering: dict[str, Any]) -> str:
    if "unpaired" not in ordering:
        return ""
    unpaired = ", ".join(map(str, ordering["unpaired"]))
    return f" (paired over seeds {', '.join(map(str, ordering['seeds']))}; unpaired: {unpaired})"


def write_seed_results(config: CompareConfig, per_seed: list[dict[str, Any]]) -> list[Path]:
    """OUT/results.json, results.md and the plot with min-max bars, atomically."""
    out = Path(config.out)
    cells = aggregate(per_seed)
    data = {
        "format": SEEDS_FORMAT,
        "model": config.model,
        "seeds": [d["settings"]["seed"] for d in per_seed],
        "cells": cells,
        "orderings": {key: orderings(cells, key) for key, _ in STAGES},
        "per_seed": per_seed,
        "command": config.extra.get("command"),
    }
    write_json_atomic(out / "results.json", data)
    write_text_atomic(out / "results.md", seeds_markdown(config, data))
    files = [out / "results.md", out / "results.json"]
    if write_if_drawn(out / PLOT, lambda tmp: spread_figure(per_seed[0]["dense"]["metrics"], cells, tmp)):
        files.append(out / PLOT)
    series: dict[str, list] = {}
    for c in cells:  # the mean over the draws of each (method, ratio)
        means = {metric: spread(values).mean for metric, values in c.get("metrics", {}).items()}
        series.setdefault(c["method"], []).append((c["target_ratio"], means))
    dense = per_seed[0]["dense"]["metrics"]
    if write_if_drawn(out / TASK_VS_TEXT_PLOT, lambda tmp: task_vs_text_figure(dense, series, tmp)):
        files.append(out / TASK_VS_TEXT_PLOT)
    return files


def spread_figure(dense: dict[str, float], cells: list[dict[str, Any]], path: Path) -> bool:
    """Mean quality vs mean achieved ratio per method, bars from min to max over the seeds."""
    metrics = [m for m in dense if any(m in c.get("metrics", {}) for c in cells)]
    if not metrics:
        return False
    import matplotlib as mpl

    mpl.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(metrics), figsize=(5.5 * len(metrics), 4.2), squeeze=False)
    methods = sorted({c["method"] for c in cells})
    colours = plt.get_cmap("tab10" if len(methods) <= 10 else "tab20")
    for ax, metric in zip(axes[0], metrics):
        for i, method in enumerate(methods):
            for key, marker, style in (("metrics", "o", "-"), ("recovered_metrics", "*", "--")):
                mine = sorted(
                    (c for c in cells if c["method"] == method and metric in c.get(key, {})),
                    key=lambda c: c["target_ratio"],
                )
                if not mine:
                    continue
                xs = [sum(c["achieved"]) / len(c["achieved"]) for c in mine]
                stats = [spread(c[key][metric]) for c in mine]
                ys = [s.mean for s in stats]
                err = [[s.mean - s.min for s in stats], [s.max - s.mean for s in stats]]
                if key == "metrics":
                    xs, ys = [0.0, *xs], [dense[metric], *ys]
                    err = [[0.0, *err[0]], [0.0, *err[1]]]
                label = method if key == "metrics" else f"{method} + {mine[0].get('recovery')}"
                ax.errorbar(xs, ys, yerr=err, marker=marker, linestyle=style, color=colours(i), capsize=3, label=label)
        ax.set_xlabel("fraction of parameters removed (mean achieved)")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
    return finish_figure(fig, axes, "quality vs ratio: mean over seeds, bars min–max", path)
