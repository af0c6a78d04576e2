"""UKMP on the shipped model: quality before recovery against random and magnitude, and the
appendix's Table B / C ablations mirrored, in one run.

    python3 scripts/ukmi_ablations.py --out results/ukmi_ablations

What is shared: one entropy pass per angle mode and one gradient pass per threshold T, each
collecting G and (when a setting needs it) the diagonal Fisher F, so first / second / mix come from
the same samples. `--seeds N` repeats everything over N calibration draws and reports each setting
as mean [min-max] and each of the paper's orderings as holds / does not hold / within noise, paired
by seed; `--only` runs a subset of the settings.
Every configuration is then planned, sliced (physically, on a fresh copy of the dense model) and
evaluated on the shapes world's val split (VQA accuracy, caption CIDEr). Writes `results.json`
and `README.md` (tables + whether each of the paper's orderings holds here) into --out.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ukmp.adapters import find_adapter
from ukmp.data.calibration import calibration_batches, load_calibration_samples, take_disjoint
from ukmp.data.index import resolve_data_dir
from ukmp.evaluation.harness import evaluate
from ukmp.evaluation.model_loading import load_model_and_processor
from ukmp.methods.base import ScoringInputs
from ukmp.methods.registry import get_scorer
from ukmp.methods.ukmi import (
    UKMIOptions,
    accumulate_entropy,
    accumulate_gradients,
    entropy_unit_scores,
    taylor_unit_scores,
)
from ukmp.planning.iterative import IterativeOptions
from ukmp.planning.schedules import plan_from_scores
from ukmp.seed_stats import paired_ordering, spread
from ukmp.surgery import apply_plan_physically

THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 1.0)
RELATIVE = ("q0.34",)  # beyond the paper: the least-fitted 34% of each sample's tokens (Table C's share)


@dataclass(frozen=True)
class Setting:
    """One row of the tables: a UKMI configuration (or a data-free baseline) and its schedule."""

    block: str
    name: str
    threshold: float | str = 0.4
    term: str = "first"
    angle: str = "cosine"
    iterative: IterativeOptions | None = field(default_factory=IterativeOptions)
    baseline: str | None = None  # 'magnitude' / 'random': data-free scores, global schedule


def settings() -> list[Setting]:
    """Every row: baselines, Table B's UN / TS / EI blocks, Table C's thresholds, the relative threshold,
    and candidate defaults (block C)."""
    it = IterativeOptions
    rows = [
        Setting("baseline", "ukmp (paper, T = 0.4)"),  # the paper's configuration; ukmp's default is "T = 1.0"
        Setting("baseline", "magnitude", iterative=None, baseline="magnitude"),
        Setting("baseline", "random", iterative=None, baseline="random"),
        Setting("UN", "w/o normalize", iterative=it(norm="none")),
        Setting("UN", "mean w/o iterative", iterative=it(iterative=False)),
        Setting("UN", "min-max", iterative=it(norm="minmax")),
        Setting("UN", "standardize", iterative=it(norm="standardize")),
        Setting("TS", "first w/o thresh", threshold=1.0),
        Setting("TS", "second w/ thresh", term="second"),
        Setting("TS", "second w/o thresh", threshold=1.0, term="second"),
        Setting("TS", "mix w/ thresh", term="mix"),
        Setting("TS", "mix w/o thresh", threshold=1.0, term="mix"),
        Setting("EI", "w/o entropy", angle="off"),
        Setting("EI", "arccosine", angle="arccos"),
    ]
    rows += [Setting("T", f"T = {t}", threshold=t) for t in THRESHOLDS if t != 0.4]
    rows += [Setting("T", f"relative {q}", threshold=q) for q in RELATIVE]
    # candidate defaults beyond the paper: no token selection combined with the other switches
    rows += [
        Setting("C", "T = 1.0, w/o normalize", threshold=1.0, iterative=it(norm="none")),
        Setting("C", "T = 1.0, standardize", threshold=1.0, iterative=it(norm="standardize")),
        Setting("C", "T = 1.0, w/o entropy", threshold=1.0, angle="off"),
        Setting("C", "T = 1.0, mean w/o iterative", threshold=1.0, iterative=it(iterative=False)),
    ]
    return rows


def scores_of(setting: Setting, taylor: dict, entropy: dict, dense, groups, seed: int) -> dict:
    """The unit scores of one setting from this seed's shared passes."""
    if setting.baseline is not None:
        return get_scorer(setting.baseline).score(ScoringInputs(dense, None, groups, seed=seed)).scores
    base = taylor[(str(setting.threshold), setting.term)]
    if setting.angle == "off":
        return dict(base)
    angle = entropy[setting.angle]
    return {n: base[n] * angle[n] if n in angle else base[n] for n in base}


