"""The shipped model's trainer: deterministic, and its output loads with plain transformers."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file
from transformers import AutoProcessor, Blip2ForConditionalGeneration

from ukmp.zoo.train_shapes import TrainConfig, train_shapes_model


def _tiny_cfg() -> TrainConfig:
    return TrainConfig(steps=3, batch_size=4, train_images=12, warmup_steps=1, vision_layers=1, lm_layers=1, threads=1)


def test_same_seed_same_weights_and_loadable(tmp_path: Path) -> None:
    a = train_shapes_model(tmp_path / "a", _tiny_cfg())
    b = train_shapes_model(tmp_path / "b", _tiny_cfg())
    wa, wb = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    other = _tiny_cfg()
    other.seed = 1
    wc = load_file(train_shapes_model(tmp_path / "c", other) / "model.safetensors")
    assert any(not torch.equal(wa[k], wc[k]) for k in wa)
    model = Blip2ForConditionalGeneration.from_pretrained(a, dtype=torch.float32)
    processor = AutoProcessor.from_pretrained(a)
    assert model.config.image_token_index == processor.tokenizer.convert_tokens_to_ids("<image>")
    assert (a / "loss_curve.png").stat().st_size > 0 and (a / "training.json").is_file()


def test_fresh_model_has_distinct_query_tokens_and_a_calm_head() -> None:
    from ukmp.zoo.shapes_config import shapes_blip2_t5_config
    from ukmp.zoo.train_shapes import build_model

    config = shapes_blip2_t5_config(40, vision_layers=1, lm_layers=1)
    torch.manual_seed(0)
    model = build_model(config)
    queries = model.query_tokens[0]
    # identical queries would stay identical through training (transformers' default is all zeros)
    assert queries.std(dim=0).mean() > 0.01
    assert model.language_model.lm_head.weight.std() < 0.1


def test_fresh_model_has_no_near_zero_weight_matrix() -> None:
    """A weight matrix initialised at ~0 (transformers' vision default is std 1e-10) starves that tower."""
    from ukmp.zoo.shapes_config import shapes_blip2_t5_config
    from ukmp.zoo.train_shapes import build_model

    torch.manual_seed(0)
    model = build_model(shapes_blip2_t5_config(40, vision_layers=1, lm_layers=1))
    dead = [name for name, p in model.named_parameters() if p.ndim >= 2 and p.numel() > 1 and p.std() < 1e-3]
    assert dead == []


def test_replaying_the_first_steps_matches_the_training_log(tmp_path: Path) -> None:
    from ukmp.zoo.train_shapes import replay_first_steps

    out = train_shapes_model(tmp_path / "m", _tiny_cfg())
    recorded, replayed = replay_first_steps(out, 2)
    assert len(recorded) == 2 and recorded == replayed
