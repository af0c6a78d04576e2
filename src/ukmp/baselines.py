"""The paper's baselines as ukmp methods: what each one needs, how it scores, plans and finishes.

One table per question, so ``ukmp prune --method NAME`` and ``ukmp compare`` run exactly the same
code. Every baseline reads the shared calibration pass (``scoring/calibration_pass.py``); a run
that compares several declares the union of their needs first (``calibration_needs``), so the
activation statistics and the gradients are computed once. Each method's stats record its own
wall time and peak memory, and separately the time of the shared passes it relied on.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
from torch import nn

from ukmp.data.index import portable_path
from ukmp.errors import UserError
from ukmp.groups import PrunableGroup, PruningPlan
from ukmp.scoring.calibration_pass import CalibrationPass, plain_target_loss
from ukmp.scoring.ecoflap_sp import ECoFLaPOptions
from ukmp.scoring.llm_pruner import LLMPrunerOptions

BASELINES = ("llm-pruner-global", "llm-pruner-local", "flap", "wanda-sp", "ecoflap-sp", "upop")
BASELINE_SCHEDULE = {
    "llm-pruner-global": "global",
    "llm-pruner-local": "local",
    "flap": "global",
    "wanda-sp": "local",
    "ecoflap-sp": "allocated",
    "upop": "global",
}
APPROXIMATIONS = {
    "upop": "one-shot mask-gradient approximation (no progressive mask shrinking, no retraining in the search)",
    "ecoflap-sp": "structured variant of ECoFLaP (the UKMP paper's ECoFLaP_sp): zeroth-order block scores, "
    "then Wanda-sp inside each group",
    "wanda-sp": "structured Wanda as shipped with FLAP",
}


@dataclass
class BaselineOptions:
    """The switches of every baseline (defaults: each method's published default)."""

    llm_pruner: LLMPrunerOptions = field(default_factory=LLMPrunerOptions)
    ecoflap: ECoFLaPOptions = field(default_factory=ECoFLaPOptions)

    def validate(self) -> None:
        self.llm_pruner.validate()
        self.ecoflap.validate()


def calibration_needs(method: str, options: BaselineOptions | None = None) -> set[str]:
    """What ``method`` reads from the shared calibration pass."""
    options = options or BaselineOptions()
    if method.startswith("llm-pruner"):
        return {"gradients"} | ({"fisher"} if options.llm_pruner.taylor != "first" else set())
    if method in ("flap", "wanda-sp"):
        return {"activations"}
    if method == "ecoflap-sp":
        return {"activations"} | ({"gradients"} if options.ecoflap.block_score == "first" else set())
    if method == "upop":
        return {"gradients"}
    return set()


def baseline_scores(method: str, calib: CalibrationPass, options: BaselineOptions | None = None):
    """Score every group of ``calib.groups`` with ``method``; returns a ``MethodScores``."""
    from ukmp.methods import MethodScores
    from ukmp.scoring import ecoflap_sp, flap, llm_pruner, upop, wanda_sp
    from ukmp.scoring.ukmi import peak_memory_mb

    if method not in BASELINES:
        raise UserError(f"unknown baseline {method!r}; choose one of {', '.join(BASELINES)}.")
    options = options or BaselineOptions()
    options.validate()
    model, groups = calib.model, calib.groups
    needs = calibration_needs(method, options)
    passes_before = len(calib.passes)
    started = time.time()
    factors: dict[str, dict[str, torch.Tensor]] = {}
    stats: dict = {}
    if method.startswith("llm-pruner"):
        grads, fisher = calib.gradients(fisher="fisher" in needs)
        scores = llm_pruner.llm_pruner_scores(model, groups, grads, fisher, options.llm_pruner.taylor)
        stats["frozen_groups"] = llm_pruner.skipped_groups(groups, options.llm_pruner.skip)
        stats["options"] = dict(options.llm_pruner.__dict__)
    elif method == "flap":
        acts = calib.activations()
        scores = flap.standardise_by_kind(flap.wifv_scores(model, groups, acts), groups)
        factors["input_mean"] = {name: acts[name].mean.clone() for name in sorted(acts)}
    elif method == "wanda-sp":
        scores = wanda_sp.wanda_sp_scores(model, groups, calib.activations())
    elif method == "ecoflap-sp":
        opts = options.ecoflap
        scores = wanda_sp.wanda_sp_scores(model, groups, calib.activations())
        if opts.block_score == "first":
            grads, _ = calib.gradients()
        else:
            # one random direction per sample: the estimate's quality grows with the number of directions
            n_batches = len(calib.samples())
            grads, stats["zeroth_order_pass"] = ecoflap_sp.zeroth_order_gradients(
                model,
                groups,
                calib.batches(1),
                plain_target_loss,
                epsilon=opts.epsilon,
                seed=calib.seed,
                total=n_batches,
                progress=calib.progress,
            )
        blocks = ecoflap_sp.block_scores(model, groups, grads)
        factors["block"] = {name: torch.tensor([value], dtype=torch.float64) for name, value in blocks.items()}
        stats["options"] = dict(opts.__dict__)
    else:  # upop
        grads, _ = calib.gradients()
        scores = upop.upop_scores(model, groups, grads)
    elapsed = time.time() - started
    ran_now = calib.passes[passes_before:]
    shared = [p for p in calib.passes if needs & set(p["computes"])]
    stats["scoring"] = {
        "seconds": elapsed - sum(p["seconds"] for p in ran_now),
        "peak_memory_mb": peak_memory_mb(),
    }
    stats["shared_calibration"] = {
        "seconds": sum(p["seconds"] for p in shared),
        "passes": shared,
        "needs": sorted(needs),
    }
    stats["calibration"] = {
        "data": portable_path(calib.calib_dir),
        "split": calib.split,
        "num_samples": calib.num_samples,
        "seed": calib.seed,
    }
    if method in APPROXIMATIONS:
        stats["approximation"] = APPROXIMATIONS[method]
    return MethodScores(method=method, scores=scores, stats=stats, factors=factors)


def plannable_groups(scored, groups: list[PrunableGroup]) -> list[PrunableGroup]:
    """The groups a method may prune (LLM-Pruner leaves its skipped layers dense)."""
    frozen = set(scored.stats.get("frozen_groups", []))
    return [g for g in groups if g.name not in frozen]


def block_scores_of(scored) -> dict[str, float] | None:
    """ECoFLaP's per-group block scores, when the method produced them."""
    block = scored.factors.get("block")
    return {name: float(value.reshape(-1)[0]) for name, value in block.items()} if block else None


def compensation_before_surgery(
    scored, model: nn.Module, groups: list[PrunableGroup], plan: PruningPlan
) -> dict[str, torch.Tensor]:
    """FLAP's bias deltas, computed from the dense weights (empty for every other method)."""
    if scored.method != "flap":
        return {}
    from ukmp.scoring.flap import compensation_deltas

    return compensation_deltas(model, groups, plan, scored.factors.get("input_mean") or {})


def planning_ratio(scored, model: nn.Module, groups: list[PrunableGroup], ratio: float, basis: int) -> float:
    """The ratio to plan for so the saved model still meets ``ratio`` after FLAP adds biases.

    FLAP's compensation creates a bias on every consumer that lacks one (T5's ``o`` and ``wo``);
    those parameters count in the pruned model, so the plan removes that many more (an upper
    bound: every such consumer of a plannable group), keeping the achieved ratio >= the target.
    """
    if scored.method != "flap":
        return ratio
    from ukmp.adapters.base import get_module

    names = {m.module for g in plannable_groups(scored, groups) for m in g.consumers}
    extra = sum(get_module(model, n).out_features for n in names if get_module(model, n).bias is None)
    return ratio + extra / basis
