"""`ukmp compare`: UKMP and the paper's baselines side by side on one model, one table, one plot.

Every method prunes the same model to the same parameter targets from the same calibration
samples; the baselines share one calibration pass. OUT gets results.md, results.json,
quality_vs_ratio.png, examples.html / examples.md (every model's captions and answers on the same
images) and every artifact; a rerun with the same OUT skips what is already there.
The defaults are sized so the 9 x 3 comparison on the shipped model runs in minutes on a CPU.

A .txt or .jsonl --calib compares methods on a standalone language model: every method is calibrated
on that text (``--seq-len`` tokens per window), and the dense and every pruned model are measured by
perplexity on each ``--eval-text`` file (lower is better), as `ukmp evaluate --task perplexity` does.
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
from pathlib import Path

from ukmp.commands.compare_flags import settle_calibration_flags
from ukmp.commands.help_format import HelpFormatter
from ukmp.commands.shared_options import (
    add_dtype_argument,
    add_keep_end_layers_argument,
    add_placement_arguments,
    add_plan_search_arguments,
    placement_from,
    plan_search_options,
)
from ukmp.compare.config import DEFAULT_METHODS, RECOVERY_MODES, CompareConfig, parse_list, parse_ratios
from ukmp.compare.run import run_compare
from ukmp.data.index import default_calib_split
from ukmp.errors import UserError
from ukmp.methods.flags import add_method_flags, method_flag_dests, method_options_from
from ukmp.planning.iterative import SCOPE_CHOICES


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "compare",
        help="prune with several methods at several ratios, evaluate, and tabulate/plot the results",
        description=__doc__.splitlines()[0],
        formatter_class=HelpFormatter,
    )
    parser.add_argument("model", metavar="MODEL", help="dense model directory, hub id or zoo name")
    parser.add_argument(
        "--methods",
        default=",".join(DEFAULT_METHODS),
        help="comma-separated methods; a UKMP variant names its threshold, e.g. ukmp:q0.34 or ukmp:1.0",
    )
    parser.add_argument("--ratios", default="0.2,0.35,0.5", help="comma-separated fractions of parameters to remove")
    parser.add_argument(
        "--calib",
        default="shapes",
        help="calibration data folder (ukmp_data.json), 'shapes', or for a language model a .txt/.jsonl text",
    )
    parser.add_argument("--eval", dest="eval_data", default=None, help="evaluation data folder, or 'shapes' (default)")
    parser.add_argument("--out", type=Path, required=True, help="run folder (results, artifacts, caches)")
    parser.add_argument(
        "--recover",
        choices=RECOVERY_MODES,
        default="none",
        help="none: pruning only; lpd: UKMP with LPD, baselines with plain LoRA (the paper); lora: all plain LoRA",
    )
    parser.add_argument("--recover-ratios", default=None, help="recover only at these ratios (default: all)")
    parser.add_argument(
        "--recover-samples", type=int, default=None, help="training pairs (text: windows) per recovery (default 2000)"
    )
    parser.add_argument("--recover-batch-size", type=int, default=None, help="recovery batch size (default 8)")
    parser.add_argument(
        "--recover-lr", type=float, default=None, help="recovery's peak learning rate (default: the paper's 2e-5)"
    )
    parser.add_argument(
        "--recover-warmup-steps", type=int, default=None, help="recovery's warm-up steps (default: the paper's 50)"
    )
    parser.add_argument(
        "--calib-split",
        default=None,
        help="split of the calibration data (default: alttext for --calib shapes, else train)",
    )
    parser.add_argument("--eval-split", default=None, help="split of the evaluation data (default val)")
    parser.add_argument("--num-samples", type=int, default=256, help="calibration samples per pass")
    parser.add_argument("--batch-size", type=int, default=8, help="calibration batch size")
    parser.add_argument(
        "--tasks", default=None, help="evaluation tasks (vqa, gqa, caption, retrieval; default vqa,caption)"
    )
    parser.add_argument(
        "--limit",
        default=None,
        help="evaluate on the first N records of each task, or 'all' of them (default 1000)",
    )
    parser.add_argument("--caption-limit", type=int, default=None, help="first N images for captioning (default 200)")
    parser.add_argument(
        "--eval-batch-size", type=int, default=None, help="evaluation batch size (default 64; text: 4 windows)"
    )
    parser.add_argument(
        "--examples",
        type=int,
        default=None,
        help="images on OUT/examples.html and examples.md: every model's caption and answers side by side, "
        "from the evaluation (0: no page; default 8)",
    )
    text = parser.add_argument_group(
        "a language model calibrated on text (a .txt/.jsonl --calib): perplexity on held-out texts; --eval-text "
        "and its window flags also measure a VLM's language model beside its tasks"
    )
    text.add_argument("--seq-len", type=int, default=None, help="tokens per calibration window (as `ukmp prune`)")
    text.add_argument(
        "--eval-text", default=None, help="comma-separated held-out .txt/.jsonl files, one perplexity column each"
    )
    text.add_argument("--eval-seq-len", type=int, default=None, help="tokens per perplexity window (default 256)")
    text.add_argument(
        "--eval-windows", default=None, help="the first N windows of each held-out text, or 'all' (default)"
    )
    text.add_argument("--gguf-file", default=None, help="the GGUF file inside the MODEL folder to load")
    parser.add_argument("--of", choices=("all", "prunable"), default="all", help="ratio basis")
    parser.add_argument("--seed", type=int, default=0, help="seed of sampling and random scores")
    parser.add_argument(
        "--seeds",
        type=int,
        default=1,
        help="run N calibration draws (seeds SEED..SEED+N-1) and report mean, min-max and paired orderings",
    )
    add_keep_end_layers_argument(parser)
    parser.add_argument(
        "--norm-scope",
        choices=SCOPE_CHOICES,
        default=None,
        help="what one normaliser of an iterative plan (UKMP's) pools, as `ukmp prune --norm-scope` (default: "
        "each method's preset's)",
    )
    add_method_flags(parser)  # each method's own flags, as its options class declares them (ukmp.methods.flags)
    search = parser.add_argument_group("plan search, beyond the paper (every method searched alike)")
    add_plan_search_arguments(search)
    add_dtype_argument(parser)
    add_placement_arguments(parser.add_argument_group("device and precision (src/ukmp/placement.py)"))
    parser.add_argument("--overwrite", action="store_true", help="start afresh instead of reusing OUT")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.model is None or not str(args.model).strip():
        raise UserError("MODEL is empty; give a model directory, hub id or zoo name.")
    text = settle_calibration_flags(args)
    options = method_options_from(args)
    config = CompareConfig(
        model=args.model,
        out=str(args.out),
        calib=args.calib,
        eval_data=args.eval_data,
        methods=tuple(parse_list(args.methods, "--methods")),
        ratios=parse_ratios(args.ratios),
        recover=args.recover,
        recover_ratios=parse_ratios(args.recover_ratios, "--recover-ratios") if args.recover_ratios else None,
        calib_split=args.calib_split or default_calib_split(args.calib),
        eval_split=args.eval_split,
        num_samples=args.num_samples,
        batch_size=args.batch_size,
        tasks=tuple(parse_list(args.tasks, "--tasks")),
        limit=count_or_all(args.limit, "--limit", "records"),
        caption_limit=args.caption_limit,
        eval_batch_size=args.eval_batch_size,
        of=args.of,
        seed=args.seed,
        seeds=args.seeds,
        examples=args.examples,
        recover_samples=args.recover_samples,
        recover_batch_size=args.recover_batch_size,
        recover_lr=args.recover_lr,
        recover_warmup_steps=args.recover_warmup_steps,
        progress=not args.no_progress,
        method_options=options,
        dtype=args.dtype,
        plan_search=plan_search_options(args),
        keep_end_layers=args.keep_end_layers,
        placement=placement_from(args),
        extra={"command": _text_command_line(args) if text else _command_line(args)},
    )
    if text or args.eval_text:
        config = dataclasses.replace(
            config,
            eval_texts=tuple(parse_list(args.eval_text, "--eval-text")) if args.eval_text else (),
            eval_seq_len=args.eval_seq_len,
            eval_windows=count_or_all(args.eval_windows, "--eval-windows", "windows"),
        )
    if text:
        config = dataclasses.replace(config, examples=0, seq_len=args.seq_len, gguf_file=args.gguf_file)
    if args.norm_scope is not None:
        config = dataclasses.replace(config, norm_scope=args.norm_scope)
    run_compare(config, overwrite=args.overwrite)
    return 0


def count_or_all(text: str, flag: str, unit: str) -> int | None:
    """``flag``'s value: a positive number of ``unit``, or 'all' (None: every one there is)."""
    if str(text).strip().lower() == "all":
        return None
    try:
        value = int(text)
    except ValueError:
        raise UserError(f"{flag} takes a number of {unit} or 'all', got {text!r}.") from None
    if value < 1:
        raise UserError(f"{flag} must be at least 1 (or 'all'), got {value}.")
    return value


