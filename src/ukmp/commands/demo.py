"""`ukmp demo`: the main job on the embedded default, end to end, offline.

Evaluate the shipped `shapes-blip2-t5` on the shapes world's val split, prune it to 50% of all
parameters with UKMP (calibrated on the world's train split), reload the artifact in this process
the way a user would, evaluate again, and write a short Markdown report with the table and the
artifact into `./ukmp-demo/`. The previous demo output is replaced; nothing else is touched.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

from ukmp.atomic import replace_folder
from ukmp.commands.help_format import HelpFormatter
from ukmp.commands.shared_options import add_placement_arguments, placement_from
from ukmp.data.index import SHAPES_CALIB_SPLIT
from ukmp.errors import UserError
from ukmp.output_guard import check_output, remove_stale_temporaries, temporary_prefix
from ukmp.preflight import check_ratio

MODEL = "shapes-blip2-t5"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="evaluate, prune to 50%% with UKMP, evaluate again, report (the embedded default)",
        description=__doc__.splitlines()[0],
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--out", type=Path, default=Path("ukmp-demo"), help="report folder (replaced)")
    parser.add_argument("--ratio", type=float, default=0.5, help="fraction of all parameters to remove")
    parser.add_argument(
        "--num-samples", type=int, default=256, help="UKMI calibration samples per pass (the paper: 1000)"
    )
    parser.add_argument("--limit", type=int, default=None, help="evaluate on the first N val records only")
    parser.add_argument("--model", default=MODEL, help="model to run the demo on (default: the shipped one)")
    add_placement_arguments(parser.add_argument_group("device and precision (src/ukmp/placement.py)"))
    parser.set_defaults(func=run)


#: what a demo folder holds (a rerun replaces only such a folder)
DEMO_MARKERS = ("report.md", "dense_results.json", "pruned_results.json")


def run(args: argparse.Namespace) -> int:
    from ukmp.data.index import resolve_data_dir
    from ukmp.evaluation.model_loading import evaluate_model
    from ukmp.pruning import PruneConfig, prune
    from ukmp.zoo import resolve_model_name

    check_ratio(args.ratio)
    placement = placement_from(args)
    device = placement.resolved().device
    model_dir = Path(resolve_model_name(args.model) or args.model)
    # a rerun replaces an earlier demo's folder, and nothing else
    check_output(args.out, overwrite=True, markers=DEMO_MARKERS, inputs=(model_dir,))
    if not (model_dir / "model.safetensors").is_file():
        raise UserError(
            f"the model weights are missing from {model_dir}; reinstall ukmp or rebuild the shipped model with "
            f"`ukmp zoo train {MODEL} --out {model_dir}`."
        )
    name = args.model if resolve_model_name(args.model) else model_dir.name
    started = time.time()
    val = resolve_data_dir("shapes", "val")
    calib = resolve_data_dir("shapes", SHAPES_CALIB_SPLIT, 2 * args.num_samples)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(args.out)
    tmp = Path(tempfile.mkdtemp(prefix=temporary_prefix(args.out), dir=args.out.parent))
    try:
        print(f"[1/3] evaluating the dense {name}")
        dense = evaluate_model(str(model_dir), val, limit=args.limit, name=name, device=device)
        _dump(tmp / "dense_results.json", dense)
        artifact = tmp / f"{name}-ukmp-{round(args.ratio * 100)}"
        print(f"[2/3] pruning {args.ratio:.0%} of all parameters with UKMP")
        config = PruneConfig(
            model=str(model_dir),
            out=artifact,
            method="ukmp",
            ratio=args.ratio,
            calib=calib,
            calib_split=SHAPES_CALIB_SPLIT,
            num_samples=args.num_samples,
            placement=placement,
        )
        prune_summary = prune(config)
        print("[3/3] evaluating the pruned model (reloaded from its artifact)")
        pruned = evaluate_model(str(artifact), val, limit=args.limit, name=artifact.name, device=device)
        _dump(tmp / "pruned_results.json", pruned)
        report = _report(name, dense, pruned, prune_summary, artifact.name, time.time() - started, args)
        (tmp / "report.md").write_text(report)
        replace_folder(tmp, args.out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(report)
    print(f"wrote {args.out.resolve()}: report.md, dense_results.json, pruned_results.json, {artifact.name}/")
    return 0


def _dump(path: Path, obj: dict) -> None:
    path.write_text(json.dumps(obj, indent=1))


def _headline(results: dict) -> dict[str, float]:
    tasks = results["tasks"]
    out = {}
    if "vqa" in tasks:
        out["VQA accuracy %"] = tasks["vqa"]["accuracy"]
    if "caption" in tasks:
        out["CIDEr"] = tasks["caption"]["metrics"]["CIDEr"]
        out["BLEU-4"] = tasks["caption"]["metrics"]["BLEU-4"]
    if "retrieval" in tasks:
        out["TR@1 %"] = tasks["retrieval"]["TR@1"]
        out["IR@1 %"] = tasks["retrieval"]["IR@1"]
    return out


def _report(name: str, dense: dict, pruned: dict, prune_summary: dict, artifact: str, seconds: float, args) -> str:
    d, p = _headline(dense), _headline(pruned)
    lines = [
        f"# ukmp demo: {name} pruned by {args.ratio:.0%} with UKMP",
        "",
        f"Parameters: {prune_summary['params_before']:,} -> {prune_summary['params_after']:,} "
        f"(achieved ratio {prune_summary['achieved_ratio']:.4f} of all parameters, target {args.ratio}).",
        f"UKMI scoring ({args.num_samples} + {args.num_samples} calibration samples of the world's "
        f"`{SHAPES_CALIB_SPLIT}` split): {prune_summary['scoring_seconds']:.1f} s; backpropagated tokens "
        f"{prune_summary.get('backpropagated_tokens', 'n/a')}.",
        "",
        "| metric (shapes val) | dense | pruned, no recovery |",
        "|---|---|---|",
    ]
    for key in d:
        lines.append(f"| {key} | {d[key]:.4g} | {p.get(key, float('nan')):.4g} |")
    if "vqa" in dense["tasks"]:
        lines += ["", "| VQA question type | dense % | pruned % |", "|---|---|---|"]
        for qtype, acc in dense["tasks"]["vqa"]["per_question_type"].items():
            lines.append(f"| {qtype} | {acc:.2f} | {pruned['tasks']['vqa']['per_question_type'].get(qtype, 0):.2f} |")
    lines += [
        "",
        f"The pruned model is in `{artifact}/` (load it with `ukmp.load_pruned`). "
        "Recovery (LPD) is not part of this demo yet.",
        f"Total time: {seconds / 60:.1f} min.",
        "",
    ]
    return "\n".join(lines)
