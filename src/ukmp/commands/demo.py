"""`ukmp demo`: the main job on the embedded default, end to end, offline.

Evaluate the shipped `shapes-blip2-t5` on the shapes world's val split, prune it to 50% of all
parameters with UKMP (calibrated on the world's alt-text split), recover it with LPD (`ukmp recover`'s
default preset: question prompts answered by the dense teacher, no labels), reload both artifacts the
way a user would, evaluate them, and write a Markdown report with the three-column table and the
recovery's loss curve into `./ukmp-demo/`. Evaluation reads the first 1,000 val questions and 200 val
images (as `ukmp compare` does; `--limit` / `--caption-limit` change it). The previous demo output is
replaced; nothing else is touched.
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
    parser.add_argument("--limit", type=int, default=1000, help="val questions to evaluate (the first N)")
    parser.add_argument("--caption-limit", type=int, default=200, help="val images to caption (the first N)")
    parser.add_argument("--no-recovery", action="store_true", help="stop after pruning (no LPD recovery)")
    parser.add_argument(
        "--recovery-steps",
        type=int,
        default=None,
        help="LPD optimizer steps (default: ukmp recover's preset for the ratio, 500 at 50%%)",
    )
    parser.add_argument("--model", default=MODEL, help="model to run the demo on (default: the shipped one)")
    add_placement_arguments(parser.add_argument_group("device and precision (src/ukmp/placement.py)"))
    parser.set_defaults(func=run)


#: what a demo folder holds (a rerun replaces only such a folder)
DEMO_MARKERS = ("report.md", "dense_results.json", "pruned_results.json", "recovered_results.json")


def run(args: argparse.Namespace) -> int:
    from ukmp.data.index import resolve_data_dir
    from ukmp.evaluation.harness import evaluate_tasks
    from ukmp.evaluation.model_loading import load_model_and_processor
    from ukmp.pruning import PruneConfig, prune
    from ukmp.recovery.config import RecoveryConfig, budget_for, preset_values
    from ukmp.recovery.distill import CURVE_FILE, MERGED_DIR, run_recovery
    from ukmp.zoo import resolve_model_name

    check_ratio(args.ratio)
    checked = (("--limit", args.limit), ("--caption-limit", args.caption_limit))
    checked += (("--recovery-steps", args.recovery_steps),) if args.recovery_steps is not None else ()
    for flag, value in checked:
        if value < 1:
            raise UserError(f"{flag} must be a positive number of records, got {value}.")
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
    limits = {"vqa": args.limit, "caption": args.caption_limit}
    steps = 3 if args.no_recovery else 5

    def evaluate(ref: str | Path, label: str) -> dict:
        model, processor, _ = load_model_and_processor(str(ref), device=device)
        return evaluate_tasks(model, processor, val, "val", limits, 64, model_name=label)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(args.out)
    tmp = Path(tempfile.mkdtemp(prefix=temporary_prefix(args.out), dir=args.out.parent))
    try:
        print(f"[1/{steps}] evaluating the dense {name}")
        results = {"dense": evaluate(model_dir, name)}
        _dump(tmp / "dense_results.json", results["dense"])
        artifact = tmp / f"{name}-ukmp-{round(args.ratio * 100)}"
        print(f"[2/{steps}] pruning {args.ratio:.0%} of all parameters with UKMP")
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
        print(f"[3/{steps}] evaluating the pruned model (reloaded from its artifact)")
        results["pruned"] = evaluate(artifact, artifact.name)
        _dump(tmp / "pruned_results.json", results["pruned"])
        recovery, recovery_summary = None, {}
        if not args.no_recovery:
            print(f"[4/{steps}] recovering it with LPD (ukmp's preset: questions answered by the dense teacher)")
            recovered = tmp / f"{artifact.name}-recovered"
            preset = preset_values("ukmp", text=False)
            preset["max_samples"] = budget_for(args.ratio)  # the preset's budget for the ratio pruned here
            if args.recovery_steps is not None:
                preset["max_samples"] = args.recovery_steps * preset["batch_size"]
            recovery = RecoveryConfig(
                pruned=str(artifact),
                out=str(recovered),
                teacher=str(model_dir),
                data="shapes",
                split="train",
                merge=True,
                cpu=torch_device(device).type == "cpu",
                **preset,
            )
            recovery_summary = run_recovery(recovery, overwrite=True)
            shutil.copy(recovered / CURVE_FILE, tmp / CURVE_FILE)
            print(f"[5/{steps}] evaluating the recovered model (reloaded from its merged artifact)")
            results["recovered"] = evaluate(recovered / MERGED_DIR, recovered.name)
            _dump(tmp / "recovered_results.json", results["recovered"])
        report = _report(
            name, results, prune_summary, recovery, recovery_summary, artifact.name, time.time() - started, args
        )
        (tmp / "report.md").write_text(report)
        replace_folder(tmp, args.out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(report)
    files = ", ".join(sorted(p.name + ("/" if p.is_dir() else "") for p in args.out.iterdir()))
    print(f"wrote {args.out.resolve()}: {files}")
    return 0


def torch_device(device: str):
    import torch

    return torch.device(device)


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


def _report(
    name: str,
    results: dict,
    prune_summary: dict,
    recovery,
    recovery_summary: dict,
    artifact: str,
    seconds: float,
    args,
) -> str:
    from ukmp.recovery.distill import CURVE_FILE

    heads = {"dense": "dense", "pruned": "pruned", "recovered": "recovered (LPD)"}
    columns = [k for k in heads if k in results]
    rows = {k: _headline(results[k]) for k in columns}
    lines = [
        f"# ukmp demo: {name} pruned by {args.ratio:.0%} with UKMP"
        + ("" if recovery is None else ", recovered with LPD"),
        "",
        f"Parameters: {prune_summary['params_before']:,} -> {prune_summary['params_after']:,} "
        f"(achieved ratio {prune_summary['achieved_ratio']:.4f} of all parameters, target {args.ratio}).",
        f"UKMI scoring ({args.num_samples} + {args.num_samples} calibration samples of the world's "
        f"`{SHAPES_CALIB_SPLIT}` split): {prune_summary['scoring_seconds']:.1f} s; backpropagated tokens "
        f"{prune_summary.get('backpropagated_tokens', 'n/a')}.",
    ]
    if recovery is not None:
        lines.append(
            f"Recovery: LPD with weight-recalling LoRA, {recovery_summary['steps']} steps of {recovery.batch_size} "
            f"({recovery_summary['seconds'] / 60:.1f} min) at lr {recovery.lr:g} "
            f"on the world's `train` split, {recovery.vqa_fraction:.0%} of the samples questions answered by the "
            f"dense teacher (no labels read); loss curve: `{CURVE_FILE}`."
        )
    lines += [
        f"Evaluation: the first {args.limit} val questions and {args.caption_limit} val images.",
        "",
        "| metric (shapes val) | " + " | ".join(heads[k] for k in columns) + " |",
        "|---|" + "---|" * len(columns),
    ]
    for key in rows["dense"]:
        cells = " | ".join(f"{rows[k].get(key, float('nan')):.4g}" for k in columns)
        lines.append(f"| {key} | {cells} |")
    if "vqa" in results["dense"]["tasks"]:
        lines += ["", "| VQA question type | " + " | ".join(f"{heads[k]} %" for k in columns) + " |"]
        lines.append("|---|" + "---|" * len(columns))
        for qtype in results["dense"]["tasks"]["vqa"]["per_question_type"]:
            cells = " | ".join(f"{results[k]['tasks']['vqa']['per_question_type'].get(qtype, 0):.2f}" for k in columns)
            lines.append(f"| {qtype} | {cells} |")
    lines += [
        "",
        f"The pruned model is in `{artifact}/`"
        + ("" if recovery is None else f", the recovered one in `{artifact}-recovered/merged/`")
        + " (load them with `ukmp.load_pruned`).",
        f"Total time: {seconds / 60:.1f} min.",
        "",
    ]
    return "\n".join(lines)
