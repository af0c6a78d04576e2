"""Tiny LLaVA models: a CLIP or SigLIP vision tower, a projector, a Llama / Qwen2 / Mistral language model."""

from __future__ import annotations

import torch
from transformers import (
    CLIPVisionConfig,
    LlamaConfig,
    LlavaConfig,
    LlavaForConditionalGeneration,
    MistralConfig,
    Qwen2Config,
    SiglipVisionConfig,
)

from tiny_models import spread_weights

VOCAB = 64
IMAGE_TOKEN = 63
TEXT = dict(
    vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
    num_key_value_heads=2, max_position_embeddings=128, pad_token_id=0, bos_token_id=1, eos_token_id=2,
)  # fmt: skip
VISION = dict(
    hidden_size=24, intermediate_size=48, num_hidden_layers=2, num_attention_heads=3, image_size=16, patch_size=8
)

COMBINATIONS = {
    "clip-llama": (CLIPVisionConfig, LlamaConfig),
    "siglip-qwen2": (SiglipVisionConfig, Qwen2Config),
    "clip-mistral": (CLIPVisionConfig, MistralConfig),
}


def tiny_llava(combination: str, seed: int = 0) -> LlavaForConditionalGeneration:
    vision_cls, text_cls = COMBINATIONS[combination]
    config = LlavaConfig(
        vision_config=vision_cls(**VISION).to_dict(),
        text_config=text_cls(**TEXT).to_dict(),
        image_token_index=IMAGE_TOKEN,
        vision_feature_layer=-1,
        vision_feature_select_strategy="full" if vision_cls is SiglipVisionConfig else "default",
        projector_hidden_act="gelu",
    )
    torch.manual_seed(seed)
    model = LlavaForConditionalGeneration(config)
    spread_weights(model, seed)
    return model.eval()


def llava_inputs(model: LlavaForConditionalGeneration, batch: int = 2, text_len: int = 5, seed: int = 1) -> dict:
    from ukmp.adapters import find_adapter

    gen = torch.Generator().manual_seed(seed)
    inputs = find_adapter(model).example_inputs(model, batch=batch, text_len=text_len)
    inputs["pixel_values"] = torch.randn(inputs["pixel_values"].shape, generator=gen)
    return inputs
