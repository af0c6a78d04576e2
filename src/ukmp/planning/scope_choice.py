"""`--norm-scope auto` (beyond the paper): plan with one mean per modality and with one per kind, keep the lower loss.

Why. Whether attention units and MLP channels should share UKMP's normaliser depends on the model.
On the shipped BLIP-2 one mean rightly keeps the T5 attention heads, and a mean per kind costs 13
VQA points at 50%; on SmolLM2-135M one mean cuts whole key/value groups in half the layers and
collapsed on one draw of eight, where a mean per kind did not (`results/norm-scope/`,
`results/smollm2-norm-scope/`). The calibration loss of the two pruned models told them apart:
it picked the plan with the better held-out result on every draw where the two differed by more
than the noise (`scripts/scope_choice_check.py`).

Only calibration data is read, as the paper's methods read: for an image-text folder the first
`IMAGE_SAMPLES` samples after the first `num_samples` of the draw's calibration order (the gradient
pass's samples when entropy is on); for a calibration text the last `TEXT_WINDOWS` windows of that
order, which no scorer reads (all of them where there are fewer). The two candidates are evaluated
masked (no model copy), as in `planning.search`. Ties go to one mean per modality, the paper's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import nn

from ukmp.data.calibration import calibration_batches, load_calibration_samples, take_disjoint, text_source
from ukmp.errors import UserError
from ukmp.groups import PrunableGroup
from ukmp.planning.global_schedule import PlanResult
from ukmp.planning.iterative import SCOPES
from ukmp.planning.search import held_out_windows, plan_loss, window_batches

IMAGE_SAMPLES = 128
TEXT_WINDOWS = 64
BATCH_SIZE = 16


def scope_choice_batches(processor, model: nn.Module, data, split: str, *, seed: int, num_samples: int) -> list:
    """The calibration samples that choose the scope (see the module docstring), as model inputs.

    A calibration text with fewer held-out windows gives fewer (the manifest records how many).
    """
    if text_source(data) is not None:
        windows = held_out_windows(processor, data, seed, reserved=2 * num_samples)[-TEXT_WINDOWS:]
        if not windows:
            raise UserError(
                f"--norm-scope auto chooses on windows of the calibration text that the scorer does not read, but "
                f"the scorer reads all of {data}'s: give more text, lower --num-samples, or pass --norm-scope modality."
            )
        return window_batches(processor, windows, BATCH_SIZE, model=model)
    samples = load_calibration_samples(data, split, seed=seed, pool=2 * num_samples)
    chosen = take_disjoint(samples, [num_samples, num_samples])[1][:IMAGE_SAMPLES]
    return list(calibration_batches(processor, chosen, BATCH_SIZE, model=model))


@torch.no_grad()
def choose_scope(
    model: nn.Module,
    groups: Sequence[PrunableGroup],
    make_plan: Callable[[str], PlanResult],
    batches: Sequence,
    data: str | Path,
) -> tuple[str, PlanResult, dict]:
    """(the chosen scope, its plan, a trace of both losses) for the manifest."""
    was_training = model.training
    model.eval()
    try:
        plans = {scope: make_plan(scope) for scope in SCOPES}
        losses = {scope: plan_loss(model, groups, plans[scope].plan, batches) for scope in SCOPES}
    finally:
        model.train(was_training)
    chosen = min(SCOPES, key=lambda scope: losses[scope])  # SCOPES starts with the paper's
    trace = {
        "losses": {scope: round(loss, 6) for scope, loss in losses.items()},
        "chosen": chosen,
        "samples": sum(int(b["input_ids"].shape[0]) for b in batches),
        "data": str(data),
    }
    return chosen, plans[chosen], trace
