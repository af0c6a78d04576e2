"""A tiny random BLIP-2 (ViT -> Q-Former -> T5) saved like a real model dir, for the evaluation tests.

It has the shipped model's structure (`shapes_blip2_t5_config`) with one vision and one T5 layer,
a word-level tokenizer trained on a few shapes-world scenes, and a `Blip2Processor` saved next to
the weights, so `AutoProcessor.from_pretrained(dir)` and `ukmp evaluate dir` work as on a real
model. Weights are re-drawn with a larger spread than the default init so that scores differ
visibly between images (with the default tiny init every image looks the same to the LM).
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import Blip2Config, Blip2ForConditionalGeneration, Blip2Processor, BlipImageProcessor

from ukmp.data.shapes_world import captions, make_scene, questions
from ukmp.data.world_tokenizer import as_transformers_tokenizer, train_word_tokenizer
from ukmp.zoo.shapes_config import NUM_QUERY_TOKENS, shapes_blip2_t5_config


def world_texts(n: int = 40) -> list[str]:
    texts = ["Question: Short answer:"]
    for split in ("train", "val", "heldout"):
        for i in range(n):
            scene = make_scene(split, i)
            texts.extend(captions(scene))
            for q in questions(scene):
                texts.extend([q.question, q.answer])
    return texts


def build_tiny_blip2(out_dir: Path, seed: int = 0, lm_layers: int = 1, decoder_layers: int | None = None) -> Path:
    """Write a tiny random model + processor to `out_dir` and return it.

    ``decoder_layers`` gives the T5 decoder another depth than its encoder (``num_decoder_layers``).
    """
    tokenizer = as_transformers_tokenizer(train_word_tokenizer(world_texts()))
    image_processor = BlipImageProcessor(
        size={"height": 64, "width": 64}, image_mean=[0.5] * 3, image_std=[0.5] * 3, do_rescale=True
    )
    processor = Blip2Processor(image_processor, tokenizer, num_query_tokens=NUM_QUERY_TOKENS)
    torch.manual_seed(seed)
    config = shapes_blip2_t5_config(len(tokenizer), vision_layers=1, lm_layers=lm_layers)
    # 8 px patches keep the patch embedding (which no method prunes) small: with the shipped 32 px
    # patches it would be a fifth of this one-layer model, and 50% of all parameters could not be removed
    config.vision_config.patch_size = 8
    if decoder_layers is not None:
        config.text_config.num_decoder_layers = decoder_layers
    model = Blip2ForConditionalGeneration(config).eval()
    return _spread_and_save(model, processor, out_dir)


def _spread_and_save(model, processor, out_dir: Path) -> Path:
    """Re-draw the weights with a visible spread (see the module docstring) and save model + processor."""
    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.dim() >= 2 and "layernorm" not in name and "layer_norm" not in name:
                param.normal_(0.0, 0.08)
    model.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    return Path(out_dir)


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
