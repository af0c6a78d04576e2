"""Flags that `ukmp prune` and `ukmp compare` both take, defined once so they read and behave alike."""

from __future__ import annotations

import argparse

from ukmp.methods.end_layers import END_LAYER_RULES
from ukmp.placement import SCORE_DTYPES, Placement
from ukmp.planning.search import SELECTION_ANSWERS, PlanSearchOptions
from ukmp.pruning import SAVED_DTYPES


def add_plan_search_arguments(parser: argparse._ActionsContainer) -> None:
    """--plan-search K and how it chooses (beyond the paper; src/ukmp/planning/search.py)."""
    parser.add_argument(
        "--plan-search",
        type=int,
        default=1,
        metavar="K",
        help=(
            "try K plans (the scores' own and K-1 perturbed) and keep the one with the lowest answer loss "
            "(a language model: next-token loss on held-out windows of --calib); 1 = off"
        ),
    )
    parser.add_argument("--plan-search-split", default="train", help="split of --calib whose VQA pairs choose the plan")
    parser.add_argument(
        "--plan-search-samples",
        type=int,
        default=256,
        help="question-answer pairs (or text windows) that choose the plan",
    )
    parser.add_argument(
        "--plan-search-spread", type=float, default=0.25, help="log-normal spread of the score perturbations"
    )
    parser.add_argument(
        "--plan-search-answers",
        choices=SELECTION_ANSWERS,
        default="labels",
        help="who answers the selection questions: the split's labels, or the dense model itself (teacher: no "
        "label is read; a candidate is judged by how far it drifts from the dense model's answers)",
    )


def plan_search_options(args: argparse.Namespace) -> PlanSearchOptions:
    """The parsed plan-search flags, checked."""
    options = PlanSearchOptions(
        candidates=args.plan_search,
        spread=args.plan_search_spread,
        samples=args.plan_search_samples,
        split=args.plan_search_split,
        answers=args.plan_search_answers,
    )
    options.validate()
    return options


def add_dtype_argument(parser: argparse._ActionsContainer) -> None:
    """--dtype of the saved weights."""
    parser.add_argument(
        "--dtype",
        choices=SAVED_DTYPES,
        default="auto",
        help="dtype of the saved weights; auto keeps the base model's (or the scoring precision where that is lower)",
    )


def add_placement_arguments(parser: argparse._ActionsContainer) -> None:
    """--device, --score-dtype and --device-map: where and in what precision scoring runs (`ukmp.placement`)."""
    parser.add_argument(
        "--device", default="auto", help="cpu, cuda, cuda:N, or auto: the first GPU when there is one, else the CPU"
    )
    parser.add_argument(
        "--score-dtype",
        choices=SCORE_DTYPES,
        default="auto",
        help="precision of the weights and activations while scoring (sums are formed in float32); "
        "auto: bfloat16 on a GPU, float32 on the CPU",
    )
    parser.add_argument(
        "--device-map",
        default=None,
        help="place a model larger than one device: auto (accelerate spreads it over the GPUs, then the CPU), "
        "or a JSON object / file from module names to devices; overrides --device",
    )


def placement_from(args: argparse.Namespace) -> Placement:
    """The parsed placement flags, checked (one sentence for a device that is not here)."""
    placement = Placement(device=args.device, dtype=args.score_dtype, device_map=args.device_map)
    placement.resolved()
    return placement


def add_keep_end_layers_argument(parser: argparse._ActionsContainer) -> None:
    """--keep-end-layers: any method may leave LLM-Pruner's end layers dense (beyond the paper)."""
    parser.add_argument(
        "--keep-end-layers",
        choices=END_LAYER_RULES,
        default="none",
        help="any method, beyond the paper: leave LLM-Pruner's first 4/32 and last 2/32 of every stack dense "
        "(nothing on stacks under 16 layers)",
    )
