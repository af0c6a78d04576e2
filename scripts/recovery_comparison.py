"""Recovery of the shipped model pruned to 50% with UKMP: LPD vs plain LoRA vs none (+ Table B ablations).

    python3 scripts/recovery_comparison.py                 # LPD, plain LoRA, no recovery
    python3 scripts/recovery_comparison.py --ablations     # + KL+Task, Task, w/o progressive

Every step is an ordinary `ukmp` command, run as a subprocess and recorded verbatim (with its wall
time) in `results/recovery/README.md`; a step whose output exists is skipped, so an interrupted run
continues where it stopped:

1. `ukmp prune shapes-blip2-t5 --method ukmp --ratio 0.5 --calib shapes --out runs/recovery/pruned`
2. `ukmp evaluate` the dense and the pruned model (VQA + captioning on the world's val split)
3. per variant: `ukmp recover runs/recovery/pruned --data shapes ... --merge`, then `ukmp evaluate` of
   `OUT/merged` (merging is exact, so this is the adapter's quality)

All variants see the same recovery pairs in the same order, at the same batch size and learning rate.
The default budget, 11,900 pairs at batch 20, gives every variant exactly 595 optimizer steps: the
LPD sub-phases get Table A's shares (400, 400, 1600, 800, 1600, 1600, 5500 pairs), each a multiple
of the batch. The generated data lives in a private cache (`runs/recovery/cache`, via UKMP_CACHE) so
that regenerating the shapes train split at this size cannot disturb other jobs using the default one.
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

VARIANTS = {
    "lpd": ("LPD: recall LoRA, MSE (Table A sub-phases) + KL + task", []),
    "plain-lora": (
        "plain LoRA, task loss, one phase (the baselines' recovery)",
        ["--plain-lora", "--schedule", "task"],
    ),
}
ABLATIONS = {
    "kl-task": ("recall LoRA, KL + task, one phase (Table B: KL+Task)", ["--schedule", "kl-task"]),
    "task": ("recall LoRA, task loss only, one phase (Table B: Task)", ["--schedule", "task"]),
    "no-progressive": (
        "recall LoRA, MSE + KL + task at once, one phase (Table B: w/o progressive)",
        ["--schedule", "no-progressive"],
    ),
}


def run(cmd: list[str], log: list[dict]) -> float:
    """Run one command (streaming its output), record it, and return its wall time."""
    text = shlex.join(cmd)
    print(f"\n$ {text}", flush=True)
    start = time.time()
    subprocess.run(cmd, check=True)
    seconds = time.time() - start
    log.append({"command": text, "seconds": round(seconds, 1)})
    return seconds


def evaluate(model: str, out: Path, args, log: list[dict]) -> dict:
    if not out.is_file():
        cmd = ["ukmp", "evaluate", model, "--data", "shapes", "--task", "vqa", "--task", "caption"]
        cmd += ["--out", str(out), "--no-progress", "--threads", str(args.threads)]
        if args.eval_limit:
            cmd += ["--limit", str(args.eval_limit)]
        run(cmd, log)
    return json.loads(out.read_text())


def scores(results: dict) -> dict:
    tasks = results["tasks"]
    caption = tasks["caption"]["metrics"]
    return {
        "vqa_accuracy": tasks["vqa"]["accuracy"],
        "CIDEr": caption["CIDEr"],
        "BLEU-4": caption["BLEU-4"],
        "METEOR": caption["METEOR"],
        "ROUGE-L": caption["ROUGE-L"],
        "vqa_questions": tasks["vqa"].get("num_questions"),
        "caption_images": tasks["caption"].get("num_images"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=11900, help="recovery pairs (the data budget)")
    parser.add_argument("--batch-size", type=int, default=20)
    parser.add_argument("--lr", type=float, default=2e-5, help="the paper's learning rate")
    parser.add_argument("--warmup-steps", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--eval-limit", type=int, default=None, help="first N images / questions per task")
    parser.add_argument("--ablations", action="store_true", help="also run Table B's LPD ablations")
    parser.add_argument("--only", default=None, help="comma-separated variants to run (default: all chosen)")
    parser.add_argument("--model", default="shapes-blip2-t5", help="dense model to prune and recover")
    parser.add_argument("--calib-samples", type=int, default=1000, help="UKMI calibration samples per pass")
    parser.add_argument("--runs", type=Path, default=Path("runs/recovery"), help="where models and runs go")
    parser.add_argument("--results", type=Path, default=Path("results/recovery"), help="where the figures go")
    args = parser.parse_args()
    runs, results = args.runs, args.results
    os.environ.setdefault("UKMP_CACHE", str((runs / "cache").resolve()))
    runs.mkdir(parents=True, exist_ok=True)
    results.mkdir(parents=True, exist_ok=True)
    log_file = results / "commands.json"
    log: list[dict] = json.loads(log_file.read_text()) if log_file.is_file() else []

    pruned = runs / "pruned"
    if not (pruned / "pruning.json").is_file():
        cmd = ["ukmp", "prune", args.model, "--method", "ukmp", "--ratio", "0.5", "--calib", "shapes"]
        if args.calib_samples != 1000:
            cmd += ["--num-samples", str(args.calib_samples)]
        run([*cmd, "--out", str(pruned), "--overwrite"], log)
    table = {
        "dense": (
            f"dense {args.model} (reference)",
            scores(evaluate(args.model, results / "eval_dense.json", args, log)),
        ),
        "none": (
            "pruned 50% (UKMP), no recovery",
            scores(evaluate(str(pruned), results / "eval_none.json", args, log)),
        ),
    }
    variants = {**VARIANTS, **(ABLATIONS if args.ablations else {})}
    if args.only:
        variants = {k: v for k, v in variants.items() if k in args.only.split(",")}
    recovery_info = {}
    for name, (label, extra) in variants.items():
        out = runs / name
        if not (out / "merged" / "pruning.json").is_file():
            cmd = [
                "ukmp",
                "recover",
                str(pruned),
                "--data",
                "shapes",
                "--out",
                str(out),
                "--max-samples",
                str(args.samples),
                "--batch-size",
                str(args.batch_size),
                "--lr",
                str(args.lr),
                "--warmup-steps",
                str(args.warmup_steps),
                "--threads",
                str(args.threads),
                "--merge",
                *extra,
            ]
            cmd += ["--resume"] if (out / "checkpoints" / "last" / "state.json").is_file() else ["--overwrite"]
            run(cmd, log)
        info = json.loads((out / "adapter_config.json").read_text())["recovery"]
        recovery_info[name] = {k: info[k] for k in ("steps", "seconds", "samples", "final_loss")}
        table[name] = (label, scores(evaluate(str(out / "merged"), results / f"eval_{name}.json", args, log)))
        log_file.write_text(json.dumps(log, indent=1) + "\n")

    log_file.write_text(json.dumps(log, indent=1) + "\n")
    summary = {"settings": vars(args), "scores": table, "recovery": recovery_info}
    (results / "summary.json").write_text(json.dumps(summary, indent=1, default=str) + "\n")
    (results / "README.md").write_text(readme(table, recovery_info, log, args))
    print(f"\nwrote {results / 'README.md'}")


def readme(table: dict, recovery: dict, log: list[dict], args) -> str:
    lines = [
        "# Recovery after 50% UKMP pruning of the shipped model",
        "",
        f"Generated by `python3 scripts/recovery_comparison.py{' --ablations' if args.ablations else ''}` "
        f"(recovery budget: {args.samples} shapes-world train pairs in prefix-LM form, batch {args.batch_size}, "
        f"lr {args.lr}, {args.warmup_steps} warm-up steps per sub-phase, seed 42, {args.threads} CPU threads). "
        "Scores: the world's val split, beam 5"
        + (f", first {args.eval_limit} images/questions" if args.eval_limit else "")
        + ".",
        "",
        "| model | VQA acc % | CIDEr | BLEU-4 | METEOR | ROUGE-L | steps | recovery time |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, (label, s) in table.items():
        rec = recovery.get(name)
        steps = str(rec["steps"]) if rec else "-"
        secs = f"{rec['seconds'] / 60:.1f} min" if rec else "-"
        lines.append(
            f"| {label} | {s['vqa_accuracy']:.2f} | {s['CIDEr']:.3f} | {s['BLEU-4']:.3f} | {s['METEOR']:.3f} | "
            f"{s['ROUGE-L']:.3f} | {steps} | {secs} |"
        )
    lines += ["", "## Commands (in the order they ran, with wall time)", ""]
    lines += [f"- `{e['command']}` ({e['seconds']:.0f} s)" for e in log]
    lines += [
        "",
        f"Data came from a private cache (`UKMP_CACHE={args.runs / 'cache'}`); the world is deterministic, so "
        f"the default cache gives the same pairs. Loss curves: `{args.runs}/<variant>/loss_curve.png`.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
