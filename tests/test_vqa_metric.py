"""The VQA accuracy and its answer normalisation on hand-computed cases."""

from __future__ import annotations

from pathlib import Path

import pytest

from ukmp.data.records import VQARecord
from ukmp.evaluation.vqa_metric import (
    exact_match,
    exact_match_scores,
    normalize_answer,
    vqa_accuracy,
    vqa_scores,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Two", "2"),
        ("the dog.", "dog"),
        ("Yes!", "yes"),
        ("dont", "don't"),
        ("1.5", "1.5"),
        ("red, blue", "red blue"),  # a comma touching a space is deleted
        ("left-right", "left right"),  # punctuation between letters becomes a space
        ("1,000", "1000"),  # digit,digit: commas are deleted
        ("  A  Ten\tthe\n", "10"),
        ("none", "0"),
    ],
)
def test_normalize_answer(raw: str, expected: str) -> None:
    assert normalize_answer(raw) == expected


@pytest.mark.parametrize(
    ("matches", "expected"),
    [
        # (m * min((m-1)/3, 1) + (10-m) * min(m/3, 1)) / 10
        (0, 0.0),
        (1, 0.3),  # (1*0 + 9*(1/3)) / 10
        (2, 0.6),  # (2*(1/3) + 8*(2/3)) / 10
        (3, 0.9),  # (3*(2/3) + 7*1) / 10
        (4, 1.0),
        (10, 1.0),
    ],
)
def test_leave_one_out_accuracy(matches: int, expected: float) -> None:
    answers = ["cat"] * matches + ["dog"] * (10 - matches)
    assert vqa_accuracy("cat", answers) == pytest.approx(expected, abs=1e-12)


def test_normalisation_applies_to_prediction_and_answers() -> None:
    assert vqa_accuracy("Two.", ["2"] * 10) == 1.0
    assert vqa_accuracy("the circle", ["circle"] * 3 + ["ring"] * 7) == pytest.approx(0.9)
    # The official script normalises only when the human answers disagree.
    assert vqa_accuracy("two", ["2"] * 10, always_normalize=False) == 0.0


def test_single_answer_is_exact_match() -> None:
    assert vqa_accuracy("Red", ["red"]) == 1.0
    assert vqa_accuracy("blue", ["red"]) == 0.0
    assert exact_match("The Dog.", "dog") == 1.0
    assert exact_match("dogs", "dog") == 0.0


def _record(qid: int, answers: list[str], qtype: str, atype: str) -> VQARecord:
    return VQARecord(Path("x.png"), qid, "q?", tuple(answers), qtype, atype)


def test_breakdown_by_question_and_answer_type() -> None:
    records = [
        _record(1, ["red"] * 10, "color", "other"),
        _record(2, ["2"] * 2 + ["3"] * 8, "count", "number"),
        _record(3, ["yes"] * 10, "exist", "yes/no"),
        _record(4, ["blue"] * 10, "color", "other"),
    ]
    predictions = {1: "red", 2: "two", 3: "no", 4: "blue"}
    scores = vqa_scores(predictions, records)
    assert scores["accuracy"] == pytest.approx(100 * (1 + 0.6 + 0 + 1) / 4)
    assert scores["per_question_type"] == {"color": 100.0, "count": 60.0, "exist": 0.0}
    assert scores["per_answer_type"] == {"number": 60.0, "other": 100.0, "yes/no": 0.0}
    assert scores["num_questions"] == 4
    with pytest.raises(ValueError, match="no prediction"):
        vqa_scores({1: "red"}, records)


def test_gqa_exact_match_scores() -> None:
    records = [_record(1, ["left"], "choose", "rel"), _record(2, ["table"], "query", "obj")]
    scores = exact_match_scores({1: "Left", 2: "chair"}, records)
    assert scores["accuracy"] == 50.0
    assert scores["per_question_type"] == {"choose": 100.0, "query": 0.0}
