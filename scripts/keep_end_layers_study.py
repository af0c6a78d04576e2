"""UKMP on a deep language model with LLM-Pruner's end layers left dense, over calibration draws.

    python3 scripts/keep_end_layers_study.py --seeds 0,1,2,3,4,5,6,7 --results results/smollm2-keep-end-layers
    python3 scripts/keep_end_layers_study.py --model gemma3 --ratio 0.3 --seeds 1,2 \
        --work work/gemma3-s{seed} --results results/gemma3-keep-end-layers

Starts from `bench/smollm2.py --methods ukmp,llm-pruner-global --ratios 0.2 --seed S --work
work/smollm2-sS` runs (one per draw): their saved UKMP scores are re-planned with `ukmp prune
--scores ... --keep-end-layers llm-pruner` (no new calibration pass, so the two UKMP plans of a draw
differ only in the frozen layers) and evaluated with the same `ukmp evaluate --task perplexity`
commands as the bench. Every command runs as a subprocess, is recorded with its wall time, and is
skipped when its output exists. Writes RESULTS/README.md and summary.json: perplexity per draw and the
orderings paired by draw.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

from ukmp.atomic import write_json_atomic, write_text_atomic
from ukmp.seed_stats import paired_ordering, spread

SETS = ("fortunes-eval", "wordnet-eval")
#: per --model: (GGUF file name in the bench's work folder, --of, title, the other methods the bench ran)
SETUPS = {
    "smollm2": ("SmolLM2-135M-Instruct.Q4_1.gguf", "all", "SmolLM2-135M", ("llm-pruner-global",)),
    "gemma3": ("gemma-3-270m-q4_k_m.gguf", "prunable", "Gemma-3-270M", ("llm-pruner-global", "wanda-sp")),
}


def run(command: list[str], output: Path, log: list[dict]) -> None:
    """Run one ukmp command unless its output exists; record it."""
    if output.exists():
        return
    started = time.time()
    subprocess.run(command, check=True)
    log.append({"command": shlex.join(command), "seconds": round(time.time() - started, 1)})


def perplexity(work: Path, model: str, tag: str, corpus: str) -> float:
    result = json.loads((work / "evals" / f"{model}-{tag}--{corpus}--256x10.json").read_text())
    return result["tasks"]["perplexity"]["perplexity"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=sorted(SETUPS), default="smollm2")
    parser.add_argument("--ratio", type=float, default=0.2, help="a ratio the bench ran")
    parser.add_argument("--seeds", default="0,1,2,3,4,5,6,7")
    parser.add_argument("--work", default="work/smollm2-s{seed}", help="the bench's --work folder of each draw")
    parser.add_argument("--results", type=Path, default=Path("results/smollm2-keep-end-layers"))
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    gguf, of, _, others = SETUPS[args.model]
    tag = f"{round(args.ratio * 100)}"
    models = ("ukmp", "ukmp-ends", *others)
    log: list[dict] = []
    table: dict[str, dict[str, dict[int, float]]] = {m: {c: {} for c in SETS} for m in models}
    for seed in seeds:
        work = Path(args.work.format(seed=seed))
        scores = work / "pruned" / f"ukmp-{tag}" / "scores.safetensors"
        scores = scores if scores.is_file() else next(work.glob("pruned/ukmp-*/scores.safetensors"), scores)
        if not scores.is_file():
            bench = f"bench/smollm2.py --methods ukmp,{','.join(others)} --ratios {args.ratio:g} --seed {seed}"
            print(f"error: {scores} is missing: run {bench} --work {work} first.")
            return 2
        pruned = work / "pruned" / f"ukmp-ends-{tag}"
        prune = ["ukmp", "prune", str(work / "model" / gguf), "--method", "ukmp", "--ratio", f"{args.ratio:g}"]
        prune += ["--seed", str(seed), "--of", of, "--scores", str(scores), "--keep-end-layers", "llm-pruner"]
        prune += ["--out", str(pruned)]
        run([*prune, "--no-progress"], pruned / "pruning.json", log)
        for corpus in SETS:
            out = work / "evals" / f"ukmp-ends-{tag}--{corpus}--256x10.json"
            data = work / "data" / f"{corpus}.jsonl"
            evaluate = ["ukmp", "evaluate", str(pruned), "--task", "perplexity", "--data", str(data)]
            window = ["--seq-len", "256", "--limit", "10", "--batch-size", "4"]
            run([*evaluate, *window, "--out", str(out), "--no-progress"], out, log)
        for model in models:
            for corpus in SETS:
                table[model][corpus][seed] = perplexity(work, model, tag, corpus)
    summary = {"model": args.model, "ratio": args.ratio, "seeds": seeds, "perplexity": table, "commands": log}
    args.results.mkdir(parents=True, exist_ok=True)
    write_json_atomic(args.results / "summary.json", summary)
    text = render(summary, args)
    write_text_atomic(args.results / "README.md", text)
    print(text)
    return 0


def render(summary: dict, args: argparse.Namespace) -> str:
    seeds, table = summary["seeds"], summary["perplexity"]
    _, of, title, others = SETUPS[args.model]
    command = f"python3 scripts/keep_end_layers_study.py --seeds {','.join(map(str, seeds))} --results {args.results}"
    if args.model != "smollm2":
        command += f" --model {args.model} --ratio {args.ratio:g} --work {args.work}"
    lines = [
        f"# {title} at {args.ratio:.0%} of {of} parameters: UKMP with LLM-Pruner's end layers left dense, over draws",
        "",
        f"`{command}`",
        "",
        "`ukmp-ends`: each draw's UKMP scores re-planned with `--keep-end-layers llm-pruner` (the first 4/32 and",
        "last 2/32 of the layers dense, the rest pruned harder to reach the same ratio). Perplexity on 10 held-out",
        "windows of 256 tokens per set. Cells: mean [min–max], then each draw.",
        "",
        "| model | " + " | ".join(SETS) + " |",
        "|---|" + "---|" * len(SETS),
    ]
    for model in table:
        cells = []
        for corpus in SETS:
            values = [table[model][corpus][s] for s in seeds]
            cells.append(f"{spread(values).text(1)} ({', '.join(f'{v:.1f}' for v in values)})")
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    lines += ["", "Paired by draw (lower perplexity is better; difference = first − second, 95% t-interval):", ""]
    lines += ["| ordering | " + " | ".join(SETS) + " |", "|---|" + "---|" * len(SETS)]
    pairs = [("ukmp-ends", "ukmp")] + [(ours, other) for other in others for ours in ("ukmp-ends", "ukmp")]
    for better, worse in pairs:
        cells = []
        for corpus in SETS:
            b = [table[better][corpus][s] for s in seeds]
            w = [table[worse][corpus][s] for s in seeds]
            verdict, diff = paired_ordering([-v for v in b], [-v for v in w])  # lower is better
            cells.append(f"{verdict}: {-diff.mean:+.1f} [{-diff.max:+.1f}–{-diff.min:+.1f}]")
        lines.append(f"| {better} < {worse} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
