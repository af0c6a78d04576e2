"""The shipped model's trainer: deterministic, and its output loads with plain transformers."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoProcessor, Blip2ForConditionalGeneration

from tiny_models import tiny_train_config
from ukmp.zoo.train_shapes import train_shapes_model


@pytest.mark.slow
def test_same_seed_same_weights_and_loadable(tmp_path: Path) -> None:
    a = train_shapes_model(tmp_path / "a", tiny_train_config())
    b = train_shapes_model(tmp_path / "b", tiny_train_config())
    wa, wb = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    other = tiny_train_config()
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

    out = train_shapes_model(tmp_path / "m", tiny_train_config())
    recorded, replayed = replay_first_steps(out, 3)  # both ViT pretraining steps and the first stage-2 step
    assert len(recorded) == 3 and recorded == replayed


def test_vision_pretraining_labels_each_cell_and_teaches_the_patches() -> None:
    """Cell labels follow the scene; a few steps on one batch lower the patch classifier's loss."""
    import numpy as np

    from ukmp.data.shapes_world import COLOURS, SHAPES, SIZES, make_scene, render
    from ukmp.zoo.shapes_config import shapes_blip2_t5_config
    from ukmp.zoo.train_shapes import images_to_pixels
    from ukmp.zoo.vision_pretraining import cell_labels, pretrain_vision

    scene = make_scene("train", 0)
    labels = cell_labels(scene)
    occupied = {o.cell for o in scene.objects}
    for cell in range(4):
        assert (labels[cell] == 0).all() == (cell not in occupied)
    for o in scene.objects:
        assert tuple(labels[o.cell]) == (
            SHAPES.index(o.shape) + 1,
            list(COLOURS).index(o.colour) + 1,
            SIZES.index(o.size) + 1,
        )

    from transformers import Blip2VisionModel

    torch.manual_seed(0)
    vision = Blip2VisionModel(shapes_blip2_t5_config(40, vision_layers=1).vision_config)
    scenes = [make_scene("train", i) for i in range(8)]
    images = torch.stack([torch.from_numpy(np.array(render(s))).permute(2, 0, 1) for s in scenes])
    cells = torch.from_numpy(np.stack([cell_labels(s) for s in scenes]))
    kwargs = dict(lr=1e-3, batch_size=8, warmup_steps=1, weight_decay=0.0, grad_clip=1.0)
    log = pretrain_vision(
        vision, images, cells, images_to_pixels, steps=30, rng=np.random.default_rng(0), progress=False, **kwargs
    )
    assert len(log) == 30 and all(r["stage"] == "vision" for r in log)
    assert np.mean([r["loss"] for r in log[-5:]]) < 0.5 * np.mean([r["loss"] for r in log[:5]])


def test_vision_pretraining_refuses_a_patch_grid_that_is_not_the_world_grid() -> None:
    import numpy as np
    import pytest
    from transformers import Blip2VisionModel

    from ukmp.zoo.shapes_config import shapes_blip2_t5_config
    from ukmp.zoo.train_shapes import images_to_pixels
    from ukmp.zoo.vision_pretraining import pretrain_vision

    config = shapes_blip2_t5_config(40, vision_layers=1).vision_config
    config.patch_size = 16
    images = torch.zeros(2, 3, 64, 64, dtype=torch.uint8)
    labels = torch.zeros(2, 4, 3, dtype=torch.long)
    with pytest.raises(ValueError, match="one patch per grid cell"):
        pretrain_vision(
            Blip2VisionModel(config),
            images,
            labels,
            images_to_pixels,
            steps=1,
            lr=1e-3,
            batch_size=2,
            warmup_steps=1,
            weight_decay=0.0,
            grad_clip=1.0,
            rng=np.random.default_rng(0),
            progress=False,
        )
