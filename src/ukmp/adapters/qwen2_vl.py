"""Qwen2-VL and Qwen2.5-VL: a native-resolution ViT -> a patch merger -> a Qwen2 language model.

Prunable: the vision blocks' heads (rows of the fused ``qkv`` Linear, laid out ``[q; k; v]`` with
each head's ``head_dim`` rows together, and columns of ``proj``) and MLP channels (Qwen2-VL:
``fc1`` / ``fc2``; Qwen2.5-VL: gated ``gate_proj`` + ``up_proj`` / ``down_proj``), and the language
model's key/value groups and MLP channels (it is laid out as Llama, so ``LlamaPart`` handles it).
The merger is kept whole: it concatenates 2x2 neighbouring patches of the tower's full width, and
its output is the language model's width. Its parameters and FLOPs count with the vision tower,
because it runs inside the tower's forward.

Inputs differ from LLaVA's in three ways, all handled by ``Qwen2VLInputs``: an image comes as
flattened patches of all images of a batch (``pixel_values`` of shape (patches, C*T*P*P)) with
its ``image_grid_thw``; the prompt carries ``mm_token_type_ids`` (which tokens are image tokens),
from which the model computes its 3-D ("mrope") positions; and the image placeholder sits between
``<|vision_start|>`` and ``<|vision_end|>``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ukmp.adapters.base import ModelAdapter, Part, attention_group, channel_group, get_module
from ukmp.adapters.llama import LlamaPart
from ukmp.adapters.prompt_image_inputs import PromptImageInputs
from ukmp.groups import Member, PrunableGroup


class QwenVisionPart(Part):
    """The vision tower at ``prefix`` (``model.visual.``): ``blocks.<i>.attn`` and ``blocks.<i>.mlp``."""

    components = ("vision",)

    def _layer(self, i: int) -> str:
        return self.path(f"blocks.{i}")

    def _mlp(self) -> tuple[list[str], list[str], int]:
        """(producer names, consumer names, channels) of every block's MLP, from the dense config."""
        cfg = self.root.config
        if hasattr(self.root.blocks[0].mlp, "fc1"):  # Qwen2-VL
            return ["fc1"], ["fc2"], int(cfg.embed_dim * cfg.mlp_ratio)
        return ["gate_proj", "up_proj"], ["down_proj"], cfg.intermediate_size  # Qwen2.5-VL

    def groups(self, model: nn.Module) -> list[PrunableGroup]:
        cfg = self.root.config
        width = getattr(cfg, "embed_dim", None) or cfg.hidden_size  # Qwen2-VL's hidden_size is the merger's output
        heads = cfg.num_heads
        head_dim = width // heads
        producers, consumers, channels = self._mlp()
        out: list[PrunableGroup] = []
        for i in range(cfg.depth):
            layer = self._layer(i)
            attn, mlp = f"{layer}.attn", f"{layer}.mlp"
            out.append(
                attention_group(
                    model, component="vision", layer=i, owner=attn,
                    producers=[Member(f"{attn}.qkv", 0, head_dim, block * width) for block in range(3)],
                    consumers=[Member(f"{attn}.proj", 1, head_dim)], head_dim=head_dim, num_units=heads,
                )
            )  # fmt: skip
            out.append(
                channel_group(
                    model, component="vision", layer=i, owner=mlp, producers=[f"{mlp}.{p}" for p in producers],
                    consumers=[f"{mlp}.{c}" for c in consumers], num_units=channels,
                )
            )  # fmt: skip
        return out

    def param_component(self, rel_name: str) -> str:
        return "vision"

    def block_path(self, group: PrunableGroup) -> str:
        return self._layer(group.layer)

    def module_paths(self) -> dict[str, str]:
        return {"vision": self.prefix.rstrip(".")}

    def after_slice(self, model: nn.Module, group: PrunableGroup, kept: list[int]) -> None:
        module = get_module(model, group.owner)
        if group.kind == "attention":
            module.num_heads = len(kept)  # the forward reshapes qkv into (3, num_heads, head_dim)
        elif hasattr(module, "intermediate_size"):
            module.intermediate_size = len(kept)  # informational (Qwen2.5-VL's MLP), kept truthful


