"""Stage 3 of the shipped recipe: its targets, its readout, and that it can be resumed exactly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tiny_models import tiny_train_config
from ukmp.errors import UserError
from ukmp.zoo.grounding import QueryGroundingHead, first_mention, first_mention_flags, mention_cells
from ukmp.zoo.train_shapes import replay_stage_three, train_shapes_model

SHAPE_IDS = {10: 1, 11: 2}  # token id -> shape class (1-based, as in the cell labels)
COLOUR_IDS = {20: 1, 21: 2}


def _labels(*objects: tuple[int, int, int]) -> torch.Tensor:
    """One scene's 4 x 3 cell labels from (cell, shape, colour) triples."""
    labels = torch.zeros(4, 3, dtype=torch.long)
    for cell, shape, colour in objects:
        labels[cell] = torch.tensor([shape, colour, 1])
    return labels


def test_mentions_name_the_cell_of_the_one_object_they_describe() -> None:
    labels = torch.stack([_labels((2, 1, 1), (1, 2, 2)), _labels((0, 1, 1), (3, 1, 1))])
    ids = torch.tensor(
        [
            [5, 20, 10, 7, 21, 11, 20, 11],  # "colour1 shape1" -> cell 2, "colour2 shape2" -> cell 1, absent pair
            [5, 20, 10, 7, 10, 20, 0, 0],  # the pair names two objects: no target; "shape1 colour1" is no pair
        ]
    )
    targets = mention_cells(ids, torch.stack([labels[0], labels[1]]), SHAPE_IDS, COLOUR_IDS)
    expected = torch.full((2, 8), -100)
    expected[0, 2], expected[0, 5] = 2, 1
    assert torch.equal(targets, expected)
    assert first_mention(targets).tolist() == [2, -100]
    flags = first_mention_flags(targets)
    assert flags[0, 2] == 1 and flags[0, 5] == 0 and (flags[0, [0, 1, 3, 4, 6, 7]] == -100).all()
    assert (flags[1] == -100).all()


def test_query_readout_learns_cells_only_when_the_queries_carry_them() -> None:
    """The readout has no notion of query order, so it can read a cell only from the queries' content."""
    torch.manual_seed(0)
    batch, hidden = 64, 32
    labels = torch.zeros(batch, 4, 3, dtype=torch.long)
    for b in range(batch):
        cells = torch.randperm(4)[:2]
        labels[b, cells, 0] = torch.randint(1, 7, (2,))
        labels[b, cells, 1] = torch.randint(1, 9, (2,))
    attribute = torch.nn.Embedding(16, hidden)
    cell = torch.nn.Embedding(4, hidden)

    def queries(with_cell: bool) -> torch.Tensor:
        rows = []
        for b in range(batch):
            present = (labels[b, :, 0] > 0).nonzero()[:, 0]
            q = attribute(labels[b, present, 0]) + attribute(labels[b, present, 1] + 7)
            if with_cell:
                q = q + cell(present)
            rows.append(q)
        return torch.stack(rows).detach()

    final = {}
    for with_cell in (True, False):
        torch.manual_seed(1)
        head = QueryGroundingHead(hidden)
        optimizer = torch.optim.Adam(head.parameters(), lr=1e-2)
        q = queries(with_cell)
        for _ in range(150):
            loss, accuracy = head.loss(q, labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        final[with_cell] = accuracy
    assert final[True] > 0.95
    assert final[False] < 0.75


@pytest.mark.slow
def test_stage_three_from_a_saved_stage_two_equals_the_uninterrupted_run(tmp_path: Path) -> None:
    whole = train_shapes_model(tmp_path / "whole", tiny_train_config(grounding_steps=3))
    stage2 = train_shapes_model(tmp_path / "stage2", tiny_train_config(grounding_steps=0))
    resumed = train_shapes_model(tmp_path / "resumed", tiny_train_config(grounding_steps=3), stage2_dir=stage2)
    a, b = load_file(whole / "model.safetensors"), load_file(resumed / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json", "processor_config.json"):
        assert (whole / name).read_text() == (resumed / name).read_text(), name
    log = json.loads((resumed / "training.json").read_text())["log"]
    assert [r["stage"] for r in log].count("grounding") == 3
    assert all(0.0 <= r["query_acc"] <= 1.0 for r in log if r["stage"] == "grounding")
    before = load_file(stage2 / "model.safetensors")
    assert any(not torch.equal(a[k], before[k]) for k in a)  # stage 3 did train
    recorded, replayed = replay_stage_three(whole, stage2, 2)
    assert len(recorded) == 2 and recorded == replayed


def test_stage_three_refuses_a_checkpoint_that_is_not_this_recipes_stage_two(tmp_path: Path) -> None:
    done = train_shapes_model(tmp_path / "done", tiny_train_config(grounding_steps=1))
    with pytest.raises(UserError, match="already been through stage 3"):
        train_shapes_model(tmp_path / "x", tiny_train_config(grounding_steps=1), stage2_dir=done)
    stage2 = train_shapes_model(tmp_path / "stage2", tiny_train_config(grounding_steps=0))
    other = tiny_train_config(grounding_steps=1)
    other.lr = 1e-3
    with pytest.raises(UserError, match=r"other settings \(lr\)"):
        train_shapes_model(tmp_path / "y", other, stage2_dir=stage2)
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()
