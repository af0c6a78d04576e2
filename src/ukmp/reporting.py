"""`ukmp report RUN_DIR`: what pruning did to the model, how good and how fast it is, in one page.

Nothing in the run folder (RUN_DIR) is changed but the report folder (``RUN_DIR/report`` unless
told otherwise). Its layout is deliberately plain, so a run made by hand, by scripts or by
``ukmp demo`` all qualify::

    RUN_DIR/
      <artifact>/pruning.json ...   every direct subfolder with a pruning.json is a pruned model
      *.json                        evaluation results in the `ukmp evaluate` format
                                    ("format": "ukmp-eval/1"); their "model" field names the
                                    artifact (its folder name or a path ending in it; `ukmp
                                    evaluate`'s "NAME (PATH)" form is understood) or the
                                    dense base model (the artifacts' base model reference or its
                                    last path component); results naming neither are listed
                                    but not plotted
      bench.json                    `ukmp bench --out` results (any *.json whose "format" is
                                    "ukmp-bench/1")

The report (``report.md`` with PNGs under ``figures/``) has: a table of the artifacts; per
component a heatmap of the fraction of heads and of channels each layer keeps (layers across,
one row per artifact, the count kept written in each cell); the quality table and, when there
are at least two points, quality vs achieved pruning ratio with one line per method (the dense
model is each line's ratio-0 point); the benchmark tables and a speedup-vs-ideal chart when a
bench file is present; a link to the examples page (examples.html and examples.md: every model's
outputs side by side, `ukmp.examples_page`) when the folder has one (a compare run's examples.json)
or language-model results that kept continuations. The output folder is written atomically
(temporary folder, then rename).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ukmp.artifact import MANIFEST, read_manifest
from ukmp.atomic import replace_folder
from ukmp.components import prunable_components, title_of
from ukmp.errors import UserError
from ukmp.output_guard import temporary_prefix

EVAL_FORMAT_PREFIX = "ukmp-eval/"
KIND_TITLES = {
    "attn": "self-attention heads",
    "cross_attn": "cross-attention heads",
    "mlp": "MLP channels",
    "text_mlp": "text MLP channels",
}
GROUP_NAME = re.compile(r"^(?P<component>[a-z_]+)\.layers\.(?P<layer>\d+)\.(?P<kind>[a-z_]+)$")


@dataclass
class Artifact:
    name: str
    path: Path
    manifest: dict[str, Any]

    @property
    def method(self) -> str:
        return str((self.manifest.get("method") or {}).get("name") or "unknown")

    @property
    def ratio(self) -> float | None:
        value = self.manifest.get("achieved_ratio_of_all", self.manifest.get("achieved_ratio"))
        return None if value is None else float(value)

    @property
    def base_reference(self) -> str | None:
        return (self.manifest.get("base_model") or {}).get("reference")

    @property
    def label(self) -> str:
        ratio = "?" if self.ratio is None else f"{self.ratio:.0%}"
        return f"{self.name} ({self.method}, {ratio})"

    def kept(self) -> dict[tuple[str, str], dict[int, tuple[int, int]]]:
        """(component, kind) -> layer -> (kept units, original units), from the manifest's plan."""
        out: dict[tuple[str, str], dict[int, tuple[int, int]]] = {}
        for name, entry in (self.manifest.get("groups") or {}).items():
            match = GROUP_NAME.match(name)
            if not match:
                continue
            key = (match["component"], match["kind"])
            out.setdefault(key, {})[int(match["layer"])] = (len(entry["kept"]), int(entry["num_units"]))
        return out


@dataclass
class EvalResult:
    file: Path
    data: dict[str, Any]
    artifact: Artifact | None = None
    dense: bool = False

    @property
    def model(self) -> str:
        return str(self.data.get("model") or self.file.stem)


@dataclass
class Run:
    root: Path
    artifacts: list[Artifact] = field(default_factory=list)
    results: list[EvalResult] = field(default_factory=list)
    benches: list[tuple[Path, dict[str, Any]]] = field(default_factory=list)


# -------------------------------------------------------------------------------------------- scan


