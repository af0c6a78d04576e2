"""A tiny language model for the `shapes-smolvlm` recipe, so its tests need neither the real GGUF nor minutes.

`tiny_text_model` stands in for SmolLM2-135M-Instruct: a 2-layer Llama over the shapes world's word
tokenizer (with SmolLM2's chat tokens), built from a seed. `TINY_RECIPE` runs every stage in a few
steps on a handful of images.
"""

from __future__ import annotations

from ukmp.zoo.smolvlm_text import TextModel

TINY_RECIPE = dict(
    vision_steps=2, vision_batch=4, vision_warmup=1, align_steps=3, instruct_steps=3, batch_size=2,
    warmup_steps=1, train_images=8, vision_layers=1, lora_rank=2, lora_alpha=4.0, checkpoint_every=1, threads=1,
)  # fmt: skip


def tiny_config(**overrides):
    """The recipe's `SmolVLMTrainConfig` shrunk to `TINY_RECIPE` (and `overrides`)."""
    from ukmp.zoo.smolvlm_training import SmolVLMTrainConfig

    return SmolVLMTrainConfig(**{**TINY_RECIPE, **overrides})


def world_chat_tokenizer():
    """The world's word tokenizer with SmolLM2's chat tokens (end of turn = end of sequence)."""
    from ukmp.data.world_tokenizer import as_transformers_tokenizer, train_word_tokenizer
    from ukmp.zoo.train_shapes import world_vocabulary_texts

    tokenizer = as_transformers_tokenizer(train_word_tokenizer(world_vocabulary_texts(50)))
    tokenizer.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
    tokenizer.bos_token = tokenizer.eos_token
    return tokenizer


def tiny_llama_for(tokenizer, seed: int = 1):
    from tiny_lm import tiny_llama

    return tiny_llama(len(tokenizer), seed=seed, hidden_size=64, intermediate_size=128)


def tiny_text_model(seed: int = 1) -> TextModel:
    """A tiny Llama and its tokenizer, with an origin like a GGUF's (a fixed fake checksum)."""
    tokenizer = world_chat_tokenizer()
    return TextModel(tiny_llama_for(tokenizer, seed), tokenizer, {"gguf": "tiny", "sha256": f"tiny-{seed}"})