def _text_command_line(args: argparse.Namespace) -> str:
    """The command that reproduces a text comparison (every setting that shapes its results, spelled out)."""
    parts = ["ukmp", "compare", args.model, "--methods", args.methods, "--ratios", args.ratios, "--of", args.of]
    parts += ["--calib", args.calib]
    if args.seq_len is not None:
        parts += ["--seq-len", str(args.seq_len)]
    if args.gguf_file is not None:
        parts += ["--gguf-file", args.gguf_file]
    parts += ["--num-samples", str(args.num_samples), "--batch-size", str(args.batch_size)]
    parts += ["--eval-text", args.eval_text or "", "--eval-seq-len", str(args.eval_seq_len)]
    parts += ["--eval-windows", str(args.eval_windows), "--eval-batch-size", str(args.eval_batch_size)]
    parts += ["--out", str(args.out), "--seed", str(args.seed), *_method_flag_parts(args)]
    parts += ["--recover", args.recover, *_recovery_setting_parts(args)]
    if args.seeds > 1:
        parts += ["--seeds", str(args.seeds)]
    if args.dtype != "auto":
        parts += ["--dtype", args.dtype]
    if args.keep_end_layers != "none":
        parts += ["--keep-end-layers", args.keep_end_layers]
    placement = placement_from(args).resolved()
    parts += ["--device", placement.device, "--score-dtype", placement.dtype]
    if args.plan_search > 1:
        parts += ["--plan-search", str(args.plan_search), "--plan-search-samples", str(args.plan_search_samples)]
    if args.norm_scope is not None:
        parts += ["--norm-scope", args.norm_scope]
    return " ".join(shlex.quote(p) for p in parts)


def _recovery_setting_parts(args: argparse.Namespace) -> list[str]:
    """Every setting of the recoveries, when the run recovers (--recover itself is the caller's)."""
    if args.recover == "none":
        return []
    parts = ["--recover-ratios", args.recover_ratios] if args.recover_ratios else []
    parts += ["--recover-samples", str(args.recover_samples), "--recover-batch-size", str(args.recover_batch_size)]
    return parts + ["--recover-lr", f"{args.recover_lr:g}", "--recover-warmup-steps", str(args.recover_warmup_steps)]


def _method_flag_parts(args: argparse.Namespace) -> list[str]:
    """The methods' own flags the user typed, as typed (`ukmp.methods.flags`)."""
    parts = []
    for dest in method_flag_dests():
        if dest in args:
            value = getattr(args, dest)
            parts += ["--" + dest.replace("_", "-")] + ([] if value is True else [str(value)])
    return parts


def _command_line(args: argparse.Namespace) -> str:
    """The command that reproduces this run (every setting that shapes the results, spelled out)."""
    parts = ["ukmp", "compare", args.model, "--methods", args.methods, "--ratios", args.ratios]
    parts += ["--calib", args.calib, "--eval", args.eval_data, "--out", str(args.out), "--recover", args.recover]
    parts += ["--num-samples", str(args.num_samples), "--tasks", args.tasks, "--limit", args.limit]
    parts += ["--caption-limit", str(args.caption_limit), "--seed", str(args.seed)]
    parts += ["--calib-split", args.calib_split or default_calib_split(args.calib), "--eval-split", args.eval_split]
    if args.eval_text:
        parts += ["--eval-text", args.eval_text, "--eval-seq-len", str(args.eval_seq_len)]
        parts += ["--eval-windows", str(args.eval_windows)]
    parts += _method_flag_parts(args)
    if args.seeds > 1:
        parts += ["--seeds", str(args.seeds)]
    if args.examples != 8:
        parts += ["--examples", str(args.examples)]
    parts += _recovery_setting_parts(args)
    if args.dtype != "auto":
        parts += ["--dtype", args.dtype]
    if args.keep_end_layers != "none":
        parts += ["--keep-end-layers", args.keep_end_layers]
    if args.norm_scope is not None:
        parts += ["--norm-scope", args.norm_scope]
    placement = placement_from(args).resolved()  # spelled out: "auto" means other things on other machines
    parts += ["--device", placement.device, "--score-dtype", placement.dtype]
    if placement.device_map is not None:
        parts += ["--device-map", placement.device_map]
    if args.plan_search > 1:
        parts += ["--plan-search", str(args.plan_search), "--plan-search-split", args.plan_search_split]
        parts += ["--plan-search-samples", str(args.plan_search_samples)]
        if args.plan_search_answers != "labels":
            parts += ["--plan-search-answers", args.plan_search_answers]
    return " ".join(shlex.quote(p) for p in parts)
