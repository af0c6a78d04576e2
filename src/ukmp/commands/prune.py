"""`ukmp prune`: score, plan, slice and save a pruned model in one step.

MODEL is a dense model directory, a hub id (cached or reachable), a short zoo name, or a GGUF file
(a .gguf path, or its folder with --gguf-file; dequantised on load, recorded in the manifest). The target
is a fraction of ALL model parameters by default (as in the paper), or of the prunable
parameters only with ``--of prunable``. The achieved ratio is never below the target. The scores
are saved beside the artifact (`scores.safetensors`), so `--scores FILE` re-plans another ratio
without recomputing them.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ukmp.commands.help_format import HelpFormatter
from ukmp.commands.shared_options import (
    add_dtype_argument,
    add_keep_end_layers_argument,
    add_placement_arguments,
    add_plan_search_arguments,
    placement_from,
    plan_search_options,
)
from ukmp.data.index import default_calib_split, resolve_data_dir
from ukmp.data.text import is_text_data
from ukmp.errors import UserError
from ukmp.methods.base import MethodOptions
from ukmp.methods.flags import add_method_flags, method_flag_dests, method_options_from
from ukmp.methods.presets import DEFAULT_PRESET, PRESETS
from ukmp.methods.registry import get_scorer, scorer_names
from ukmp.placement import Placement
from ukmp.planning.iterative import SCOPE_CHOICES, IterativeOptions
from ukmp.planning.schedules import SCHEDULES
from ukmp.preflight import check_ratio
from ukmp.pruning import PruneConfig, TypedFlag, check_flags_apply_to_scores, prune


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "prune",
        help="prune heads and MLP channels to a target ratio and save the smaller model",
        description=__doc__.splitlines()[0],
        formatter_class=HelpFormatter,
    )
    parser.add_argument("model", metavar="MODEL", help="model directory, hub id or zoo name")
    parser.add_argument("--method", choices=scorer_names(), required=True, help="importance criterion")
    parser.add_argument("--ratio", type=float, required=True, help="fraction of parameters to remove, in (0, 1)")
    parser.add_argument("--out", type=Path, required=True, help="output directory of the pruned model")
    parser.add_argument("--seed", type=int, default=0, help="seed of the scorer and the calibration sampling")
    parser.add_argument(
        "--of",
        choices=("all", "prunable"),
        default="all",
        help="the ratio is a fraction of all or of prunable parameters",
    )
    parser.add_argument(
        "--components",
        default=None,
        help="comma-separated components (default: the model's; the Q-Former is opt-in)",
    )
    parser.add_argument(
        "--schedule",
        choices=SCHEDULES,
        default=None,
        help="default: iterative for ukmp, global for the others",
    )
    parser.add_argument("--scores", type=Path, default=None, help="re-plan from a scores.safetensors of an earlier run")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output directory")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    parser.add_argument("--gguf-file", default=None, help="the GGUF file inside the MODEL folder to load")
    add_dtype_argument(parser)
    add_placement_arguments(parser.add_argument_group("device and precision (src/ukmp/placement.py)"))
    ukmi = parser.add_argument_group("calibration, and UKMP's preset and schedule (docs/method-notes.md)")
    ukmi.add_argument(
        "--calib", default=None, help="calibration data folder (ukmp_data.json), 'shapes', or a .txt/.jsonl text file"
    )
    ukmi.add_argument("--seq-len", type=int, default=128, help="tokens per prefix-LM window of a text --calib")
    ukmi.add_argument(
        "--calib-split",
        default=None,
        help="split of the calibration data (default: alttext for --calib shapes, else train)",
    )
    ukmi.add_argument(
        "--num-samples",
        type=int,
        default=1000,
        help="samples per pass; UKMP makes two disjoint passes (entropy, gradients), so it reads 2N",
    )
    ukmi.add_argument("--batch-size", type=int, default=8, help="calibration batch size (scores do not depend on it)")
    ukmi.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default=DEFAULT_PRESET,
        help="UKMP's settings: ukmp's defaults, or the paper's exact ones; --threshold and the schedule's flags "
        "override either",
    )
    ukmi.add_argument(
        "--norm",
        choices=("mean", "minmax", "standardize", "none"),
        default=argparse.SUPPRESS,
        help="modality normalisation (default: the preset's)",
    )
    ukmi.add_argument(
        "--norm-scope",
        choices=SCOPE_CHOICES,
        default=argparse.SUPPRESS,
        help="what one normaliser pools: the whole modality (the paper), or, beyond the paper, each kind of unit "
        "(attention, MLP) of a modality apart, as FLAP and UPop do; auto plans both and keeps the lower "
        "calibration loss (default: the preset's)",
    )
    ukmi.add_argument("--no-iterative", action="store_true", help="compute the modality normalisers once")
    ukmi.add_argument(
        "--step-fraction", type=float, default=None, help="units removed per step, as a fraction of all units"
    )
    add_keep_end_layers_argument(parser)
    add_method_flags(parser)  # each method's own flags, as its options class declares them (ukmp.methods.flags)
    search = parser.add_argument_group(
        "plan search, beyond the paper (src/ukmp/planning/search.py; reads question-answer pairs of --calib)"
    )
    add_plan_search_arguments(search)
    _defaults_apart(parser, SCORE_FLAGS)
    parser.set_defaults(func=run)


#: the flags besides the methods' own that only decide how scores are computed: parsed without a default,
#: so that `run` can tell the ones the user typed, which cannot apply to --scores (the methods' flags,
#: `ukmp.methods.flags`, are parsed that way already)
SCORE_FLAGS = ("preset", "num_samples", "seq_len", "score_dtype")


def _defaults_apart(parser: argparse.ArgumentParser, dests: tuple[str, ...]) -> None:
    """Move the defaults of ``dests`` out of the parse (to ``args.score_defaults``); --help still shows them."""
    defaults = {}
    for action in parser._actions:
        if action.dest in dests:
            defaults[action.dest] = action.default
            if action.nargs != 0:
                shown = f"(default: {action.default})"
                action.help = f"{action.help} {shown}" if action.help else shown
            action.default = argparse.SUPPRESS
    parser.set_defaults(score_defaults=defaults)


def _typed_score_flags(args: argparse.Namespace) -> set[str]:
    """The score flags the user typed (``SCORE_FLAGS``, the methods' flags); the others get their defaults back."""
    typed = {name for name in (*SCORE_FLAGS, *method_flag_dests()) if name in args}
    for name, default in args.score_defaults.items():
        if name not in args:
            setattr(args, name, default)
    return typed


def _asked_score_settings(
    args: argparse.Namespace, typed: set[str], placement: Placement, options: MethodOptions
) -> dict[str, TypedFlag]:
    """What each typed score flag asks for, by the setting a scores file records (`Scorer.settings`)."""
    out = {}
    for dest in sorted(typed - {"preset", "threshold", "score_dtype"}):
        flag, value = "--" + dest.replace("_", "-"), getattr(args, dest)
        out[flag] = TypedFlag(flag if value is True else f"{flag} {value}", value)
    if "score_dtype" in typed:
        out["--score-dtype"] = TypedFlag(f"--score-dtype {args.score_dtype}", placement.resolved().dtype)
    if "threshold" in typed:
        out["--threshold"] = TypedFlag(f"--threshold {args.threshold}", options.ukmi.threshold)
    elif "preset" in typed:  # the preset's threshold; its planning settings apply to saved scores
        out["--threshold"] = TypedFlag(f"--preset {args.preset}", PRESETS[args.preset].threshold)
    return out


def run(args: argparse.Namespace) -> int:
    check_ratio(args.ratio)
    typed = _typed_score_flags(args)
    placement = placement_from(args)
    if args.num_samples < 1:
        raise UserError(f"--num-samples must be at least 1, got {args.num_samples}.")
    components = [c.strip() for c in args.components.split(",")] if args.components else None
    preset = PRESETS[args.preset]
    options = method_options_from(args, defaults={"ukmi": {"threshold": preset.threshold}})
    iterative = IterativeOptions(
        norm=getattr(args, "norm", preset.norm),
        scope=getattr(args, "norm_scope", preset.scope),
        iterative=preset.iterative and not args.no_iterative,
    )
    if args.step_fraction is not None:
        iterative.step_fraction = args.step_fraction
        iterative.fine_step_fraction = min(iterative.fine_step_fraction, args.step_fraction)
    iterative.validate()
    calib = None
    args.calib_split = args.calib_split or default_calib_split(args.calib)
    if get_scorer(args.method).calibrated and args.scores is None:
        if args.calib is None:
            raise UserError(f"--method {args.method} needs calibration data: pass --calib DIR (or --calib shapes).")
        text = is_text_data(args.calib)
        calib = (
            args.calib if text else resolve_data_dir(args.calib, args.calib_split, 2 * args.num_samples, flag="--calib")
        )
    search = plan_search_options(args)
    search_data = None
    if search.enabled:
        if args.calib is None:
            raise UserError(
                "--plan-search needs data to choose a plan with: pass --calib with an image-text data folder "
                "(its question-answer pairs choose) or, for a language model, the calibration text."
            )
        if not is_text_data(args.calib):
            search_data = resolve_data_dir(args.calib, search.split, flag="--calib")
        else:
            calib = args.calib  # re-planning saved scores still reads the text's held-out windows
    if iterative.scope == "auto" and calib is None and args.calib is not None:  # re-planning saved scores
        text = is_text_data(args.calib)
        calib = args.calib if text else resolve_data_dir(args.calib, args.calib_split, flag="--calib")
    print(f"ukmp prune: {args.model}, method {args.method}, ratio {args.ratio:g} of {args.of} parameters")
    config = PruneConfig(
        model=args.model,
        out=args.out,
        method=args.method,
        ratio=args.ratio,
        of=args.of,
        components=components,
        seed=args.seed,
        schedule=args.schedule,
        calib=calib,
        calib_split=args.calib_split,
        num_samples=args.num_samples,
        batch_size=args.batch_size,
        seq_len=args.seq_len,
        gguf_file=args.gguf_file,
        options=options,
        iterative=iterative,
        scores_file=args.scores,
        plan_search=search,
        plan_search_data=search_data,
        dtype=args.dtype,
        keep_end_layers=args.keep_end_layers,
        progress=not args.no_progress,
        placement=placement,
    )
    if args.scores is not None:
        check_flags_apply_to_scores(
            args.scores, config.scorer(), _asked_score_settings(args, typed, placement, options)
        )
    prune(config, overwrite=args.overwrite)
    return 0
