"""Idefics3 and SmolVLM: a SigLIP-style vision tower -> a pixel-shuffle connector -> a Llama-layout language model.

Both classes share one layout (``SmolVLMForConditionalGeneration`` subclasses Idefics3's):
``model.vision_model`` is SigLIP's tower (``encoder.layers.<i>.self_attn.{q,k,v,out}_proj`` and
``mlp.fc1`` / ``mlp.fc2``), ``model.connector`` shuffles each image's patch grid and projects it
(``modality_projection``), ``model.text_model`` is a Llama-layout model, and ``lm_head`` writes.

Prunable: the tower's heads and MLP channels (``ClipVisionPart``: the module names are SigLIP's)
and the language model's key/value groups and MLP channels (``LlamaPart``, through the registry,
as inside LLaVA). Kept whole: the connector, and with it the tower's hidden width (its embed
dim). The pixel shuffle concatenates ``scale_factor**2`` neighbouring patches of the tower's full
output width into one vector, so the projection's input columns are that width times
``scale_factor**2``; pruning the width would cut across every one of those blocks. The tower's
groups therefore never touch its hidden width (only heads and MLP channels inside each layer),
and the connector's output is the language model's width, which is not pruned either. The
connector sits beside the tower, not inside it, so its parameters and FLOPs count as
``projection``, as LLaVA's projector and BLIP-2's language projection do (Qwen2-VL's merger runs
inside its tower's forward and counts with ``vision``). After slicing, nothing else needs fixing:
the tower's attention infers its head count from tensor shapes (``ClipVisionPart.after_slice`` keeps
``num_heads`` and ``embed_dim`` truthful), and ``LlamaPart.after_slice`` does the same for the
language model.

Inputs (``Idefics3Inputs``): ``pixel_values`` come as (batch, images, C, H, W), each image cut
into crops when the image processor splits images (``do_image_splitting``) plus one global view,
and padded with all-zero images where a sample has fewer crops (the model drops those); the
processor returns ``pixel_attention_mask`` beside them. The processor expands each ``<image>`` of
the prompt into, per crop, ``<fake_token_around_image>``, a ``<row_r_col_c>`` tag (``<global-img>``
for the global view) and ``image_seq_len`` image tokens, then a closing fake token. So the token
count follows the crops the image processor made, and a batch built by one processor call always
matches its pixels; nothing here re-derives that expansion.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ukmp.adapters.base import ModelAdapter
from ukmp.adapters.clip_vision import ClipVisionPart
from ukmp.adapters.prompt_image_inputs import PromptImageInputs
from ukmp.adapters.registry import require_language_part


class Idefics3Inputs(PromptImageInputs):
    """LLaVA's way of feeding a prompt with its image, with Idefics3's crops and their pixel mask.

    One difference in the call: the processor gets the images one list per prompt. SmolVLM's
    processor reads a flat list of images as the images of one sample (and refuses a batch of
    prompts with one image each); Idefics3's splits a flat list by the prompts' placeholders.
    Nested lists mean the same to both. Otherwise LLaVA's inputs fit once the image keys are these:
    calibration batches and generation take the processor's whole output (crops, mask, expanded
    prompt); retrieval hands the mask to ``get_image_features``, which drops the all-zero padding
    crops and returns each sample's features crop after crop, in the order of the prompt's image
    tokens. Per-sample pieces are rows of the batch: the images axis stays with its sample.
    """

    image_keys = ("pixel_values", "pixel_attention_mask")

    def __init__(self, model: nn.Module) -> None:
        super().__init__(model, examples=idefics3_example_inputs)

    def calibration_batch(self, processor: Any, images: list, samples: Sequence[Any]) -> dict[str, torch.Tensor]:
        return super().calibration_batch(processor, per_sample(images), samples)

    def prompt_inputs(
        self, model: nn.Module, processor: Any, image_paths: Sequence[Any], prompts: list[str]
    ) -> dict[str, torch.Tensor]:
        """The processor's output for one image per prompt (placeholders added), on the model's device."""
        from ukmp.data.reading import load_image
        from ukmp.evaluation.generation import processor_inputs

        texts = [self.generation_prompt(processor, p) for p in prompts]
        return processor_inputs(processor, model, per_sample([load_image(p) for p in image_paths]), texts)

    def generate_batch(
        self, model: nn.Module, processor: Any, image_paths: Sequence[Any], prompts: list[str], settings: Any
    ) -> list[str]:
        """The processor builds each (image, prompt) pair's input, left-padded; ``model.generate`` continues it."""
        from ukmp.evaluation.generation import generation_cache

        inputs = self.prompt_inputs(model, processor, image_paths, prompts)
        output = model.generate(**inputs, **settings.generate_kwargs(), **generation_cache(model))
        output = output[:, inputs["input_ids"].shape[1] :]  # drop the echoed prompt
        return [t.strip() for t in processor.batch_decode(output, skip_special_tokens=True)]

    def retrieval_prefix(
        self, model: nn.Module, processor: Any, image_paths: Sequence[Any], prompt: str
    ) -> dict[str, torch.Tensor]:
        """The prompt's embeddings with each image's crop features over its image tokens."""
        from ukmp.evaluation.generation import image_features, prefix_embeddings

        inputs = self.prompt_inputs(model, processor, image_paths, [prompt] * len(image_paths))
        features = image_features(model, inputs["pixel_values"], pixel_attention_mask=inputs["pixel_attention_mask"])
        return {"states": prefix_embeddings(model, inputs["input_ids"], features), "mask": inputs["attention_mask"]}


def per_sample(images: list) -> list[list]:
    """One list of images per prompt, the layout both processors read alike."""
    return [[image] for image in images]


def image_seq_len(config) -> int:
    """Image tokens per crop: the tower's patch grid after the connector's pixel shuffle."""
    vision = config.vision_config
    return (vision.image_size // vision.patch_size) ** 2 // config.scale_factor**2


def idefics3_example_inputs(model: nn.Module, ids: torch.Tensor, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """One unsplit image at the tower's resolution, its image tokens, then ``ids``.

    The processor would also write ``<fake_token_around_image>`` and ``<global-img>`` around the
    image tokens; their ids are the tokenizer's, not the config's, and they are ordinary text
    tokens to the model, so an example input (FLOPs, bench) needs only the image tokens.
    """
    config = model.config
    size = config.vision_config.image_size
    batch = ids.shape[0]
    dtype = next(model.model.vision_model.parameters()).dtype
    pixel_values = torch.randn(batch, 1, 3, size, size, generator=gen).to(dtype)
    ids = ids.masked_fill(ids == config.image_token_id, 4)
    image = torch.full((batch, image_seq_len(config)), config.image_token_id)
    input_ids = torch.cat([image, ids], dim=1)
    return {
        "pixel_values": pixel_values,
        "pixel_attention_mask": torch.ones(batch, 1, size, size, dtype=torch.long),
        "input_ids": input_ids,
        "attention_mask": torch.ones_like(input_ids),
    }


def idefics3_adapter(model: nn.Module) -> ModelAdapter:
    """Idefics3 or SmolVLM: the tower at ``model.vision_model``, the language model at ``model.text_model``."""
    language = require_language_part(model, "model.text_model.")
    return ModelAdapter(
        model,
        [ClipVisionPart(model, "model.vision_model."), language],
        extra_buckets={"model.connector": "projection", "lm_head": "lm_embeddings"},
        extra_paths={"projection": "model.connector", "lm_head": "lm_head"},
        inputs=Idefics3Inputs(model),
    )
