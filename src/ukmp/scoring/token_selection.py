"""Taylor selection over next-token prediction (UKMP appendix Eq. 8).

UKMI builds its gradient only from the *poorly fitted* next-token predictions of each calibration
sample: tokens the model already predicts well carry little information about which weights
matter, and their gradients would dominate the sum. Two readings of "poorly fitted" exist:

- `confidence` (default, what the authors' code does): the model's top-1 probability
  max_v p_t(v) is at most the threshold T. A confidently wrong token is therefore *excluded*.
- `target`: the probability of the ground-truth token p_t(y_t) is at most T.

The threshold is floored at the sample's least confident (resp. least likely) position,
tau' = max(T, min_t c_t), so every sample keeps at least one token. The loss of a sample is the
mean cross-entropy over its selected tokens, and samples are combined by *summing* their means, so
each sample has equal weight whatever the batch size: batch 1 and batch 8 give the same gradient.

The authors' code takes the floor over the whole batch (it always ran at batch 1); we take it per
sample, which is the same at batch 1 and keeps the semantics independent of the batch size.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

SELECTION_MODES = ("confidence", "target")


@dataclass
class SelectedLoss:
    """The summed per-sample losses and how many tokens each sample backpropagates."""

    loss: torch.Tensor  # scalar: sum over samples of the mean CE over selected tokens
    per_sample: torch.Tensor  # (B,) mean CE over each sample's selected tokens
    selected_tokens: torch.Tensor  # (B,) number of selected target tokens per sample
    valid_tokens: torch.Tensor  # (B,) number of non-padding target tokens per sample


def selected_token_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    threshold: float = 0.4,
    mode: str = "confidence",
    ignore_index: int = -100,
) -> SelectedLoss:
    """Per-sample mean cross-entropy over the poorly fitted target tokens.

    `logits` is (B, L, V) aligned with `labels` (B, L) (shift beforehand for decoder-only models).
    `threshold >= 1` selects every valid token (no filtering: Table C's T = 1.0).
    """
    if mode not in SELECTION_MODES:
        raise ValueError(f"unknown selection mode {mode!r}; choose one of {SELECTION_MODES}")
    logits = logits.float()
    valid = labels != ignore_index
    safe_labels = labels.masked_fill(~valid, 0)
    token_ce = F.cross_entropy(logits.transpose(1, 2), safe_labels, reduction="none")  # (B, L)
    with torch.no_grad():
        probs = logits.softmax(dim=-1)
        if mode == "confidence":
            fit = probs.max(dim=-1).values
        else:
            fit = probs.gather(-1, safe_labels.unsqueeze(-1)).squeeze(-1)
        fit = fit.masked_fill(~valid, float("inf"))
        floor = fit.min(dim=1, keepdim=True).values  # least fitted valid position per sample
        tau = torch.clamp(floor, min=threshold)
        selected = valid & (fit <= tau)
    counts = selected.sum(dim=1)
    sums = (token_ce * selected).sum(dim=1)
    per_sample = torch.where(counts > 0, sums / counts.clamp(min=1), torch.zeros_like(sums))
    return SelectedLoss(per_sample.sum(), per_sample, counts, valid.sum(dim=1))
