"""Tiny Idefics3 and SmolVLM models with their processor, built from configs (no downloads).

The tower reads 16x16-pixel crops as a 4x4 grid of 4-pixel patches; the connector's pixel shuffle
(scale factor 2) turns each crop into 4 image tokens. With image splitting (SmolVLM's default
here) the image processor resizes an image's longest edge to 32 pixels and cuts it into 16-pixel
crops plus a global view, so a square image gives 2x2 crops + 1 = 20 image tokens and a 2:1 image
2x1 + 1 = 12; without it (Idefics3's here) every image is one 16x16 view of 4 tokens.

SmolVLM's processor is transformers' own without its video half, which needs torchvision and
num2words (not installed for these tests; images never use it):
``ukmp.zoo.smolvlm_processor.ImageOnlySmolVLMProcessor``. It is registered for ``SmolVLMConfig`` so
that ``AutoProcessor`` (and so ``ukmp``) loads the saved folder with it. Idefics3's processor is
used as it is.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import (
    AutoProcessor,
    Idefics3Config,
    Idefics3ForConditionalGeneration,
    Idefics3Processor,
    SmolVLMConfig,
    SmolVLMForConditionalGeneration,
)

from tiny_models import spread_weights
from ukmp.zoo.smolvlm_processor import IMAGE_TOKENS as SPECIAL
from ukmp.zoo.smolvlm_processor import ImageOnlySmolVLMProcessor

TEXT = dict(
    model_type="llama", hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
    num_key_value_heads=2, max_position_embeddings=256, pad_token_id=0,
)  # fmt: skip
VISION = dict(
    hidden_size=24, intermediate_size=48, num_hidden_layers=2, num_attention_heads=3, image_size=16, patch_size=4
)
SCALE_FACTOR = 2
IMAGE_SEQ_LEN = (VISION["image_size"] // VISION["patch_size"]) ** 2 // SCALE_FACTOR**2
MODELS = {
    "smolvlm": (SmolVLMConfig, SmolVLMForConditionalGeneration),
    "idefics3": (Idefics3Config, Idefics3ForConditionalGeneration),
}


AutoProcessor.register(SmolVLMConfig, ImageOnlySmolVLMProcessor, exist_ok=True)


def save_tiny_idefics3_with_processor(
    folder: Path, family: str = "smolvlm", splitting: bool | None = None, seed: int = 0
) -> Path:
    """A tiny random ``family`` model ("smolvlm" or "idefics3") over the shapes world's word tokenizer.

    ``splitting`` turns the image processor's ``do_image_splitting`` on or off (default: on for
    SmolVLM, off for Idefics3, so the contract sees both layouts).
    """
    from transformers.models.idefics3.image_processing_pil_idefics3 import Idefics3ImageProcessorPil
    from transformers.models.smolvlm.image_processing_pil_smolvlm import SmolVLMImageProcessorPil

    from eval_tiny_model import world_texts
    from ukmp.data.world_tokenizer import as_transformers_tokenizer, train_word_tokenizer

    splitting = family == "smolvlm" if splitting is None else splitting
    tokenizer = as_transformers_tokenizer(train_word_tokenizer(world_texts()))
    tokenizer.add_special_tokens({"additional_special_tokens": SPECIAL})
    pixels = dict(
        size={"longest_edge": 32}, max_image_size={"longest_edge": 16}, do_image_splitting=splitting,
        image_mean=[0.5] * 3, image_std=[0.5] * 3,
    )  # fmt: skip
    if family == "smolvlm":
        processor = ImageOnlySmolVLMProcessor(
            SmolVLMImageProcessorPil(**pixels), tokenizer, image_seq_len=IMAGE_SEQ_LEN
        )
    else:
        processor = Idefics3Processor(Idefics3ImageProcessorPil(**pixels), tokenizer, image_seq_len=IMAGE_SEQ_LEN)
    config_class, model_class = MODELS[family]
    eos = tokenizer.eos_token_id
    text = {**TEXT, "vocab_size": len(tokenizer), "bos_token_id": eos, "eos_token_id": eos}
    image_token_id = tokenizer.convert_tokens_to_ids("<image>")
    config = config_class(
        text_config=text, vision_config=VISION, scale_factor=SCALE_FACTOR, image_token_id=image_token_id
    )
    torch.manual_seed(seed)
    model = model_class(config)
    spread_weights(model, seed)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder
