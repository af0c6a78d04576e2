"""Entropy injection for language-model layers (UKMP appendix Eq. 9), streamed.

For a Linear layer with weight W (out x in) and every input token vector x_s, UKMI looks at the
distribution of cos(phi_{i,s}) = <x_s, W_i> / (|x_s| |W_i|) for each output neuron i, binned into
100 equal bins on [-1, 1], and takes its entropy H_i = -sum_j p_ij log(p_ij + 1e-12) in nats.
A neuron whose angle to the inputs is spread out responds to many directions (high entropy,
"knowledge-rich"); one that sees the same angle to everything carries less.

The authors store every cosine before binning (tens of GB for FlanT5-XL). Counting into per-row
histograms as the tokens stream by gives exactly the same histogram with memory of out x bins.
The `arccos` variant bins phi itself (100 bins on [0, pi]) as in Table B's ablation.
"""

from __future__ import annotations

import math

import torch

ANGLE_MODES = ("cosine", "arccos")


class RowAngleHistogram:
    """Per-output-row histogram of the angle between input tokens and the weight rows."""

    def __init__(self, weight: torch.Tensor, bins: int = 100, mode: str = "cosine") -> None:
        if mode not in ANGLE_MODES:
            raise ValueError(f"unknown angle mode {mode!r}; choose one of {ANGLE_MODES}")
        self.bins = bins
        self.mode = mode
        self.rows = weight.shape[0]
        self.counts = torch.zeros(self.rows * bins, dtype=torch.float64, device=weight.device)

    def update(self, inputs: torch.Tensor, weight: torch.Tensor, token_mask: torch.Tensor | None = None) -> None:
        """Add the tokens of `inputs` (..., in) to the histograms; `token_mask` (...) drops padding."""
        x = inputs.detach().reshape(-1, inputs.shape[-1]).float()
        if token_mask is not None:
            x = x[token_mask.reshape(-1).bool()]
        if x.numel() == 0:
            return
        w = weight.detach().float()
        x_unit = x / x.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        w_unit = w / w.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        cos = (x_unit @ w_unit.T).clamp(-1.0, 1.0)  # (tokens, rows)
        if self.mode == "cosine":
            value, low, high = cos, -1.0, 1.0
        else:
            value, low, high = torch.arccos(cos), 0.0, math.pi
        # the same arithmetic as torch.histc, which also puts the right edge into the last bin
        bin_index = ((value - low) * self.bins / (high - low)).floor().clamp(0, self.bins - 1).long()
        flat = bin_index + torch.arange(self.rows, device=cos.device).unsqueeze(0) * self.bins
        self.counts += torch.bincount(flat.reshape(-1), minlength=self.rows * self.bins).to(self.counts)

    def histograms(self) -> torch.Tensor:
        return self.counts.view(self.rows, self.bins)

    def entropy(self) -> torch.Tensor:
        """Entropy (nats) of each row's histogram; rows that saw no token get 0."""
        hist = self.histograms()
        total = hist.sum(dim=1, keepdim=True)
        p = hist / total.clamp_min(1.0)
        return -(p * torch.log(p + 1e-12)).sum(dim=1).float()


def entropy_of_values(values: torch.Tensor, bins: int = 100, low: float = -1.0, high: float = 1.0) -> float:
    """Reference: entropy of one row's stored values binned with torch.histc (used by the tests)."""
    hist = torch.histc(values.double(), bins=bins, min=low, max=high)
    p = hist / hist.sum()
    return float(-(p * torch.log(p + 1e-12)).sum())
