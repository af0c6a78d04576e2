"""The image-token scale of `shapes-smolvlm`'s recipe: set exactly, capped by a penalty of known value, and
absent from the records of runs that do not use it (so their checkpoints continue)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tiny_smolvlm import tiny_config, tiny_text_model
from ukmp.zoo.smolvlm_image_scale import (
    ImageTokenTap,
    loudness_penalty,
    mean_token_norm,
    set_connector_scale,
    word_norm,
)
from ukmp.zoo.smolvlm_ship import config_from_recipe
from ukmp.zoo.smolvlm_training import LEGACY_DEFAULTS, build_trainable_model, train_smolvlm_run


def test_loudness_penalty_is_zero_under_the_cap_and_squared_above() -> None:
    tokens = torch.tensor([[[1.0, 0.0], [0.0, 3.0]], [[0.0, 0.0], [4.0, 0.0]]])  # norms 1, 3, 0, 4
    # cap 2: ratios 0.5, 1.5, 0, 2 -> relu(ratio - 1)^2 = 0, 0.25, 0, 1; mean 0.3125
    assert loudness_penalty(tokens, 2.0).item() == pytest.approx(0.3125)
    assert loudness_penalty(tokens, 4.0).item() == 0.0
    assert mean_token_norm(tokens) == pytest.approx(2.0)


def test_word_norm_is_the_mean_row_norm_of_the_input_embeddings() -> None:
    model, _ = build_trainable_model(tiny_text_model(), tiny_config())
    rows = model.get_input_embeddings().weight.detach()
    assert word_norm(model) == pytest.approx(float(rows.norm(dim=-1).mean()))


def test_set_connector_scale_gives_the_target_norm_exactly() -> None:
    model, _ = build_trainable_model(tiny_text_model(), tiny_config())
    pixels = torch.rand(3, 1, 3, 64, 64)
    factor = set_connector_scale(model, pixels, None, 0.7)
    tap = ImageTokenTap(model)
    with torch.no_grad():
        model.model.get_image_features(pixels)
    assert mean_token_norm(tap.take()) == pytest.approx(0.7, rel=1e-5) and factor > 0
    tap.remove()


def test_alignment_starts_at_the_asked_scale_and_the_cap_trains_the_connector(tmp_path: Path) -> None:
    cfg = tiny_config(image_scale=0.5, image_cap=0.75)
    run = train_smolvlm_run(tmp_path / "ckpt", cfg, text_loader=tiny_text_model, progress=False)
    align = [r for r in run.state.log if r["stage"] == "align"]
    # set on the (8) training images; the first step reads two of them
    assert align[0]["image_norm"] == pytest.approx(0.5, rel=0.3) and align[0]["connector_factor"] > 0
    assert all("image_norm" in r for r in run.state.log if r["stage"] != "vision")

    # the penalty's gradient reaches the connector: with a cap below the tokens' norm, descending shrinks it
    model, tap = run.model, ImageTokenTap(run.model)
    weight = model.model.connector.modality_projection.proj.weight.requires_grad_(True)
    model.model.get_image_features(torch.rand(1, 1, 3, 64, 64))
    tokens = tap.take()
    loudness_penalty(tokens, mean_token_norm(tokens) / 4).backward()
    assert weight.grad is not None and (weight.grad * weight).sum() > 0
    tap.remove()


def test_a_recipe_without_the_new_fields_reads_as_before_and_records_as_before() -> None:
    cfg = tiny_config()
    assert not set(LEGACY_DEFAULTS) & set(cfg.recipe())  # an earlier checkpoint's recipe compares equal
    legacy = cfg.recipe()
    assert config_from_recipe(legacy).image_scale is None and config_from_recipe(legacy).image_cap is None
    scaled = tiny_config(image_scale=1.0, image_cap=2.0)
    assert scaled.recipe()["image_scale"] == 1.0 and config_from_recipe(scaled.recipe()).image_cap == 2.0