def scan_run(run_dir: str | os.PathLike) -> Run:
    """Read artifacts, evaluation results and bench files of a run folder (layout in the module doc)."""
    from ukmp.benchmark.options import BENCH_FORMAT

    root = Path(run_dir)
    if not root.is_dir():
        raise UserError(f"{root} is not a folder; give the run folder that holds the pruned models and results.")
    run = Run(root)
    # `ukmp compare` keeps its artifacts in artifacts/ and its evaluations in evals/; a hand-made run
    # folder holds both at the top level
    folders = [root, root / "artifacts"]
    for sub in sorted(p for folder in folders if folder.is_dir() for p in folder.iterdir() if p.is_dir()):
        if (sub / MANIFEST).is_file():
            run.artifacts.append(Artifact(sub.name, sub, read_manifest(sub)))
    for file in sorted([*root.glob("*.json"), *(root / "evals").glob("*.json")]):
        try:
            data = json.loads(file.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            continue  # not ours; a run folder may hold other JSON
        if not isinstance(data, dict):
            continue
        if data.get("format") == BENCH_FORMAT:
            run.benches.append((file, data))
        elif str(data.get("format", "")).startswith(EVAL_FORMAT_PREFIX) and isinstance(data.get("tasks"), dict):
            run.results.append(_match(EvalResult(file, data), run.artifacts))
    if not (run.artifacts or run.results or run.benches):
        raise UserError(
            f"{root} holds no pruned models (subfolders with pruning.json), evaluation results or bench.json; "
            "give the folder your ukmp prune / evaluate / bench outputs went to."
        )
    return run


def _names(model: str) -> set[str]:
    """The names a results file's "model" field may mean: itself, and for `ukmp evaluate`'s
    "NAME (PATH)" form both parts; each also by its last path component."""
    parts = [model]
    match = re.fullmatch(r"(.+) \((.+)\)", model)
    if match:
        parts += [match[1], match[2]]
    out = set()
    for part in parts:
        part = part.strip().rstrip("/")
        out |= {part, Path(part).name}
    return out - {""}


def _match(result: EvalResult, artifacts: Sequence[Artifact]) -> EvalResult:
    names = _names(result.model)
    for artifact in artifacts:
        if artifact.name in names:
            result.artifact = artifact
            return result
    for artifact in artifacts:
        base = (artifact.base_reference or "").rstrip("/")
        if base and (base in names or Path(base).name in names):
            result.dense = True
            return result
    return result


# ----------------------------------------------------------------------------------------- quality


def headline_metrics(data: Mapping[str, Any]) -> dict[str, float]:
    """The headline number of every task in a results file (units as the harness writes them)."""
    tasks = data.get("tasks") or {}
    out: dict[str, float] = {}
    if "vqa" in tasks and tasks["vqa"].get("accuracy") is not None:
        out["VQA accuracy (%)"] = float(tasks["vqa"]["accuracy"])
    if "gqa" in tasks and tasks["gqa"].get("accuracy") is not None:
        out["GQA accuracy (%)"] = float(tasks["gqa"]["accuracy"])
    caption = (tasks.get("caption") or {}).get("metrics") or {}
    for name in ("CIDEr", "BLEU-4"):
        if caption.get(name) is not None:
            out[name] = float(caption[name])
    retrieval = tasks.get("retrieval") or {}
    for name in ("TR@1", "IR@1"):
        if retrieval.get(name) is not None:
            out[f"{name} (%)"] = float(retrieval[name])
    return out


def quality_points(run: Run) -> dict[str, list[tuple[float, dict[str, float], str]]]:
    """method -> [(achieved ratio, metrics, model name)], the dense results at ratio 0 in every method."""
    dense = [r for r in run.results if r.dense]
    methods = sorted({r.artifact.method for r in run.results if r.artifact is not None})
    out: dict[str, list[tuple[float, dict[str, float], str]]] = {}
    for method in methods:
        points = [(0.0, headline_metrics(r.data), r.model) for r in dense]
        for r in run.results:
            if r.artifact is not None and r.artifact.method == method and r.artifact.ratio is not None:
                points.append((r.artifact.ratio, headline_metrics(r.data), r.model))
        out[method] = sorted(points, key=lambda p: p[0])
    return out


# ----------------------------------------------------------------------------------------- figures


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=110, layout="constrained")


