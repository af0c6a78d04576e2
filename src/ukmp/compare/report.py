"""The results of one `ukmp compare` draw: a JSON record, a Markdown table and a quality-vs-ratio plot.

Written after every model (atomically: temporary file, then rename), so a long run can be read
while it goes and an interrupted one still has everything finished so far. The Markdown says, per
ratio and metric, which method is best and by how much UKMP trails when it does not win: a
comparison that hides its losses helps nobody choose a method.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ukmp.atomic import write_if_drawn, write_json_atomic, write_text_atomic
from ukmp.compare.config import CompareConfig
from ukmp.compare.layout import PLOT
from ukmp.compare.metrics import gain, lower_is_better
from ukmp.compare.task_vs_text_plot import TASK_VS_TEXT_PLOT, task_vs_text_figure
from ukmp.compare.text_eval import PERPLEXITIES
from ukmp.methods.registry import is_proposed
from ukmp.reporting import RECOVERED_SERIES, headline_metrics, quality_figure

RESULTS_FORMAT = "ukmp-compare/1"


def _metrics(row_eval: dict[str, Any] | None) -> dict[str, float]:
    if not row_eval:
        return {}
    # the tasks' headline numbers, then one perplexity per held-out text (a text comparison has only those)
    return {**headline_metrics(row_eval), **row_eval.get(PERPLEXITIES, {})}


def run_settings(c: CompareConfig) -> dict[str, Any]:
    """The settings the results record: the image-text ones, or for text calibration the text ones."""
    if c.text:
        return {
            "methods": list(c.methods),
            "ratios": list(c.ratios),
            "ratio_of": c.of,
            "calib": c.calib,
            "seq_len": c.seq_len,
            "num_samples": c.num_samples,
            "eval_text": list(c.eval_texts),
            "eval_seq_len": c.eval_seq_len,
            "eval_windows": c.eval_windows,
            "recover": c.recover,
            "seed": c.seed,
        }
    held_out = {"eval_text": list(c.eval_texts), "eval_seq_len": c.eval_seq_len, "eval_windows": c.eval_windows}
    return {
        **(held_out if c.eval_texts else {}),
        "methods": list(c.methods),
        "ratios": list(c.ratios),
        "ratio_of": c.of,
        "calib": c.calib,
        "calib_split": c.calib_split,
        "num_samples": c.num_samples,
        "eval": c.eval_data,
        "eval_split": c.eval_split,
        "tasks": list(c.tasks),
        "limit": c.limit,
        "caption_limit": c.caption_limit,
        "recover": c.recover,
        "seed": c.seed,
    }


def results_data(run) -> dict[str, Any]:
    """The JSON record: settings, the dense model's metrics and one entry per (method, ratio)."""

    c = run.config
    rows = []
    for row in run.rows:
        entry = {k: v for k, v in row.items() if k not in ("eval", "recovered_eval")}
        entry["metrics"] = _metrics(row.get("eval"))
        entry["eval_seconds"] = (row.get("eval") or {}).get("seconds")
        if row.get("recovered_eval") is not None:
            entry["recovered_metrics"] = _metrics(row["recovered_eval"])
        rows.append(entry)
    return {
        "format": RESULTS_FORMAT,
        "model": c.model,
        "settings": run_settings(c),
        "dense": {
            "metrics": _metrics(run.dense_eval),
            "params": run.dense.counts["total"] if getattr(run, "dense", None) else None,
        },
        "rows": rows,
        "command": c.extra.get("command"),
    }


#: why one draw's winners are provisional, on images (where the spread was measured) and on text
IMAGE_CAVEAT = (
    "One calibration draw: another draw can reorder methods that are close (at 50% on the shipped model",
    "UKMP moved by 30 VQA points between draws). `--seeds N` reports spreads and paired orderings.",
)
TEXT_CAVEAT = (
    "One calibration draw: another draw can reorder methods that are close. Lower perplexity is better.",
    "`--seeds N` reports spreads and paired orderings.",
)


def is_text_settings(s: dict[str, Any]) -> bool:
    """Whether recorded run settings are a text comparison's (held-out texts and no image-text evaluation data)."""
    return "eval_text" in s and "eval" not in s


