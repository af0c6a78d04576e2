"""scripts/ukmi_ablations.py --resume keeps only the leading draws an earlier run finished in full."""

from __future__ import annotations

from pathlib import Path

from script_loader import load_script


def _script():
    return load_script("ukmi_ablations")


def _row(seed: int | None, name: str) -> dict:
    return {"block": "x", "name": name, "ratio": 0.5, "seed": seed, "vqa": 1.0}


def test_resume_keeps_finished_leading_draws() -> None:
    earlier = {
        "seeds": [0, 1, 2],
        "rows": [_row(None, "dense"), _row(0, "a"), _row(0, "b"), _row(1, "a"), _row(1, "b"), _row(2, "a")],
        "backpropagated_tokens": {"0.4": {"selected": [10, 11, 12], "target": [90, 91, 92]}},
        "seconds": 120.0,
    }
    rows, tokens, seconds, done = _script().finished_draws(earlier, rows_per_draw=2)
    assert done == {0, 1}  # draw 2 has one of its two rows: measured again whole
    assert [(r["seed"], r["name"]) for r in rows] == [(None, "dense"), (0, "a"), (0, "b"), (1, "a"), (1, "b")]
    assert tokens == {"0.4": {"selected": [10, 11], "target": [90, 91]}}
    assert seconds == 120.0


def test_resume_stops_at_first_unfinished_draw() -> None:
    earlier = {
        "seeds": [0, 1],
        "rows": [_row(None, "dense"), _row(0, "a"), _row(1, "a"), _row(1, "b")],
        "backpropagated_tokens": {"1.0": {"selected": [5, 6], "target": [50, 60]}},
        "seconds": 3.0,
    }
    rows, tokens, _, done = _script().finished_draws(earlier, rows_per_draw=2)
    assert done == set()  # draw 1 is whole, but draw 0 is not: its token counts would lose their order
    assert rows == [_row(None, "dense")]
    assert tokens == {"1.0": {"selected": [], "target": []}}


def test_nothing_to_resume(tmp_path: Path) -> None:
    assert _script().earlier_run(tmp_path / "results.json") is None