class Qwen2VLInputs(PromptImageInputs):
    """LLaVA's way of feeding a prompt with its image, plus the patch grid and the token types."""

    image_keys = ("pixel_values", "image_grid_thw")
    token_keys = ("mm_token_type_ids",)

    def __init__(self, model: nn.Module) -> None:
        super().__init__(model, examples=qwen2_vl_example_inputs)
        self.image_token_id = model.config.image_token_id
        self.vision_start_id = model.config.vision_start_token_id
        self.vision_end_id = getattr(model.config, "vision_end_token_id", None)

    def placeholder_prompt(self, processor: Any, prompt: str) -> str:
        """``<|vision_start|><|image_pad|><|vision_end|>`` on a line before the prompt (Qwen2-VL's chat layout)."""
        token = processor.image_token
        if token in prompt:
            return prompt
        start, end = processor.tokenizer.convert_ids_to_tokens([self.vision_start_id, self.vision_end_id])
        return f"{start}{token}{end}\n{prompt}"

    def calibration_batch(self, processor: Any, images: list, samples: Sequence[Any]) -> dict[str, torch.Tensor]:
        batch = super().calibration_batch(processor, images, samples)
        batch["mm_token_type_ids"] = self.token_types(batch["input_ids"])
        return batch

    def token_types(self, input_ids: torch.Tensor) -> torch.Tensor:
        """1 at image tokens, 0 elsewhere: what the processor returns, and what the model's positions need."""
        return (input_ids == self.image_token_id).long()

    def sample_pieces(self, batch: dict[str, Any]) -> list[dict[str, Any]]:
        """Rows of the prompt tensors, and each image's own run of the flattened patches."""
        grid = batch["image_grid_thw"]
        ends = grid.prod(-1).cumsum(0).tolist()
        starts = [0, *ends[:-1]]
        pieces = []
        for i in range(batch["labels"].shape[0]):
            piece = {k: v[i : i + 1] if torch.is_tensor(v) else v for k, v in batch.items()}
            piece["pixel_values"] = batch["pixel_values"][starts[i] : ends[i]]
            pieces.append(piece)
        return pieces

    def retrieval_prefix(
        self, model: nn.Module, processor: Any, image_paths: Sequence[Any], prompt: str
    ) -> dict[str, torch.Tensor]:
        """LLaVA's prefix embeddings, plus the 3-D positions the model gives the prompt (batch first)."""
        from ukmp.data.reading import load_image
        from ukmp.evaluation.generation import image_features, prefix_embeddings, processor_inputs

        text = self.generation_prompt(processor, prompt)
        inputs = processor_inputs(processor, model, [load_image(p) for p in image_paths], [text] * len(image_paths))
        features = image_features(model, inputs["pixel_values"], image_grid_thw=inputs["image_grid_thw"])
        positions, _ = model.model.get_rope_index(
            inputs["input_ids"],
            mm_token_type_ids=inputs["mm_token_type_ids"],
            image_grid_thw=inputs["image_grid_thw"],
            attention_mask=inputs["attention_mask"],
        )
        return {
            "states": prefix_embeddings(model, inputs["input_ids"], features),
            "mask": inputs["attention_mask"],
            "positions": positions.transpose(0, 1),  # (batch, 3, length): rows repeat like the other entries
        }

    def positions(self, prefix: dict[str, torch.Tensor], labels: torch.Tensor) -> dict[str, torch.Tensor]:
        """The caption continues the text positions after the prompt's largest one (as generation does)."""
        before = prefix["positions"]
        start = before.amax(dim=(1, 2), keepdim=True) + 1
        after = start + torch.arange(labels.shape[1], device=before.device).view(1, 1, -1)
        return {"position_ids": torch.cat([before, after.expand(-1, 3, -1)], dim=2).transpose(0, 1)}


def qwen2_vl_example_inputs(model: nn.Module, ids: torch.Tensor, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """Per prompt one image of 2x2 merged patches, between its vision start and end tokens, then ``ids``."""
    config = model.config
    vision = config.vision_config
    merge = vision.spatial_merge_size
    grid = torch.tensor([1, 2 * merge, 2 * merge])
    batch = ids.shape[0]
    patch = vision.in_channels * vision.temporal_patch_size * vision.patch_size**2
    dtype = next(model.model.visual.parameters()).dtype
    pixel_values = torch.randn(batch * int(grid.prod()), patch, generator=gen).to(dtype)
    special = (config.image_token_id, config.video_token_id, config.vision_start_token_id, config.vision_end_token_id)
    for token in special:
        ids = ids.masked_fill(ids == token, 4)
    count = int(grid.prod()) // merge**2
    image = [config.vision_start_token_id] + [config.image_token_id] * count + [config.vision_end_token_id]
    input_ids = torch.cat([torch.tensor([image] * batch), ids], dim=1)
    return {
        "pixel_values": pixel_values,
        "image_grid_thw": grid.repeat(batch, 1),
        "input_ids": input_ids,
        "attention_mask": torch.ones_like(input_ids),
        "mm_token_type_ids": (input_ids == config.image_token_id).long(),
    }


def qwen2_vl_adapter(model: nn.Module) -> ModelAdapter:
    """Qwen2-VL or Qwen2.5-VL: the vision tower at ``model.visual``, the language model at ``model.language_model``."""
    return ModelAdapter(
        model,
        [QwenVisionPart(model, "model.visual."), LlamaPart(model, "model.language_model.")],
        extra_buckets={"lm_head": "lm_embeddings"},
        extra_paths={"lm_head": "lm_head"},
        inputs=Qwen2VLInputs(model),
    )