def held_out_windows(s: dict[str, Any]) -> tuple[str, str]:
    """(the held-out texts by name, which of their windows): "fortunes, wordnet", "the first 10 windows"."""
    windows = "all windows" if s["eval_windows"] is None else f"the first {s['eval_windows']} windows"
    return ", ".join(Path(f).stem for f in s["eval_text"]), windows


def settings_line(s: dict[str, Any]) -> str:
    """The sentence under the title: the ratio basis, the calibration, the evaluation and the recovery."""
    if is_text_settings(s):
        window = f"{s['seq_len']}-token windows" if s["seq_len"] else "windows"
        held_out, windows = held_out_windows(s)
        return (
            f"Ratios are fractions of {s['ratio_of']} parameters removed. Calibration: {s['calib']} "
            f"({s['num_samples']} prefix-LM {window} per pass). Evaluation: perplexity on {held_out} "
            f"({windows} of {s['eval_seq_len']} tokens each; lower is better). Recovery: {s['recover']}."
        )
    return (
        f"Ratios are fractions of {s['ratio_of']} parameters removed. Calibration: {s['calib']} "
        f"({s['calib_split']}, {s['num_samples']} samples per pass). Evaluation: {s['eval']} {s['eval_split']}, "
        f"tasks {', '.join(s['tasks'])} ({records_used(s['limit'])}; captions {s['caption_limit']})"
        f"{held_out_text(s)}. Recovery: {s['recover']}."
    )


def held_out_text(s: dict[str, Any]) -> str:
    """', and the language model's perplexity on ...' for a VLM measured on held-out text too; else ''."""
    if not s.get("eval_text"):
        return ""
    held_out, windows = held_out_windows(s)
    return (
        f", and the language model's perplexity on {held_out} read alone ({windows} of {s['eval_seq_len']} "
        "tokens each; lower is better)"
    )


def records_used(limit: int | None) -> str:
    """'first 1000 records' or, for no limit, 'all records'."""
    return "all records" if limit is None else f"first {limit} records"


def _fmt(value: float | None, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}g}"


def results_markdown(data: dict[str, Any]) -> str:
    """A table per stage (pruned, recovered) and the best method per ratio and metric."""
    s = data["settings"]
    dense = data["dense"]["metrics"]
    metrics = list(dense) or sorted({m for r in data["rows"] for m in r["metrics"]})
    lines = [f"# ukmp compare: {data['model']}", "", settings_line(s)]
    if data.get("command"):
        lines += ["", "```", data["command"], "```"]
    header = (
        "| method | target | achieved | params | scoring s | shared calib s | peak MB | " + " | ".join(metrics) + " |"
    )
    rule = "|" + "---|" * (7 + len(metrics))
    lines += ["", "## Before recovery", "", header, rule]
    lines.append(
        f"| dense | 0 | 0 | {data['dense'].get('params') or 'n/a':,} | | | | "
        + " | ".join(_fmt(dense.get(m)) for m in metrics)
        + " |"
    )
    for r in data["rows"]:
        scoring = r.get("scoring") or {}
        lines.append(
            f"| {r['method']} | {r['target_ratio']:g} | {_fmt(r['achieved_ratio'])} | {r['params_after']:,} | "
            f"{_fmt(scoring.get('seconds'), 3)} | {_fmt(r.get('shared_calibration_seconds'), 3)} | "
            f"{_fmt(scoring.get('peak_memory_mb'), 4)} | "
            + " | ".join(_fmt(r["metrics"].get(m)) for m in metrics)
            + " |"
        )
    recovered = [r for r in data["rows"] if r.get("recovered_metrics")]
    if recovered:
        lines += ["", "## After recovery", "", "| method | target | recovery | " + " | ".join(metrics) + " |"]
        lines.append("|" + "---|" * (3 + len(metrics)))
        for r in recovered:
            lines.append(
                f"| {r['method']} | {r['target_ratio']:g} | {r['recovery']} | "
                + " | ".join(_fmt(r["recovered_metrics"].get(m)) for m in metrics)
                + " |"
            )
    lines += [
        "",
        "## Best method per ratio",
        "",
        *(TEXT_CAVEAT if is_text_settings(s) else IMAGE_CAVEAT),
        "",
    ]
    lines += _winners(data["rows"], metrics, "metrics", "before recovery")
    if recovered:
        lines += _winners(recovered, metrics, "recovered_metrics", "after recovery")
    notes = sorted({(r["method"], r["approximation"]) for r in data["rows"] if r.get("approximation")})
    if notes:
        lines += ["", "## Approximations", ""]
        lines += [f"- `{m}`: {text}." for m, text in notes]
    lines += [
        "",
        "Scoring s is each method's own scoring time; shared calib s is the shared calibration pass it",
        "read (activation statistics and/or plain-loss gradients, computed once for all baselines).",
        "UKMP's time is its own two passes (entropy, token-selected gradients). Peak MB is measured inside",
        "each method's own scoring, on its device: on a CPU the process's resident memory (the model",
        "included), on a GPU the allocator's peak (`ukmp.peak_memory`).",
        "",
    ]
    return "\n".join(lines)


