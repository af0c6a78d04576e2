"""ECoFLaP-sp: ECoFLaP's coarse-to-fine pruning made structured (the UKMP paper's ECoFLaP_sp).

ECoFLaP (Sung et al., 2024) is unstructured: it first decides how sparse each block may be from a
global block importance, then prunes inside each block with Wanda. The structured variant:

1. **Coarse**: a score per group (one attention block or one MLP), the sum of ``|w * g|`` over
   every weight the group's units own. By default ``g`` is ECoFLaP's ZEROTH-ORDER estimate, from
   forward passes only: for each calibration sample a Gaussian direction z is drawn over all the
   groups' weights, the loss is evaluated at ``w + eps*z`` and ``w - eps*z``, and
   ``(L+ - L-) / (2 eps) * z`` is accumulated (an SPSA / MeZO estimate of the gradient; no
   backward pass, so no activation memory). ``block_score='first'`` uses the true first-order
   gradient of the shared pass instead.
2. **Allocation** (``planning/allocated.py``, at plan time because it depends on the ratio): the
   parameters to keep are shared out in proportion to the block scores, every group keeping at
   least ``1 - cap`` of its parameters, with cap = the target sparsity of the prunable set + 0.1.
3. **Fine**: inside each group units are ranked by the Wanda-sp score (``wanda_sp.py``).

``ECoFLaPSPScorer`` (at the end) is the method as the prune path runs it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn
from tqdm.auto import tqdm

from ukmp.adapters.base import get_module
from ukmp.errors import UserError
from ukmp.groups import PrunableGroup
from ukmp.method_scores import MethodScores
from ukmp.methods.base import Scorer, ScoringInputs
from ukmp.methods.calibration_pass import plain_target_loss
from ukmp.methods.option_flag import option_flag
from ukmp.methods.unit_sums import unit_sums
from ukmp.methods.wanda_sp import wanda_sp_scores

BLOCK_SCORES = ("zeroth", "first")


@dataclass
class ECoFLaPOptions:
    flag_group: ClassVar[str] = "ECoFLaP (docs/compare.md)"

    block_score: str = option_flag("zeroth", "--block-score", "ECoFLaP-sp block score", choices=BLOCK_SCORES)
    epsilon: float = 1e-3
    max_sparsity_margin: float = 0.1

    def validate(self) -> None:
        if self.block_score not in BLOCK_SCORES:
            raise UserError(f"--block-score must be one of {', '.join(BLOCK_SCORES)}, got {self.block_score!r}.")
        if not self.epsilon > 0:
            raise UserError(f"--epsilon must be positive, got {self.epsilon}.")
        if not 0 <= self.max_sparsity_margin < 1:
            raise UserError(f"the layer sparsity margin must be in [0, 1), got {self.max_sparsity_margin}.")


@torch.no_grad()
def zeroth_order_gradients(
    model: nn.Module,
    groups: list[PrunableGroup],
    batches: Iterable[dict[str, torch.Tensor]],
    loss_fn,
    *,
    epsilon: float = 1e-3,
    seed: int = 0,
    total: int | None = None,
    progress: bool = True,
) -> tuple[dict[str, torch.Tensor], dict]:
    """Two-point zeroth-order gradient estimate of every member weight, summed over batches.

    The weights are restored from a copy after every batch (adding and subtracting eps*z is not
    exact in floating point), so the model is bit-identical afterwards.
    """
    names = sorted({m.module for g in groups for m in g.members})
    weights = {n: get_module(model, n).weight for n in names}
    originals = {n: w.detach().clone() for n, w in weights.items()}
    estimate = {n: torch.zeros_like(w, dtype=torch.float32) for n, w in weights.items()}
    gen = torch.Generator().manual_seed(seed)
    was_training = model.training
    model.eval()
    started, forwards = time.time(), 0
    try:
        for batch in tqdm(batches, total=total, desc="ECoFLaP zeroth-order", unit="batch", disable=not progress):
            z = {n: torch.randn(w.shape, generator=gen).to(w) for n, w in weights.items()}
            losses = []
            for sign in (1.0, -1.0):
                for n, w in weights.items():
                    w.copy_(originals[n] + sign * epsilon * z[n])
                out = model(**batch)
                losses.append(float(loss_fn(model, out.logits, batch["labels"])))
                forwards += 1
            projected = (losses[0] - losses[1]) / (2 * epsilon)
            for n in names:
                estimate[n] += projected * z[n].float()
    finally:
        for n, w in weights.items():
            w.copy_(originals[n])
        model.train(was_training)
    return estimate, {"seconds": time.time() - started, "forward_passes": forwards}


def block_scores(model: nn.Module, groups: list[PrunableGroup], grads: dict[str, torch.Tensor]) -> dict[str, float]:
    """Per group: sum of |w * g| over every weight its units own."""

    def values(name: str) -> torch.Tensor:
        return (get_module(model, name).weight.detach().double() * grads[name].double()).abs()

    return {g.name: float(unit_sums(g, values).sum()) for g in groups}


class ECoFLaPSPScorer(Scorer):
    """The UKMP paper's ECoFLaP_sp baseline (`docs/baselines.md`)."""

    name = "ecoflap-sp"
    compared_by_default = True
    schedule = "allocated"
    options_name = "ecoflap"
    options_type = ECoFLaPOptions
    approximation = (
        "structured variant of ECoFLaP (the UKMP paper's ECoFLaP_sp): zeroth-order block scores, "
        "then Wanda-sp inside each group"
    )

    def calibration_needs(self) -> set[str]:
        return {"activations"} | ({"gradients"} if self.own_options.block_score == "first" else set())

    def compute(self, inputs: ScoringInputs) -> MethodScores:
        opts = self.own_options
        opts.validate()
        calib = inputs.calibration_pass()
        stats: dict = {"options": dict(opts.__dict__)}
        scores = wanda_sp_scores(inputs.model, inputs.groups, calib.activations())
        if opts.block_score == "first":
            grads, _ = calib.gradients()
        else:
            # one random direction per sample: the estimate's quality grows with the number of directions
            grads, stats["zeroth_order_pass"] = zeroth_order_gradients(
                inputs.model,
                inputs.groups,
                calib.batches(1),
                plain_target_loss,
                epsilon=opts.epsilon,
                seed=calib.seed,
                total=len(calib.samples()),
                progress=calib.progress,
            )
        blocks = block_scores(inputs.model, inputs.groups, grads)
        factors = {"block": {name: torch.tensor([value], dtype=torch.float64) for name, value in blocks.items()}}
        return MethodScores(self.name, scores, stats, factors)

    def schedule_settings(self) -> dict[str, float]:
        """The allocated schedule's margin: how far above the target sparsity one group may go."""
        return {"max_sparsity_margin": self.own_options.max_sparsity_margin}

    def block_scores(self, scored: MethodScores) -> dict[str, float] | None:
        block = scored.factors.get("block")
        return {name: float(value.reshape(-1)[0]) for name, value in block.items()} if block else None
