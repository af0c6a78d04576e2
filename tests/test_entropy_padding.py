"""Entropy rows do not depend on how wide a sample's labels were padded (the model kind comes from its config)."""

from __future__ import annotations

import torch

from tiny_models import blip2_inputs, tiny_blip2
from ukmp.adapters import find_adapter
from ukmp.methods.ukmi import UKMIOptions, accumulate_entropy


def _entropies(model, batch):
    groups = find_adapter(model).groups(model)
    rows, _ = accumulate_entropy(model, groups, [batch], UKMIOptions())
    return rows


def test_t5_labels_padded_to_the_encoder_width_give_the_same_entropies() -> None:
    model = tiny_blip2("t5")
    inputs = blip2_inputs("t5", batch=1)
    inputs.pop("decoder_input_ids")
    width = inputs["input_ids"].shape[1]
    valid = torch.tensor([[5, 6, 7]])
    padded = torch.full((1, width), -100)
    padded[:, :3] = valid  # exactly as wide as the encoder input: the case the width guess got wrong
    tight = _entropies(model, {**inputs, "labels": valid})
    wide = _entropies(model, {**inputs, "labels": padded})
    assert tight.keys() == wide.keys()
    for name in tight:
        assert torch.allclose(tight[name], wide[name], atol=1e-6), name
    assert any("decoder" in name for name in tight)  # the decoder's rows were compared too


def test_model_kind_comes_from_the_config() -> None:
    for lm, encoder_decoder in (("t5", True), ("opt", False)):
        model = tiny_blip2(lm)
        assert find_adapter(model).inputs.encoder_decoder is encoder_decoder
