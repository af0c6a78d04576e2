"""Pruning methods as (scorer, schedule) pairs: the one place `ukmp prune` asks "how?".

A method turns a dense model and its groups into per-unit scores, then a schedule turns scores,
costs and the parameter target into a plan. Scores are kept separately from plans so that a user
can re-plan another ratio from saved scores (`ukmp prune --scores FILE`) without recomputing them.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ukmp.allocation_planning import allocated_schedule
from ukmp.baselines import BASELINE_SCHEDULE, BASELINES
from ukmp.data.index import portable_path
from ukmp.errors import UserError
from ukmp.groups import PrunableGroup
from ukmp.iterative_planning import IterativeOptions, iterative_schedule, local_schedule
from ukmp.planning import GroupCost, PlanResult, global_schedule

METHODS = ("ukmp", *BASELINES, "magnitude", "random")
SCHEDULES = ("iterative", "global", "local", "allocated")
DEFAULT_SCHEDULE = {"ukmp": "iterative", "magnitude": "global", "random": "global", **BASELINE_SCHEDULE}


@dataclass
class MethodScores:
    """Per-group unit scores plus everything needed to trust and reuse them."""

    method: str
    scores: dict[str, torch.Tensor]
    stats: dict = field(default_factory=dict)
    factors: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)

    def save(self, path: str | Path) -> None:
        """scores.safetensors (tensors) + a JSON sidecar (method, options, timing); atomic."""
        path = Path(path)
        tensors = {f"score/{k}": v.contiguous().double() for k, v in self.scores.items()}
        for factor, values in self.factors.items():
            tensors.update({f"{factor}/{k}": v.contiguous().double() for k, v in values.items()})
        tmp = path.with_name(path.name + ".tmp")
        save_file(tensors, str(tmp), metadata={"method": self.method, "stats": json.dumps(self.stats)})
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str | Path) -> MethodScores:
        from safetensors import safe_open

        path = Path(path)
        if not path.is_file():
            raise UserError(f"scores file {path} does not exist; pass the scores.safetensors of an earlier run.")
        try:
            with safe_open(str(path), "pt") as f:
                meta = f.metadata() or {}
            tensors = load_file(str(path))
        except Exception as exc:
            raise UserError(f"{path} is not a readable scores file ({exc}).") from None
        if "method" not in meta:
            raise UserError(f"{path} has no method recorded; it was not written by `ukmp prune`.")
        out = cls(method=meta["method"], scores={}, stats=json.loads(meta.get("stats", "{}")))
        for key, value in tensors.items():
            kind, name = key.split("/", 1)
            if kind == "score":
                out.scores[name] = value
            else:
                out.factors.setdefault(kind, {})[name] = value
        return out


def check_scores_match(scores: Mapping[str, torch.Tensor], groups: list[PrunableGroup]) -> None:
    """Saved scores must name exactly the model's groups, with one score per unit."""
    names = {g.name for g in groups}
    if set(scores) != names:
        missing = sorted(names - set(scores)) or sorted(set(scores) - names)
        raise UserError(
            f"the scores file does not match this model's groups (first mismatch: {missing[0]}); "
            "compute scores for this model and these --components."
        )
    for g in groups:
        if scores[g.name].numel() != g.num_units:
            raise UserError(
                f"the scores file has {scores[g.name].numel()} units for {g.name}, the model {g.num_units}."
            )


def plan_from_scores(
    scores: Mapping[str, torch.Tensor],
    groups: list[PrunableGroup],
    *,
    schedule: str,
    target_ratio: float,
    basis_params: int,
    iterative_options: IterativeOptions | None = None,
    block_scores: Mapping[str, float] | None = None,
    max_sparsity_margin: float = 0.1,
) -> PlanResult:
    """Run the chosen schedule; pure apart from reading group metadata.

    Only the scores of ``groups`` are planned (a method may leave some groups dense); ``allocated``
    (ECoFLaP-sp) also needs the per-group ``block_scores``.
    """
    costs = {g.name: GroupCost(g.num_units, g.params_per_unit) for g in groups}
    scores = {g.name: scores[g.name] for g in groups}
    if schedule == "allocated":
        if block_scores is None:
            raise UserError("the allocated schedule needs block scores; use it with --method ecoflap-sp.")
        return allocated_schedule(
            scores,
            costs,
            block_scores,
            target_ratio=target_ratio,
            basis_params=basis_params,
            max_sparsity_margin=max_sparsity_margin,
        )
    if schedule == "iterative":
        modality = {g.name: g.modality for g in groups}
        return iterative_schedule(
            scores,
            costs,
            modality,
            target_ratio=target_ratio,
            basis_params=basis_params,
            options=iterative_options,
        )
    if schedule == "local":
        return local_schedule(scores, costs, target_ratio=target_ratio, basis_params=basis_params)
    if schedule == "global":
        return global_schedule(scores, costs, target_ratio=target_ratio, basis_params=basis_params)
    raise UserError(f"unknown schedule {schedule!r}; choose one of {', '.join(SCHEDULES)}.")


def simple_scores(method: str, model, groups: list[PrunableGroup], seed: int) -> MethodScores:
    """Data-free scorers (random, magnitude), timed like the others."""
    from ukmp.scoring.ukmi import peak_memory_mb

    started = time.time()
    if method == "random":
        from ukmp.scoring.random import random_scores

        scores = random_scores(model, groups, seed=seed)
    elif method == "magnitude":
        from ukmp.scoring.magnitude import magnitude_scores

        scores = magnitude_scores(model, groups, seed=seed)
    else:
        raise UserError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}.")
    stats = {"scoring": {"seconds": time.time() - started, "peak_memory_mb": peak_memory_mb()}}
    return MethodScores(method=method, scores=scores, stats=stats)


def ukmi_method_scores(
    model,
    processor,
    groups: list[PrunableGroup],
    *,
    calib_dir: str | Path,
    split: str,
    num_samples: int,
    batch_size: int,
    options,
    seed: int,
) -> MethodScores:
    """UKMI scores from `num_samples` entropy samples and `num_samples` other gradient samples."""
    from ukmp.data.calibration import calibration_batches, load_calibration_samples, take_disjoint
    from ukmp.evaluation.generation import is_encoder_decoder
    from ukmp.scoring.ukmi import ukmi_scores

    if num_samples <= 0:
        raise UserError(f"--num-samples must be positive, got {num_samples}.")
    if batch_size <= 0:
        raise UserError(f"--batch-size must be positive, got {batch_size}.")
    if processor is None:
        raise UserError("UKMI needs the model's processor (image processor + tokenizer) to read calibration data.")
    samples = load_calibration_samples(calib_dir, split, seed=seed, pool=2 * num_samples)
    needs_entropy = options.entropy != "off"
    entropy_samples, gradient_samples = take_disjoint(samples, [num_samples if needs_entropy else 0, num_samples])
    enc_dec = is_encoder_decoder(model)
    n_batches = -(-num_samples // batch_size)
    result = ukmi_scores(
        model,
        groups,
        calibration_batches(processor, entropy_samples, batch_size, encoder_decoder=enc_dec) if needs_entropy else None,
        calibration_batches(processor, gradient_samples, batch_size, encoder_decoder=enc_dec),
        options,
        entropy_total=n_batches,
        gradient_total=n_batches,
    )
    stats = dict(result.stats)
    stats["calibration"] = {
        "data": portable_path(calib_dir),
        "split": split,
        "num_samples": num_samples,
        "batch_size": batch_size,
        "seed": seed,
    }
    factors = {"taylor": result.taylor}
    if result.entropy:
        factors["entropy"] = result.entropy
    return MethodScores(method="ukmp", scores=result.scores, stats=stats, factors=factors)
