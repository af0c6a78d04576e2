"""CLIP and SigLIP vision towers (the image encoders of LLaVA-family models).

Attention unit = one head: rows of ``q_proj``, ``k_proj``, ``v_proj`` (with their biases) and
columns of ``out_proj``; the attention's forward infers the head count from tensor shapes, and
``num_heads`` is kept truthful after slicing. MLP unit = one channel: ``fc1`` row + bias, ``fc2``
column. The tower's output width (what the projector reads) never changes. SigLIP's pooling head
is not part of any group (LLaVA does not use it).
"""

from __future__ import annotations

from torch import nn

from ukmp.adapters.base import Part, attention_group, channel_group, get_module
from ukmp.groups import Member, PrunableGroup


class ClipVisionPart(Part):
    """A ``CLIPVisionModel`` or ``SiglipVisionModel`` at ``prefix`` (its encoder at ``encoder``, or at
    ``vision_model.encoder`` in transformers versions that nest it)."""

    components = ("vision",)

    def __init__(self, model: nn.Module, prefix: str = "") -> None:
        super().__init__(model, prefix)
        self.body = "vision_model." if hasattr(self.root, "vision_model") else ""

    def _layer(self, i: int) -> str:
        return self.path(f"{self.body}encoder.layers.{i}")

    def groups(self, model: nn.Module) -> list[PrunableGroup]:
        cfg = self.root.config
        heads = cfg.num_attention_heads
        head_dim = cfg.hidden_size // heads
        out: list[PrunableGroup] = []
        for i in range(cfg.num_hidden_layers):
            layer = self._layer(i)
            attn = f"{layer}.self_attn"
            out.append(
                attention_group(
                    model, component="vision", layer=i, owner=attn,
                    producers=[Member(f"{attn}.{p}_proj", 0, head_dim) for p in ("q", "k", "v")],
                    consumers=[Member(f"{attn}.out_proj", 1, head_dim)], head_dim=head_dim, num_units=heads,
                )
            )  # fmt: skip
            out.append(
                channel_group(
                    model, component="vision", layer=i, owner=f"{layer}.mlp", producers=[f"{layer}.mlp.fc1"],
                    consumers=[f"{layer}.mlp.fc2"], num_units=cfg.intermediate_size,
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
        if group.kind == "attention":
            module = get_module(model, group.owner)
            module.num_heads = len(kept)
            module.embed_dim = len(kept) * module.head_dim