def _winners(rows: list[dict[str, Any]], metrics: list[str], key: str, stage: str) -> list[str]:
    """Per ratio and metric: the best method, and whether the proposed method (each variant run) is it."""
    out = []
    for ratio in sorted({r["target_ratio"] for r in rows}):
        for metric in metrics:
            scored = [(r[key].get(metric), r["method"]) for r in rows if r["target_ratio"] == ratio]
            scored = [(v, m) for v, m in scored if v is not None]
            if not scored:
                continue
            best_value, best = (min if lower_is_better(metric) else max)(scored)
            proposed = [(v, m) for v, m in scored if is_proposed(m)]
            verdicts = []
            for value, name in proposed:
                if value == best_value:
                    ties = sorted(m for v, m in scored if v == best_value and m != name and not is_proposed(m))
                    verdicts.append(f"{name} ties with {', '.join(ties)}" if ties else f"{name} wins")
                else:
                    verdicts.append(
                        f"{name} does NOT win ({_fmt(value)}, {_fmt(gain(metric, best_value, value), 3)} behind)"
                    )
            if len(proposed) == 1 and proposed[0][0] == best_value:
                best = proposed[0][1]
            verdict = "; ".join(verdicts) or "UKMP not run"
            out.append(f"- {stage}, ratio {ratio:g}, {metric}: best {best} ({_fmt(best_value)}); {verdict}.")
    return out


def quality_points(data: dict[str, Any]) -> dict[str, list[tuple[float, dict[str, float], str]]]:
    """method -> [(achieved ratio, metrics, name)], dense at 0; recovered points as their own series.

    A recovered series ("flap + lora") starts at its first recovered ratio, not at the dense model:
    a line from the dense point to a recovered one would suggest a trajectory nobody measured.
    """
    points: dict[str, list[tuple[float, dict[str, float], str]]] = {}
    dense = data["dense"]["metrics"]
    for r in data["rows"]:
        if r.get("achieved_ratio") is None:
            continue
        line = points.setdefault(r["method"], [(0.0, dense, "dense")] if dense else [])
        line.append((r["achieved_ratio"], r["metrics"], r["name"]))
        if r.get("recovered_metrics"):
            label = f"{r['method']}{RECOVERED_SERIES}{r['recovery']}"
            points.setdefault(label, []).append((r["achieved_ratio"], r["recovered_metrics"], f"{r['name']}-recovered"))
    return {k: sorted(v, key=lambda p: p[0]) for k, v in points.items()}


def write_results(run) -> list[Path]:
    """results.json, results.md and (with two points or more) the plot, all atomically."""
    out = Path(run.out)
    data = results_data(run)
    write_json_atomic(out / "results.json", data)
    write_text_atomic(out / "results.md", results_markdown(data))
    files = [out / "results.md", out / "results.json"]
    points = quality_points(data)
    if write_if_drawn(out / PLOT, lambda tmp: quality_figure(points, tmp)):
        files.append(out / PLOT)
    series = {method: [(r, metrics) for r, metrics, name in line if name != "dense"] for method, line in points.items()}
    if write_if_drawn(out / TASK_VS_TEXT_PLOT, lambda tmp: task_vs_text_figure(data["dense"]["metrics"], series, tmp)):
        files.append(out / TASK_VS_TEXT_PLOT)
    return files
