"""Which logit predicts which label: the one alignment every loss over calibration targets needs.

UKMI's selected-token loss, the baselines' plain loss (`calibration_pass.py`) and the removal cost
of a unit (`ukmp.removal_cost`) all compare a model's logits with the labels of its target tokens;
where that comparison starts depends on whether the language model reads the prompt in an encoder.
"""

from __future__ import annotations

import torch
from torch import nn

from ukmp.adapters.inputs import reads_with_encoder


def target_logits(model: nn.Module, logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Align logits with their targets: encoder-decoders predict labels[t] at t, decoders at t-1."""
    if reads_with_encoder(model):
        return logits, labels
    return logits[:, :-1], labels[:, 1:]
