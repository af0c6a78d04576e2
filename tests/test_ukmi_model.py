"""UKMI on tiny BLIP-2 models: batch-size invariance, determinism, where entropy goes."""

from __future__ import annotations

import pytest
import torch

from tiny_models import IMAGE_SIZE, IMAGE_TOKEN, NUM_QUERY, tiny_blip2
from ukmp.adapters import find_adapter
from ukmp.methods.ukmi import UKMIOptions, ukmi_scores


def _samples(lm: str, n: int, seed: int) -> list[dict[str, torch.Tensor]]:
    """Single samples of different lengths (so batching them needs padding)."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n):
        text = torch.randint(3, IMAGE_TOKEN, (1, 2 + i % 3), generator=gen)
        target = torch.randint(3, IMAGE_TOKEN, (1, 2 + (i + 1) % 3), generator=gen)
        ids = torch.cat([torch.full((1, NUM_QUERY), IMAGE_TOKEN), text], dim=1)
        sample = {"pixel_values": torch.randn(1, 3, IMAGE_SIZE, IMAGE_SIZE, generator=gen)}
        if lm == "t5":
            sample.update(input_ids=ids, labels=target)
        else:  # decoder-only: labels aligned with input_ids, only on the target
            sample["input_ids"] = torch.cat([ids, target], dim=1)
            sample["labels"] = torch.cat([torch.full_like(ids, -100), target], dim=1)
        sample["attention_mask"] = torch.ones_like(sample["input_ids"])
        out.append(sample)
    return out


def _batch(samples: list[dict[str, torch.Tensor]], size: int) -> list[dict[str, torch.Tensor]]:
    """Right-pad samples into batches (pad id 0, labels -100)."""
    batches = []
    for start in range(0, len(samples), size):
        chunk = samples[start : start + size]
        batch = {"pixel_values": torch.cat([s["pixel_values"] for s in chunk])}
        for key, pad in (("input_ids", 0), ("attention_mask", 0), ("labels", -100)):
            width = max(s[key].shape[1] for s in chunk)
            batch[key] = torch.stack(
                [torch.nn.functional.pad(s[key][0], (0, width - s[key].shape[1]), value=pad) for s in chunk]
            )
        batches.append(batch)
    return batches


@pytest.mark.parametrize("lm,taylor", [("t5", "first"), ("t5", "mix"), ("llama", "mix")])
def test_scores_do_not_depend_on_batch_size(lm, taylor):
    model = tiny_blip2(lm)
    groups = find_adapter(model).groups(model)
    ent, grad = _samples(lm, 4, seed=1), _samples(lm, 4, seed=2)
    options = UKMIOptions(taylor=taylor, threshold=0.4)  # token selection on: its floor is per sample
    one = ukmi_scores(model, groups, _batch(ent, 1), _batch(grad, 1), options)
    four = ukmi_scores(model, groups, _batch(ent, 4), _batch(grad, 4), options)
    tokens = [r.stats["gradient_pass"]["backpropagated_tokens"] for r in (one, four)]
    assert tokens[0] == tokens[1]
    for name in one.scores:
        torch.testing.assert_close(one.scores[name], four.scores[name], rtol=1e-4, atol=1e-9)


def test_entropy_only_multiplies_language_groups_and_scores_are_deterministic():
    model = tiny_blip2("t5")
    groups = find_adapter(model).groups(model)
    ent, grad = _batch(_samples("t5", 3, 1), 1), _batch(_samples("t5", 3, 2), 1)
    a = ukmi_scores(model, groups, ent, grad)
    b = ukmi_scores(model, groups, ent, grad)
    assert all(torch.equal(a.scores[n], b.scores[n]) for n in a.scores)
    for g in groups:
        if g.modality == "vision":
            assert g.name not in a.entropy
            assert torch.equal(a.scores[g.name], a.taylor[g.name])
        else:
            assert torch.allclose(a.scores[g.name], a.taylor[g.name] * a.entropy[g.name])
            assert (a.entropy[g.name] > 0).all()
    off = ukmi_scores(model, groups, None, grad, UKMIOptions(entropy="off"))
    assert not off.entropy


def test_threshold_one_backpropagates_every_target_token():
    model = tiny_blip2("t5")
    groups = find_adapter(model).groups(model)
    grad = _batch(_samples("t5", 3, 2), 1)
    full = ukmi_scores(model, groups, None, grad, UKMIOptions(entropy="off", threshold=1.0))
    # a threshold below every confidence leaves only the floor: each sample's least confident token
    low = ukmi_scores(model, groups, None, grad, UKMIOptions(entropy="off", threshold=1e-6))
    stats_full, stats_low = full.stats["gradient_pass"], low.stats["gradient_pass"]
    assert stats_full["backpropagated_tokens"] == stats_full["target_tokens"]
    assert stats_low["backpropagated_tokens"] == 3 < stats_full["backpropagated_tokens"]
