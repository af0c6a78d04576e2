"""The models of one benchmark: dense, pruned, masked reference and rounded, each with a recipe to rebuild it."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ukmp.adapters import find_adapter
from ukmp.artifact import is_pruned_artifact, read_manifest, state_dict_sha256
from ukmp.benchmark.options import BenchOptions
from ukmp.errors import UserError
from ukmp.groups import PrunableGroup, PruningPlan
from ukmp.loading import load_model, resolve_model_ref
from ukmp.method_scores import MethodScores
from ukmp.placement import DTYPES
from ukmp.surgery import apply_plan_as_masks, apply_plan_physically


@dataclass
class Variant:
    """One model of the comparison, and how to rebuild it in a fresh process (``recipe``)."""

    name: str
    kind: str
    source: str
    recipe: dict[str, Any]
    derived_from: str | None = None
    manifest: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    model: nn.Module | None = field(default=None, repr=False)


def rounded_count(kept: int, num_units: int, unit_size: int, multiple: int) -> int:
    """The smallest count >= ``kept`` whose width (count x ``unit_size``) is a multiple of ``multiple``.

    Kernels care about matrix dimensions, so a head count is rounded so that heads x head_dim is a
    multiple (with 64-wide heads every count already is); a channel count (unit size 1) is rounded
    itself. Never more than ``num_units``: the dense width is always allowed.
    """
    count = kept
    while count < num_units and (count * unit_size) % multiple:
        count += 1
    return count


def round_plan(
    plan: PruningPlan,
    groups: Sequence[PrunableGroup],
    multiple: int,
    scores: Mapping[str, torch.Tensor] | None = None,
) -> tuple[PruningPlan, dict[str, Any]]:
    """``plan`` with every group's kept units rounded up (``rounded_count``); plus what changed.

    The extra units are the removed ones with the highest saved score (the next ones the method
    would have kept) when ``scores`` has the group, else the removed ones with the lowest index.
    Pure: reads only group sizes and scores.
    """
    by_name = {g.name: g for g in groups}
    out = PruningPlan()
    extra_units = extra_params = changed = 0
    by_score = 0
    for name in sorted(plan.kept):
        group = by_name[name]
        kept = sorted(plan.kept[name])
        target = rounded_count(len(kept), group.num_units, group.unit_size, multiple)
        if target > len(kept):
            kept_set = set(kept)
            removed = [u for u in range(group.num_units) if u not in kept_set]
            score = scores.get(name) if scores is not None else None
            if score is not None and score.numel() == group.num_units:
                values = score.reshape(-1).double()
                removed.sort(key=lambda u: (-float(values[u]), u))
                by_score += 1
            added = removed[: target - len(kept)]
            kept = sorted(kept + added)
            extra_units += len(added)
            extra_params += len(added) * group.params_per_unit
            changed += 1
        out.kept[name] = kept
        out.num_units[name] = plan.num_units.get(name, group.num_units)
    info = {
        "multiple": multiple,
        "groups_changed": changed,
        "extra_units": extra_units,
        "extra_parameters": extra_params,
        "unit_choice": "saved scores" if by_score else "lowest index",
    }
    return out, info


def load_saved_scores(artifact: Path) -> dict[str, torch.Tensor] | None:
    """The artifact's ``scores.safetensors`` (written by ``ukmp prune``), or None."""
    file = artifact / "scores.safetensors"
    if not file.is_file():
        return None
    return MethodScores.load(file).scores


def check_supported(model: nn.Module, ref: str) -> None:
    if not find_adapter(model).inputs.end_to_end:
        raise UserError(
            "ukmp bench measures vision-language models that write text and decoder-only language models; "
            f"{ref} is {type(model).__name__}."
        )


def _unique(name: str, taken: set[str]) -> str:
    out, i = name, 2
    while out in taken:
        out, i = f"{name}-{i}", i + 1
    taken.add(out)
    return out


def _label(ref: str) -> str:
    path = Path(ref)
    return path.name if path.name else ref


def build_from_recipe(recipe: Mapping[str, Any], dtype: torch.dtype = torch.float32) -> nn.Module:
    """A model from ``{"load": ref}`` plus, optionally, ``{"plan": dict, "apply": "masks"|"physical"}``, in ``dtype``.

    Cast right after loading, so a bf16 checkpoint measured in bf16 never exists in float32.
    """

    model = load_model(recipe["load"]).to(dtype)
    if "plan" in recipe:
        plan = PruningPlan.from_dict(recipe["plan"])
        apply = apply_plan_as_masks if recipe["apply"] == "masks" else apply_plan_physically
        apply(model, plan)
    return model.eval().requires_grad_(False)


def load_variants(model_ref: str, pruned_refs: Sequence[str], options: BenchOptions) -> list[Variant]:
    """Dense, then per artifact: pruned, masked reference, rounded variant (in the bench's dtype, on the CPU)."""

    ref = resolve_model_ref(model_ref)
    if Path(ref).is_dir() and is_pruned_artifact(ref):
        raise UserError(f"{model_ref} is a pruned artifact; give the dense model first, then the pruned ones.")
    for pruned in pruned_refs:
        if not is_pruned_artifact(pruned):
            raise UserError(
                f"{pruned} is not a ukmp pruned artifact (it has no pruning.json); pass `ukmp prune` outputs."
            )
    dtype = DTYPES[options.dtype]
    dense = load_model(ref)
    check_supported(dense, model_ref)
    # the base checksum names the weights as loaded: taken before the cast to the bench's dtype
    checksum = state_dict_sha256(dense, as_float32=True) if pruned_refs else None
    dense = dense.to(dtype).eval().requires_grad_(False)
    groups = find_adapter(dense).all_groups(dense)
    taken: set[str] = set()
    dense_name = _unique(_label(model_ref), taken)
    variants = [Variant(dense_name, "dense", model_ref, {"load": ref}, model=dense)]
    for pruned in pruned_refs:
        manifest = read_manifest(pruned)
        expected = (manifest.get("base_model") or {}).get("sha256")
        if expected:
            if checksum != expected:
                raise UserError(
                    f"{pruned} was not pruned from {model_ref} (the base checksum in its pruning.json differs); "
                    "pass the dense model it was pruned from as MODEL."
                )
        name = _unique(_label(pruned), taken)
        model = load_model(pruned).to(dtype).eval().requires_grad_(False)
        plan = PruningPlan.from_dict(manifest["groups"])
        pruned_variant = Variant(name, "pruned", pruned, {"load": str(pruned)}, manifest=manifest, model=model)
        variants.append(pruned_variant)
        if options.masked:
            masked = apply_plan_as_masks(copy.deepcopy(dense), plan)
            recipe = {"load": ref, "plan": plan.to_dict(), "apply": "masks"}
            variants.append(Variant(_unique(f"{name} masked", taken), "masked", pruned, recipe, name, model=masked))
        if options.round_to > 1:
            rounded_plan, info = round_plan(plan, groups, options.round_to, load_saved_scores(Path(pruned)))
            if info["groups_changed"] == 0:
                pruned_variant.extra["round_to_unchanged"] = options.round_to
                continue
            rounded = apply_plan_physically(copy.deepcopy(dense), rounded_plan)
            recipe = {"load": ref, "plan": rounded_plan.to_dict(), "apply": "physical"}
            variants.append(
                Variant(
                    _unique(f"{name} round-to-{options.round_to}", taken),
                    "rounded",
                    pruned,
                    recipe,
                    name,
                    extra={"round_to": info},
                    model=rounded,
                )
            )
    return variants
