"""Table A generated from depths, the Table B ablation schedules, and each LPD loss on hand-computable cases."""

from __future__ import annotations

import math

import pytest
import torch

from ukmp.errors import UserError
from ukmp.recovery.config import RecoveryConfig, learning_rate
from ukmp.recovery.losses import distillation_kl, feature_loss, normalized_feature_mse, task_loss
from ukmp.recovery.phases import allocate_samples, lpd_phases, make_schedule, supervised_blocks

EVEN_38 = tuple(range(0, 39, 2))
ODD_23 = tuple(range(1, 24, 2))


def test_table_a_for_eva_vit_g_and_flant5_xl() -> None:
    phases = lpd_phases({"vision": 39, "lm_encoder": 24, "lm_decoder": 24})
    got = [(p.stage, p.name, p.supervised, p.losses) for p in phases]
    assert got == [
        ("tau1", "low_visual", {"vision": tuple(range(0, 23, 2))}, ("mse",)),
        ("tau1", "high_visual", {"vision": EVEN_38}, ("mse",)),
        ("tau2", "low_encoder", {"vision": EVEN_38, "lm_encoder": tuple(range(1, 12, 2))}, ("mse",)),
        ("tau2", "high_encoder", {"vision": EVEN_38, "lm_encoder": ODD_23}, ("mse",)),
        (
            "tau2",
            "low_decoder",
            {"vision": EVEN_38, "lm_encoder": ODD_23, "lm_decoder": tuple(range(1, 12, 2))},
            ("mse",),
        ),
        ("tau2", "high_decoder", {"vision": EVEN_38, "lm_encoder": ODD_23, "lm_decoder": ODD_23}, ("mse",)),
        ("tau3", "top", {}, ("task", "kl")),
    ]
    assert allocate_samples(phases, 595_000) == [20_000, 20_000, 80_000, 40_000, 80_000, 80_000, 275_000]
    # the real CC595K size: the top phase takes what the others leave
    counts = allocate_samples(phases, 595_375)
    assert sum(counts) == 595_375 and counts[-1] > 275_000


def test_decoder_only_lm_skips_the_encoder_phases() -> None:
    phases = lpd_phases({"vision": 6, "lm": 4})
    assert [p.name for p in phases] == ["low_visual", "high_visual", "low_decoder", "high_decoder", "top"]
    assert phases[3].supervised == {"vision": (1, 3, 5), "lm": (1, 3)}
    assert phases[2].supervised == {"vision": (1, 3, 5), "lm": (1,)}


def test_supervised_blocks_end_at_the_last_block() -> None:
    assert supervised_blocks(39) == EVEN_38
    assert supervised_blocks(24) == ODD_23
    assert supervised_blocks(1) == (0,)
    assert supervised_blocks(3) == (0, 2)


def test_table_b_ablation_schedules() -> None:
    depths = {"vision": 39, "lm_encoder": 24, "lm_decoder": 24}
    (kl_task,) = make_schedule("kl-task", depths)
    (task,) = make_schedule("task", depths)
    (flat,) = make_schedule("no-progressive", depths)
    assert set(kl_task.losses) == {"task", "kl"} and not kl_task.supervised
    assert task.losses == ("task",)
    assert set(flat.losses) == {"mse", "kl", "task"}
    assert flat.supervised == {"vision": EVEN_38, "lm_encoder": ODD_23, "lm_decoder": ODD_23}
    with pytest.raises(UserError):
        make_schedule("nope", depths)


def test_small_sets_leave_no_phase_empty() -> None:
    phases = lpd_phases({"vision": 1, "lm_encoder": 1, "lm_decoder": 1})
    counts = allocate_samples(phases, 12)
    assert sum(counts) == 12 and min(counts) >= 1


def test_feature_mse_normalises_by_the_frobenius_norm_of_the_whole_tensor() -> None:
    student = torch.tensor([[[3.0, 4.0]]])  # / 5 -> (0.6, 0.8)
    teacher = torch.tensor([[[2.0, 0.0]]])  # / 2 -> (1, 0)
    assert normalized_feature_mse(student, teacher).item() == pytest.approx((0.4**2 + 0.8**2) / 2)
    # scale-free: multiplying either tensor by a constant changes nothing
    assert normalized_feature_mse(7 * student, teacher).item() == pytest.approx(0.4)
    total, parts = feature_loss(
        {("vision", 0): student, ("lm_encoder", 1): student},
        {("vision", 0): teacher, ("lm_encoder", 1): student},
        {"vision": 1e6, "lm_encoder": 1e9},
    )
    assert total.item() == pytest.approx(0.4e6)
    assert parts == pytest.approx({"mse_vision": 0.4e6, "mse_lm_encoder": 0.0})


def test_kl_sums_over_classes_and_averages_over_all_positions() -> None:
    teacher = torch.log(torch.tensor([[[0.75, 0.25], [0.5, 0.5]]]))  # B=1, L=2
    student = torch.zeros(1, 2, 2)  # uniform
    first = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)
    assert distillation_kl(student, teacher).item() == pytest.approx(first / 2)
    mask = torch.tensor([[True, False]])
    assert distillation_kl(student, teacher, mask=mask).item() == pytest.approx(first)
    assert distillation_kl(teacher, teacher).item() == pytest.approx(0.0, abs=1e-7)


def test_task_loss_ignores_minus_100() -> None:
    logits = torch.log(torch.tensor([[[0.5, 0.25, 0.25], [0.1, 0.1, 0.8]]]))
    labels = torch.tensor([[0, -100]])
    assert task_loss(logits, labels).item() == pytest.approx(-math.log(0.5))
    labels = torch.tensor([[0, 2]])
    assert task_loss(logits, labels).item() == pytest.approx(-(math.log(0.5) + math.log(0.8)) / 2)
    # decoder-only: position t predicts label t + 1
    shifted = torch.tensor([[-100, 2]])
    assert task_loss(logits, shifted, shift=True).item() == pytest.approx(-math.log(0.25))


def test_warmup_then_constant_learning_rate() -> None:
    config = RecoveryConfig(pruned="p", out="o")
    assert learning_rate(0, config) == pytest.approx(5e-7)
    assert learning_rate(25, config) == pytest.approx(5e-7 + (2e-5 - 5e-7) / 2)
    assert learning_rate(50, config) == learning_rate(5000, config) == 2e-5
