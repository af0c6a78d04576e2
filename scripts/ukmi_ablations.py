"""UKMP on the shipped model: quality before recovery against random and magnitude, and the
appendix's Table B / C ablations mirrored, in one run.

    python3 scripts/ukmi_ablations.py --out results/ukmi_ablations

What is shared: one entropy pass per angle mode and one gradient pass per threshold T, each
collecting G and the diagonal Fisher F, so first / second / mix all come from the same samples.
Every configuration is then planned, sliced (physically, on a fresh copy of the dense model) and
evaluated on the shapes world's val split (VQA accuracy, caption CIDEr). Writes `results.json`
and `README.md` (tables + whether each of the paper's orderings holds here) into --out.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import time
from pathlib import Path

import torch

from ukmp.adapters import find_adapter
from ukmp.data.calibration import calibration_batches, load_calibration_samples, take_disjoint
from ukmp.data.index import resolve_data_dir
from ukmp.evaluation.harness import evaluate
from ukmp.evaluation.model_loading import load_model_and_processor
from ukmp.iterative_planning import IterativeOptions
from ukmp.methods import plan_from_scores, simple_scores
from ukmp.scoring.ukmi import (
    UKMIOptions,
    accumulate_entropy,
    accumulate_gradients,
    entropy_unit_scores,
    taylor_unit_scores,
)
from ukmp.surgery import apply_plan_physically

THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 1.0)


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
    parser.add_argument("--num-samples", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--vqa-limit", type=int, default=None, help="first N val questions (default: all)")
    parser.add_argument("--caption-limit", type=int, default=None, help="first N val images to caption (default: all)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    dense, processor, _ = load_model_and_processor(args.model, device="cpu")
    dense = dense.float().eval()
    adapter = find_adapter(dense)
    groups = adapter.groups(dense)
    total_params = sum(p.numel() for p in dense.parameters())
    val = resolve_data_dir("shapes", "val")
    calib = resolve_data_dir("shapes", "train", 2 * args.num_samples)
    samples = load_calibration_samples(calib, "train", seed=args.seed)
    ent_samples, grad_samples = take_disjoint(samples, [args.num_samples, args.num_samples])
    n_batches = -(-args.num_samples // args.batch_size)

    def batches(chunk):
        return calibration_batches(processor, chunk, args.batch_size, encoder_decoder=True)

    language = [g for g in groups if g.modality == "language"]
    entropy = {}
    for mode in ("cosine", "arccos"):
        rows, _ = accumulate_entropy(dense, language, batches(ent_samples), UKMIOptions(entropy=mode), total=n_batches)
        entropy[mode] = entropy_unit_scores(language, rows)
    taylor: dict[tuple[float, str], dict] = {}
    tokens: dict[float, int] = {}
    pass_seconds: dict[float, float] = {}
    for t in THRESHOLDS:
        opts = UKMIOptions(threshold=t, taylor="mix")
        grads, fisher, stats = accumulate_gradients(dense, groups, batches(grad_samples), opts, total=n_batches)
        tokens[t] = stats["backpropagated_tokens"]
        pass_seconds[t] = stats["seconds"]
        for term in ("first", "second", "mix"):
            taylor[(t, term)] = taylor_unit_scores(dense, groups, grads, fisher, term)

    def combine(t: float = 0.4, term: str = "first", angle: str = "cosine") -> dict:
        base = taylor[(t, term)]
        if angle == "off":
            return dict(base)
        return {n: base[n] * entropy[angle][n] if n in entropy[angle] else base[n] for n in base}

    it = IterativeOptions
    configs: list[tuple[str, str, dict, str, IterativeOptions | None]] = [
        ("baseline", "ukmp (default)", combine(), "iterative", it()),
        (
            "baseline",
            "magnitude",
            simple_scores("magnitude", dense, groups, args.seed).scores,
            "global",
            None,
        ),
        ("baseline", "random", simple_scores("random", dense, groups, args.seed).scores, "global", None),
        ("UN", "w/o normalize", combine(), "iterative", it(norm="none")),
        ("UN", "mean w/o iterative", combine(), "iterative", it(iterative=False)),
        ("UN", "min-max", combine(), "iterative", it(norm="minmax")),
        ("UN", "standardize", combine(), "iterative", it(norm="standardize")),
        ("TS", "first w/o thresh", combine(1.0), "iterative", it()),
        ("TS", "second w/ thresh", combine(0.4, "second"), "iterative", it()),
        ("TS", "second w/o thresh", combine(1.0, "second"), "iterative", it()),
        ("TS", "mix w/ thresh", combine(0.4, "mix"), "iterative", it()),
        ("TS", "mix w/o thresh", combine(1.0, "mix"), "iterative", it()),
        ("EI", "w/o entropy", combine(angle="off"), "iterative", it()),
        ("EI", "arccosine", combine(angle="arccos"), "iterative", it()),
    ]
    configs += [("T", f"T = {t}", combine(t), "iterative", it()) for t in THRESHOLDS if t != 0.4]

    def run_eval(model, name):
        vqa = evaluate(model, processor, val, "val", ("vqa",), args.vqa_limit, 64, model_name=name, progress=False)
        cap = evaluate(
            model, processor, val, "val", ("caption",), args.caption_limit, 64, model_name=name, progress=False
        )
        return headline({"tasks": {**vqa["tasks"], **cap["tasks"]}})

    started = time.time()
    command = " ".join(["python3 scripts/ukmi_ablations.py", *_argv()])
    plan = [(0.5, c) for c in configs] + [(0.2, c) for c in configs if c[0] == "baseline"]
    rows = [{"block": "dense", "name": "dense", "ratio": 0.0, "achieved": 0.0, **run_eval(dense, "dense")}]
    for ratio, (block, name, scores, schedule, options) in plan:
        result = plan_from_scores(
            scores,
            groups,
            schedule=schedule,
            target_ratio=ratio,
            basis_params=total_params,
            iterative_options=options,
        )
        model = apply_plan_physically(copy.deepcopy(dense), result.plan, adapter)
        row = {"block": block, "name": name, "ratio": ratio, "achieved": result.achieved_ratio}
        row.update(run_eval(model, name))
        rows.append(row)
        print(
            f"{ratio:.1f} {block:8s} {name:22s} achieved {row['achieved']:.4f}  VQA {row['vqa']:6.2f}  "
            f"CIDEr {row['cider']:.3f}",
            flush=True,
        )
        out = {
            "model": args.model,
            "num_samples": args.num_samples,
            "vqa_limit": args.vqa_limit,
            "caption_limit": args.caption_limit,
            "backpropagated_tokens": {str(t): n for t, n in tokens.items()},
            "gradient_pass_seconds": {str(t): s for t, s in pass_seconds.items()},
            "rows": rows,
            "planned_rows": len(plan) + 1,
            "seconds": time.time() - started,
        }
        _write(args.out, out, command)  # after every row, so an interrupted run keeps what it measured
    print(f"wrote {args.out / 'results.json'} and {args.out / 'README.md'}")


def _write(folder: Path, out: dict, command: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in (("results.json", json.dumps(out, indent=1)), ("README.md", report(out, command))):
        tmp = folder / (name + ".tmp")
        tmp.write_text(text)
        os.replace(tmp, folder / name)


def _argv() -> list[str]:
    import sys

    return sys.argv[1:]


# The paper's Table B / C claims, as (block, better, worse) pairs on its GQA / NoCaps metric.
PAPER_ORDERINGS = [
    ("UN", "ukmp (default)", "mean w/o iterative"),
    ("UN", "ukmp (default)", "min-max"),
    ("UN", "ukmp (default)", "standardize"),
    ("UN", "ukmp (default)", "w/o normalize"),
    ("UN", "min-max", "w/o normalize"),
    ("TS", "ukmp (default)", "first w/o thresh"),
    ("TS", "ukmp (default)", "mix w/ thresh"),
    ("TS", "mix w/ thresh", "second w/ thresh"),
    ("TS", "first w/o thresh", "second w/o thresh"),
    ("EI", "ukmp (default)", "arccosine"),
    ("EI", "arccosine", "w/o entropy"),
    ("EI", "ukmp (default)", "w/o entropy"),
    ("T", "ukmp (default)", "T = 1.0"),
    ("T", "ukmp (default)", "T = 0.3"),
]


def report(out: dict, command: str) -> str:
    """Markdown tables of every row, plus each paper ordering checked on VQA accuracy and CIDEr."""
    rows = out["rows"]
    lines = [
        "# UKMI on the shipped model: baselines and the appendix's ablations (no recovery)",
        "",
        f"Command: `{command}`",
        "",
        (
            f"**Partial run: {len(out['rows'])} of {out['planned_rows']} rows measured.**\n\n"
            if len(out["rows"]) < out["planned_rows"]
            else ""
        )
        + f"Model `{out['model']}`, shapes world val split: "
        + (f"the first {out['vqa_limit']}" if out["vqa_limit"] else "all")
        + " VQA questions, "
        + (f"the first {out['caption_limit']}" if out["caption_limit"] else "all 500")
        + f" images captioned; {out['num_samples']} calibration samples per pass."
        + f" Run time {out['seconds'] / 60:.1f} min.",
        "",
        "| block | setting | target | achieved | VQA acc % | CIDEr |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        cells = [r["block"], r["name"], f"{r['ratio']:.1f}", f"{r['achieved']:.4f}", f"{r['vqa']:.2f}"]
        lines.append("| " + " | ".join([*cells, f"{r['cider']:.3f}"]) + " |")
    types = list(rows[0]["per_type"])
    lines += [
        "",
        "Per question type (VQA accuracy %):",
        "",
        "| setting | ratio | " + " | ".join(types) + " |",
        "|---|---|" + "---|" * len(types),
    ]
    for r in rows:
        if r["block"] in ("dense", "baseline"):
            lines.append(
                f"| {r['name']} | {r['ratio']:.1f} | " + " | ".join(f"{r['per_type'][t]:.1f}" for t in types) + " |"
            )
    lines += ["", "Backpropagated tokens per threshold (Table C's count):", "", "| T | tokens |", "|---|---|"]
    lines += [f"| {t} | {n} |" for t, n in out["backpropagated_tokens"].items()]
    at_half = {r["name"]: r for r in rows if r["ratio"] == 0.5}
    lines += [
        "",
        "## Do the paper's orderings hold here (at 50%)?",
        "",
        "| paper says | VQA | CIDEr |",
        "|---|---|---|",
    ]
    for _, better, worse in PAPER_ORDERINGS:
        if better not in at_half or worse not in at_half:
            lines.append(f"| {better} > {worse} | not measured | not measured |")
            continue
        a, b = at_half[better], at_half[worse]
        mark = lambda x, y: "holds" if x > y else "does not hold"  # noqa: E731
        lines.append(
            f"| {better} > {worse} | {mark(a['vqa'], b['vqa'])} ({a['vqa']:.2f} vs {b['vqa']:.2f}) "
            f"| {mark(a['cider'], b['cider'])} ({a['cider']:.3f} vs {b['cider']:.3f}) |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
