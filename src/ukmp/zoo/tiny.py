"""A tiny random BLIP-2 (ViT -> Q-Former -> T5) saved like a real model folder.

Why it lives in the library: the tests and the benchmarks (`bench/kill_test.py`) both need a model
that every command accepts, builds in seconds and downloads nothing. It has the shipped model's
structure (`shapes_blip2_t5_config`) with one vision layer, a word-level tokenizer trained on a few
shapes-world scenes, and a `Blip2Processor` saved next to the weights, so
`AutoProcessor.from_pretrained(folder)` and `ukmp evaluate folder` work as on a real model. Weights
are re-drawn with a larger spread than the default init, so that scores differ visibly between
images (with the default tiny init every image looks the same to the language model).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from transformers import Blip2ForConditionalGeneration, Blip2Processor, BlipImageProcessor, ProcessorMixin

from ukmp.data.shapes_world import captions, make_scene, questions
from ukmp.data.world_tokenizer import as_transformers_tokenizer, train_word_tokenizer
from ukmp.zoo.shapes_config import NUM_QUERY_TOKENS, shapes_blip2_t5_config


def world_texts(n: int = 40) -> list[str]:
    """Captions, questions and answers of `n` scenes per split: enough text to train a word tokenizer."""
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
    return spread_and_save(model, processor, out_dir)


def spread_and_save(model: nn.Module, processor: ProcessorMixin, out_dir: Path) -> Path:
    """Re-draw the weights with a visible spread (see the module docstring) and save model + processor."""
    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.dim() >= 2 and "layernorm" not in name and "layer_norm" not in name:
                param.normal_(0.0, 0.08)
    model.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    return Path(out_dir)
