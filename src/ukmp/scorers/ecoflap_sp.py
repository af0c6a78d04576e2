"""ECoFLaP-sp: zeroth-order block scores allocate each group's sparsity, Wanda-sp ranks inside it."""

from __future__ import annotations

import torch

from ukmp.method_scores import MethodScores
from ukmp.scorers.base import Scorer, ScoringInputs
from ukmp.scoring import ecoflap_sp, wanda_sp
from ukmp.scoring.calibration_pass import plain_target_loss


class ECoFLaPSPScorer(Scorer):
    """The UKMP paper's ECoFLaP_sp baseline (`docs/baselines.md`)."""

    name = "ecoflap-sp"
    compared_by_default = True
    schedule = "allocated"
    option_flags = ("ecoflap", {"block_score": "--block-score"})
    approximation = (
        "structured variant of ECoFLaP (the UKMP paper's ECoFLaP_sp): zeroth-order block scores, "
        "then Wanda-sp inside each group"
    )

    def calibration_needs(self) -> set[str]:
        return {"activations"} | ({"gradients"} if self.options.ecoflap.block_score == "first" else set())

    def compute(self, inputs: ScoringInputs) -> MethodScores:
        opts = self.options.ecoflap
        opts.validate()
        calib = inputs.calibration_pass()
        stats: dict = {"options": dict(opts.__dict__)}
        scores = wanda_sp.wanda_sp_scores(inputs.model, inputs.groups, calib.activations())
        if opts.block_score == "first":
            grads, _ = calib.gradients()
        else:
            # one random direction per sample: the estimate's quality grows with the number of directions
            grads, stats["zeroth_order_pass"] = ecoflap_sp.zeroth_order_gradients(
                inputs.model,
                inputs.groups,
                calib.batches(1),
                plain_target_loss,
                epsilon=opts.epsilon,
                seed=calib.seed,
                total=len(calib.samples()),
                progress=calib.progress,
            )
        blocks = ecoflap_sp.block_scores(inputs.model, inputs.groups, grads)
        factors = {"block": {name: torch.tensor([value], dtype=torch.float64) for name, value in blocks.items()}}
        return MethodScores(self.name, scores, stats, factors)

    def schedule_settings(self) -> dict[str, float]:
        """The allocated schedule's margin: how far above the target sparsity one group may go."""
        return {"max_sparsity_margin": self.options.ecoflap.max_sparsity_margin}

    def block_scores(self, scored: MethodScores) -> dict[str, float] | None:
        block = scored.factors.get("block")
        return {name: float(value.reshape(-1)[0]) for name, value in block.items()} if block else None
