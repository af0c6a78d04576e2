"""LLaVA: a CLIP or SigLIP vision tower -> a projector -> a Llama / Mistral / Qwen2 language model.

Vision heads and MLP channels and the language model's key/value groups and MLP channels are
prunable; the projector is not: its input columns read the vision tower's output, which keeps its
full width (as BLIP-2's vision output does), and its output is the language model's width.

LLaVA-NeXT has the same modules plus ``image_newline`` (a vector written after each row of image
tiles, of the language model's width, so it stays whole too); it reads an image as several tiles
(``pixel_values`` of shape (batch, tiles, 3, H, W) with ``image_sizes``), which only changes how an
example input is made.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers.models.llava_next.modeling_llava_next import image_size_to_num_patches

from ukmp.adapters.base import ModelAdapter
from ukmp.adapters.clip_vision import ClipVisionPart
from ukmp.adapters.prompt_image_inputs import PromptImageInputs
from ukmp.adapters.registry import require_language_part
from ukmp.errors import UserError

VISION_TOWERS = ("CLIPVisionModel", "SiglipVisionModel")


def llava_adapter(model: nn.Module) -> ModelAdapter:
    tower = model.model.vision_tower
    if type(tower).__name__ not in VISION_TOWERS:
        raise UserError(
            f"ukmp has no adapter for the vision tower {type(tower).__name__} inside {type(model).__name__}; "
            f"supported vision towers are {', '.join(VISION_TOWERS)}."
        )
    language = require_language_part(model, "model.language_model.")
    return ModelAdapter(
        model,
        [ClipVisionPart(model, "model.vision_tower."), language],
        extra_buckets={
            "model.multi_modal_projector": "projection",
            "model.image_newline": "projection",
            "lm_head": "lm_embeddings",
        },
        extra_paths={"projection": "model.multi_modal_projector", "lm_head": "lm_head"},
        inputs=PromptImageInputs(
            model, examples=llava_next_example_inputs if hasattr(model.model, "image_newline") else llava_example_inputs
        ),
    )


def image_tokens(config) -> int:
    """Image tokens per image: one per patch, plus the class token unless the strategy drops it."""
    vision = config.vision_config
    patches = (vision.image_size // vision.patch_size) ** 2
    keeps_cls = config.vision_feature_select_strategy == "full" and type(vision).__name__.startswith("CLIP")
    return patches + int(keeps_cls)


def llava_example_inputs(model: nn.Module, ids: torch.Tensor, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """One image at the tower's resolution, its image tokens, then ``ids``."""
    config = model.config
    size = config.vision_config.image_size
    dtype = next(model.model.vision_tower.parameters()).dtype
    pixel_values = torch.randn(ids.shape[0], 3, size, size, generator=gen).to(dtype)
    return {"pixel_values": pixel_values, **_after_image_tokens(config, ids, image_tokens(config))}


def _after_image_tokens(config, ids: torch.Tensor, count: int) -> dict[str, torch.Tensor]:
    """``count`` image tokens, then ``ids`` (with any image token in them replaced): the prompt's ids and mask."""
    ids = ids.masked_fill(ids == config.image_token_index, 4)
    input_ids = torch.cat([torch.full((ids.shape[0], count), config.image_token_index), ids], dim=1)
    return {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids)}


def llava_next_example_inputs(model: nn.Module, ids: torch.Tensor, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """One square image at the tower's resolution, read as LLaVA-NeXT's tiles, its image tokens, then ``ids``.

    How many tokens an image becomes depends on the tiling grid and the unpadding, so the count is
    taken from the model's own feature computation on the example image.
    """
    config = model.config
    size = config.vision_config.image_size
    dtype = next(model.model.vision_tower.parameters()).dtype
    batch = ids.shape[0]
    image_sizes = torch.tensor([[size, size]] * batch)
    tiles = image_size_to_num_patches(
        image_size=(size, size), grid_pinpoints=config.image_grid_pinpoints, patch_size=size
    )
    pixel_values = torch.randn(batch, tiles, 3, size, size, generator=gen).to(dtype)
    with torch.no_grad():
        features = model.model.get_image_features(pixel_values=pixel_values[:1], image_sizes=image_sizes[:1])
    count = features.pooler_output[0].shape[0]
    return {"pixel_values": pixel_values, "image_sizes": image_sizes, **_after_image_tokens(config, ids, count)}
