"""BLIP-2 / InstructBLIP Q-Former (BERT-style), an opt-in component.

The paper never prunes the Q-Former, so composite adapters leave it out of their default
components; pass ``components=(..., "qformer")`` to get its groups. Units: self-attention heads
(query/key/value rows + biases, ``output.dense`` columns), cross-attention heads (same, key and
value read the vision features), and channels of the query FFN (``intermediate_query`` /
``output_query``) and, when the model takes text in the Q-Former (InstructBLIP), the text FFN.
"""

from __future__ import annotations

from torch import nn

from ukmp.adapters.base import Part, attention_group, channel_group, get_module
from ukmp.groups import Member, PrunableGroup


class QFormerPart(Part):
    components = ("qformer",)

    def _attention(self, model, i: int, attr: str, suffix: str) -> PrunableGroup:
        cfg = self.root.config
        head_dim = cfg.hidden_size // cfg.num_attention_heads
        block = self.path(f"encoder.layer.{i}.{attr}")
        return attention_group(
            model, component="qformer", layer=i, owner=f"{block}.attention",
            producers=[Member(f"{block}.attention.{p}", 0, head_dim) for p in ("query", "key", "value")],
            consumers=[Member(f"{block}.output.dense", 1, head_dim)], head_dim=head_dim,
            num_units=cfg.num_attention_heads, suffix=suffix,
        )  # fmt: skip

    def _ffn(self, model, i: int, inner: str, outer: str, suffix: str) -> PrunableGroup:
        layer = self.path(f"encoder.layer.{i}")
        return channel_group(
            model, component="qformer", layer=i, owner=f"{layer}.{inner}", producers=[f"{layer}.{inner}.dense"],
            consumers=[f"{layer}.{outer}.dense"], num_units=self.root.config.intermediate_size, suffix=suffix,
        )  # fmt: skip

    def groups(self, model: nn.Module) -> list[PrunableGroup]:
        out: list[PrunableGroup] = []
        for i, layer in enumerate(self.root.encoder.layer):
            out.append(self._attention(model, i, "attention", "attn"))
            if getattr(layer, "has_cross_attention", False):
                out.append(self._attention(model, i, "crossattention", "cross_attn"))
            out.append(self._ffn(model, i, "intermediate_query", "output_query", "mlp"))
            if hasattr(layer, "intermediate"):
                out.append(self._ffn(model, i, "intermediate", "output", "text_mlp"))
        return out

    def param_component(self, rel_name: str) -> str:
        return "qformer"

    def block_path(self, group: PrunableGroup) -> str:
        return self.path(f"encoder.layer.{group.layer}")

    def module_paths(self) -> dict[str, str]:
        return {"qformer": self.prefix.rstrip(".")}

    def after_slice(self, model: nn.Module, group: PrunableGroup, kept: list[int]) -> None:
        if group.kind == "attention":
            module = get_module(model, group.owner)
            module.num_attention_heads = len(kept)
            module.all_head_size = len(kept) * module.attention_head_size
