"""An unmerged `ukmp recover` output as a model: the pruned model, the teacher, and the saved adapter.

The folder holds only the adapter; the pruned model and the teacher are read from where its config
says. Both loaders are passed in (``ukmp.loading.load_model`` passes itself), so this module
depends on neither and the general loader can dispatch to it without an import loop.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn

from ukmp.errors import UserError
from ukmp.recovery.recall_lora import RecallLoRAOptions, attach_recall_lora, load_adapter_state_dict

ADAPTER_FORMAT = "ukmp-recall-lora/1"
ADAPTER_FILE = "adapter.safetensors"
ADAPTER_CONFIG = "adapter_config.json"


def load_recovered(
    folder: str | os.PathLike,
    *,
    load_pruned: Callable[[str], nn.Module],
    load_teacher: Callable[[str], nn.Module],
    device: str | torch.device | None = None,
) -> nn.Module:
    """Rebuild an unmerged recovered model from its folder: pruned model + teacher + saved adapter."""
    root = Path(folder)
    info = json.loads((root / ADAPTER_CONFIG).read_text())
    if info.get("format") != ADAPTER_FORMAT:
        raise UserError(f"{root / ADAPTER_CONFIG} is not a ukmp recall-LoRA adapter config.")
    student = load_pruned(info["pruned_model"]).float()
    teacher = load_teacher(info["teacher"]).float()
    options = RecallLoRAOptions(**info["options"])
    attach_recall_lora(student, teacher, student.ukmp_plan, options, seed=0)
    del teacher
    load_adapter_state_dict(student, load_file(str(root / ADAPTER_FILE)))
    student.ukmp_recovery = info
    if device is not None:
        student.to(device)
    return student.eval()
