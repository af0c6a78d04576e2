"""`ukmp prune`: score, plan, slice and save a pruned model in one step.

MODEL is a dense model directory, a hub id (cached or reachable) or a short zoo name. The target
is a fraction of ALL model parameters by default (as in the paper), or of the prunable
parameters only with ``--of prunable``. The achieved ratio is never below the target and at most
about half a percent above it.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from pathlib import Path

from ukmp.errors import UserError

METHODS = ("random", "magnitude")


def _scorer(method: str) -> Callable:
    if method == "random":
        from ukmp.scoring.random import random_scores

        return random_scores
    from ukmp.scoring.magnitude import magnitude_scores

    return magnitude_scores


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "prune",
        help="prune heads and MLP channels to a target ratio and save the smaller model",
        description=__doc__.splitlines()[0],
    )
    parser.add_argument("model", metavar="MODEL", help="model directory, hub id or zoo name")
    parser.add_argument("--method", choices=METHODS, required=True, help="importance criterion")
    parser.add_argument(
        "--ratio", type=float, required=True, help="fraction of parameters to remove, in (0, 1)"
    )
    parser.add_argument("--out", type=Path, required=True, help="output directory of the pruned model")
    parser.add_argument("--seed", type=int, default=0, help="seed of the scorer (default 0)")
    parser.add_argument(
        "--of",
        choices=("all", "prunable"),
        default="all",
        help="the ratio is a fraction of all parameters (default) or of the prunable ones",
    )
    parser.add_argument(
        "--components",
        default=None,
        help="comma-separated components to prune (default: the model's defaults; the Q-Former is opt-in)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output directory")
    parser.set_defaults(func=run)


def _load_processor(ref: str):
    """The model's processor or tokenizer, when the source has one (copied into the artifact)."""
    path = Path(ref)
    if path.is_dir():
        names = ("preprocessor_config.json", "processor_config.json", "tokenizer_config.json")
        if not any((path / n).exists() for n in (*names, "tokenizer.json")):
            return None
    from transformers import AutoProcessor, AutoTokenizer

    for loader in (AutoProcessor, AutoTokenizer):
        try:
            return loader.from_pretrained(ref)
        except Exception:  # a model without processor files is fine: the artifact simply has none
            continue
    return None


def run(args: argparse.Namespace) -> int:
    import torch

    from ukmp.accounting import parameter_counts, prunable_parameters
    from ukmp.adapters import find_adapter
    from ukmp.artifact import check_output_dir, load_model, resolve_model_ref, save_pruned, state_dict_sha256
    from ukmp.planning import GroupCost, global_schedule
    from ukmp.surgery import apply_plan_physically

    if not (0.0 < args.ratio < 1.0) or math.isnan(args.ratio):
        raise UserError(f"--ratio must be between 0 and 1 (exclusive), got {args.ratio}.")
    check_output_dir(args.out, overwrite=args.overwrite)
    ref = resolve_model_ref(args.model)
    model = load_model(ref)
    if getattr(model, "ukmp_manifest", None) is not None:
        raise UserError(f"{args.model} is already a pruned model; prune its dense base model instead.")
    adapter = find_adapter(model)
    components = [c.strip() for c in args.components.split(",")] if args.components else None
    groups = adapter.groups(model, components)
    if not groups:
        raise UserError(f"{args.model} has no prunable groups in the chosen components.")

    print(f"ukmp prune: {adapter.architecture}, {len(groups)} groups, method {args.method}, seed {args.seed}")
    base_checksum = state_dict_sha256(model)
    before = parameter_counts(model, adapter)
    basis = before["total"] if args.of == "all" else prunable_parameters(groups)
    torch.manual_seed(args.seed)
    scores = _scorer(args.method)(model, groups, seed=args.seed)
    costs = {g.name: GroupCost(g.num_units, g.params_per_unit) for g in groups}
    result = global_schedule(scores, costs, target_ratio=args.ratio, basis_params=basis)
    apply_plan_physically(model, result.plan, adapter)
    after = parameter_counts(model, adapter)

    out = save_pruned(
        model,
        result.plan,
        args.out,
        processor=_load_processor(ref),
        base_model_ref=args.model,
        base_checksum=base_checksum,
        method=args.method,
        options={
            "ratio": args.ratio,
            "of": args.of,
            "components": components or list(adapter.default_components),
        },
        seed=args.seed,
        target_ratio=args.ratio,
        ratio_basis=args.of,
        overwrite=args.overwrite,
    )
    removed = before["total"] - after["total"]
    print(
        f"target {args.ratio:g} of {args.of} parameters -> achieved {result.achieved_ratio:.4f} "
        f"({removed:,} of {before['total']:,} parameters removed; {removed / before['total']:.4f} of all)"
    )
    width = max(len(k) for k in before)
    for key in before:
        print(f"  {key:<{width}}  {before[key]:>14,} -> {after[key]:>14,}")
    files = sorted(p.name for p in Path(out).iterdir())
    print(f"wrote {Path(out).resolve()} ({', '.join(files)}); load it with ukmp.load_pruned")
    return 0
