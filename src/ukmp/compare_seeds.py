"""`ukmp compare --seeds N`: the comparison over N calibration draws, with spreads and paired orderings.

Each seed is an ordinary comparison run in OUT/seed-<s>/ (its own scores, artifacts, evaluations and
results, so a single seed can be read and resumed on its own); all of them share one loaded model and
one dense evaluation. OUT/results.json, results.md and quality_vs_ratio.png then aggregate: every
cell as mean [min-max] with the 95% t-interval of the mean, and every ordering between a UKMP method
and another method, paired by seed, as holds / does not hold / within noise (`ukmp.seed_stats`).
OUT/examples.html shows every draw's captions and answers on the same images, one draw at a time
(a switch; the first draw by default), and each seed folder has the page of its own draw.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import Any

from ukmp.atomic import write_if_drawn, write_json_atomic, write_text_atomic
from ukmp.compare import CompareConfig, CompareRun, check_compare_output
from ukmp.compare_report import records_used, results_data
from ukmp.examples_page.from_compare import write_compare_examples
from ukmp.methods.registry import is_proposed
from ukmp.seed_stats import paired_ordering, spread

SEEDS_FORMAT = "ukmp-compare-seeds/1"
PLOT = "quality_vs_ratio.png"
STAGES = (("metrics", "before recovery"), ("recovered_metrics", "after recovery"))


def seed_folder(out: str | Path, seed: int) -> Path:
    return Path(out) / f"seed-{seed}"


def run_compare(config: CompareConfig, *, overwrite: bool = False) -> dict[str, Any]:
    """One comparison (seeds = 1, into OUT as always) or N of them with the aggregate in OUT."""
    config.validate()
    if config.seeds == 1:
        return CompareRun(config, overwrite=overwrite).run()
    out = Path(config.out)
    check_compare_output(config, overwrite=overwrite)
    if overwrite and out.exists():
        shutil.rmtree(out)
    runs: list[CompareRun] = []
    seeds = [config.seed + k for k in range(config.seeds)]
    for k, seed in enumerate(seeds):
        print(f"=== seed {seed} ({k + 1} of {len(seeds)}) ===", flush=True)
        one = dataclasses.replace(config, seed=seed, seeds=1, out=str(seed_folder(out, seed)))
        run = CompareRun(one, shared=runs[0] if runs else None)
        run.run()
        runs.append(run)
        files = write_seed_results(config, [results_data(r) for r in runs])
        files += write_compare_examples(runs, out, by_draw=True)  # every draw's outputs; the page switches between them
    print(f"wrote {', '.join(str(f) for f in files)}")
    return {"seeds": seeds, "files": [str(f) for f in files]}


def aggregate(per_seed: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per (method, ratio) with each metric's values over the seeds and their spread.

    A metric's values keep the seed each came from (``<stage>_seeds``, parallel to them), so that
    orderings pair by seed; the draws a metric is missing from are listed (``<stage>_lacking``).
    """
    drawn = [data["settings"]["seed"] for data in per_seed]
    cells: dict[tuple[str, float], dict[str, Any]] = {}
    for data, seed in zip(per_seed, drawn):
        for row in data["rows"]:
            cell = cells.setdefault(
                (row["method"], row["target_ratio"]),
                {"method": row["method"], "target_ratio": row["target_ratio"], "achieved": [], "seeds": []},
            )
            cell["achieved"].append(row["achieved_ratio"])
            cell["seeds"].append(seed)
            cell.setdefault("recovery", row.get("recovery"))
            for key, _ in STAGES:
                for metric, value in (row.get(key) or {}).items():
                    cell.setdefault(key, {}).setdefault(metric, []).append(value)
                    cell.setdefault(f"{key}_seeds", {}).setdefault(metric, []).append(seed)
    out = []
    for cell in cells.values():
        for key, _ in STAGES:
            if key in cell:
                cell[f"{key}_spread"] = {m: spread(v).as_dict() for m, v in cell[key].items()}
                lacking = {m: [s for s in drawn if s not in had] for m, had in cell[f"{key}_seeds"].items()}
                lacking = {m: seeds for m, seeds in lacking.items() if seeds}
                if lacking:
                    cell[f"{key}_lacking"] = lacking
        out.append(cell)
    return out


