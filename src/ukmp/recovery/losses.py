"""The three losses of LPD (Eq. 13), as the reference computes them (docs/method-notes.md).

- Feature loss: MSE between the student's and the teacher's block outputs, each divided by the
  Frobenius norm of the *whole batch tensor* (not per token), mean over every element including
  padded positions. The normalisation makes the values tiny, hence β of 1e6 to 1e9.
- KL: sum over positions of KL(teacher || student) at temperature T (1 in the paper), divided by
  the number of positions B * L (padded decoder positions included, as in the code), or by the
  number of positions in ``mask`` when one is given (decoder-only LMs: the target positions). No
  T**2 factor: the reference has none, and at T = 1 it would not matter.
- Task: the student's prefix-LM cross-entropy, mean over target tokens (labels of -100 ignored).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F


def normalized_feature_mse(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """MSE(F_s / ||F_s||_F, F_t / ||F_t||_F) over all elements; computed in float32."""
    if student.shape != teacher.shape:
        raise ValueError(f"feature shapes differ: student {tuple(student.shape)}, teacher {tuple(teacher.shape)}")
    s = student.float()
    t = teacher.float()
    return F.mse_loss(s / s.norm(), t / t.norm())


def feature_loss(
    student: Mapping[tuple[str, int], torch.Tensor],
    teacher: Mapping[tuple[str, int], torch.Tensor],
    betas: Mapping[str, float],
) -> tuple[torch.Tensor, dict[str, float]]:
    """Σ over supervised blocks of β_component · normalized_feature_mse; also the per-component sums."""
    total: torch.Tensor | None = None
    parts: dict[str, float] = {}
    for key in sorted(student):
        component, _ = key
        term = betas[component] * normalized_feature_mse(student[key], teacher[key])
        parts[f"mse_{component}"] = parts.get(f"mse_{component}", 0.0) + float(term.detach())
        total = term if total is None else total + term
    if total is None:
        raise ValueError("no supervised features were captured")
    return total, parts


def distillation_kl(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    *,
    mask: torch.Tensor | None = None,
    temperature: float = 1.0,
) -> torch.Tensor:
    """Σ_positions KL(softmax(z_t / T) || softmax(z_s / T)) / (number of positions)."""
    log_s = F.log_softmax(student_logits.float() / temperature, dim=-1)
    log_t = F.log_softmax(teacher_logits.float() / temperature, dim=-1)
    per_position = F.kl_div(log_s, log_t, reduction="none", log_target=True).sum(-1)
    if mask is None:
        return per_position.mean()
    mask = mask.to(per_position.dtype)
    return (per_position * mask).sum() / mask.sum().clamp_min(1.0)


def task_loss(logits: torch.Tensor, labels: torch.Tensor, *, shift: bool = False) -> torch.Tensor:
    """Cross-entropy over the tokens whose label is not -100 (``shift`` for decoder-only LMs)."""
    if shift:
        logits, labels = logits[:, :-1], labels[:, 1:]
    return F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100)
