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


def save_tiny_llava_with_processor(folder, combination: str = "clip-llama", seed: int = 0):
    """A tiny LLaVA over the shapes world's word tokenizer, with a `LlavaProcessor` saved beside it."""
    from transformers import CLIPImageProcessor, LlavaProcessor

    from eval_tiny_model import world_texts
    from ukmp.data.world_tokenizer import as_transformers_tokenizer, train_word_tokenizer

    tokenizer = as_transformers_tokenizer(train_word_tokenizer(world_texts()))
    tokenizer.add_special_tokens({"additional_special_tokens": ["<image>"]})
    size = 32
    image_processor = CLIPImageProcessor(
        size={"shortest_edge": size}, crop_size={"height": size, "width": size}, image_mean=[0.5] * 3,
        image_std=[0.5] * 3,
    )  # fmt: skip
    strategy = "full" if combination.startswith("siglip") else "default"
    processor = LlavaProcessor(
        image_processor=image_processor, tokenizer=tokenizer, patch_size=VISION["patch_size"],
        vision_feature_select_strategy=strategy, image_token="<image>",
        num_additional_image_tokens=1 if combination.startswith("clip") else 0,
    )  # fmt: skip
    vision_cls, text_cls = COMBINATIONS[combination]
    text = {**TEXT, "vocab_size": len(tokenizer)}
    config = LlavaConfig(
        vision_config=vision_cls(**{**VISION, "image_size": size}).to_dict(),
        text_config=text_cls(**text).to_dict(),
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
        vision_feature_layer=-1,
        vision_feature_select_strategy=strategy,
    )
    torch.manual_seed(seed)
    model = LlavaForConditionalGeneration(config)
    spread_weights(model, seed)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder
