"""Which scorer tells the truth? Each scorer's ranking against measured removal costs.

    python3 scripts/importance_ground_truth.py --model shapes-blip2-t5 --out results/importance_ground_truth/shipped

For a sample of units of every group (every head; random single MLP channels and random blocks of
1/8 of a layer's channels), the removal cost is measured directly (`ukmp.removal_cost`): the
increase of the caption prefix-LM loss and of the VQA answer NLL on the world's val split when the
unit is zeroed out. Each scorer's scores come from one calibration draw (through `ukmp compare`'s
scoring, cached in --work). Reported: Spearman rank correlation between a scorer's estimate
(sum of the probe's unit scores) and the cost, per component (scale-free: any per-modality or
per-module normalisation a planner applies does not change it) and overall, where a scorer's
score is taken as its planner ranks it (UKMP's divided by its modality's mean, the others raw)
against the cost per removed parameter, the currency of a parameter budget.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import torch

from ukmp.compare.config import CompareConfig
from ukmp.compare.draw import CompareRun
from ukmp.data.calibration import calibration_batches, load_calibration_samples, take_disjoint
from ukmp.data.index import load_task, resolve_data_dir
from ukmp.data.prefix_lm import PrefixLMSample
from ukmp.evaluation.generation import VQA_PROMPT
from ukmp.methods.registry import get_scorer
from ukmp.removal_cost import probe_score, rank_agreement, removal_costs, sample_probes

SCORERS = ("ukmp:paper", "ukmp:1.0", "ukmp:q0.34", "upop", "flap", "llm-pruner-global", "magnitude")
LOSSES = ("caption_loss", "vqa_nll")


def component_of(group) -> str:
    return f"{group.component}.{group.name.rsplit('.', 1)[-1]}"


def planner_view(method: str, scores: dict[str, torch.Tensor], groups) -> dict[str, torch.Tensor]:
    """Scores as the method's planner first ranks them: UKMP divides by its modality's mean."""
    if get_scorer(method).schedule != "iterative":  # only the iterative schedule normalises by modality
        return scores
    means = {}
    for modality in {g.modality for g in groups}:
        values = torch.cat([scores[g.name].double() for g in groups if g.modality == modality])
        means[modality] = float(values.mean())
    return {g.name: scores[g.name].double() / means[g.modality] for g in groups}


def truth_batches(processor, val_dir: Path, n_captions: int, n_questions: int, seed: int) -> dict[str, list]:
    """Fixed evaluation batches: val captions in prefix-LM form, and val questions with their answers."""
    captions = take_disjoint(load_calibration_samples(val_dir, "val", seed=seed), [n_captions])[0]
    questions = list(load_task(val_dir, "val", "vqa"))[:n_questions]
    vqa = [PrefixLMSample(q.image_path, VQA_PROMPT.format(q.question), q.answers[0]) for q in questions]
    return {
        "caption_loss": list(calibration_batches(processor, captions, 32, encoder_decoder=True)),
        "vqa_nll": list(calibration_batches(processor, vqa, 32, encoder_decoder=True)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="shapes-blip2-t5")
    parser.add_argument("--out", type=Path, default=Path("results/importance_ground_truth/shipped"))
    parser.add_argument("--work", type=Path, default=None, help="score cache (default: runs/ground-truth-<model>)")
    parser.add_argument("--scorers", default=",".join(SCORERS))
    parser.add_argument("--calib-split", default="train", help="calibration split the scorers read")
    parser.add_argument("--num-samples", type=int, default=256, help="calibration samples per pass")
    parser.add_argument("--captions", type=int, default=128, help="val captions in the caption loss")
    parser.add_argument("--questions", type=int, default=256, help="val questions in the VQA NLL")
    parser.add_argument("--singles", type=int, default=8, help="single units per group")
    parser.add_argument("--blocks", type=int, default=4, help="blocks of 1/8 of a group's units per group")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    started = time.time()

    scorers = [s.strip() for s in args.scorers.split(",") if s.strip()]
    config = CompareConfig(
        model=args.model,
        out=str(args.work or Path("runs") / f"ground-truth-{Path(args.model).name}"),
        methods=tuple(scorers),
        ratios=(0.5,),
        calib_split=args.calib_split,
        num_samples=args.num_samples,
        seed=args.seed,
    )
    run = CompareRun(config)
    run._load()
    model, groups = run.dense.model, run.dense.groups
    scores = {m: planner_view(m, run.scores(m).scores, groups) for m in scorers}

    val = resolve_data_dir("shapes", "val")
    loss_sets = truth_batches(run.dense.processor, val, args.captions, args.questions, args.seed)
    probes = sample_probes(groups, singles=args.singles, blocks=args.blocks, seed=args.seed)
    dense, costs = removal_costs(model, groups, probes, loss_sets)
    by_name = {g.name: g for g in groups}

    def per_param(probe, cost):
        return cost / (len(probe.units) * by_name[probe.group].params_per_unit)

    table: dict[str, dict] = {}
    components = sorted({component_of(by_name[p.group]) for p in probes})
    for method in scorers:
        row: dict[str, dict] = {}
        for loss in LOSSES:
            cells = {}
            for comp in components:
                for kind, is_block in (("single", False), ("block", True)):
                    chosen = [
                        (p, c)
                        for p, c in zip(probes, costs)
                        if component_of(by_name[p.group]) == comp and p.is_block == is_block
                    ]
                    if len(chosen) >= 3:
                        cells[f"{comp} {kind}"] = rank_agreement(
                            [probe_score(scores[method], p) for p, _ in chosen], [c[loss] for _, c in chosen]
                        )
            singles = [(p, c) for p, c in zip(probes, costs) if not p.is_block]
            cells["overall (per parameter)"] = rank_agreement(
                [probe_score(scores[method], p) / len(p.units) for p, _ in singles],
                [per_param(p, c[loss]) for p, c in singles],
            )
            row[loss] = cells
        table[method] = row

    mean_cost = {}
    for comp in components:
        chosen = [c for p, c in zip(probes, costs) if component_of(by_name[p.group]) == comp and not p.is_block]
        mean_cost[comp] = {loss: sum(c[loss] for c in chosen) / len(chosen) for loss in LOSSES}
    out = {
        "model": args.model,
        "command": " ".join(["python3 scripts/importance_ground_truth.py", *sys.argv[1:]]),
        "calibration": {"split": args.calib_split, "num_samples": args.num_samples, "seed": args.seed},
        "truth_data": {"captions": args.captions, "questions": args.questions, "split": "val"},
        "dense_loss": dense,
        "probes": len(probes),
        "sampling": {"singles": args.singles, "blocks": args.blocks, "block_fraction": 0.125, "seed": args.seed},
        "mean_single_unit_cost": mean_cost,
        "spearman": table,
        "seconds": time.time() - started,
        "probe_costs": [{"group": p.group, "units": list(p.units), **c} for p, c in zip(probes, costs)],
    }
    write(args.out, out)
    print(f"wrote {args.out / 'README.md'} ({out['seconds'] / 60:.1f} min)")


def _fmt(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:+.2f}"


def report(out: dict) -> str:
    sampling = out.get("sampling", {"singles": 8, "blocks": 4})
    lines = [
        f"# Which scorer tells the truth on `{out['model']}`",
        "",
        f"Command: `{out['command']}` ({out['seconds'] / 60:.1f} min on the 2-core CPU).",
        "",
        f"{out['probes']} probes: per group {sampling['singles']} random single units (every unit of a group "
        f"that has no more) and {sampling['blocks']} random blocks of 1/8 of its units (at least 2). "
        "Removal cost = increase of "
        "the loss when the probe's units are zeroed "
        f"(exactly what removing them computes), on {out['truth_data']['captions']} val captions (prefix-LM "
        f"loss) and {out['truth_data']['questions']} val questions (answer NLL). Dense losses: "
        + ", ".join(f"{k} {v:.4f}" for k, v in out["dense_loss"].items())
        + f". Scores from one calibration draw ({out['calibration']['split']} split, "
        f"{out['calibration']['num_samples']} samples per pass, seed {out['calibration']['seed']}).",
        "",
        "Spearman rank correlation between each scorer's estimate and the measured cost (+1: the scorer ranks",
        "units exactly as their removal hurts; 0: no better than random). Per component the correlation is",
        "scale-free; 'overall' ranks single units across all groups as the planner does (UKMP's scores divided",
        "by its modality mean, the others raw) against the cost per removed parameter.",
    ]
    for loss in LOSSES:
        columns = list(next(iter(out["spearman"].values()))[loss])
        lines += ["", f"## {loss}", "", "| scorer | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
        for method, row in out["spearman"].items():
            lines.append(f"| {method} | " + " | ".join(_fmt(row[loss][c]) for c in columns) + " |")
    lines += ["", "## Mean cost of removing one unit, per component", "", "| component | " + " | ".join(LOSSES) + " |"]
    lines.append("|---|" + "---|" * len(LOSSES))
    for comp, values in out["mean_single_unit_cost"].items():
        lines.append(f"| {comp} | " + " | ".join(f"{values[loss]:.2e}" for loss in LOSSES) + " |")
    return "\n".join(lines) + "\n"


def write(folder: Path, out: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in (("results.json", json.dumps(out, indent=1)), ("README.md", report(out))):
        tmp = folder / f".{name}.tmp"
        tmp.write_text(text)
        os.replace(tmp, folder / name)


if __name__ == "__main__":
    main()
