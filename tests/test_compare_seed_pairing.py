"""`ukmp compare --seeds N` pairs two methods' values by seed, also when a draw lacks a metric.

Before, each cell kept a metric's values in a list parallel to its seeds; a metric missing in one
draw shortened the list, so the pairs shifted (or indexing ran past the end).
"""

from __future__ import annotations

import pytest

from ukmp.compare.config import CompareConfig
from ukmp.compare.seeds import aggregate, orderings
from ukmp.compare.seeds_report import seeds_markdown

VQA, CAPTION = "VQA accuracy (%)", "CIDEr"
SETTINGS = dict(
    calib="shapes", calib_split="alttext", num_samples=8, eval="shapes", eval_split="val",
    limit=4, caption_limit=4, ratio_of="all", recover="none",
)  # fmt: skip


def _draw(seed: int, ukmp: dict[str, float], random: dict[str, float]) -> dict:
    rows = [
        {"method": method, "target_ratio": 0.3, "achieved_ratio": 0.31, "metrics": metrics}
        for method, metrics in (("ukmp", ukmp), ("random", random))
    ]
    return {"settings": {**SETTINGS, "seed": seed}, "dense": {"metrics": {VQA: 90.0, CAPTION: 1.0}}, "rows": rows}


@pytest.fixture()
def per_seed() -> list[dict]:
    return [
        _draw(0, {VQA: 60.0, CAPTION: 0.5}, {VQA: 50.0, CAPTION: 0.4}),
        _draw(1, {VQA: 70.0, CAPTION: 0.6}, {CAPTION: 0.3}),  # random's VQA is missing in draw 1
        _draw(2, {VQA: 80.0, CAPTION: 0.7}, {VQA: 75.0, CAPTION: 0.2}),
    ]


def test_pairs_are_made_by_seed_and_the_lacking_draws_are_named(per_seed) -> None:
    cells = aggregate(per_seed)
    random = next(c for c in cells if c["method"] == "random")
    assert random["metrics"][VQA] == [50.0, 75.0]
    assert random["metrics_seeds"][VQA] == [0, 2]
    assert random["metrics_lacking"] == {VQA: [1]}
    assert "metrics_lacking" not in next(c for c in cells if c["method"] == "ukmp")
    vqa = next(o for o in orderings(cells) if o["metric"] == VQA)
    # seed 0: 60 - 50, seed 2: 80 - 75; draw 1 has nothing to pair ukmp's 70 with
    assert vqa["difference"]["n"] == 2 and vqa["difference"]["mean"] == pytest.approx(7.5)
    assert vqa["difference"]["min"] == pytest.approx(5.0) and vqa["difference"]["max"] == pytest.approx(10.0)
    assert vqa["seeds"] == [0, 2] and vqa["unpaired"] == [1]
    caption = next(o for o in orderings(cells) if o["metric"] == CAPTION)
    assert caption["difference"]["n"] == 3 and "unpaired" not in caption


def test_the_report_says_which_draws_lack_a_metric(per_seed) -> None:
    cells = aggregate(per_seed)
    data = {"seeds": [0, 1, 2], "cells": cells, "orderings": {"metrics": orderings(cells)}, "per_seed": per_seed}
    data["model"] = "m"
    data["orderings"]["recovered_metrics"] = []
    text = seeds_markdown(CompareConfig(model="m", out="o"), data)
    assert "random at 0.3 has no VQA accuracy (%) in seed 1" in text
    assert "ukmp > random | VQA accuracy (%)" in text and "paired over seeds 0, 2" in text


def test_complete_draws_keep_the_records_as_before() -> None:
    per_seed = [_draw(s, {VQA: 60.0 + s}, {VQA: 50.0}) for s in (0, 1)]
    cells = aggregate(per_seed)
    assert all("metrics_lacking" not in c for c in cells)
    (vqa,) = orderings(cells)
    assert "unpaired" not in vqa and "seeds" not in vqa and vqa["difference"]["n"] == 2
