"""T5 / FlanT5 encoder and decoder (the language model of BLIP-2 FlanT5).

Units: self-attention heads (encoder and decoder), decoder cross-attention heads (q, k, v rows;
k and v read the encoder output, whose width is unchanged), and FFN channels: gated
(``wi_0``, ``wi_1`` rows + ``wo`` column) or plain (``wi`` row + ``wo`` column). T5 has no biases.
Relative position bias handling after heterogeneous head pruning is in
``ukmp.pruned_modules.PrunedT5Attention``.
"""

from __future__ import annotations

from torch import nn

from ukmp.adapters.base import Part, attention_group, channel_group, get_module
from ukmp.groups import Member, PrunableGroup
from ukmp.pruned_modules import make_pruned_t5_attention

_EMBEDDINGS = ("shared.", "lm_head.", "encoder.embed_tokens.", "decoder.embed_tokens.")


class T5Part(Part):
    components = ("lm_encoder", "lm_decoder")

    def _attention(self, model, stack, i, sub, attr, component, suffix) -> PrunableGroup:
        cfg = self.root.config
        attn = self.path(f"{stack}.block.{i}.layer.{sub}.{attr}")
        d_kv = cfg.d_kv
        return attention_group(
            model, component=component, layer=i, owner=attn,
            producers=[Member(f"{attn}.{p}", 0, d_kv) for p in ("q", "k", "v")],
            consumers=[Member(f"{attn}.o", 1, d_kv)], head_dim=d_kv, num_units=cfg.num_heads, suffix=suffix,
        )  # fmt: skip

    def _ffn(self, model, stack, i, sub, component) -> PrunableGroup:
        cfg = self.root.config
        ff = self.path(f"{stack}.block.{i}.layer.{sub}.DenseReluDense")
        gated = hasattr(get_module(model, ff), "wi_0")
        inputs = ("wi_0", "wi_1") if gated else ("wi",)
        return channel_group(
            model, component=component, layer=i, owner=ff, producers=[f"{ff}.{p}" for p in inputs],
            consumers=[f"{ff}.wo"], num_units=cfg.d_ff,
        )  # fmt: skip

    def groups(self, model: nn.Module) -> list[PrunableGroup]:
        out: list[PrunableGroup] = []
        if hasattr(self.root, "encoder"):
            for i in range(len(self.root.encoder.block)):
                out.append(self._attention(model, "encoder", i, 0, "SelfAttention", "lm_encoder", "attn"))
                out.append(self._ffn(model, "encoder", i, 1, "lm_encoder"))
        if getattr(self.root, "decoder", None) is not None:
            for i in range(len(self.root.decoder.block)):
                out.append(self._attention(model, "decoder", i, 0, "SelfAttention", "lm_decoder", "attn"))
                out.append(self._attention(model, "decoder", i, 1, "EncDecAttention", "lm_decoder", "cross_attn"))
                out.append(self._ffn(model, "decoder", i, 2, "lm_decoder"))
        return out

    def param_component(self, rel_name: str) -> str:
        if rel_name.startswith(_EMBEDDINGS):
            return "lm_embeddings"
        if rel_name.startswith("encoder."):
            return "lm_encoder"
        if rel_name.startswith("decoder."):
            return "lm_decoder"
        return "lm_other"

    def block_path(self, group: PrunableGroup) -> str:
        stack = "encoder" if group.component == "lm_encoder" else "decoder"
        return self.path(f"{stack}.block.{group.layer}")

    def module_paths(self) -> dict[str, str]:
        paths = {"lm_encoder": self.path("encoder")}
        if getattr(self.root, "decoder", None) is not None:
            paths["lm_decoder"] = self.path("decoder")
        if hasattr(self.root, "lm_head"):
            paths["lm_head"] = self.path("lm_head")
        return paths

    def after_slice(self, model: nn.Module, group: PrunableGroup, kept: list[int]) -> None:
        if group.kind == "attention":
            make_pruned_t5_attention(get_module(model, group.owner), kept)
