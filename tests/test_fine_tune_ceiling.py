"""Recovery's ceiling (`ukmp.zoo.fine_tune`): every weight of a pruned shapes model trained on the recipe's mix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tiny_models import tiny_train_config
from ukmp.artifact import load_pruned
from ukmp.errors import UserError
from ukmp.pruning import PruneConfig, prune
from ukmp.zoo.fine_tune import METHOD, fine_tune_pruned
from ukmp.zoo.train_shapes import train_shapes_model


def test_full_fine_tuning_trains_every_kept_weight_and_keeps_the_plan(tmp_path: Path) -> None:
    dense = train_shapes_model(tmp_path / "dense", tiny_train_config(grounding_steps=0))
    pruned = tmp_path / "pruned"
    prune(PruneConfig(model=str(dense), out=pruned, method="magnitude", ratio=0.3), verbose=False)
    tuned = fine_tune_pruned(
        pruned, tmp_path / "tuned", steps=2, train_images=8, batch_size=4, threads=1, progress=False
    )

    before, after = load_file(pruned / "model.safetensors"), load_file(tuned / "model.safetensors")
    assert before.keys() == after.keys()
    assert all(before[k].shape == after[k].shape for k in before)
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    # AdamW moves every weight that gets a gradient; the vision tower, Q-Former and T5 all do
    for part in ("vision_model", "qformer", "language_model.encoder", "language_model.decoder"):
        assert any(part in k for k in changed), part
    source = json.loads((pruned / "pruning.json").read_text())
    manifest = json.loads((tuned / "pruning.json").read_text())
    assert manifest["groups"] == source["groups"]
    assert manifest["base_model"]["sha256"] == source["base_model"]["sha256"]
    assert manifest["recovery"]["method"] == METHOD and manifest["recovery"]["steps"] == 2
    model = load_pruned(tuned)  # an ordinary artifact: every ukmp command reads it
    assert sum(p.numel() for p in model.parameters()) == sum(t.numel() for t in after.values())


def test_full_fine_tuning_refuses_an_existing_output_and_zero_steps(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    with pytest.raises(UserError, match="already exists"):
        fine_tune_pruned(tmp_path / "missing", tmp_path / "out", steps=1)
    with pytest.raises(UserError, match="at least 1"):
        fine_tune_pruned(tmp_path / "missing", tmp_path / "new", steps=0)
