"""`ukmp recover`: win back quality after pruning with weight-recalling LoRA and progressive distillation.

PRUNED is a pruned artifact (`ukmp prune --out`); the teacher is its dense base model (default: the
one its manifest names). A pruned decoder-only language model trains on a plain-text --data file,
cut into prefix-LM windows of --seq-len tokens (the form `ukmp prune` calibrates on). The adapter,
its config, the loss history and curve, and checkpoints go to OUT; `--merge` also writes
OUT/merged, a normal pruned artifact with the adapter folded in. The same command runs under
`accelerate launch` with several processes (`--num_processes 2 --multi_gpu`, or
`torchrun --nproc_per_node 2 -m ukmp.cli recover ...` on CPUs) and with `--mixed-precision bf16`.

Schedules (docs/method-notes.md, Table A/B): lpd (the seven sub-phases), kl-task, task,
no-progressive. The baselines' recovery is `--plain-lora --schedule task`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ukmp.commands.help_format import HelpFormatter
from ukmp.errors import UserError


def register(subparsers: argparse._SubParsersAction) -> None:
    from ukmp.recovery.config import ANSWERS, DEFAULT_PRESET, PRESETS
    from ukmp.recovery.phases import SCHEDULES

    parser = subparsers.add_parser(
        "recover",
        help="recover a pruned model: weight-recalling LoRA + progressive distillation from its base",
        description=__doc__.splitlines()[0],
        formatter_class=HelpFormatter,
    )
    parser.add_argument("pruned", metavar="PRUNED", help="pruned model folder (written by ukmp prune)")
    parser.add_argument("--teacher", default=None, help="dense base model (default: the manifest's base model)")
    parser.add_argument(
        "--data",
        required=True,
        help="folder with ukmp_data.json (calibration pairs), 'shapes', or for a language model a .txt/.jsonl file",
    )
    parser.add_argument("--seq-len", type=int, default=128, help="tokens per prefix-LM window of a text --data")
    parser.add_argument("--split", default="train", help="split of the data to train on")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--schedule", choices=SCHEDULES, default="lpd", help="loss schedule (Table B ablations)")
    parser.add_argument("--plain-lora", action="store_true", help="no weight-recalling branches (plain LoRA)")
    parser.add_argument(
        "--no-input-recall", action="store_true", help="drop the input-side recall branch (code-only in the reference)"
    )
    parser.add_argument("--merge", action="store_true", help="also write OUT/merged: the merged pruned artifact")
    parser.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default=DEFAULT_PRESET,
        help="ukmp: lr 3e-4, batch 8, 500 steps up to 50%% removed and 1,000 beyond, half the samples question "
        "prompts answered by the teacher (no labels; results/recovery-answers/); on a text --data, 100 steps "
        "(results/smollm2-recovery/); paper: the appendix's lr 2e-5, batch 20, captions only (text: every "
        "window). Flags override it",
    )
    parser.add_argument(
        "--max-samples",
        type=int,
        default=None,
        help="use the first N pairs of the shuffled data (default: the preset's)",
    )
    parser.add_argument(
        "--vqa-fraction",
        type=float,
        default=None,
        help="beyond the paper: replace this fraction of the caption samples by question prompts (the split's "
        "VQA questions, or --prompts); default: the preset's",
    )
    parser.add_argument(
        "--answers",
        choices=ANSWERS,
        default=None,
        help="who answers the question prompts: the split's human labels, or the dense teacher (no labels read); "
        "default: the preset's",
    )
    parser.add_argument(
        "--prompts",
        default=None,
        help='your own unlabelled prompts, a JSONL file of {"image": PATH, "prompt": TEXT} lines, answered by '
        "the teacher (with --answers teacher)",
    )
    parser.add_argument(
        "--batch-size", type=int, default=None, help="samples per optimizer step, over all processes (preset's)"
    )
    parser.add_argument("--lr", type=float, default=None, help="learning rate after warm-up (default: the preset's)")
    parser.add_argument(
        "--warmup-steps", type=int, default=None, help="linear warm-up steps of every sub-phase (default: the preset's)"
    )
    parser.add_argument("--warmup-lr", type=float, default=5e-7, help="learning rate at the first step")
    parser.add_argument("--weight-decay", type=float, default=0.05, help="AdamW weight decay")
    parser.add_argument("--rank", type=int, default=8, help="LoRA rank r1")
    parser.add_argument("--recall-rank", type=int, default=8, help="rank r2 of the recall branches")
    parser.add_argument("--alpha", type=float, default=16.0, help="LoRA alpha (scale alpha / r1 on every branch)")
    parser.add_argument("--lora-dropout", type=float, default=0.05, help="dropout on the LoRA branch input")
    parser.add_argument("--temperature", type=float, default=1.0, help="KL temperature")
    parser.add_argument("--seed", type=int, default=42, help="data shuffle, adapter initialisation and dropout")
    parser.add_argument("--checkpoint-every", type=int, default=200, help="checkpoint every N optimizer steps")
    parser.add_argument("--resume", action="store_true", help="continue from OUT's last checkpoint")
    parser.add_argument("--stop-after", type=int, default=None, help="stop (with a checkpoint) after N steps in all")
    parser.add_argument(
        "--mixed-precision", choices=("no", "fp16", "bf16"), default=None, help="default: accelerate's configuration"
    )
    parser.add_argument("--cpu", action="store_true", help="run on the CPU even if a GPU is present")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads per process")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    parser.set_defaults(func=run)


def preset_settings(args: argparse.Namespace) -> dict:
    """The preset's values where a flag was not given.

    A folder whose split has no questions (captions only, CC595K's situation) cannot take ukmp's
    question mix; unless the share was typed, it recovers on captions alone and says so.
    """
    from ukmp.data.index import available_tasks, is_builtin_world
    from ukmp.data.text import is_text_data
    from ukmp.recovery.config import BY_RATIO, budget_for, preset_values

    text = is_text_data(args.data)
    values = preset_values(args.preset, text=text)
    typed = {k: getattr(args, k) for k in values if getattr(args, k) is not None}
    values.update(typed)
    sized = None  # (unit, what it is sized for) where the preset chose the budget: said to the user
    if values["max_samples"] == BY_RATIO:
        removed = removed_fraction(args.pruned)
        values["max_samples"] = budget_for(removed)
        share = "an unknown share" if removed is None else f"{removed:.0%}"
        sized = ("samples", f" for {share} of the parameters removed")
    elif text and "max_samples" not in typed and values["max_samples"] is not None:
        sized = ("windows", " of the text")
    if sized:
        samples, batch = values["max_samples"], values["batch_size"]
        print(
            f"recovery budget: {samples} {sized[0]} ({samples // batch} steps of {batch}){sized[1]} "
            "(--max-samples N to change it)"
        )
    if "vqa_fraction" in typed or not values["vqa_fraction"] or args.prompts is not None or text:
        return values
    if not is_builtin_world(args.data) and "vqa" not in available_tasks(args.data, args.split):
        print(
            f"note: the {args.split!r} split of {args.data} has no questions, so this recovery uses captions alone "
            "(give your own image + prompt JSONL with --prompts to add questions the teacher answers)"
        )
        values["vqa_fraction"] = 0.0
    return values


def removed_fraction(pruned: str) -> float | None:
    """The fraction of parameters the artifact's manifest says were removed (its target), if it says."""
    from ukmp.artifact import read_manifest

    try:
        ratio = read_manifest(pruned).get("target_ratio")
    except (UserError, OSError, ValueError):
        return None  # not an artifact: the recovery names that itself, in its own words
    return float(ratio) if isinstance(ratio, (int, float)) else None


def run(args: argparse.Namespace) -> int:
    from ukmp.recovery.distill import RecoveryConfig, run_recovery

    if args.threads is not None:
        if args.threads < 1:
            raise UserError(f"--threads must be positive, got {args.threads}.")
        import torch

        torch.set_num_threads(args.threads)
    if args.stop_after is not None and args.stop_after < 1:
        raise UserError(f"--stop-after must be at least 1, got {args.stop_after}.")
    if args.resume and args.overwrite:
        raise UserError("--resume continues OUT and --overwrite replaces it; pass one of them.")
    settings = preset_settings(args)
    config = RecoveryConfig(
        pruned=args.pruned,
        out=str(args.out),
        teacher=args.teacher,
        data=args.data,
        split=args.split,
        schedule=args.schedule,
        plain_lora=args.plain_lora,
        input_recall=not args.no_input_recall,
        rank=args.rank,
        recall_rank=args.recall_rank,
        alpha=args.alpha,
        lora_dropout=args.lora_dropout,
        lr=settings["lr"],
        warmup_lr=args.warmup_lr,
        warmup_steps=settings["warmup_steps"],
        weight_decay=args.weight_decay,
        batch_size=settings["batch_size"],
        max_samples=settings["max_samples"],
        vqa_fraction=settings["vqa_fraction"],
        answers=settings["answers"],
        prompts=args.prompts,
        seed=args.seed,
        temperature=args.temperature,
        mixed_precision=args.mixed_precision,
        cpu=args.cpu,
        checkpoint_every=args.checkpoint_every,
        merge=args.merge,
        seq_len=args.seq_len,
    )
    run_recovery(
        config,
        resume=args.resume,
        overwrite=args.overwrite,
        stop_after=args.stop_after,
        progress=not args.no_progress,
    )
    return 0
