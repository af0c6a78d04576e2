"""Attention modules whose transformers forward cannot run with fewer heads, and their fixes.

Surgery swaps ``module.__class__`` to one of these subclasses after slicing, so the parameters,
hooks and registered names stay exactly as they were; only ``forward`` changes.

- BLIP-2 / InstructBLIP vision attention reshapes the fused ``qkv`` output with
  ``hidden_size // num_heads``; after removing heads the per-head width must stay ``head_dim``.
- T5 attention: block 0 computes a relative position bias with one column per ORIGINAL head and
  the stack hands that tensor to every later block (cross-attention does the same with zeros).
  Each pruned layer therefore (1) computes or accepts the full-head bias, (2) attends with only
  the bias columns of its own surviving original heads, and (3) passes the full-head bias on so
  the next layer can pick its own heads. The bias embedding is never sliced and never tiled.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.models.blip_2.modeling_blip_2 import Blip2Attention
from transformers.models.blip_2.modeling_blip_2 import eager_attention_forward as _blip2_eager
from transformers.models.instructblip.modeling_instructblip import InstructBlipAttention
from transformers.models.t5.modeling_t5 import T5Attention


class _PrunedFusedQKVMixin:
    """Forward of a fused-qkv vision attention that reshapes with ``head_dim``, not ``E // H``."""

    def forward(self, hidden_states: torch.Tensor, **kwargs) -> tuple[torch.Tensor, torch.Tensor | None]:
        bsz, tgt_len, _ = hidden_states.size()
        mixed_qkv = self.qkv(hidden_states)
        mixed_qkv = mixed_qkv.reshape(bsz, tgt_len, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        query_states, key_states, value_states = mixed_qkv[0], mixed_qkv[1], mixed_qkv[2]
        attention_interface: Callable = ALL_ATTENTION_FUNCTIONS.get_interface(
            self.config._attn_implementation, _blip2_eager
        )
        attn_output, attn_weights = attention_interface(
            self,
            query_states,
            key_states,
            value_states,
            attention_mask=None,
            dropout=0.0 if not self.training else self.attention_dropout,
            scaling=self.scale,
            **kwargs,
        )
        attn_output = attn_output.reshape(bsz, tgt_len, -1).contiguous()
        return self.projection(attn_output), attn_weights


class PrunedBlip2Attention(_PrunedFusedQKVMixin, Blip2Attention):
    """``Blip2Attention`` with ``num_heads`` < config heads (``head_dim`` unchanged)."""


class PrunedInstructBlipAttention(_PrunedFusedQKVMixin, InstructBlipAttention):
    """``InstructBlipAttention`` with ``num_heads`` < config heads (``head_dim`` unchanged)."""


PRUNED_FUSED_QKV = {
    Blip2Attention: PrunedBlip2Attention,
    InstructBlipAttention: PrunedInstructBlipAttention,
}


class PrunedT5Attention(T5Attention):
    """T5 attention keeping the original heads listed in ``kept_heads``.

    ``original_n_heads`` is the head count of the dense model, i.e. the width of the bias that
    flows down the stack. ``n_heads`` / ``inner_dim`` describe the sliced projections.
    """

    kept_heads: torch.Tensor
    original_n_heads: int

    def _full_bias(self, hidden_states: torch.Tensor, key_value_states: torch.Tensor | None, cache) -> torch.Tensor:
        """The bias a dense layer in this position would have computed (all original heads)."""
        query_length = hidden_states.shape[1]
        past_seen_tokens = 0
        if key_value_states is None:
            key_length = query_length
            if cache is not None:
                past_seen_tokens = cache.get_seq_length(self.layer_idx)
                if isinstance(past_seen_tokens, torch.Tensor):
                    past_seen_tokens = past_seen_tokens.clone()
                # the keys the dense layer attends to: a static cache holds its whole length, a dynamic one
                # what was seen so far plus the new tokens
                capacity = cache.get_max_length(self.layer_idx) if hasattr(cache, "get_max_length") else -1
                key_length = capacity if capacity and capacity > 0 else past_seen_tokens + query_length
        else:
            key_length = key_value_states.shape[1]
        if self.has_relative_attention_bias:
            return self.compute_bias(
                query_length, key_length, device=hidden_states.device, past_seen_tokens=past_seen_tokens
            )
        return torch.zeros(
            (1, self.original_n_heads, query_length, key_length),
            device=hidden_states.device,
            dtype=hidden_states.dtype,
        )

    def forward(
        self,
        hidden_states,
        mask=None,
        key_value_states=None,
        position_bias=None,
        cache=None,
        **kwargs,
    ):
        if "past_key_values" in kwargs and cache is None:
            cache = kwargs.pop("past_key_values")
        if position_bias is None:
            position_bias = self._full_bias(hidden_states, key_value_states, cache)
        own_bias = position_bias.index_select(1, self.kept_heads.to(position_bias.device))
        attn_output, _, attn_weights = super().forward(
            hidden_states,
            mask=mask,
            key_value_states=key_value_states,
            position_bias=own_bias,
            cache=cache,
            **kwargs,
        )
        return attn_output, position_bias, attn_weights


def make_pruned_t5_attention(module: T5Attention, kept: list[int]) -> None:
    """Turn a sliced ``T5Attention`` into a ``PrunedT5Attention`` keeping original heads ``kept``."""
    original = module.original_n_heads if isinstance(module, PrunedT5Attention) else module.n_heads
    module.__class__ = PrunedT5Attention
    module.original_n_heads = original
    # A plain attribute, not a buffer: it must not appear in the state dict (the manifest holds it).
    module.kept_heads = torch.tensor(kept, dtype=torch.long)
    module.n_heads = len(kept)
    module.inner_dim = len(kept) * module.key_value_proj_dim