def heatmap_figure(component: str, artifacts: Sequence[Artifact], path: Path) -> bool:
    """One PNG: per group kind of ``component``, fraction kept per layer (x) and artifact (y)."""
    import numpy as np

    kinds: dict[str, dict[str, dict[int, tuple[int, int]]]] = {}
    for artifact in artifacts:
        for (comp, kind), layers in artifact.kept().items():
            if comp == component:
                kinds.setdefault(kind, {})[artifact.name] = layers
    if not kinds:
        return False
    order = sorted(kinds, key=lambda k: (list(KIND_TITLES).index(k) if k in KIND_TITLES else 99, k))
    rows = [a for a in artifacts if any(a.name in kinds[k] for k in order)]
    n_layers = max(max(layers) + 1 for kind in kinds.values() for layers in kind.values())
    per_row = 0.42
    height = sum(1.1 + per_row * len(rows) for _ in order) + 0.6
    width = min(max(8.0, 4.5 + 0.55 * n_layers + max(len(a.label) for a in rows) * 0.06), 22)
    fig = _figure(width, height)
    axes = fig.subplots(len(order), 1, squeeze=False)[:, 0]
    image = None
    for ax, kind in zip(axes, order, strict=True):
        grid = np.full((len(rows), n_layers), np.nan)
        text: dict[tuple[int, int], str] = {}
        for i, artifact in enumerate(rows):
            for layer, (kept, total) in kinds[kind].get(artifact.name, {}).items():
                grid[i, layer] = kept / total
                text[(i, layer)] = f"{kept}" if total > 99 else f"{kept}/{total}"
        image = ax.imshow(grid, vmin=0.0, vmax=1.0, cmap="viridis", aspect="auto", interpolation="nearest")
        if len(rows) * n_layers <= 400:
            for (i, layer), label in text.items():
                colour = "white" if grid[i, layer] < 0.55 else "black"
                ax.text(layer, i, label, ha="center", va="center", fontsize=7, color=colour)
        ax.set_title(f"{title_of(component)}: {KIND_TITLES.get(kind, kind)} kept per layer")
        ax.set_xticks(range(n_layers))
        ax.set_xlabel("layer")
        ax.set_yticks(range(len(rows)), [a.label for a in rows])
        ax.set_ylabel("pruned model")
    fig.colorbar(image, ax=list(axes), label="fraction kept (cell: units kept)", shrink=0.9)
    fig.savefig(path)
    return True


RECOVERED_SERIES = " + "
"""Joins a method and its recovery in a series label ("flap + lora"); `quality_figure` splits on it."""


def quality_figure(points: Mapping[str, list[tuple[float, dict[str, float], str]]], path: Path) -> bool:
    """Quality metric vs achieved pruning ratio, one line per method; False when under two points.

    A recovered series ("ukmp + lpd") takes its method's colour with a dashed line and a star, so the
    before/after pair of a method reads as one colour; the legend sits outside the axes so that it
    never hides a point.
    """
    metrics = sorted({m for pts in points.values() for _, values, _ in pts for m in values})
    if not metrics or sum(len(p) for p in points.values()) < 2:
        return False
    import matplotlib as mpl

    cols = min(len(metrics), 3)
    n_rows = -(-len(metrics) // cols)
    fig = _figure(4.4 * cols + 2.2, 3.6 * n_rows)
    axes = fig.subplots(n_rows, cols, squeeze=False).reshape(-1)
    markers = "osD^vPXhp<>"
    palette = mpl.colormaps["tab10"].colors
    bases = list(dict.fromkeys(label.split(RECOVERED_SERIES)[0] for label in points))
    for ax, metric in zip(axes, metrics, strict=False):
        for label, pts in points.items():
            base = bases.index(label.split(RECOVERED_SERIES)[0])
            recovered = RECOVERED_SERIES in label
            xs = [x for x, values, _ in pts if metric in values]
            ys = [values[metric] for _, values, _ in pts if metric in values]
            if xs:
                ax.plot(
                    xs,
                    ys,
                    color=palette[base % len(palette)],
                    linestyle="--" if recovered else "-",
                    marker="*" if recovered else markers[base % len(markers)],
                    markersize=11 if recovered else 5,
                    label=label,
                )
        ax.set_title(f"{metric} vs pruning ratio")
        ax.set_xlabel("fraction of all parameters removed")
        ax.set_ylabel(metric)
        ax.set_xlim(left=-0.02)
        ax.grid(alpha=0.3)
    for ax in axes[len(metrics) :]:
        ax.set_visible(False)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right upper", fontsize=8, title="method")
    fig.savefig(path)
    return True


def bench_figure(bench: Mapping[str, Any], path: Path) -> bool:
    """Measured speedup over the dense model per operation, with the ideal (FLOPs) speedup marked."""
    from ukmp.benchmark.options import OPERATION_TITLES, OPERATIONS

    models = [m for m in bench["models"] if m["kind"] != "dense"]
    if not models:
        return False
    batches = bench["settings"]["batch_sizes"]
    fig = _figure(max(7.5, 1.3 * len(models) + 5), 3.3 * len(batches))
    axes = fig.subplots(len(batches), 1, squeeze=False)[:, 0]
    ops = [op for op in OPERATIONS if all(op in m["ideal_speedup"] for m in models)]  # LMs have no encode
    width = 0.8 / len(ops)
    for ax, batch in zip(axes, batches, strict=True):
        for j, op in enumerate(ops):
            xs = [i + (j - 1) * width for i in range(len(models))]
            measured = [m["batches"][str(batch)]["speedup"][op] for m in models]
            ideal = [m["ideal_speedup"][op] or 0.0 for m in models]
            ax.bar(xs, measured, width=width, label=f"{OPERATION_TITLES[op]} (measured)", color=f"C{j}")
            ax.scatter(
                xs, ideal, marker="_", s=400, color="black", zorder=3, label="ideal (FLOPs ratio)" if j == 0 else None
            )
        ax.axhline(1.0, color="grey", linestyle="--", linewidth=1)
        ax.set_xticks(range(len(models)), [m["name"] for m in models], rotation=15, ha="right", fontsize=8)
        ax.set_ylabel(f"speedup over {bench['reference']}")
        env = bench["environment"]
        ax.set_title(f"Batch {batch}: speedup over the dense model ({env['device']}, {env['dtype']})")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right upper", fontsize=8)
    fig.savefig(path)
    return True


# ---------------------------------------------------------------------------------------- markdown


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def _params(manifest: Mapping[str, Any]) -> str:
    params = manifest.get("parameters") or {}
    before, after = (params.get("before") or {}).get("total"), (params.get("after") or {}).get("total")
    return "–" if before is None or after is None else f"{before:,} → {after:,}"


def kept_summary(artifact: Artifact) -> dict[str, str]:
    """component -> 'heads 40/64, channels 2,100/4,096' (totals over layers)."""
    totals: dict[str, dict[str, list[int]]] = {}
    for (component, kind), layers in artifact.kept().items():
        unit = "heads" if "attn" in kind else "channels"
        acc = totals.setdefault(component, {}).setdefault(unit, [0, 0])
        for kept, total in layers.values():
            acc[0] += kept
            acc[1] += total
    return {
        c: ", ".join(f"{unit} {k:,}/{n:,}" for unit, (k, n) in sorted(units.items(), reverse=True))
        for c, units in totals.items()
    }


def report_markdown(run: Run, figures: Mapping[str, str], pages: Mapping[str, str] | None = None) -> str:
    """The report; ``pages`` names the examples page's files in the report folder ("html", "markdown"), if any,
    and says whether its answers are marked ("marked")."""
    from ukmp.benchmark.markdown import bench_markdown

    lines = [
        f"# ukmp report: {run.root.name}",
        "",
        f"Run folder `{run.root}`: {len(run.artifacts)} pruned model(s), {len(run.results)} evaluation result(s), "
        f"{len(run.benches)} benchmark file(s).",
        "",
    ]
    if pages:
        lines += [
            "## Examples",
            "",
            f"What each model says, next to the dense model and the references{pages.get('marked', '')}: "
            f"[{pages['html']}]({pages['html']}) (opens from disk; a switch chooses the ratio) and "
            f"[{pages['markdown']}]({pages['markdown']}).",
            "",
        ]
    if run.artifacts:
        lines += [
            "## Pruned models",
            "",
            "| model | method | target ratio | achieved (of all parameters) | parameters | base model |",
            "|---|---|---:|---:|---:|---|",
        ]
        for a in run.artifacts:
            target = a.manifest.get("target_ratio")
            lines.append(
                f"| {a.name} | {a.method} | {'–' if target is None else f'{target:g}'} | {_pct(a.ratio)} | "
                f"{_params(a.manifest)} | {a.base_reference or '–'} |"
            )
        components = [c for c in prunable_components() if f"kept-{c}" in figures]
        lines += [
            "",
            "## Kept heads and channels per layer",
            "",
            "Each cell is the fraction of one layer's heads (or MLP channels) the model keeps; the number in the "
            "cell is the count kept (with the original count when small).",
            "",
            "| model | " + " | ".join(title_of(c) for c in components) + " |",
            "|---|" + "---|" * len(components),
        ]
        for a in run.artifacts:
            summary = kept_summary(a)
            lines.append(f"| {a.name} | " + " | ".join(summary.get(c, "not pruned") for c in components) + " |")
        lines.append("")
        for c in components:
            lines += [f"![{title_of(c)}: kept per layer]({figures[f'kept-{c}']})", ""]
    if run.results:
        metrics = sorted({m for r in run.results for m in headline_metrics(r.data)})
        lines += [
            "## Quality",
            "",
            "| results file | model | method | pruning ratio | " + " | ".join(metrics) + " |",
            "|---|---|---|---:|" + "---:|" * len(metrics),
        ]
        ordered = sorted(run.results, key=lambda r: (r.artifact.ratio or 0.0) if r.artifact else (-1 if r.dense else 2))
        for r in ordered:
            values = headline_metrics(r.data)
            if r.artifact is not None:
                method, ratio = r.artifact.method, _pct(r.artifact.ratio)
            else:
                method, ratio = ("dense", _pct(0.0)) if r.dense else ("? (no artifact of that name)", "–")
            cells = " | ".join("–" if m not in values else f"{values[m]:.4g}" for m in metrics)
            lines.append(f"| {r.file.name} | {r.model} | {method} | {ratio} | {cells} |")
        limits = {r.data.get("limit") for r in run.results}
        splits = {r.data.get("split") for r in run.results}
        lines += [
            "",
            f"Split(s): {', '.join(map(str, sorted(splits, key=str)))}; record limit(s): "
            f"{', '.join(map(str, sorted(limits, key=str)))}. Accuracies and recalls in %, caption metrics as "
            "pycocoevalcap reports them.",
            "",
        ]
        if "quality" in figures:
            lines += [f"![Quality vs pruning ratio]({figures['quality']})", ""]
    for i, (file, bench) in enumerate(run.benches):
        lines += [f"## Speed and memory (`{file.name}`)", ""]
        if bench.get("command"):
            lines += [f"Command: `{' '.join(bench['command'])}`", ""]
        lines.append(bench_markdown(bench, heading_level=3))
        if f"bench-{i}" in figures:
            lines += [f"![Speedup vs ideal]({figures[f'bench-{i}']})", ""]
    lines += [
        "## About this report",
        "",
        "Made by `ukmp report` from the run folder: pruned models are its subfolders with `pruning.json`, "
        "evaluation results its `*.json` files in the `ukmp evaluate` format (matched to a model by their `model` "
        "field), benchmark results its `ukmp bench --out` files.",
        "",
    ]
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------- writing


def _check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise UserError(f"{out} exists and is not a folder; choose another --out.")
    if out.is_dir() and any(out.iterdir()) and not (out / "report.md").is_file():
        raise UserError(f"{out} exists and is not a ukmp report folder; choose another --out.")


def _examples_page(run: Run, folder: Path) -> dict[str, str]:
    """Write the run's examples page into the report folder; its file names, or {} when the run has none."""
    from ukmp.examples_page import PAGE_HTML, PAGE_MARKDOWN, write_page
    from ukmp.examples_page.from_results import report_document

    page = report_document(run)
    if page is None:
        return {}
    write_page(folder, *page)
    marked = ", wrong answers marked" if page[0]["kind"] == "image" else ""
    return {"html": PAGE_HTML, "markdown": PAGE_MARKDOWN, "marked": marked}


def write_report(run_dir: str | os.PathLike, out: str | os.PathLike | None = None) -> Path:
    """Render the report of ``run_dir`` into ``out`` (default ``run_dir/report``); returns ``out``."""
    run = scan_run(run_dir)
    out = Path(out) if out is not None else run.root / "report"
    _check_out(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=temporary_prefix(out), dir=out.parent))
    try:
        (tmp / "figures").mkdir()
        figures: dict[str, str] = {}
        for component in prunable_components():
            name = f"figures/kept-{component}.png"
            if heatmap_figure(component, run.artifacts, tmp / name):
                figures[f"kept-{component}"] = name
        if quality_figure(quality_points(run), tmp / "figures/quality-vs-ratio.png"):
            figures["quality"] = "figures/quality-vs-ratio.png"
        for i, (_, bench) in enumerate(run.benches):
            name = f"figures/bench-speedup-{i}.png"
            if bench_figure(bench, tmp / name):
                figures[f"bench-{i}"] = name
        pages = _examples_page(run, tmp)
        (tmp / "report.md").write_text(report_markdown(run, figures, pages))
        replace_folder(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
