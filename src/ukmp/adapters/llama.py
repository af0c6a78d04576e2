"""Llama-family decoder (Llama, SmolLM2, Vicuna of InstructBLIP), with grouped-query attention.

GQA rule: **the attention unit is one key/value group** — one key/value head together with the
``num_key_value_groups`` query heads that read it (query heads ``j*G .. j*G+G-1`` for kv head
``j``, matching transformers' ``repeat_kv``). Removing a unit removes those G query heads'
rows of ``q_proj``, the kv head's rows of ``k_proj`` and ``v_proj`` and the G heads' columns of
``o_proj``. So the query:kv ratio (``num_key_value_groups``) stays constant in every layer and
the attention kernels need no per-layer change; the price is coarser units (G query heads at a
time). Without GQA (G = 1) a unit is simply one head.

MLP unit = one channel: ``gate_proj`` and ``up_proj`` rows (+ biases if any), ``down_proj`` column.
"""

from __future__ import annotations

from torch import nn

from ukmp.adapters.base import Part, attention_group, channel_group, get_module
from ukmp.groups import Member, PrunableGroup

_EMBEDDINGS = ("model.embed_tokens.", "embed_tokens.", "lm_head.")


class LlamaPart(Part):
    components = ("lm",)

    def __init__(self, model: nn.Module, prefix: str = "") -> None:
        super().__init__(model, prefix)
        self.body = "model" if hasattr(self.root, "model") else ""

    def _layer(self, i: int) -> str:
        return self.path(f"{self.body}.layers.{i}" if self.body else f"layers.{i}")

    def groups(self, model: nn.Module) -> list[PrunableGroup]:
        cfg = self.root.config
        heads = cfg.num_attention_heads
        kv_heads = getattr(cfg, "num_key_value_heads", None) or heads
        head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // heads
        per_group = heads // kv_heads
        out: list[PrunableGroup] = []
        for i in range(cfg.num_hidden_layers):
            layer = self._layer(i)
            attn = f"{layer}.self_attn"
            out.append(
                attention_group(
                    model, component="lm", layer=i, owner=attn,
                    producers=[
                        Member(f"{attn}.q_proj", 0, per_group * head_dim),
                        Member(f"{attn}.k_proj", 0, head_dim),
                        Member(f"{attn}.v_proj", 0, head_dim),
                    ],
                    consumers=[Member(f"{attn}.o_proj", 1, per_group * head_dim)],
                    head_dim=head_dim, num_units=kv_heads, queries_per_unit=per_group,
                )
            )  # fmt: skip
            mlp = f"{layer}.mlp"
            out.append(
                channel_group(
                    model, component="lm", layer=i, owner=mlp, producers=[f"{mlp}.gate_proj", f"{mlp}.up_proj"],
                    consumers=[f"{mlp}.down_proj"], num_units=cfg.intermediate_size,
                )
            )  # fmt: skip
        return out

    def param_component(self, rel_name: str) -> str:
        return "lm_embeddings" if rel_name.startswith(_EMBEDDINGS) else "lm"

    def block_path(self, group: PrunableGroup) -> str:
        return self._layer(group.layer)

    def module_paths(self) -> dict[str, str]:
        paths = {"lm": self.path(self.body) if self.body else self.prefix.rstrip(".")}
        if hasattr(self.root, "lm_head"):
            paths["lm_head"] = self.path("lm_head")
        return paths

    def after_slice(self, model: nn.Module, group: PrunableGroup, kept: list[int]) -> None:
        module = get_module(model, group.owner)
        if group.kind == "attention":
            # LlamaAttention's forward infers head counts from tensor shapes; these attributes are
            # informational (read by users and some integrations), kept truthful.
            module.num_heads = len(kept) * group.queries_per_unit
            module.num_key_value_heads = len(kept)
        else:
            module.intermediate_size = len(kept)
