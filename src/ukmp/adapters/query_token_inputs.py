"""Inputs of BLIP-2-style models: the image becomes ``num_query_tokens`` Q-Former outputs in the prompt.

Why a family of its own: the image side (vision tower + Q-Former) is computed apart from the
language model, so generation and retrieval run it once per distinct image and hand the language
model embeddings, and bench measures that image step (``encode``) on its own. InstructBLIP's
Q-Former reads the instruction too (``qformer_*`` inputs). The language model is a T5 (prompt in
its encoder) or a decoder (OPT, Llama); ``encoder_decoder`` says which.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ukmp.adapters.inputs import ModelInputs
from ukmp.data.calibration import encoder_decoder_batch, prompt_batch, qformer_inputs
from ukmp.data.reading import load_image
from ukmp.evaluation.generation import (
    generation_cache,
    image_features,
    model_device_dtype,
    prefix_embeddings,
    processor_inputs,
    prompt_inputs,
)


class QueryTokenInputs(ModelInputs):
    """BLIP-2 and InstructBLIP."""

    image_keys = ("pixel_values",)

    def calibration_batch(self, processor: Any, images: list, samples: Sequence[Any]) -> dict[str, torch.Tensor]:
        if self.encoder_decoder:
            return encoder_decoder_batch(processor, images, samples)
        return prompt_batch(processor, images, samples, self.image_keys)

    def text_logits(self, model: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """The language model alone: the whole model's forward needs an image to fill its query tokens."""
        if self.encoder_decoder:
            return super().text_logits(model, input_ids, attention_mask)  # one sentence: T5 is refused
        return model.language_model(input_ids=input_ids, attention_mask=attention_mask).logits

    def prepare_processor(self, processor: Any, model: nn.Module) -> Any:
        """Also make the processor emit the ``num_query_tokens`` `<image>` placeholders transformers 5 expects."""
        if getattr(processor, "num_query_tokens", None) is None:
            processor.num_query_tokens = model.config.num_query_tokens
        return super().prepare_processor(processor, model)

    def generate_batch(
        self, model: nn.Module, processor: Any, image_paths: Sequence[Any], prompts: list[str], settings: Any
    ) -> list[str]:
        """The image side runs once per distinct image of the batch (a VQA split asks about five questions
        per image); the language model then generates from the image features placed in the prompt,
        exactly as ``Blip2ForConditionalGeneration.generate`` does."""
        device, dtype = model_device_dtype(model)
        paths = list(image_paths)
        qformer = {k: v.to(device) for k, v in qformer_inputs(processor, prompts).items()}
        # InstructBLIP's features depend on the prompt: one row per (image, prompt), not per image
        distinct = paths if qformer else list(dict.fromkeys(paths))
        pixels = processor.image_processor([load_image(p) for p in distinct], return_tensors="pt")
        features = image_features(model, pixels["pixel_values"].to(device=device, dtype=dtype), **qformer)
        if not qformer:
            row = {p: i for i, p in enumerate(distinct)}
            features = features[torch.tensor([row[p] for p in paths], device=features.device)]
        inputs = prompt_inputs(processor, model, prompts)
        lm_inputs = {
            "inputs_embeds": prefix_embeddings(model, inputs["input_ids"], features),
            "attention_mask": inputs["attention_mask"],
        }
        if not self.encoder_decoder:
            lm_inputs["input_ids"] = inputs["input_ids"]
        output = model.language_model.generate(**lm_inputs, **settings.generate_kwargs(), **generation_cache(model))
        if not self.encoder_decoder and output.shape[1] > inputs["input_ids"].shape[1]:
            output = output[:, inputs["input_ids"].shape[1] :]  # decoder-only: drop the echoed prompt
        return [t.strip() for t in processor.batch_decode(output, skip_special_tokens=True)]

    def retrieval_prefix(
        self, model: nn.Module, processor: Any, image_paths: Sequence[Any], prompt: str
    ) -> dict[str, torch.Tensor]:
        """T5: the encoder's states over query embeddings + prompt; a decoder: those embeddings themselves."""
        inputs = processor_inputs(processor, model, [load_image(p) for p in image_paths], [prompt] * len(image_paths))
        extra = {k: inputs.get(k) for k in ("qformer_input_ids", "qformer_attention_mask")}
        embeds = prefix_embeddings(model, inputs["input_ids"], image_features(model, inputs["pixel_values"], **extra))
        if self.encoder_decoder:
            encoder = model.language_model.get_encoder()
            embeds = encoder(inputs_embeds=embeds, attention_mask=inputs["attention_mask"]).last_hidden_state
        return {"states": embeds, "mask": inputs["attention_mask"]}

    def caption_logits(self, model: nn.Module, prefix: dict[str, torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
        lm = model.language_model
        states, masks = prefix["states"], prefix["mask"]
        if self.encoder_decoder:
            from transformers.modeling_outputs import BaseModelOutput

            return lm(
                encoder_outputs=BaseModelOutput(last_hidden_state=states),
                attention_mask=masks,
                decoder_input_ids=lm.prepare_decoder_input_ids_from_labels(labels=labels),
                use_cache=False,
            ).logits
        caption_embeds = model.get_input_embeddings()(labels.clamp(min=0))
        embeds = torch.cat([states, caption_embeds], dim=1)
        mask = torch.cat([masks, (labels != -100).to(masks.dtype)], dim=1)
        logits = lm(inputs_embeds=embeds, attention_mask=mask, use_cache=False).logits
        return logits[:, states.shape[1] - 1 : -1]  # position t predicts token t + 1

    def bench_generate_inputs(self, model: nn.Module, forward: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The image and only the query-token placeholders (an empty caption prompt, ukmp's caption default)."""
        n = model.config.num_query_tokens
        return {
            "pixel_values": forward["pixel_values"],
            "input_ids": forward["input_ids"][:, :n],
            "attention_mask": forward["attention_mask"][:, :n],
            **{k: v for k, v in forward.items() if k.startswith("qformer_")},  # InstructBLIP's instruction
        }

    def encode_inputs(self, forward: dict[str, torch.Tensor]) -> dict[str, torch.Tensor] | None:
        qformer = {k: v for k, v in forward.items() if k.startswith("qformer_")}  # InstructBLIP's instruction
        return {"pixel_values": forward["pixel_values"], **qformer}