def headline(results: dict) -> dict[str, float]:
    tasks = results["tasks"]
    return {
        "vqa": tasks["vqa"]["accuracy"],
        "cider": tasks["caption"]["metrics"]["CIDEr"],
        "per_type": tasks["vqa"]["per_question_type"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="shapes-blip2-t5")
    parser.add_argument("--out", type=Path, default=Path("results/ukmi_ablations"))
    parser.add_argument("--num-samples", type=int, default=256, help="calibration samples per pass (as ukmp prune)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--vqa-limit", type=int, default=None, help="first N val questions (default: all)")
    parser.add_argument("--caption-limit", type=int, default=None, help="first N val images to caption (default: all)")
    parser.add_argument(
        "--calib-split", default="alttext", help="shapes-world split to calibrate on (alttext, as ukmp prune; or train)"
    )
    parser.add_argument("--seed", type=int, default=0, help="first seed")
    parser.add_argument("--seeds", type=int, default=1, help="calibration draws (seeds SEED..SEED+N-1)")
    parser.add_argument("--only", default=None, help="comma-separated setting names to run (default: all)")
    parser.add_argument("--ratios", default="0.5,0.2", help="ratios; rows other than the baselines run at the first")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="keep the draws --out/results.json already measured in full and measure only the others",
    )
    args = parser.parse_args()

    chosen = settings()
    if args.only:
        names = {n.strip() for n in args.only.split(",")}
        unknown = names - {s.name for s in chosen}
        if unknown:
            parser.error(f"unknown setting(s) {sorted(unknown)}; choose from {[s.name for s in chosen]}")
        chosen = [s for s in chosen if s.name in names]
    ratios = [float(r) for r in args.ratios.split(",")]
    dense, processor, _ = load_model_and_processor(args.model, device="cpu")
    dense = dense.float().eval()
    adapter = find_adapter(dense)
    groups = adapter.groups(dense)
    total_params = sum(p.numel() for p in dense.parameters())
    val = resolve_data_dir("shapes", "val")
    calib = resolve_data_dir("shapes", args.calib_split, 2 * args.num_samples)
    language = [g for g in groups if g.modality == "language"]
    n_batches = -(-args.num_samples // args.batch_size)

    def run_eval(model, name):
        vqa = evaluate(model, processor, val, "val", ("vqa",), args.vqa_limit, 64, model_name=name, progress=False)
        cap = evaluate(
            model, processor, val, "val", ("caption",), args.caption_limit, 64, model_name=name, progress=False
        )
        return headline({"tasks": {**vqa["tasks"], **cap["tasks"]}})

    started = time.time()
    command = " ".join(["python3 scripts/ukmi_ablations.py", *[a for a in sys.argv[1:] if a != "--resume"]])
    seeds = [args.seed + k for k in range(args.seeds)]
    plan = [(ratios[0], s) for s in chosen] + [(r, s) for r in ratios[1:] for s in chosen if s.block == "baseline"]
    earlier_file = args.out / "results.json"
    earlier = earlier_run(earlier_file) if args.resume else None
    if earlier is not None:
        same = ("model", "calib_split", "num_samples", "vqa_limit", "caption_limit")
        differing = [k for k in same if earlier.get(k) != getattr(args, k)]
        if differing:
            parser.error(f"--resume: {earlier_file} was measured with other {', '.join(differing)}")
        rows, tokens, earlier_seconds, done = finished_draws(earlier, len(plan))
        print(f"resuming: draws {sorted(done)} already measured in {earlier_file}", flush=True)
    else:
        dense_row = {"block": "dense", "name": "dense", "ratio": 0.0, "achieved": 0.0, "seed": None}
        rows = [{**dense_row, **run_eval(dense, "dense")}]
        tokens, earlier_seconds, done = {}, 0.0, set()
    for seed in seeds:
        if seed in done:
            continue
        torch.manual_seed(seed)
        samples = load_calibration_samples(calib, args.calib_split, seed=seed, pool=2 * args.num_samples)
        ent_samples, grad_samples = take_disjoint(samples, [args.num_samples, args.num_samples])

        def batches(chunk):
            return calibration_batches(processor, chunk, args.batch_size, encoder_decoder=True)

        entropy = {}
        for mode in sorted({s.angle for s in chosen if s.baseline is None and s.angle != "off"}):
            rows_h, _ = accumulate_entropy(
                dense, language, batches(ent_samples), UKMIOptions(entropy=mode), total=n_batches
            )
            entropy[mode] = entropy_unit_scores(language, rows_h)
        taylor: dict[tuple[str, str], dict] = {}
        for t in sorted({str(s.threshold) for s in chosen if s.baseline is None}):
            terms = {s.term for s in chosen if s.baseline is None and str(s.threshold) == t}
            opts = UKMIOptions(threshold=t, taylor="mix" if terms - {"first"} else "first")
            grads, fisher, stats = accumulate_gradients(dense, groups, batches(grad_samples), opts, total=n_batches)
            tokens.setdefault(t, {"selected": [], "target": []})
            tokens[t]["selected"].append(stats["backpropagated_tokens"])
            tokens[t]["target"].append(stats["target_tokens"])
            for term in terms:
                taylor[(t, term)] = taylor_unit_scores(dense, groups, grads, fisher, term)

        for ratio, setting in plan:
            result = plan_from_scores(
                scores_of(setting, taylor, entropy, dense, groups, seed),
                groups,
                schedule="iterative" if setting.iterative is not None else "global",
                target_ratio=ratio,
                basis_params=total_params,
                iterative_options=setting.iterative,
            )
            model = apply_plan_physically(copy.deepcopy(dense), result.plan, adapter)
            row = {"block": setting.block, "name": setting.name, "ratio": ratio, "achieved": result.achieved_ratio}
            row.update(seed=seed, **run_eval(model, setting.name))
            rows.append(row)
            print(
                f"seed {seed} {ratio:.2f} {setting.block:8s} {setting.name:22s} achieved {row['achieved']:.4f}  "
                f"VQA {row['vqa']:6.2f}  CIDEr {row['cider']:.3f}",
                flush=True,
            )
            out = {
                "model": args.model,
                "calib_split": args.calib_split,
                "num_samples": args.num_samples,
                "vqa_limit": args.vqa_limit,
                "caption_limit": args.caption_limit,
                "seeds": seeds,
                "backpropagated_tokens": tokens,
                "rows": rows,
                "planned_rows": len(plan) * len(seeds) + 1,
                "seconds": earlier_seconds + time.time() - started,
            }
            _write(args.out, out, command)  # after every row, so an interrupted run keeps what it measured
    print(f"wrote {args.out / 'results.json'} and {args.out / 'README.md'}")


def earlier_run(path: Path) -> dict | None:
    """An earlier run's results.json to resume from, or None when there is nothing to resume."""
    return json.loads(path.read_text()) if path.exists() else None


def finished_draws(earlier: dict, rows_per_draw: int) -> tuple[list[dict], dict, float, set[int]]:
    """What an earlier run of the same command measured (its results.json): its dense row, the rows and
    token counts of the draws it finished in full (the leading ones, so per-draw token lists keep their
    order), its run time, and those draws. A draw cut off part-way is measured again whole, so each
    draw's rows come from one calibration pass."""
    counts: dict[int, int] = {}
    for r in earlier["rows"][1:]:
        counts[r["seed"]] = counts.get(r["seed"], 0) + 1
    finished = 0
    while finished < len(earlier["seeds"]) and counts.get(earlier["seeds"][finished]) == rows_per_draw:
        finished += 1
    done = set(earlier["seeds"][:finished])
    rows = [earlier["rows"][0]] + [r for r in earlier["rows"][1:] if r["seed"] in done]
    tokens = {t: {k: values[:finished] for k, values in n.items()} for t, n in earlier["backpropagated_tokens"].items()}
    return rows, tokens, float(earlier["seconds"]), done


def _write(folder: Path, out: dict, command: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in (("results.json", json.dumps(out, indent=1)), ("README.md", report(out, command))):
        tmp = folder / (name + ".tmp")
        tmp.write_text(text)
        os.replace(tmp, folder / name)


# The paper's Table B / C claims, as (block, better, worse) pairs on its GQA / NoCaps metric.
PAPER_ORDERINGS = [
    ("UN", "ukmp (paper, T = 0.4)", "mean w/o iterative"),
    ("UN", "ukmp (paper, T = 0.4)", "min-max"),
    ("UN", "ukmp (paper, T = 0.4)", "standardize"),
    ("UN", "ukmp (paper, T = 0.4)", "w/o normalize"),
    ("UN", "min-max", "w/o normalize"),
    ("TS", "ukmp (paper, T = 0.4)", "first w/o thresh"),
    ("TS", "ukmp (paper, T = 0.4)", "mix w/ thresh"),
    ("TS", "mix w/ thresh", "second w/ thresh"),
    ("TS", "first w/o thresh", "second w/o thresh"),
    ("EI", "ukmp (paper, T = 0.4)", "arccosine"),
    ("EI", "arccosine", "w/o entropy"),
    ("EI", "ukmp (paper, T = 0.4)", "w/o entropy"),
    ("T", "ukmp (paper, T = 0.4)", "T = 1.0"),
    ("T", "ukmp (paper, T = 0.4)", "T = 0.3"),
]


def _cells(rows: list[dict], key: str) -> dict[tuple[float, str], dict[int, float]]:
    """(ratio, setting) -> {seed: value}."""
    out: dict[tuple[float, str], dict[int, float]] = {}
    for r in rows:
        if r["block"] != "dense":
            out.setdefault((r["ratio"], r["name"]), {})[r["seed"]] = r[key]
    return out


def report(out: dict, command: str) -> str:
    """Tables of mean [min-max] over seeds per setting, and each paper ordering checked paired by seed."""
    rows = out["rows"]
    seeds = out["seeds"]
    vqa, cider = _cells(rows, "vqa"), _cells(rows, "cider")
    dense = rows[0]
    lines = [
        "# UKMI on the shipped model: baselines and the appendix's ablations (no recovery)",
        "",
        f"Command: `{command}`",
        "",
        (
            f"**Partial run: {len(rows)} of {out['planned_rows']} rows measured.**\n\n"
            if len(rows) < out["planned_rows"]
            else ""
        )
        + f"Model `{out['model']}`, shapes world val split: "
        + (f"the first {out['vqa_limit']}" if out["vqa_limit"] else "all")
        + " VQA questions, "
        + (f"the first {out['caption_limit']}" if out["caption_limit"] else "all 500")
        + f" images captioned; {out['num_samples']} calibration samples per pass from the "
        + f"`{out.get('calib_split', 'train')}` split; seeds {', '.join(map(str, seeds))}."
        + f" Run time {out['seconds'] / 60:.1f} min.",
        "",
        "Cells: mean [min–max] over the seeds (one value for one seed).",
        "",
        "| block | setting | target | achieved | VQA acc % | CIDEr |",
        "|---|---|---|---|---|---|",
        f"| dense | dense | 0 | 0 | {dense['vqa']:.2f} | {dense['cider']:.3f} |",
    ]
    achieved = _cells(rows, "achieved")
    blocks = {(r["ratio"], r["name"]): r["block"] for r in rows}
    for key in vqa:
        ratio, name = key
        a = spread(list(achieved[key].values())).mean
        lines.append(
            f"| {blocks[key]} | {name} | {ratio:g} | {a:.4f} | {spread(list(vqa[key].values())).text(2)} "
            f"| {spread(list(cider[key].values())).text(3)} |"
        )
    per_type: dict[tuple[float, str], dict[str, list[float]]] = {}
    for r in rows:
        for t, v in r["per_type"].items():
            per_type.setdefault((r["ratio"], r["name"]), {}).setdefault(t, []).append(v)
    types = list(dense["per_type"])
    lines += ["", "Per question type (VQA accuracy %, mean over seeds):", ""]
    lines += ["| setting | ratio | " + " | ".join(types) + " |", "|---|---|" + "---|" * len(types)]
    for (ratio, name), values in per_type.items():
        lines.append(
            f"| {name} | {ratio:g} | " + " | ".join(f"{sum(values[t]) / len(values[t]):.1f}" for t in types) + " |"
        )
    lines += ["", "Backpropagated / target tokens per threshold (Table C's count), per seed:", ""]
    lines += ["| T | backpropagated | target | fraction |", "|---|---|---|---|"]
    for t, n in out["backpropagated_tokens"].items():
        frac = sum(n["selected"]) / max(sum(n["target"]), 1)
        lines.append(
            f"| {t} | {', '.join(map(str, n['selected']))} | {', '.join(map(str, n['target']))} | {frac:.1%} |"
        )
    lines += [
        "",
        f"## Do the paper's orderings hold here (at {rows[1]['ratio']:g}, paired by seed)?" if len(rows) > 1 else "",
        "",
        "An ordering holds when the 95% t-interval of the mean per-seed difference lies above zero, does not",
        "hold when it lies below it, and is within noise otherwise (always so with one seed).",
        "",
        "| paper says | VQA | CIDEr |",
        "|---|---|---|",
    ]
    first_ratio = rows[1]["ratio"] if len(rows) > 1 else 0.5
    for _, better, worse in PAPER_ORDERINGS:
        a, b = (first_ratio, better), (first_ratio, worse)
        if a not in vqa or b not in vqa:
            lines.append(f"| {better} > {worse} | not measured | not measured |")
            continue
        common = sorted(set(vqa[a]) & set(vqa[b]))
        cells = []
        for table, digits in ((vqa, 2), (cider, 3)):
            verdict, diff = paired_ordering([table[a][s] for s in common], [table[b][s] for s in common])
            cells.append(f"{verdict} ({diff.mean:+.{digits}f} [{diff.min:+.{digits}f}–{diff.max:+.{digits}f}])")
        lines.append(f"| {better} > {worse} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
