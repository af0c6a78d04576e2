"""Image tokens at the scale of words: the connector's output measured, set and kept near the LM's embeddings.

Why: a pre-norm language model adds every layer's update to the vectors it is given. The connector of
the first `shapes-smolvlm` runs wrote image tokens 5x the norm of SmolLM2's word embeddings at
initialisation and 40-50x after training, so the LM's layers barely changed the image positions and
the model read its image weakly (`scripts/smolvlm_diagnostics.py`). The recipe can set the
connector's scale once its tower is pretrained (`set_connector_scale`) and keep it with a penalty on
image tokens louder than a cap (`loudness_penalty`). Both act on the training only: the model stays
transformers' SmolVLM, with no extra layer to ship.
"""

from __future__ import annotations

import torch
from torch import nn


def word_norm(model: nn.Module) -> float:
    """The mean L2 norm of the LM's input-embedding rows (SmolLM2-135M: about 3.2)."""
    embed = model.get_input_embeddings().weight.detach()
    return float(embed.float().norm(dim=-1).mean())


class ImageTokenTap:
    """Keeps the last image tokens the connector wrote (with their graph, so a penalty can train them)."""

    def __init__(self, model: nn.Module):
        self.tokens: torch.Tensor | None = None
        self._handle = model.model.connector.register_forward_hook(self._keep)

    def _keep(self, module, inputs, output) -> None:
        self.tokens = output

    def take(self) -> torch.Tensor:
        """The tokens of the last forward, forgotten afterwards so a stale batch is never read twice."""
        if self.tokens is None:
            raise RuntimeError("the connector has not run since the last take()")
        tokens, self.tokens = self.tokens, None
        return tokens

    def remove(self) -> None:
        self._handle.remove()


def mean_token_norm(tokens: torch.Tensor) -> float:
    return float(tokens.detach().float().norm(dim=-1).mean())


def set_connector_scale(model: nn.Module, pixel_values: torch.Tensor, pixel_attention_mask, target: float) -> float:
    """Scale the connector's projection so the mean image-token norm on these pixels is `target`.

    The projection is linear without a bias, so the scale is exact. Returns the factor applied.
    """
    tap = ImageTokenTap(model)
    try:
        with torch.no_grad():
            model.model.get_image_features(pixel_values, pixel_attention_mask)
            factor = target / mean_token_norm(tap.take())
            for param in model.model.connector.modality_projection.parameters():
                param.mul_(factor)
    finally:
        tap.remove()
    return factor


def loudness_penalty(tokens: torch.Tensor, cap: float) -> torch.Tensor:
    """Mean over image tokens of relu(norm / cap - 1)^2: zero while no token is louder than `cap`."""
    ratio = tokens.float().norm(dim=-1) / cap
    return torch.relu(ratio - 1.0).pow(2).mean()
