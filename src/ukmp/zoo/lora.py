"""Plain LoRA on a frozen language model, for training the zoo's models (not the pruning recovery's).

The recovery's LoRA (`ukmp.recovery.recall_lora`) is the method itself and is built around a pruning
plan; a zoo model that adapts a pretrained LM needs only the ordinary kind, so it comes from peft:
y = W x + (alpha / r) * B A x, with W frozen, A drawn Kaiming-uniform and B zero, so a freshly attached
model computes exactly what the base computes. peft draws A from torch's global generator; it is
seeded inside a forked generator state here, so the same seed gives the same A without touching the
caller's random stream. Training keeps the branch unmerged, so the shipped delta is only A and B;
`merge_lora` folds it into the base weights for a model that is pruned, evaluated or saved whole.
"""

from __future__ import annotations

import torch
from peft import LoraConfig, inject_adapter_in_model
from peft.tuners.lora import LoraLayer
from torch import nn

DEFAULT_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj")


def attach_lora(
    root: nn.Module, *, rank: int, alpha: float, seed: int, targets: tuple[str, ...] = DEFAULT_TARGETS
) -> list[str]:
    """Wrap every Linear under `root` whose attribute name is in `targets`; return their paths, in order."""
    config = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=0.0, bias="none", target_modules=list(targets))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        inject_adapter_in_model(config, root)
    return [path for path, module in root.named_modules() if isinstance(module, LoraLayer)]


def lora_parameters(root: nn.Module) -> dict[str, nn.Parameter]:
    """The LoRA matrices under `root`, by name."""
    return {name: p for name, p in root.named_parameters() if ".lora_A" in name or ".lora_B" in name}


def merge_lora(root: nn.Module) -> int:
    """Fold every LoRA branch under `root` into its base Linear (peft's merge) and put the plain Linear back.

    Afterwards the model holds only ordinary modules, so grouping and slicing see the architecture as
    transformers builds it. Returns how many layers were merged.
    """
    merged = 0
    for module in list(root.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, LoraLayer):
                child.merge()
                setattr(module, name, child.get_base_layer())
                merged += 1
    return merged
