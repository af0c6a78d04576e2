"""Recovery at 50% of a `ukmp compare --seeds` run: LPD's budget curve, then LPD vs plain LoRA vs none over seeds.

    python3 scripts/recovery_study.py --from runs/final-compare

Starts from the artifacts of a `ukmp compare --seeds N` run (`FROM/seed-<s>/artifacts/<method>-50`:
one pruned model per calibration draw), so the pruning being recovered is exactly the one the
compare tables report. Every step is an ordinary `ukmp recover` / `ukmp evaluate` command, run as a
subprocess and recorded verbatim with its wall time; a step whose output exists is skipped, so an
interrupted study continues where it stopped.

1. **Budget curve** (first seed, UKMP): LPD at each of `--budgets` optimizer steps.
2. **The budget**: the smallest curve budget whose VQA accuracy is within `--flat` points of the
   curve's best (a rule fixed before the curve is seen; `--budget` overrides it).
3. **Equal budget, every seed**: no recovery, UKMP + LPD (the paper), UKMP + plain LoRA (task loss
   alone: the baselines' recovery), each baseline method + plain LoRA, and, reported apart because it
   goes beyond the paper, UKMP + LPD on captions mixed with the world's question-answer pairs.

Recovery trains on the calibration source (`alttext`, the role CC595K plays in the paper) with the
paper's learning rate, warm-up and LoRA settings; `--seed s` of the recovery matches the calibration
draw. Evaluation: the world's val split (never test), first 1,000 questions and 200 images, as the
compare tables. The figures land in `RESULTS/README.md`, `summary.json` and `budget_curve.png`.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

from ukmp.atomic import write_text_atomic
from ukmp.data.index import resolve_data_dir
from ukmp.seed_stats import paired_ordering, spread

RATIO_TAG = "50"
LOG_FILE = "commands.json"
METRICS = ("vqa_accuracy", "CIDEr", "BLEU-4")


def run(cmd: list[str], log: list[dict]) -> None:
    """Run one command (streaming its output) and record it with its wall time."""
    text = shlex.join(cmd)
    print(f"\n$ {text}", flush=True)
    start = time.time()
    subprocess.run(cmd, check=True)
    log.append({"command": text, "seconds": round(time.time() - start, 1)})


def command_lines(log: list[dict], script: str | None = None) -> list[str]:
    """A study README's commands section: the study's own command line (``script``, with this
    process's arguments), then each command in the order it ran, with its wall time (or, for an entry
    whose time was not taken here, its ``took`` text)."""
    lines = ["", f"Made by `{shlex.join(['python3', script, *sys.argv[1:]])}`."] if script else []
    lines += ["", "## Commands (in the order they ran, with wall time)", ""]
    for entry in log:
        took = entry.get("took") or f"{entry['seconds']:.0f} s"
        lines.append(f"- `{entry['command']}` ({took})")
    return lines


def load_log(results: Path) -> list[dict]:
    """The commands earlier runs of a study recorded (RESULTS/commands.json): a rerun that reuses their
    outputs runs nothing again, and its README must still name what made them."""
    file = results / LOG_FILE
    return json.loads(file.read_text()) if file.is_file() else []


def save_log(results: Path, log: list[dict]) -> None:
    results.mkdir(parents=True, exist_ok=True)
    write_text_atomic(results / LOG_FILE, json.dumps(log, indent=1) + "\n")


def evaluate(model: Path, out: Path, args: argparse.Namespace, log: list[dict]) -> dict[str, float]:
    """VQA on the first `--vqa-limit` questions and captions on the first `--caption-limit` images of val."""
    for task, limit in (("vqa", args.vqa_limit), ("caption", args.caption_limit)):
        file = out.with_name(f"{out.stem}.{task}.json")
        if not file.is_file():
            cmd = ["ukmp", "evaluate", str(model), "--data", "shapes", "--split", "val", "--task", task]
            run([*cmd, "--limit", str(limit), "--out", str(file), "--no-progress", "--threads", str(args.threads)], log)
    vqa = json.loads(out.with_name(f"{out.stem}.vqa.json").read_text())["tasks"]["vqa"]
    caption = json.loads(out.with_name(f"{out.stem}.caption.json").read_text())["tasks"]["caption"]["metrics"]
    return {"vqa_accuracy": vqa["accuracy"], "CIDEr": caption["CIDEr"], "BLEU-4": caption["BLEU-4"]}


def recover(pruned: Path, out: Path, steps: int, seed: int, extra: list[str], args, log: list[dict]) -> dict:
    """`ukmp recover` for `steps` optimizer steps (resumed if a checkpoint exists); returns its record."""
    if not (out / "merged" / "pruning.json").is_file():
        cmd = ["ukmp", "recover", str(pruned), "--data", "shapes", "--split", args.split, "--out", str(out)]
        cmd += ["--max-samples", str(steps * args.batch_size), "--batch-size", str(args.batch_size)]
        cmd += ["--seed", str(seed), "--threads", str(args.threads), "--merge", "--no-progress", *extra]
        cmd += ["--resume"] if (out / "checkpoints" / "last" / "state.json").is_file() else ["--overwrite"]
        run(cmd, log)
    info = json.loads((out / "adapter_config.json").read_text())["recovery"]
    return {k: info.get(k) for k in ("steps", "seconds", "samples")}


VARIANTS = {
    # name: (method whose artifact is recovered, label, extra flags, beyond the paper)
    "ukmp+lpd": ("ukmp", "UKMP + LPD (recall LoRA, Table A sub-phases)", [], False),
    "ukmp+lora": ("ukmp", "UKMP + plain LoRA, task loss", ["--plain-lora", "--schedule", "task"], False),
    "upop+lora": ("upop", "UPop + plain LoRA, task loss", ["--plain-lora", "--schedule", "task"], False),
    "flap+lora": ("flap", "FLAP + plain LoRA, task loss", ["--plain-lora", "--schedule", "task"], False),
    "ukmp+lpd+vqa": ("ukmp", "UKMP + LPD, captions mixed with 50% VQA pairs", ["--vqa-fraction", "0.5"], True),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="source", type=Path, required=True, help="a `ukmp compare --seeds` run")
    parser.add_argument("--seeds", default="0,1,2", help="calibration draws (seed-<s> folders) to recover")
    parser.add_argument("--budgets", default="250,1000,3000", help="LPD budget curve, in optimizer steps")
    parser.add_argument("--budget", type=int, default=None, help="equal budget for the seeds (default: rule)")
    parser.add_argument("--flat", type=float, default=1.0, help="VQA points within the curve's best")
    parser.add_argument("--variants", default="ukmp+lpd,ukmp+lora,upop+lora,ukmp+lpd+vqa", help="at the equal budget")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--split", default="alttext", help="recovery data split of the shapes world")
    parser.add_argument("--vqa-limit", type=int, default=1000)
    parser.add_argument("--caption-limit", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--curve-only", action="store_true", help="stop after the budget curve")
    parser.add_argument("--runs", type=Path, default=Path("runs/recovery-study"))
    parser.add_argument("--results", type=Path, default=Path("results/recovery-study"))
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    budgets = sorted(int(b) for b in args.budgets.split(","))
    variants = [v for v in args.variants.split(",") if v]
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        parser.error(f"unknown variants {unknown}; choose from {', '.join(VARIANTS)}")
    os.environ.setdefault("UKMP_CACHE", str((args.runs / "cache").resolve()))
    args.runs.mkdir(parents=True, exist_ok=True)
    args.results.mkdir(parents=True, exist_ok=True)
    log = load_log(args.results)
    # One pool for every run: the split generated once at the largest size any run reads, so that
    # every variant at a budget draws its pairs (seeded shuffle, first N) from the same pool.
    resolve_data_dir("shapes", args.split, max([*budgets, args.budget or 0]) * args.batch_size)

    def artifact(seed: int, method: str) -> Path:
        path = args.source / f"seed-{seed}" / "artifacts" / f"{method}-{RATIO_TAG}"
        if not (path / "pruning.json").is_file():
            sys.exit(f"{path} is not a pruned artifact; run `ukmp compare ... --seeds` with {method} at 0.5 first.")
        return path

    evals = args.runs / "evals"
    dense = evaluate(Path(_dense_model(args.source)), evals / "dense.json", args, log)
    first = seeds[0]
    curve = [{"steps": 0, **evaluate(artifact(first, "ukmp"), evals / f"seed-{first}-none.json", args, log)}]
    for steps in budgets:
        out = args.runs / f"curve/lpd-{steps}"
        record = recover(artifact(first, "ukmp"), out, steps, first, [], args, log)
        curve.append({"steps": steps, **record, **evaluate(out / "merged", evals / f"curve-{steps}.json", args, log)})
        save_log(args.results, log)
    best = max(p["vqa_accuracy"] for p in curve[1:])
    chosen = args.budget or min(p["steps"] for p in curve[1:] if p["vqa_accuracy"] >= best - args.flat)
    summary = {
        "settings": {
            **vars(args),
            "source": str(args.source),
            "runs": str(args.runs),
            "results": str(args.results),
            "model": _dense_model(args.source),
            "command": shlex.join(["python3", "scripts/recovery_study.py", *sys.argv[1:]]),
        },
        "dense": dense,
        "curve": curve,
        "budget": chosen,
        "cells": {},
    }
    if not args.curve_only:
        cells: dict[str, dict] = {"none": {"label": "no recovery (UKMP)", "beyond_paper": False, "per_seed": {}}}
        for seed in seeds:
            cells["none"]["per_seed"][seed] = evaluate(
                artifact(seed, "ukmp"), evals / f"seed-{seed}-none.json", args, log
            )
            for name in variants:
                method, label, extra, beyond = VARIANTS[name]
                out = args.runs / f"seed-{seed}/{name}-{chosen}"
                if seed == first and name == "ukmp+lpd" and chosen in budgets:
                    out = args.runs / f"curve/lpd-{chosen}"
                record = recover(artifact(seed, method), out, chosen, seed, extra, args, log)
                metrics = evaluate(out / "merged", evals / f"seed-{seed}-{name}-{chosen}.json", args, log)
                cell = cells.setdefault(name, {"label": label, "beyond_paper": beyond, "per_seed": {}})
                cell["per_seed"][seed] = {**metrics, "minutes": round(record["seconds"] / 60, 1)}
                save_log(args.results, log)
        summary["cells"] = cells
    save_log(args.results, log)
    (args.results / "summary.json").write_text(json.dumps(summary, indent=1, default=str) + "\n")
    _plot(curve, dense, args.results / "budget_curve.png")
    (args.results / "README.md").write_text(readme(summary, log, seeds))
    print(f"\nwrote {args.results / 'README.md'}")
    return 0


def _dense_model(source: Path) -> str:
    return json.loads((source / "results.json").read_text())["model"]


def _plot(curve: list[dict], dense: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    steps = [p["steps"] for p in curve]
    for ax, metric, name in ((axes[0], "vqa_accuracy", "VQA accuracy (%)"), (axes[1], "CIDEr", "CIDEr")):
        ax.plot(steps, [p[metric] for p in curve], "o-", label="UKMP 50% + LPD")
        ax.axhline(dense[metric], color="grey", ls="--", label="dense")
        ax.set_xlabel("LPD optimizer steps (0 = no recovery)")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _cell_text(values: list[float], digits: int) -> str:
    s = spread(values)
    return s.text(digits) + (f" ±{s.ci95:.{digits}f}" if s.n > 1 else "")


def readme(summary: dict, log: list[dict], seeds: list[int]) -> str:
    dense, curve, settings = summary["dense"], summary["curve"], summary["settings"]
    lines = [
        f"# Recovery at 50% on `{settings.get('model', 'shapes-blip2-t5')}`: budget curve, and LPD vs plain LoRA "
        "vs none over seeds",
        "",
        f"Pruned models: `{settings['source']}` (one UKMP / baseline artifact at 50% per calibration draw). "
        f"Recovery data: the world's `{settings['split']}` split (CC595K's role), batch {settings['batch_size']}, "
        "the paper's lr 2e-5 with 50 warm-up steps per sub-phase, r = 8, α = 16; recovery seed = calibration "
        f"seed. Evaluation: val, first {settings['vqa_limit']} questions and {settings['caption_limit']} images. "
        f"Dense: VQA {dense['vqa_accuracy']:.1f}%, CIDEr {dense['CIDEr']:.3f}.",
        "",
        "```",
        settings.get("command") or "python3 scripts/recovery_study.py --from " + settings["source"],
        "```",
        "",
        f"## LPD budget curve (seed {seeds[0]})",
        "",
        "| steps | pairs | VQA % | CIDEr | BLEU-4 | minutes |",
        "|---|---|---|---|---|---|",
    ]
    for p in curve:
        minutes = f"{p['seconds'] / 60:.1f}" if p.get("seconds") else "-"
        lines.append(
            f"| {p['steps']} | {p['steps'] * settings['batch_size']} | {p['vqa_accuracy']:.1f} | {p['CIDEr']:.3f} | "
            f"{p['BLEU-4']:.3f} | {minutes} |"
        )
    lines += ["", "![budget curve](budget_curve.png)", ""]
    lines.append(
        f"Budget for the seeds: **{summary['budget']} steps**, the smallest budget within {settings['flat']:g} VQA "
        "points of the curve's best (rule fixed before the curve ran)."
    )
    cells = summary["cells"]
    if cells:
        lines += [
            "",
            f"## Equal budget ({summary['budget']} steps), seeds {', '.join(map(str, seeds))}",
            "",
            "Cells: mean [min–max] ±95% t half-width over the seeds.",
            "",
            "| recovery | VQA % | retention of dense VQA | CIDEr | BLEU-4 | minutes per run |",
            "|---|---|---|---|---|---|",
        ]
        for cell in cells.values():
            rows = [cell["per_seed"][s] for s in seeds if s in cell["per_seed"]]
            vqa = [r["vqa_accuracy"] for r in rows]
            minutes = [r["minutes"] for r in rows if "minutes" in r]
            label = cell["label"] + (" *(beyond the paper)*" if cell["beyond_paper"] else "")
            retention = 100 * spread(vqa).mean / dense["vqa_accuracy"]
            lines.append(
                f"| {label} | {_cell_text(vqa, 1)} | {retention:.0f}% | {_cell_text([r['CIDEr'] for r in rows], 3)} | "
                f"{_cell_text([r['BLEU-4'] for r in rows], 3)} | {f'{spread(minutes).mean:.1f}' if minutes else '-'} |"
            )
        lines += ["", "Orderings, paired by seed (95% t-interval of the mean difference):", ""]
        if "ukmp+lpd" in cells:
            for other in cells:
                if other == "ukmp+lpd":
                    continue
                common = [s for s in seeds if s in cells[other]["per_seed"] and s in cells["ukmp+lpd"]["per_seed"]]
                for metric in ("vqa_accuracy", "CIDEr"):
                    a = [cells["ukmp+lpd"]["per_seed"][s][metric] for s in common]
                    b = [cells[other]["per_seed"][s][metric] for s in common]
                    verdict, diff = paired_ordering(a, b)
                    lines.append(
                        f"- UKMP + LPD > {cells[other]['label']} on {metric}: **{verdict}** "
                        f"({diff.mean:+.2f} ±{diff.ci95:.2f})"
                    )
    lines += [*command_lines(log), ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
