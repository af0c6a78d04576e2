"""Tiny random vision-language models saved like real model folders, for the tests.

The BLIP-2 (ViT -> Q-Former -> T5) builder lives in the library (`ukmp.zoo.tiny`), since the
benchmarks build it too; this file adds one cached copy per test process and the InstructBLIP and
decoder-only BLIP-2 variants the contract tests use.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import Blip2Config, Blip2ForConditionalGeneration, Blip2Processor, BlipImageProcessor

from ukmp.data.world_tokenizer import as_transformers_tokenizer, train_word_tokenizer
from ukmp.zoo.shapes_config import NUM_QUERY_TOKENS, shapes_blip2_t5_config
from ukmp.zoo.tiny import build_tiny_blip2, world_texts
from ukmp.zoo.tiny import spread_and_save as _spread_and_save

__all__ = ["build_tiny_blip2", "build_tiny_blip2_decoder", "build_tiny_instructblip", "tiny_model_dir", "world_texts"]


_CACHE: dict[str, Path] = {}


def tiny_model_dir() -> Path:
    """One tiny model per test process (building it takes a few seconds), removed at exit."""
    if "dir" not in _CACHE:
        import atexit
        import shutil
        import tempfile

        folder = Path(tempfile.mkdtemp(prefix="ukmp-tiny-blip2-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        _CACHE["dir"] = build_tiny_blip2(folder)
    return _CACHE["dir"]


def build_tiny_instructblip(out_dir: Path, lm: str = "t5", seed: int = 0) -> Path:
    """A tiny random InstructBLIP (T5, or Llama as in InstructBLIP-Vicuna) + its processor, saved like a hub folder.

    Its Q-Former also reads the instruction, through a tokenizer of its own (`qformer_tokenizer`).
    """
    from transformers import InstructBlipConfig, InstructBlipForConditionalGeneration, InstructBlipProcessor

    from ukmp.data.world_tokenizer import EOS_ID, IMAGE_ID, PAD_ID

    tokenizer = as_transformers_tokenizer(train_word_tokenizer(world_texts()))
    qformer_tokenizer = as_transformers_tokenizer(train_word_tokenizer(world_texts()))
    image_processor = BlipImageProcessor(
        size={"height": 64, "width": 64}, image_mean=[0.5] * 3, image_std=[0.5] * 3, do_rescale=True
    )
    processor = InstructBlipProcessor(image_processor, tokenizer, qformer_tokenizer, num_query_tokens=NUM_QUERY_TOKENS)
    blip2 = shapes_blip2_t5_config(len(tokenizer), vision_layers=1, lm_layers=1).to_dict()
    vision = {**blip2["vision_config"], "patch_size": 8}
    qformer = {**blip2["qformer_config"], "vocab_size": len(qformer_tokenizer), "max_position_embeddings": 128}
    qformer["num_hidden_layers"] = 1
    if lm == "t5":
        text = blip2["text_config"]
    else:
        text = dict(
            model_type="llama",
            vocab_size=len(tokenizer),
            hidden_size=128,
            intermediate_size=256,
            num_hidden_layers=1,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=256,
            pad_token_id=PAD_ID,
            bos_token_id=EOS_ID,
            eos_token_id=EOS_ID,
        )
    config = InstructBlipConfig(
        vision_config=vision,
        qformer_config=qformer,
        text_config=text,
        num_query_tokens=NUM_QUERY_TOKENS,
        image_token_index=IMAGE_ID,
    )
    torch.manual_seed(seed)
    model = InstructBlipForConditionalGeneration(config).eval()
    return _spread_and_save(model, processor, out_dir)


def build_tiny_blip2_decoder(out_dir: Path, lm: str, seed: int = 0) -> Path:
    """A tiny BLIP-2 over a decoder-only language model ("opt" or "llama") + its processor, saved like a hub folder."""
    from ukmp.data.world_tokenizer import EOS_ID, IMAGE_ID, PAD_ID

    tokenizer = as_transformers_tokenizer(train_word_tokenizer(world_texts()))
    image_processor = BlipImageProcessor(
        size={"height": 64, "width": 64}, image_mean=[0.5] * 3, image_std=[0.5] * 3, do_rescale=True
    )
    processor = Blip2Processor(image_processor, tokenizer, num_query_tokens=NUM_QUERY_TOKENS)
    blip2 = shapes_blip2_t5_config(len(tokenizer), vision_layers=1, lm_layers=1).to_dict()
    tokens = dict(vocab_size=len(tokenizer), pad_token_id=PAD_ID, bos_token_id=EOS_ID, eos_token_id=EOS_ID)
    if lm == "opt":
        text = dict(model_type="opt", hidden_size=128, ffn_dim=256, num_hidden_layers=1, num_attention_heads=4,
                    word_embed_proj_dim=128, max_position_embeddings=256, **tokens)  # fmt: skip
    else:
        text = dict(model_type="llama", hidden_size=128, intermediate_size=256, num_hidden_layers=1,
                    num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256, **tokens)  # fmt: skip
    config = Blip2Config(
        vision_config={**blip2["vision_config"], "patch_size": 8},
        qformer_config={**blip2["qformer_config"], "num_hidden_layers": 1},
        text_config=text,
        num_query_tokens=NUM_QUERY_TOKENS,
        image_token_index=IMAGE_ID,
    )
    torch.manual_seed(seed)
    return _spread_and_save(Blip2ForConditionalGeneration(config).eval(), processor, out_dir)
