"""Tiny Qwen2-VL and Qwen2.5-VL models with their processor, built from configs (no downloads).

The processor is transformers' own ``Qwen2VLProcessor`` without its video half: that half needs
torchvision, which these tests do not install, and images never use it. ``ImageOnlyQwen2VLProcessor``
is registered for the Qwen2-VL configs so that ``AutoProcessor`` (and so ``ukmp``) loads the saved
folder with it. Images are resized to 32x32 pixels: a 4x4 grid of 8-pixel patches, merged 2x2
into 4 image tokens.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import (
    AutoProcessor,
    Qwen2_5_VLConfig,
    Qwen2_5_VLForConditionalGeneration,
    Qwen2VLConfig,
    Qwen2VLForConditionalGeneration,
    Qwen2VLProcessor,
)
from transformers.processing_utils import ProcessorMixin

from tiny_models import spread_weights

SPECIAL = ["<|image_pad|>", "<|video_pad|>", "<|vision_start|>", "<|vision_end|>"]
TEXT = dict(
    hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
    max_position_embeddings=128, pad_token_id=0, rope_parameters={"rope_type": "default", "rope_theta": 10000.0,
    "mrope_section": [2, 1, 1]},
)  # fmt: skip
PATCH = dict(patch_size=8, spatial_merge_size=2, temporal_patch_size=2, in_channels=3)
VISION = {
    "qwen2-vl": dict(depth=2, embed_dim=24, num_heads=3, mlp_ratio=2, hidden_size=32, **PATCH),
    "qwen2.5-vl": dict(
        depth=2, hidden_size=24, num_heads=3, intermediate_size=40, out_hidden_size=32, window_size=16,
        fullatt_block_indexes=[1], **PATCH,
    ),
}  # fmt: skip
MODELS = {
    "qwen2-vl": (Qwen2VLConfig, Qwen2VLForConditionalGeneration),
    "qwen2.5-vl": (Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration),
}


class ImageOnlyQwen2VLProcessor(Qwen2VLProcessor):
    """``Qwen2VLProcessor`` with an image processor and a tokenizer only (no video processor)."""

    def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs) -> None:
        self.image_token, self.video_token = SPECIAL[0], SPECIAL[1]
        self.image_token_id = tokenizer.convert_tokens_to_ids(self.image_token)
        self.video_token_id = tokenizer.convert_tokens_to_ids(self.video_token)
        ProcessorMixin.__init__(self, image_processor, tokenizer, chat_template=chat_template)


for _config in (Qwen2VLConfig, Qwen2_5_VLConfig):
    AutoProcessor.register(_config, ImageOnlyQwen2VLProcessor, exist_ok=True)


def save_tiny_qwen2_vl_with_processor(folder: Path, family: str = "qwen2-vl", seed: int = 0) -> Path:
    """A tiny random ``family`` model ("qwen2-vl" or "qwen2.5-vl") over the shapes world's word tokenizer."""
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    from eval_tiny_model import world_texts
    from ukmp.data.world_tokenizer import as_transformers_tokenizer, train_word_tokenizer

    tokenizer = as_transformers_tokenizer(train_word_tokenizer(world_texts()))
    tokenizer.add_special_tokens({"additional_special_tokens": ["<image>", *SPECIAL]})
    image_processor = Qwen2VLImageProcessorPil(
        min_pixels=32 * 32, max_pixels=32 * 32, patch_size=8, merge_size=2, temporal_patch_size=2,
        image_mean=[0.5] * 3, image_std=[0.5] * 3,
    )  # fmt: skip
    processor = ImageOnlyQwen2VLProcessor(image_processor=image_processor, tokenizer=tokenizer)
    ids = dict(zip(("image_token_id", "video_token_id", "vision_start_token_id", "vision_end_token_id"),
                   tokenizer.convert_tokens_to_ids(SPECIAL)))  # fmt: skip
    config_class, model_class = MODELS[family]
    eos = tokenizer.eos_token_id
    text = {**TEXT, "vocab_size": len(tokenizer), "bos_token_id": eos, "eos_token_id": eos}
    config = config_class(text_config=text, vision_config=VISION[family], **ids)
    torch.manual_seed(seed)
    model = model_class(config)
    spread_weights(model, seed)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder
