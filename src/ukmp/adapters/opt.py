"""OPT decoder (the language model of BLIP-2 OPT).

Attention unit = one head: rows of ``q_proj``, ``k_proj``, ``v_proj`` (with their biases) and
columns of ``out_proj``. MLP unit = one channel: ``fc1`` row + bias, ``fc2`` column. After
slicing, ``OPTAttention.num_heads`` is the only attribute its forward reads.
"""

from __future__ import annotations

from torch import nn

from ukmp.adapters.base import Part, attention_group, channel_group, get_module
from ukmp.groups import Member, PrunableGroup

_EMBEDDINGS = ("embed_tokens.", "embed_positions.", "project_in.", "project_out.")


class OPTPart(Part):
    components = ("lm",)

    def __init__(self, model: nn.Module, prefix: str = "") -> None:
        super().__init__(model, prefix)
        self.decoder = "model.decoder" if hasattr(self.root, "model") else "decoder"

    def groups(self, model: nn.Module) -> list[PrunableGroup]:
        cfg = self.root.config
        heads = cfg.num_attention_heads
        head_dim = cfg.hidden_size // heads
        out: list[PrunableGroup] = []
        for i in range(cfg.num_hidden_layers):
            layer = self.path(f"{self.decoder}.layers.{i}")
            attn = f"{layer}.self_attn"
            out.append(
                attention_group(
                    model, component="lm", layer=i, owner=attn,
                    producers=[Member(f"{attn}.{p}", 0, head_dim) for p in ("q_proj", "k_proj", "v_proj")],
                    consumers=[Member(f"{attn}.out_proj", 1, head_dim)], head_dim=head_dim, num_units=heads,
                )
            )  # fmt: skip
            out.append(
                channel_group(
                    model, component="lm", layer=i, owner=layer, producers=[f"{layer}.fc1"],
                    consumers=[f"{layer}.fc2"], num_units=cfg.ffn_dim,
                )
            )  # fmt: skip
        return out

    def param_component(self, rel_name: str) -> str:
        if rel_name.startswith("lm_head."):
            return "lm_embeddings"
        inner = rel_name[len(self.decoder) + 1 :] if rel_name.startswith(self.decoder + ".") else rel_name
        return "lm_embeddings" if inner.startswith(_EMBEDDINGS) else "lm"

    def block_path(self, group: PrunableGroup) -> str:
        return self.path(f"{self.decoder}.layers.{group.layer}")

    def module_paths(self) -> dict[str, str]:
        paths = {"lm": self.path(self.decoder.rsplit(".", 1)[0]) if "." in self.decoder else self.path(self.decoder)}
        if hasattr(self.root, "lm_head"):
            paths["lm_head"] = self.path("lm_head")
        return paths

    def after_slice(self, model: nn.Module, group: PrunableGroup, kept: list[int]) -> None:
        if group.kind == "attention":
            get_module(model, group.owner).num_heads = len(kept)
