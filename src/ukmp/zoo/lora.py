"""Plain LoRA on a frozen language model, for training the zoo's models (not the pruning recovery's).

The recovery's LoRA (`ukmp.recovery.recall_lora`) is built around a pruning plan; a zoo model that
adapts a pretrained LM needs only the ordinary kind: y = W x + (alpha / r) * B A x, with W frozen,
A drawn Kaiming-uniform from a seeded generator and B zero, so a freshly attached model computes
exactly what the base computes. The branch stays unmerged, so the shipped delta is only A and B
(`lora_state`) and the base weights come from the base model's own file at load time.
"""

from __future__ import annotations

import math

import torch
from torch import nn

DEFAULT_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj")


class LoRALinear(nn.Module):
    """A frozen `nn.Linear` plus a trainable rank-`rank` branch scaled by `alpha / rank`."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float, generator: torch.Generator) -> None:
        super().__init__()
        self.base = base
        self.scaling = alpha / rank
        self.lora_A = nn.Parameter(torch.empty(rank, base.in_features, dtype=base.weight.dtype))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, rank, dtype=base.weight.dtype))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5), generator=generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + (x @ self.lora_A.t() @ self.lora_B.t()) * self.scaling


def attach_lora(
    root: nn.Module, *, rank: int, alpha: float, seed: int, targets: tuple[str, ...] = DEFAULT_TARGETS
) -> list[str]:
    """Wrap every Linear under `root` whose attribute name is in `targets`; return their paths, in order."""
    generator = torch.Generator().manual_seed(seed)
    wrapped = []
    for path, module in list(root.named_modules()):
        for name, child in list(module.named_children()):
            if name in targets and isinstance(child, nn.Linear):
                setattr(module, name, LoRALinear(child, rank, alpha, generator))
                wrapped.append(f"{path}.{name}" if path else name)
    return wrapped


def lora_parameters(root: nn.Module) -> dict[str, nn.Parameter]:
    """The LoRA matrices under `root`, by name."""
    return {name: p for name, p in root.named_parameters() if ".lora_A" in name or ".lora_B" in name}
