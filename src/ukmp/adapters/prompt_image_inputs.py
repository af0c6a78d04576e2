"""Inputs of models whose image enters the prompt as placeholder tokens the processor expands (LLaVA family).

Why a family of its own: the processor turns one image placeholder into as many tokens as the
image gives features, and the model's own forward and ``generate`` write the features over them;
so generation hands the processor's whole output to ``model.generate``, and there is no separate
image step for bench to time. ``image_keys`` names what the processor returns for the image
(LLaVA-NeXT adds its tiles' ``image_sizes``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ukmp.adapters.inputs import ModelInputs
from ukmp.data.calibration import chat_prompt, prompt_batch, with_image_placeholder
from ukmp.data.reading import load_image
from ukmp.evaluation.generation import generation_cache, image_features, prefix_embeddings, processor_inputs


class PromptImageInputs(ModelInputs):
    """LLaVA and LLaVA-NeXT (and, refined, Qwen2-VL)."""

    image_keys = ("pixel_values", "image_sizes")

    def placeholder_prompt(self, processor: Any, prompt: str) -> str:
        """The prompt with the image placeholder where the processor expands it."""
        return with_image_placeholder(processor, prompt)

    def generation_prompt(self, processor: Any, prompt: str) -> str:
        """What generation and retrieval feed: the prompt in the processor's chat template when it has one
        (`chat_prompt`), else with its image placeholder."""
        return chat_prompt(processor, prompt) or self.placeholder_prompt(processor, prompt)

    def calibration_batch(self, processor: Any, images: list, samples: Sequence[Any]) -> dict[str, torch.Tensor]:
        return prompt_batch(processor, images, samples, self.image_keys, placeholder=self.placeholder_prompt)

    def generate_batch(
        self, model: nn.Module, processor: Any, image_paths: Sequence[Any], prompts: list[str], settings: Any
    ) -> list[str]:
        """The processor builds each (image, prompt) pair's input, left-padded; ``model.generate`` continues it."""
        images = [load_image(p) for p in image_paths]
        batch = [self.generation_prompt(processor, p) for p in prompts]
        inputs = processor_inputs(processor, model, images, batch)
        output = model.generate(**inputs, **settings.generate_kwargs(), **generation_cache(model))
        output = output[:, inputs["input_ids"].shape[1] :]  # drop the echoed prompt
        return [t.strip() for t in processor.batch_decode(output, skip_special_tokens=True)]

    def retrieval_prefix(
        self, model: nn.Module, processor: Any, image_paths: Sequence[Any], prompt: str
    ) -> dict[str, torch.Tensor]:
        """The prompt's embeddings with the projected image features over its image tokens."""
        text = self.generation_prompt(processor, prompt)
        inputs = processor_inputs(processor, model, [load_image(p) for p in image_paths], [text] * len(image_paths))
        extra = {k: inputs.get(k) for k in self.image_keys if k != "pixel_values"}
        features = image_features(model, inputs["pixel_values"], **extra)
        return {"states": prefix_embeddings(model, inputs["input_ids"], features), "mask": inputs["attention_mask"]}

    def caption_logits(self, model: nn.Module, prefix: dict[str, torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
        """The model's own forward on embeddings (no pixels: no image pass) adds the language-model head."""
        states, masks = prefix["states"], prefix["mask"]
        caption_embeds = model.get_input_embeddings()(labels.clamp(min=0))
        embeds = torch.cat([states, caption_embeds], dim=1)
        mask = torch.cat([masks, (labels != -100).to(masks.dtype)], dim=1)
        logits = model(inputs_embeds=embeds, attention_mask=mask, use_cache=False, **self.positions(prefix, labels))
        return logits.logits[:, states.shape[1] - 1 : -1]  # position t predicts token t + 1

    def positions(self, prefix: dict[str, torch.Tensor], labels: torch.Tensor) -> dict[str, torch.Tensor]:
        """Position ids of prefix + caption when the model cannot infer them from embeddings (none here)."""
        return {}
