"""Tiny BLIP-2 models built from configs (no downloads), shared by the tests.

Weights are re-drawn with a larger spread than transformers' init so that outputs depend
visibly on every head and channel (with the default tiny init, generation collapses to one
repeated token and would hide bugs).
"""

from __future__ import annotations

import torch
from transformers import Blip2Config, Blip2ForConditionalGeneration

VOCAB = 96
IMAGE_TOKEN = VOCAB - 1
NUM_QUERY = 4
IMAGE_SIZE = 16

VISION = dict(
    hidden_size=32,
    intermediate_size=48,
    num_hidden_layers=2,
    num_attention_heads=4,
    image_size=IMAGE_SIZE,
    patch_size=8,
    qkv_bias=True,
)
QFORMER = dict(
    hidden_size=32,
    intermediate_size=48,
    num_hidden_layers=2,
    num_attention_heads=4,
    encoder_hidden_size=32,
    vocab_size=VOCAB,
    max_position_embeddings=64,
)
TEXT = {
    "t5": dict(
        model_type="t5",
        vocab_size=VOCAB,
        d_model=32,
        d_kv=8,
        d_ff=48,
        num_layers=2,
        num_decoder_layers=2,
        num_heads=4,
        feed_forward_proj="gated-gelu",
        relative_attention_num_buckets=8,
        decoder_start_token_id=0,
        pad_token_id=0,
        eos_token_id=1,
    ),
    "opt": dict(
        model_type="opt",
        vocab_size=VOCAB,
        hidden_size=32,
        ffn_dim=48,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=64,
        word_embed_proj_dim=32,
        pad_token_id=1,
        bos_token_id=2,
        eos_token_id=2,
    ),
    "llama": dict(
        model_type="llama",
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=48,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
    ),
}


def blip2_config(lm: str) -> Blip2Config:
    return Blip2Config(
        vision_config=dict(VISION),
        qformer_config=dict(QFORMER),
        text_config=dict(TEXT[lm]),
        num_query_tokens=NUM_QUERY,
        image_token_index=IMAGE_TOKEN,
    )


@torch.no_grad()
def spread_weights(model: torch.nn.Module, seed: int, std: float = 0.2) -> None:
    """Re-draw every parameter so all units matter (norm weights stay near 1)."""
    gen = torch.Generator().manual_seed(seed)
    for name, param in model.named_parameters():
        noise = torch.randn(param.shape, generator=gen) * std
        parts = name.split(".")
        if len(parts) > 1 and "norm" in parts[-2].lower() and parts[-1] == "weight":
            param.copy_(1.0 + noise * 0.1)
        else:
            param.copy_(noise)


def tiny_blip2(lm: str = "t5", seed: int = 0) -> Blip2ForConditionalGeneration:
    """A tiny BLIP-2 with a T5, OPT or Llama (GQA) language model, in eval mode."""
    torch.manual_seed(seed)
    model = Blip2ForConditionalGeneration(blip2_config(lm))
    spread_weights(model, seed)
    return model.eval()


def blip2_inputs(lm: str = "t5", batch: int = 2, text_len: int = 5, seed: int = 1) -> dict[str, torch.Tensor]:
    """Pixel values plus ``input_ids`` that start with exactly ``NUM_QUERY`` image tokens."""
    gen = torch.Generator().manual_seed(seed)
    text = torch.randint(3, IMAGE_TOKEN, (batch, text_len), generator=gen)
    inputs = {
        "pixel_values": torch.randn(batch, 3, IMAGE_SIZE, IMAGE_SIZE, generator=gen),
        "input_ids": torch.cat([torch.full((batch, NUM_QUERY), IMAGE_TOKEN), text], dim=1),
    }
    inputs["attention_mask"] = torch.ones_like(inputs["input_ids"])
    if lm == "t5":
        inputs["decoder_input_ids"] = torch.randint(3, IMAGE_TOKEN, (batch, 4), generator=gen)
    return inputs


def tiny_instructblip(lm: str = "t5", seed: int = 0):
    """A tiny InstructBLIP (its Q-Former also reads the instruction text)."""
    from transformers import InstructBlipConfig, InstructBlipForConditionalGeneration

    torch.manual_seed(seed)
    config = InstructBlipConfig(
        vision_config=dict(VISION),
        qformer_config=dict(QFORMER),
        text_config=dict(TEXT[lm]),
        num_query_tokens=NUM_QUERY,
        image_token_index=IMAGE_TOKEN,
    )
    model = InstructBlipForConditionalGeneration(config)
    spread_weights(model, seed)
    return model.eval()


def instructblip_inputs(lm: str = "t5", seed: int = 1) -> dict[str, torch.Tensor]:
    inputs = blip2_inputs(lm, seed=seed)
    gen = torch.Generator().manual_seed(seed + 100)
    inputs["qformer_input_ids"] = torch.randint(3, VOCAB - 1, (inputs["input_ids"].shape[0], 5), generator=gen)
    inputs["qformer_attention_mask"] = torch.ones_like(inputs["qformer_input_ids"])
    return inputs


def tiny_train_config(**changes):
    """The shipped model's recipe shrunk to seconds (1-layer towers, a handful of steps and images)."""
    from dataclasses import replace

    from ukmp.zoo.train_shapes import TrainConfig

    base = TrainConfig(
        steps=3,
        batch_size=4,
        vision_pretrain_steps=2,
        vision_pretrain_batch=4,
        train_images=12,
        warmup_steps=1,
        vision_layers=1,
        lm_layers=1,
        threads=1,
        grounding_steps=2,
        grounding_warmup=1,
    )
    return replace(base, **changes)
