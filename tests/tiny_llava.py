"""Tiny LLaVA models: a CLIP or SigLIP vision tower, a projector, a Llama / Qwen2 / Mistral language model;
``clip-llama-next`` is LLaVA-NeXT (images read as tiles, plus an image-newline vector)."""

from __future__ import annotations

import torch
from transformers import (
    CLIPVisionConfig,
    LlamaConfig,
    LlavaConfig,
    LlavaForConditionalGeneration,
    LlavaNextConfig,
    LlavaNextForConditionalGeneration,
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
    "clip-llama-next": (CLIPVisionConfig, LlamaConfig),
}


def _wrapper(combination: str, size: int, **kwargs) -> LlavaForConditionalGeneration:
    """The model of ``combination``; a LLaVA-NeXT one tiles an image up to two tiles wide."""
    if combination.endswith("-next"):
        return LlavaNextForConditionalGeneration(
            LlavaNextConfig(image_grid_pinpoints=[[size, size], [size, 2 * size]], **kwargs)
        )
    return LlavaForConditionalGeneration(LlavaConfig(**kwargs))


def tiny_llava(combination: str, seed: int = 0) -> LlavaForConditionalGeneration:
    vision_cls, text_cls = COMBINATIONS[combination]
    torch.manual_seed(seed)
    model = _wrapper(
        combination,
        VISION["image_size"],
        vision_config=vision_cls(**VISION).to_dict(),
        text_config=text_cls(**TEXT).to_dict(),
        image_token_index=IMAGE_TOKEN,
        vision_feature_layer=-1,
        vision_feature_select_strategy="full" if vision_cls is SiglipVisionConfig else "default",
        projector_hidden_act="gelu",
    )
    spread_weights(model, seed)
    return model.eval()


def llava_inputs(model: LlavaForConditionalGeneration, batch: int = 2, text_len: int = 5, seed: int = 1) -> dict:
    from ukmp.adapters import find_adapter

    gen = torch.Generator().manual_seed(seed)
    inputs = find_adapter(model).example_inputs(model, batch=batch, text_len=text_len)
    inputs["pixel_values"] = torch.randn(inputs["pixel_values"].shape, generator=gen)
    return inputs


def save_tiny_llava_with_processor(folder, combination: str = "clip-llama", seed: int = 0):
    """A tiny LLaVA over the shapes world's word tokenizer, with its processor (LLaVA or LLaVA-NeXT) beside it."""
    from transformers import CLIPImageProcessor, LlavaNextImageProcessor, LlavaNextProcessor, LlavaProcessor

    from eval_tiny_model import world_texts
    from ukmp.data.world_tokenizer import as_transformers_tokenizer, train_word_tokenizer

    tokenizer = as_transformers_tokenizer(train_word_tokenizer(world_texts()))
    tokenizer.add_special_tokens({"additional_special_tokens": ["<image>"]})
    size = 32
    next_ = combination.endswith("-next")
    pixels = dict(
        size={"shortest_edge": size}, crop_size={"height": size, "width": size}, image_mean=[0.5] * 3,
        image_std=[0.5] * 3,
    )  # fmt: skip
    if next_:
        image_processor = LlavaNextImageProcessor(image_grid_pinpoints=[[size, size], [size, 2 * size]], **pixels)
    else:
        image_processor = CLIPImageProcessor(**pixels)
    strategy = "full" if combination.startswith("siglip") else "default"
    processor = (LlavaNextProcessor if next_ else LlavaProcessor)(
        image_processor=image_processor, tokenizer=tokenizer, patch_size=VISION["patch_size"],
        vision_feature_select_strategy=strategy, image_token="<image>",
        num_additional_image_tokens=1 if combination.startswith("clip") else 0,
    )  # fmt: skip
    vision_cls, text_cls = COMBINATIONS[combination]
    text = {**TEXT, "vocab_size": len(tokenizer)}
    torch.manual_seed(seed)
    model = _wrapper(
        combination,
        size,
        vision_config=vision_cls(**{**VISION, "image_size": size}).to_dict(),
        text_config=text_cls(**text).to_dict(),
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
        vision_feature_layer=-1,
        vision_feature_select_strategy=strategy,
    )
    spread_weights(model, seed)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder
