"""A language model's saved scores re-planned another way (end layers kept, plan search, per-kind norm), over draws.

    python3 scripts/lm_replan_study.py --variant ends --seeds 0,1,2,3,4,5,6,7 --results results/smollm2-keep-end-layers
    python3 scripts/lm_replan_study.py --variant ends --model gemma3 --ratio 0.3 --seeds 1,2 \
        --work 'work/gemma3-s{seed}' --results results/gemma3-keep-end-layers-30
    python3 scripts/lm_replan_study.py --variant search --seeds 0,1,2,3,4,5,6,7 --results results/smollm2-plan-search
    python3 scripts/lm_replan_study.py --variant kind --seeds 0,1,2,3,4,5,6,7 --results results/smollm2-norm-scope
    python3 scripts/lm_replan_study.py --variant auto --seeds 0,1,2,3,4,5,6,7 --results results/smollm2-norm-scope-auto

Starts from `bench/smollm2.py --methods ukmp,llm-pruner-global --ratios 0.2 --seed S --work
work/smollm2-sS` runs (one per draw). Their saved scores are re-planned with `ukmp prune --scores`, so
a draw's plans differ only in how they were planned, never in the calibration pass:

- `ends`: UKMP with `--keep-end-layers llm-pruner` (LLM-Pruner's first and last layers left dense);
- `search`: every method with `--plan-search K` (beyond the paper): K plans, the scores' own and K-1
  perturbed, and the one with the lowest next-token loss on held-out windows of the calibration text;
- `kind`: UKMP with `--norm-scope kind` (beyond the paper): attention units and MLP channels
  normalised by their own means, as FLAP and UPop do, instead of one mean per modality;
- `auto`: UKMP with `--norm-scope auto` (beyond the paper): both scopes planned, the one with the lower
  next-token loss on held-out calibration windows kept.

The re-planned models are evaluated with the bench's own `ukmp evaluate --task perplexity` commands.
Every command runs as a subprocess, is recorded with its wall time, and is skipped when its output
exists. Writes RESULTS/README.md and summary.json: perplexity per draw and the orderings paired by draw.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from recovery_study import run as run_and_record

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
    if not output.exists():
        run_and_record(command, log)


def in_work(work: Path, compared: str, earlier: str) -> Path:
    """A file the bench made: in its `ukmp compare` folder, or where the bench put it before it ran compare."""
    path = work / "compare" / compared
    return path if path.exists() else work / earlier


def attention_cut(work: Path, model: str, tag: str) -> tuple[int, int]:
    """(attention units removed, layers that lost any) in a saved plan; the adapters name attention groups `*.attn`."""
    plan = in_work(work, f"artifacts/{model}-{tag}/pruning.json", f"pruned/{model}-{tag}/pruning.json")
    groups = json.loads(plan.read_text())["groups"]
    lost = [g["num_units"] - len(g["kept"]) for name, g in groups.items() if name.endswith(".attn")]
    return sum(lost), sum(1 for n in lost if n)


def perplexity(work: Path, model: str, tag: str, corpus: str) -> float:
    file = in_work(work, f"evals/{model}-{tag}--{corpus}.json", f"evals/{model}-{tag}--{corpus}--256x10.json")
    result = json.loads(file.read_text())
    return result["tasks"]["perplexity"]["perplexity"]


#: per --variant: the suffix of the re-planned models, what they are, and whether every method is re-planned
VARIANTS = {
    "ends": ("ends", "re-planned with `--keep-end-layers llm-pruner` (the first 4/32 and last 2/32 of the "
             "layers dense, the rest pruned harder to reach the same ratio)", False),
    "search": ("search", "re-planned with `--plan-search {k} --plan-search-samples {n}` (beyond the paper: "
               "{k} plans, the scores' own and {m} perturbed, and the one with the lowest next-token loss on {n} "
               "held-out 128-token windows of the calibration text)", True),
    "auto": ("auto", "re-planned with `--norm-scope auto` (beyond the paper: planned with one mean per modality and "
             "with one per kind of unit, keeping the plan with the lower next-token loss on the last 64 windows of "
             "the calibration order, which the scorer never read)", False),
    "kind": ("kind", "re-planned with `--norm-scope kind` (beyond the paper: attention units and MLP channels "
             "each divided by their own mean at every step, as FLAP and UPop do, instead of one mean for both)", False),
}  # fmt: skip


def variant_flags(args: argparse.Namespace, work: Path) -> list[str]:
    """The `ukmp prune` flags that make a variant's plan from saved scores."""
    if args.variant == "ends":
        return ["--keep-end-layers", "llm-pruner"]
    if args.variant == "kind":
        return ["--norm-scope", "kind"]
    calib = ["--calib", str(work / "data" / "fortunes-calib.jsonl"), "--seq-len", "128"]
    if args.variant == "auto":
        return ["--norm-scope", "auto", *calib]
    return [*calib, "--plan-search", str(args.candidates), "--plan-search-samples", str(args.samples)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", choices=sorted(VARIANTS), required=True)
    parser.add_argument("--model", choices=sorted(SETUPS), default="smollm2")
    parser.add_argument("--ratio", type=float, default=0.2, help="a ratio the bench ran")
    parser.add_argument("--seeds", default="0,1,2,3,4,5,6,7")
    parser.add_argument("--candidates", type=int, default=8, help="--plan-search K (variant search)")
    parser.add_argument("--samples", type=int, default=64, help="--plan-search-samples (variant search)")
    parser.add_argument(
        "--others", help="the other methods the bench ran, comma-separated (default: all of them; '' for UKMP alone)"
    )
    parser.add_argument("--work", default="work/smollm2-s{seed}", help="the bench's --work folder of each draw")
    parser.add_argument("--results", type=Path, required=True)
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    gguf, of, _, others = SETUPS[args.model]
    others = tuple(o for o in args.others.split(",") if o) if args.others is not None else others
    suffix, _, every_method = VARIANTS[args.variant]
    tag = f"{round(args.ratio * 100)}"
    replanned = ("ukmp", *others) if every_method else ("ukmp",)
    models = [m for base in ("ukmp", *others) for m in (base, *([f"{base}-{suffix}"] if base in replanned else []))]
    previous = args.results / "summary.json"  # a rerun skips finished commands: keep their record
    log: list[dict] = json.loads(previous.read_text())["commands"] if previous.is_file() else []
    table: dict[str, dict[str, dict[int, float]]] = {m: {c: {} for c in SETS} for m in models}
    cuts: dict[str, dict[int, tuple[int, int]]] = {}
    for seed in seeds:
        work = Path(args.work.format(seed=seed))
        for method in replanned:
            scores = in_work(work, f"scores/{method}.safetensors", f"pruned/{method}-{tag}/scores.safetensors")
            if method == "ukmp" and not scores.is_file():  # the bench saved the scores at its first ratio
                scores = next(work.glob("pruned/ukmp-*/scores.safetensors"), scores)
            if not scores.is_file():
                methods = ",".join(("ukmp", *others))
                bench = f"bench/smollm2.py --methods {methods} --ratios {args.ratio:g} --seed {seed}"
                print(f"error: {scores} is missing: run {bench} --work {work} first.")
                return 2
            pruned = work / "pruned" / f"{method}-{suffix}-{tag}"
            prune = ["ukmp", "prune", str(work / "model" / gguf), "--method", method, "--ratio", f"{args.ratio:g}"]
            prune += ["--seed", str(seed), "--of", of, "--scores", str(scores), *variant_flags(args, work)]
            run([*prune, "--out", str(pruned), "--no-progress"], pruned / "pruning.json", log)
            for corpus in SETS:
                out = work / "evals" / f"{method}-{suffix}-{tag}--{corpus}--256x10.json"
                data = work / "data" / f"{corpus}.jsonl"
                evaluate = ["ukmp", "evaluate", str(pruned), "--task", "perplexity", "--data", str(data)]
                window = ["--seq-len", "256", "--limit", "10", "--batch-size", "4"]
                run([*evaluate, *window, "--out", str(out), "--no-progress"], out, log)
        for model in models:
            for corpus in SETS:
                table[model][corpus][seed] = perplexity(work, model, tag, corpus)
            cuts.setdefault(model, {})[seed] = attention_cut(work, model, tag)
    summary = {"model": args.model, "ratio": args.ratio, "variant": args.variant, "seeds": seeds,
               "perplexity": table, "attention_cut": cuts, "commands": log}  # fmt: skip
    if args.variant == "search":
        summary["search"] = {"candidates": args.candidates, "samples": args.samples}
    args.results.mkdir(parents=True, exist_ok=True)
    write_json_atomic(args.results / "summary.json", summary)
    text = render(summary, args)
    write_text_atomic(args.results / "README.md", text)
    print(text)
    return 0


def render(summary: dict, args: argparse.Namespace) -> str:
    seeds, table = summary["seeds"], summary["perplexity"]
    _, of, title, others = SETUPS[args.model]
    others = tuple(o for o in args.others.split(",") if o) if args.others is not None else others
    suffix, what, every_method = VARIANTS[args.variant]
    what = what.format(k=args.candidates, n=args.samples, m=args.candidates - 1)
    command = f"python3 scripts/lm_replan_study.py --variant {args.variant} --seeds {','.join(map(str, seeds))}"
    command += f" --results {args.results}"
    if args.model != "smollm2":
        command += f" --model {args.model} --ratio {args.ratio:g} --work '{args.work}'"
    if args.others is not None:
        command += f" --others '{args.others}'"
    if args.variant == "search" and (args.candidates, args.samples) != (8, 64):
        command += f" --candidates {args.candidates} --samples {args.samples}"
    headline = {
        "ends": "UKMP with LLM-Pruner's end layers left dense",
        "search": "every method's plan searched",
        "kind": "UKMP normalised per kind of unit",
        "auto": "UKMP's normalisation scope chosen by calibration loss",
    }
    lines = [
        f"# {title} at {args.ratio:.0%} of {of} parameters: {headline[args.variant]}, over draws",
        "",
        f"`{command}`",
        "",
        f"`*-{suffix}`: each draw's saved scores {what}. Perplexity on 10 held-out windows of 256 tokens per set.",
        "Cells: mean [min–max], then each draw.",
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
    ours = f"ukmp-{suffix}"
    pairs = [(ours, "ukmp")] + [(f"{other}-{suffix}", other) for other in others if every_method]
    if every_method:
        pairs += [(ours, f"{other}-{suffix}") for other in others] + [("ukmp", other) for other in others]
    else:
        pairs += [(mine, other) for other in others for mine in (ours, "ukmp")]
    for better, worse in pairs:
        cells = []
        for corpus in SETS:
            b = [table[better][corpus][s] for s in seeds]
            w = [table[worse][corpus][s] for s in seeds]
            verdict, diff = paired_ordering([-v for v in b], [-v for v in w])  # lower is better
            cells.append(f"{verdict}: {-diff.mean:+.1f} [{-diff.max:+.1f}–{-diff.min:+.1f}]")
        lines.append(f"| {better} < {worse} | " + " | ".join(cells) + " |")
    lines += ["", "Attention units (key/value groups) each plan removes, and in how many layers, per draw:", ""]
    lines += ["| model | " + " | ".join(f"draw {s}" for s in seeds) + " |", "|---|" + "---|" * len(seeds)]
    for model, per_draw in summary["attention_cut"].items():
        lines.append(f"| {model} | " + " | ".join(f"{per_draw[s][0]} ({per_draw[s][1]})" for s in seeds) + " |")
    if summary["commands"]:
        minutes = sum(c["seconds"] for c in summary["commands"]) / 60
        lines += ["", f"The re-planning and evaluation commands of this run took {minutes:.1f} min (`summary.json`)."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
