"""What a sub-phase's loss reads: block outputs of student and teacher (forward hooks that may stop the
forward early), and the loss of one batch from the sub-phase's terms (feature MSE, KL, task)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ukmp.adapters import find_adapter
from ukmp.components import forward_order
from ukmp.errors import UserError
from ukmp.recovery.losses import distillation_kl, feature_loss, task_loss
from ukmp.recovery.phases import Phase, feature_weights


class _StopForward(Exception):
    """Raised by a hook once the last needed block has run (the rest of the forward is skipped)."""


def block_paths(model: nn.Module) -> dict[str, list[str]]:
    """Component -> module path of each transformer block, in depth order (vision and LM stacks)."""
    return find_adapter(model).block_paths(model, feature_weights())


class FeatureTaps:
    """Forward hooks that keep the outputs of chosen blocks and optionally stop the forward after one."""

    def __init__(self, model: nn.Module, blocks: dict[tuple[str, int], str], stop_after: tuple[str, int] | None):
        self.model = model
        self.blocks = blocks
        self.stop_after = stop_after
        self.features: dict[tuple[str, int], torch.Tensor] = {}
        self._handles: list[Any] = []

    def __enter__(self) -> FeatureTaps:
        for key, path in self.blocks.items():
            self._handles.append(self.model.get_submodule(path).register_forward_hook(self._hook(key)))
        return self

    def _hook(self, key):
        def hook(module, args, output):
            self.features[key] = output[0] if isinstance(output, tuple) else output
            if key == self.stop_after:
                raise _StopForward

        return hook

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def run(self, batch: dict[str, torch.Tensor]):
        try:
            return self.model(**batch)
        except _StopForward:
            return None


def _last_block(supervised: dict[str, tuple[int, ...]]) -> tuple[str, int]:
    component = max(supervised, key=forward_order().index)
    return component, max(supervised[component])


def loss_keys(phase: Phase) -> list[str]:
    keys = [f"mse_{c}" for c in sorted(phase.supervised)] if "mse" in phase.losses else []
    return keys + [k for k in ("kl", "task") if k in phase.losses]


def phase_loss(
    phase: Phase,
    student: nn.Module,
    teacher: nn.Module,
    batch: dict[str, torch.Tensor],
    paths: dict[str, list[str]],
    *,
    decoder_only: bool,
    temperature: float = 1.0,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The sub-phase's loss on one batch (Eq. 13 restricted to the phase's terms) and its parts."""
    use_mse = "mse" in phase.losses and bool(phase.supervised)
    keys = {(c, i): paths[c][i] for c, blocks in phase.supervised.items() for i in blocks} if use_mse else {}
    stop = None if phase.needs_logits else _last_block(phase.supervised)
    teacher_out = None
    teacher_taps = FeatureTaps(teacher, keys, stop)
    if use_mse or "kl" in phase.losses:
        with torch.no_grad(), teacher_taps:
            teacher_out = teacher_taps.run(batch)
    with FeatureTaps(student, keys, stop) as taps:
        student_out = taps.run(batch)
    total = None
    parts: dict[str, float] = {}
    if use_mse:
        total, parts = feature_loss(taps.features, teacher_taps.features, feature_weights())
    labels = batch["labels"]
    mask = (labels[:, 1:] != -100) if decoder_only else None
    if "kl" in phase.losses:
        s_logits, t_logits = student_out.logits, teacher_out.logits
        if decoder_only:
            s_logits, t_logits = s_logits[:, :-1], t_logits[:, :-1]
        kl = distillation_kl(s_logits, t_logits, mask=mask, temperature=temperature)
        parts["kl"] = float(kl.detach())
        total = kl if total is None else total + kl
    if "task" in phase.losses:
        task = task_loss(student_out.logits, labels, shift=decoder_only)
        parts["task"] = float(task.detach())
        total = task if total is None else total + task
    if total is None:
        raise UserError(f"sub-phase {phase.name} has no loss term.")
    return total, parts
