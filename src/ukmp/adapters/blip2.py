"""BLIP-2 and InstructBLIP: vision tower -> Q-Former -> language model, and their vision towers alone.

The language model is whichever ``LANGUAGE_MODELS`` entry handles ``language_model``; the
Q-Former's groups exist but are opt-in (not in the default components), as in the paper.
"""

from __future__ import annotations

import torch
from torch import nn

from ukmp.adapters.base import ModelAdapter
from ukmp.adapters.blip_vision import BlipVisionPart
from ukmp.adapters.inputs import ExampleBuilder, ModelInputs
from ukmp.adapters.qformer import QFormerPart
from ukmp.adapters.query_token_inputs import QueryTokenInputs
from ukmp.adapters.registry import require_language_part


def blip2_adapter(model: nn.Module) -> ModelAdapter:
    return _wrapper_adapter(model, blip2_example_inputs)


def instructblip_adapter(model: nn.Module) -> ModelAdapter:
    return _wrapper_adapter(model, instructblip_example_inputs)


def _wrapper_adapter(model: nn.Module, examples: ExampleBuilder) -> ModelAdapter:
    language = require_language_part(model, "language_model.")
    vision = BlipVisionPart(model, "vision_model.")
    return ModelAdapter(
        model,
        [vision, QFormerPart(model, "qformer."), language],
        default_components=vision.components + language.components,
        extra_buckets={"query_tokens": "qformer", "language_projection": "projection"},
        extra_paths={"projection": "language_projection"},
        inputs=QueryTokenInputs(model, examples=examples),
    )


def vision_adapter(model: nn.Module) -> ModelAdapter:
    """A vision tower alone: prunable, but no command can caption or recover with it."""
    return ModelAdapter(model, [BlipVisionPart(model, "")], inputs=ModelInputs(model, end_to_end=False))


def blip2_example_inputs(model: nn.Module, ids: torch.Tensor, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """One image at the configured resolution, ``num_query_tokens`` image tokens, then ``ids``
    (and as many decoder tokens for T5)."""
    config = model.config
    batch = ids.shape[0]
    size = config.vision_config.image_size
    dtype = next(model.vision_model.parameters()).dtype
    image_token = getattr(config, "image_token_id", None) or getattr(config, "image_token_index", None)
    ids = ids.masked_fill(ids == image_token, 4)
    inputs: dict[str, torch.Tensor] = {
        "pixel_values": torch.randn(batch, 3, size, size, generator=gen).to(dtype),
        "input_ids": torch.cat([torch.full((batch, config.num_query_tokens), image_token), ids], dim=1),
    }
    inputs["attention_mask"] = torch.ones_like(inputs["input_ids"])
    if not config.use_decoder_only_language_model:
        inputs["decoder_input_ids"] = ids.clone()
    return inputs


def instructblip_example_inputs(model: nn.Module, ids: torch.Tensor, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """BLIP-2's inputs, and ``ids`` again as the Q-Former's instruction text."""
    inputs = blip2_example_inputs(model, ids, gen)
    text = inputs["input_ids"][:, model.config.num_query_tokens :]  # ids without image tokens
    inputs["qformer_input_ids"] = text.clamp(max=model.config.qformer_config.vocab_size - 1)
    inputs["qformer_attention_mask"] = torch.ones_like(text)
    return inputs
