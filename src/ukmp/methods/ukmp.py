"""UKMP's unified knowledge maintenance importance (UKMI), planned by the iterative modality-normalised schedule.

Variants let a comparison run several settings side by side: a token-selection threshold
(``ukmp:1.0``, no selection; ``ukmp:q0.34``, the least-fitted 34% of each sample's tokens), the
paper's preset (``ukmp:paper``, T = 0.4), or UKMI without its entropy injection (``ukmp:no-entropy``,
as ``ukmp prune --entropy off``: the ablation of Table B).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ukmp.data.calibration import calibration_batches, load_calibration_samples, take_disjoint
from ukmp.errors import UserError
from ukmp.method_scores import MethodScores
from ukmp.methods.base import Scorer, ScoringInputs
from ukmp.methods.presets import DEFAULT_PRESET, PRESETS
from ukmp.methods.token_selection import parse_threshold
from ukmp.methods.ukmi import UKMIOptions, ukmi_scores
from ukmp.planning.iterative import IterativeOptions

NO_ENTROPY = "no-entropy"


class UKMPScorer(Scorer):
    """UKMI from ``num_samples`` entropy samples and ``num_samples`` other gradient samples."""

    name = "ukmp"
    compared_by_default = True
    schedule = "iterative"
    recovery = "lpd"
    proposed = True
    splits_across_processes = True
    options_name = "ukmi"
    options_type = UKMIOptions

    def configure_variant(self, variant: str) -> None:
        if variant == NO_ENTROPY:
            self.options = self.options.replace(ukmi=dataclasses.replace(self.own_options, entropy="off"))
            return
        if variant in PRESETS:
            threshold = PRESETS[variant].threshold
        else:
            try:
                threshold = parse_threshold(variant).option
            except ValueError as exc:
                kinds = f"a threshold (1.0, q0.34), a preset ({', '.join(PRESETS)}) or {NO_ENTROPY}"
                raise UserError(f"{self.name}:{variant}: a variant of {self.name} is {kinds}; {exc}") from None
        self.options = self.options.replace(ukmi=dataclasses.replace(self.own_options, threshold=threshold))

    def iterative_options(self) -> IterativeOptions:
        """The schedule of this variant's preset: ``ukmp:paper`` plans as the paper, the others as ukmp's default."""
        preset = PRESETS["paper" if self.variant == "paper" else DEFAULT_PRESET]
        return IterativeOptions(norm=preset.norm, scope=preset.scope, iterative=preset.iterative)

    @property
    def reads_gradients(self) -> bool:
        return True  # UKMI's gradient pass runs outside the shared calibration pass

    def compute(self, inputs: ScoringInputs) -> MethodScores:
        options = self.own_options
        options.validate()
        if inputs.num_samples <= 0:
            raise UserError(f"--num-samples must be positive, got {inputs.num_samples}.")
        if inputs.batch_size <= 0:
            raise UserError(f"--batch-size must be positive, got {inputs.batch_size}.")
        if inputs.processor is None:
            raise UserError("UKMI needs the model's processor (image processor + tokenizer) to read calibration data.")
        n = inputs.num_samples
        samples = load_calibration_samples(inputs.calib, inputs.split, seed=inputs.seed, pool=2 * n)
        needs_entropy = options.entropy != "off"
        entropy_samples, gradient_samples = take_disjoint(samples, [n if needs_entropy else 0, n])
        world = inputs.world  # several launched processes: each scores its share, the sums are added
        entropy_samples, gradient_samples = world.shard(entropy_samples), world.shard(gradient_samples)
        n_batches = -(-len(gradient_samples) // inputs.batch_size)

        def batches(chosen):
            return calibration_batches(inputs.processor, chosen, inputs.batch_size, model=inputs.model)

        result = ukmi_scores(
            inputs.model,
            inputs.groups,
            batches(entropy_samples) if needs_entropy else None,
            batches(gradient_samples),
            options,
            entropy_total=-(-len(entropy_samples) // inputs.batch_size),
            gradient_total=n_batches,
            progress=inputs.progress and world.is_main,
            world=world,
        )
        factors = {"taylor": result.taylor}
        if result.entropy:
            factors["entropy"] = result.entropy
        return MethodScores(self.name, result.scores, dict(result.stats), factors)

    def manifest_options(self, scored: MethodScores) -> dict[str, Any]:
        return {"ukmi": scored.stats.get("options", {})}
