"""Would a calibration loss have chosen the better normalisation scope? A check before building the choice.

    python3 scripts/scope_choice_check.py blip2 --from runs/compare-5 --replan runs/replan \
        --results results/norm-scope/choice-shipped.md
    python3 scripts/scope_choice_check.py lm --work 'work/smollm2-s{seed}' --seeds 0,1,2,3,4,5,6,7 \
        --results results/norm-scope/choice-smollm2.md

For every draw (and ratio) it takes UKMP's plan with one mean per modality and the same scores
re-planned with `--norm-scope kind` (`scripts/replan_study.py`, `scripts/lm_replan_study.py --variant
kind`), computes each pruned model's mean next-token loss on calibration data only, and checks whether
the plan with the lower loss is the one with the better held-out result.

The samples are the ones `--norm-scope auto` reads (`ukmp.planning.scope_choice.scope_choice_batches`):

- `blip2`: the first 128 gradient-pass samples of the draw (the world's `alttext` captions the scorer
  read; two candidates leave little room to overfit them); the held-out result is the compare run's
  VQA accuracy on val.
- `lm`: the last 64 windows of the draw's calibration order, which the scorer never read (as
  `--plan-search` uses them); the held-out result is fortunes-eval perplexity.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from ukmp.atomic import write_text_atomic
from ukmp.compare.layout import artifact_name
from ukmp.data.calibration import TextCalibrationSource, text_source
from ukmp.data.index import resolve_data_dir
from ukmp.evaluation.model_loading import load_model_and_processor
from ukmp.planning.scope_choice import scope_choice_batches
from ukmp.removal_cost import mean_target_nll


def loss_of(artifact: Path, data, split: str, seed: int, num_samples: int) -> float:
    """The pruned model's mean next-token loss on the samples `--norm-scope auto` chooses with."""
    model, processor, _ = load_model_and_processor(str(artifact), device="cpu")
    model = model.float().eval()
    text = text_source(data)
    if text is not None:  # a calibration text, cut into 128-token windows as the bench cut it
        data = TextCalibrationSource(text.path, 128, tokenizer=processor)
    batches = scope_choice_batches(processor, model, data, split, seed=seed, num_samples=num_samples)
    with torch.no_grad():
        return mean_target_nll(model, batches)


def blip2_rows(args: argparse.Namespace) -> list[dict]:
    rows = []
    calib = resolve_data_dir("shapes", "alttext", 2 * args.num_samples, flag="--calib")
    for seed in args.seeds:
        for ratio in args.ratios:
            name = artifact_name("ukmp", ratio)
            plans = {
                "one mean": args.source / f"seed-{seed}" / "artifacts" / name,
                "kind": args.replan / f"seed-{seed}" / f"{name}-kind",
            }
            vqa = {
                "one mean": json.loads((args.source / f"seed-{seed}" / "evals" / f"{name}.json").read_text())["tasks"][
                    "vqa"
                ]["accuracy"],
                "kind": json.loads((plans["kind"].parent / f"{name}-kind.vqa.json").read_text())["tasks"]["vqa"][
                    "accuracy"
                ],
            }
            loss = {k: loss_of(p, calib, "alttext", seed, args.num_samples) for k, p in plans.items()}
            rows.append({"draw": seed, "ratio": ratio, "loss": loss, "held_out": vqa, "higher_is_better": True})
    return rows


def lm_rows(args: argparse.Namespace) -> list[dict]:
    rows = []
    for seed in args.seeds:
        work = Path(args.work.format(seed=seed))
        tag = f"{round(args.ratios[0] * 100)}"
        data = work / "data" / "fortunes-calib.jsonl"
        plans = {"one mean": work / "pruned" / f"ukmp-{tag}", "kind": work / "pruned" / f"ukmp-kind-{tag}"}
        ppl = {
            k: json.loads((work / "evals" / f"{p.name}--fortunes-eval--256x10.json").read_text())["tasks"][
                "perplexity"
            ]["perplexity"]
            for k, p in plans.items()
        }
        loss = {k: loss_of(p, data, "train", seed, args.num_samples) for k, p in plans.items()}
        rows.append({"draw": seed, "ratio": args.ratios[0], "loss": loss, "held_out": ppl, "higher_is_better": False})
    return rows


def render(rows: list[dict], args: argparse.Namespace, command: str) -> str:
    metric = "VQA % (val)" if args.model == "blip2" else "perplexity (fortunes-eval)"
    lines = [
        f"# Would the calibration loss have chosen the better scope? ({args.model})",
        "",
        f"`{command}`",
        "",
        f"| draw | ratio | loss, one mean | loss, kind | {metric}, one mean | {metric}, kind | lower loss picks |",
        "|---|---|---|---|---|---|---|",
    ]
    right = 0
    for r in rows:
        pick = min(r["loss"], key=r["loss"].get)
        other = "kind" if pick == "one mean" else "one mean"
        better = r["held_out"][pick] >= r["held_out"][other] if r["higher_is_better"] else (
            r["held_out"][pick] <= r["held_out"][other]
        )  # fmt: skip
        right += better
        lines.append(
            f"| {r['draw']} | {r['ratio']:.0%} | {r['loss']['one mean']:.4f} | {r['loss']['kind']:.4f} | "
            f"{r['held_out']['one mean']:.1f} | {r['held_out']['kind']:.1f} | "
            f"{pick} ({'better' if better else 'worse'}) |"
        )
    verdict = f"The lower calibration loss picked the plan with the better held-out result in {right} of {len(rows)}."
    lines += ["", verdict]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", choices=("blip2", "lm"))
    parser.add_argument("--from", dest="source", type=Path, default=Path("runs/compare-5"))
    parser.add_argument("--replan", type=Path, default=Path("runs/replan"))
    parser.add_argument("--work", default="work/smollm2-s{seed}")
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--ratios", default=None, help="default: 0.2,0.35,0.5 (blip2), 0.2 (lm)")
    parser.add_argument("--num-samples", type=int, default=None, help="the scorer's per-pass count (256 / 16)")
    parser.add_argument("--results", type=Path, required=True)
    args = parser.parse_args()
    blip2 = args.model == "blip2"
    args.seeds = [int(s) for s in args.seeds.split(",")]
    args.ratios = [float(r) for r in (args.ratios or ("0.2,0.35,0.5" if blip2 else "0.2")).split(",")]
    args.num_samples = args.num_samples or (256 if blip2 else 16)
    torch.set_num_threads(1)
    rows = blip2_rows(args) if blip2 else lm_rows(args)
    where = f"--from {args.source} --replan {args.replan}" if blip2 else f"--work '{args.work}'"
    command = f"python3 scripts/scope_choice_check.py {args.model} {where} --seeds {','.join(map(str, args.seeds))}"
    command += f" --results {args.results}"
    text = render(rows, args, command)
    write_text_atomic(args.results, text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
