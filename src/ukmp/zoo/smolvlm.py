"""`shapes-smolvlm`: SmolVLM's architecture over SmolLM2-135M-Instruct, with a vision tower for the shapes world.

The model is transformers' ``SmolVLMForConditionalGeneration``: a SigLIP-style vision tower, the
pixel-shuffle connector and a Llama-layout language model. The language model is SmolLM2-135M-Instruct's
real weights (dequantised from its GGUF file, `smolvlm_text`), so it knows English; the tower and the
connector are small and trained on the shapes world (`smolvlm_training`).

The tower has the shipped ViT's width (256, 8 heads, MLP 1024; `shapes_config`) and 4 layers, and
reads the world's 64-pixel images as 4 x 4 patches of 16 pixels: the connector's pixel shuffle
(scale 2) joins each 2 x 2 block of patches, which is exactly one cell of the world's 2 x 2 grid, into
one image token, so an image is 4 tokens of the LM's width (576). Cheap beside the 135M-parameter LM.

`assemble_smolvlm` builds the whole model from a `TextModel` deterministically (the tower and the
connector from the seed, the image tokens' new embedding rows as the mean of the existing rows, so
nothing about the LM needs to be shipped). `TRAINED_PREFIXES` names the parts training changes.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from ukmp.zoo.smolvlm_processor import (
    IMAGE_SIZE,
    PATCH_SIZE,
    SCALE_FACTOR,
    ImageOnlySmolVLMProcessor,
    add_image_tokens,
    build_processor,
)
from ukmp.zoo.smolvlm_text import TextModel

VISION_LAYERS = 4
#: parameter-name prefixes of the parts that are trained (with the LoRA matrices, `lora.lora_parameters`)
TRAINED_PREFIXES = ("model.vision_model.", "model.connector.")


def shapes_vision_config(layers: int = VISION_LAYERS) -> dict:
    """The SigLIP-style tower: the shipped ViT's width and heads, 16-pixel patches on 64-pixel images."""
    return dict(
        hidden_size=256,
        intermediate_size=1024,
        num_hidden_layers=layers,
        num_attention_heads=8,
        image_size=IMAGE_SIZE,
        patch_size=PATCH_SIZE,
        hidden_act="gelu_pytorch_tanh",
        layer_norm_eps=1e-6,
        attention_dropout=0.0,
        initializer_range=0.02,
    )


def _text_config(base: nn.Module, vocab_size: int) -> dict:
    """The LM's config as a plain dict for SmolVLMConfig, with the vocabulary grown by the image tokens."""
    config = base.config.to_dict()
    for key in ("quantization_config", "architectures", "_name_or_path", "transformers_version", "dtype"):
        config.pop(key, None)
    config["vocab_size"] = vocab_size
    return config


def assemble_smolvlm(
    text: TextModel, *, vision_layers: int = VISION_LAYERS, seed: int = 0
) -> tuple[nn.Module, ImageOnlySmolVLMProcessor]:
    """A float32 ``SmolVLMForConditionalGeneration`` whose LM is `text.model`, and its processor.

    The tower and the connector are freshly initialised from `seed`; the LM's weights are copied, and
    the image tokens the LM lacks get new embedding (and output) rows, the mean of the LM's rows, so the
    LM computes exactly what it computed on its own vocabulary.
    """
    from transformers import SmolVLMConfig, SmolVLMForConditionalGeneration

    tokenizer = copy.deepcopy(text.tokenizer)
    add_image_tokens(tokenizer)
    base = text.model
    base_embed = base.get_input_embeddings().weight.detach()
    rows = base_embed.shape[0]
    vocab_size = max(rows, len(tokenizer))
    tied = bool(base.config.tie_word_embeddings)
    config = SmolVLMConfig(
        text_config=_text_config(base, vocab_size),
        vision_config=shapes_vision_config(vision_layers),
        scale_factor=SCALE_FACTOR,
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
        tie_word_embeddings=tied,
    )
    config.text_config.tie_word_embeddings = tied
    torch.manual_seed(seed)
    model = SmolVLMForConditionalGeneration(config).float()
    state = {k: v for k, v in base.model.state_dict().items() if k != "embed_tokens.weight"}
    result = model.model.text_model.load_state_dict(state, strict=False)
    if result.unexpected_keys or set(result.missing_keys) - {"embed_tokens.weight"}:
        raise ValueError(f"the LM's weights do not fit SmolVLM's text model: {result}")
    new_ids = list(range(rows, vocab_size))  # a token the LM already had keeps its row
    with torch.no_grad():
        embed = model.model.text_model.embed_tokens.weight
        embed[:rows].copy_(base_embed)
        embed[new_ids] = base_embed.mean(0)
        if not tied:
            head = base.get_output_embeddings().weight.detach()
            model.lm_head.weight[:rows].copy_(head)
            model.lm_head.weight[new_ids] = head.mean(0)
    if tied:
        model.lm_head.weight = model.model.text_model.embed_tokens.weight
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model.eval(), build_processor(tokenizer)


def trained_parameters(model: nn.Module) -> dict[str, nn.Parameter]:
    """Every parameter training may change: the tower, the connector and the LM's LoRA matrices."""
    return {
        name: p
        for name, p in model.named_parameters()
        if name.startswith(TRAINED_PREFIXES) or ".lora_A" in name or ".lora_B" in name
    }
