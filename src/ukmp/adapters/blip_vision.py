"""BLIP-2 / InstructBLIP vision encoder (EVA-style ViT with a fused ``qkv`` Linear).

Attention unit = one head: its rows in the q, k and v blocks of ``qkv`` (the fused bias is
``cat(q_bias, zeros, v_bias)``, so its k block is removed along with the rows) and its columns
of ``projection``. MLP unit = one channel: an ``fc1`` row plus its bias entry and an ``fc2``
column. The hidden width (1408 in EVA ViT-g) is never pruned.
"""

from __future__ import annotations

from torch import nn

from ukmp.adapters.base import Part, attention_group, channel_group, get_module
from ukmp.groups import Member, PrunableGroup
from ukmp.pruned_modules import PRUNED_FUSED_QKV


class BlipVisionPart(Part):
    components = ("vision",)

    def groups(self, model: nn.Module) -> list[PrunableGroup]:
        cfg = self.root.config
        hidden, heads = cfg.hidden_size, cfg.num_attention_heads
        head_dim = hidden // heads
        out: list[PrunableGroup] = []
        for i in range(cfg.num_hidden_layers):
            layer = self.path(f"encoder.layers.{i}")
            attn = f"{layer}.self_attn"
            out.append(
                attention_group(
                    model, component="vision", layer=i, owner=attn,
                    producers=[Member(f"{attn}.qkv", 0, head_dim, block * hidden) for block in range(3)],
                    consumers=[Member(f"{attn}.projection", 1, head_dim)], head_dim=head_dim, num_units=heads,
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
        return self.path(f"encoder.layers.{group.layer}")

    def module_paths(self) -> dict[str, str]:
        return {"vision": self.prefix.rstrip(".")}

    def after_slice(self, model: nn.Module, group: PrunableGroup, kept: list[int]) -> None:
        if group.kind != "attention":
            return
        module = get_module(model, group.owner)
        for base, pruned in PRUNED_FUSED_QKV.items():
            if isinstance(module, base):
                module.__class__ = pruned
                break
        else:
            raise TypeError(f"{group.owner} is {type(module).__name__}, not a BLIP vision attention")
        module.num_heads = len(kept)
