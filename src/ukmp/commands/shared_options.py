"""Flags that `ukmp prune` and `ukmp compare` both take, defined once so they read and behave alike."""

from __future__ import annotations

import argparse

from ukmp.planning.search import PlanSearchOptions
from ukmp.pruning import SAVED_DTYPES
from ukmp.scoring.llm_pruner import SKIPS


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


def plan_search_options(args: argparse.Namespace) -> PlanSearchOptions:
    """The parsed plan-search flags, checked."""
    options = PlanSearchOptions(
        candidates=args.plan_search,
        spread=args.plan_search_spread,
        samples=args.plan_search_samples,
        split=args.plan_search_split,
    )
    options.validate()
    return options


def add_dtype_argument(parser: argparse._ActionsContainer) -> None:
    """--dtype of the saved weights."""
    parser.add_argument(
        "--dtype",
        choices=SAVED_DTYPES,
        default="auto",
        help="dtype of the saved weights; auto keeps the base model's (scoring always runs in float32)",
    )


def add_keep_end_layers_argument(parser: argparse._ActionsContainer) -> None:
    """--keep-end-layers: any method may leave LLM-Pruner's end layers dense (beyond the paper)."""
    parser.add_argument(
        "--keep-end-layers",
        choices=SKIPS,
        default="none",
        help="any method, beyond the paper: leave LLM-Pruner's first 4/32 and last 2/32 of every stack dense "
        "(nothing on stacks under 16 layers)",
    )