def by_seed(cell: dict[str, Any], key: str, metric: str) -> dict[int, float]:
    """``metric``'s value in each draw of ``cell`` that has it, by seed."""
    return dict(zip(cell[f"{key}_seeds"][metric], cell[key][metric], strict=True))


def orderings(cells: list[dict[str, Any]], key: str = "metrics") -> list[dict[str, Any]]:
    """Every (UKMP method, other method) pair at every ratio and metric, paired by seed.

    Only the draws where both have the metric pair up; where some do not, the ordering names the
    seeds it paired over and the ones left unpaired.
    """
    out = []
    for ratio in sorted({c["target_ratio"] for c in cells}):
        at = [c for c in cells if c["target_ratio"] == ratio and key in c]
        for a in at:
            if not is_proposed(a["method"]):
                continue
            for b in at:
                if b is a or (is_proposed(b["method"]) and b["method"] < a["method"]):
                    continue  # each pair of UKMP methods once
                for metric in a[key]:
                    if metric not in b[key]:
                        continue
                    va, vb = by_seed(a, key, metric), by_seed(b, key, metric)
                    common = sorted(va.keys() & vb.keys())
                    if not common:
                        continue
                    verdict, diff = paired_ordering([va[s] for s in common], [vb[s] for s in common])
                    ordering = {
                        "ratio": ratio,
                        "better": a["method"],
                        "worse": b["method"],
                        "metric": metric,
                        "verdict": verdict,
                        "difference": diff.as_dict(),
                    }
                    unpaired = sorted((set(a["seeds"]) | set(b["seeds"])) - set(common))
                    if unpaired:
                        ordering.update(seeds=common, unpaired=unpaired)
                    out.append(ordering)
    return out


def _cell_text(values: dict[str, Any] | None, digits: int) -> str:
    if not values:
        return "n/a"
    s = spread(values)
    half = "" if s.n < 2 else f" ±{s.ci95:.{digits}f}"
    return s.text(digits) + half


def _digits(metric: str) -> int:
    return 1 if "%" in metric else 3


def seeds_markdown(config: CompareConfig, data: dict[str, Any]) -> str:
    """Tables of mean [min-max] ±95% half-width per cell, then the paired orderings."""
    first = data["per_seed"][0]
    s = first["settings"]
    metrics = list(first["dense"]["metrics"]) or sorted({m for c in data["cells"] for m in c.get("metrics", {})})
    lines = [
        f"# ukmp compare over {len(data['seeds'])} seeds: {data['model']}",
        "",
        f"Seeds {', '.join(map(str, data['seeds']))}: each draws its own calibration samples ({s['calib']}, split "
        f"{s['calib_split']}, {s['num_samples']} per pass) and prefix splits. Evaluation: {s['eval']} "
        f"{s['eval_split']}, {records_used(s['limit'])} per task, captions on {s['caption_limit']} images. "
        f"Ratios are fractions of {s['ratio_of']} parameters removed. Recovery: {s['recover']}.",
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
            lines.append(
                f"| {o['ratio']:g} | {o['better']} > {o['worse']} | {o['metric']} | {o['verdict']} | "
                f"{d['mean']:+.{digits}f} [{d['min']:+.{digits}f}–{d['max']:+.{digits}f}]{half}{_paired_over(o)} |"
            )
    lines += [
        "",
        "An ordering holds when the 95% t-interval of the mean per-seed difference lies above zero, does not",
        "hold when it lies below, and is within noise otherwise.",
        "",
    ]
    return "\n".join(lines)


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
    axes[0][-1].legend(loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize=8)
    fig.suptitle("quality vs ratio: mean over seeds, bars min–max")
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return True
