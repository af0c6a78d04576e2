"""The split of a spread over draws into plans and question noise, on cases small enough to do by hand."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from script_loader import load_script
from ukmp.data.records import VQARecord
from ukmp.errors import UserError
from ukmp.question_noise import draw_spread


def test_two_equal_plans_that_answer_different_questions_are_all_question_noise():
    # Both 50%: between-draw variance 0. d = c1 - c2 = (0, 1, -1, 0), sample variance 2/3, so the
    # question noise is (2/3) / (2 * 4) = 1/12 of a unit squared, i.e. 10^4 / 12 in percent squared.
    s = draw_spread([[1, 1, 0, 0], [1, 0, 1, 0]])
    assert s.accuracies == (50.0, 50.0)
    assert s.span == 0.0
    assert s.question_noise_std == pytest.approx(math.sqrt(1e4 / 12))
    assert s.plan_std == 0.0
    assert s.expected_plan_span == 0.0


def test_plans_far_apart_keep_their_difference_after_the_noise():
    # a = 75 and 0: between-draw variance 75^2 / 2 = 2812.5. d = (1, 1, 1, 0), variance 0.25, noise
    # 0.25 / 8 = 312.5 percent squared, so the plans' variance is 2500: sd 50, expected span 1.128 * 50.
    s = draw_spread([[1, 1, 1, 0], [0, 0, 0, 0]])
    assert s.span == 75.0
    assert s.std == pytest.approx(math.sqrt(2812.5))
    assert s.question_noise_std == pytest.approx(math.sqrt(312.5))
    assert s.plan_std == pytest.approx(50.0)
    assert s.expected_plan_span == pytest.approx(1.128 * 50.0)


def test_identical_answers_carry_no_question_noise():
    row = [1, 0, 1, 1, 0]
    s = draw_spread([row, row, row])
    assert s.question_noise_std == 0.0 and s.plan_std == 0.0


def test_one_draw_or_too_many_draws_is_refused():
    with pytest.raises(ValueError, match="at least 2 draws"):
        draw_spread([[1, 0, 1]])
    with pytest.raises(ValueError, match="2-10 draws"):
        draw_spread([[1, 0]] * 11)


def _write_eval(folder: Path, name: str, answers: dict[str, str]) -> None:
    (folder / "evals").mkdir(parents=True, exist_ok=True)
    body = {"tasks": {"vqa": {"accuracy": 0.0, "predictions": answers}}}
    (folder / "evals" / f"{name}.json").write_text(json.dumps(body))


def test_the_script_scores_every_answer_and_tables_the_first_n(tmp_path: Path):
    script = load_script("question_noise")
    records = [VQARecord(Path("x.png"), i, "q?", ("red",) * 10) for i in range(4)]
    _write_eval(tmp_path / "seed-0", "ukmp-50", {"0": "red", "1": "red", "2": "blue", "3": "blue"})
    _write_eval(tmp_path / "seed-1", "ukmp-50", {"0": "red", "1": "blue", "2": "red", "3": "blue"})
    scores = script.draw_scores(tmp_path, ["ukmp"], [0.5], records)
    full = script.rows(scores, ["ukmp"], [0.5], None)
    assert full == [f"| ukmp | 0.5 | 4 | 50.0, 50.0 | 50.0 | 0.0 | 0.00 | {math.sqrt(1e4 / 12):.2f} | 0.00 | 0.0 |"]
    first_two = script.rows(scores, ["ukmp"], [0.5], 2)
    assert first_two[0].startswith("| ukmp | 0.5 | 2 | 100.0, 50.0 | 75.0 | 50.0 |")


def test_the_script_names_an_evaluation_without_answers(tmp_path: Path):
    script = load_script("question_noise")
    records = [VQARecord(Path("x.png"), 0, "q?", ("red",))]
    for seed in (0, 1):
        (tmp_path / f"seed-{seed}" / "evals").mkdir(parents=True)
        (tmp_path / f"seed-{seed}" / "evals" / "ukmp-50.json").write_text(json.dumps({"tasks": {"vqa": {}}}))
    with pytest.raises(UserError, match="no per-question answers"):
        script.draw_scores(tmp_path, ["ukmp"], [0.5], records)


def test_the_script_pairs_two_runs_draw_by_draw(tmp_path: Path):
    script = load_script("question_noise")
    records = [VQARecord(Path("x.png"), i, "q?", ("red",) * 10) for i in range(2)]
    # searched: 100, 100; plain: 50, 0 -> differences +50 and +100, mean +75
    for seed, plain in ((0, {"0": "red", "1": "blue"}), (1, {"0": "blue", "1": "blue"})):
        _write_eval(tmp_path / "searched" / f"seed-{seed}", "ukmp-50", {"0": "red", "1": "red"})
        _write_eval(tmp_path / "plain" / f"seed-{seed}", "ukmp-50", plain)
    searched = script.draw_scores(tmp_path / "searched", ["ukmp"], [0.5], records)
    plain = script.draw_scores(tmp_path / "plain", ["ukmp"], [0.5], records)
    lines = script.against(searched, plain, "searched > plain", ["ukmp"], [0.5])
    assert lines[2].startswith("| ukmp | 0.5 | searched > plain | within noise | +75.0 [+50.0–+100.0] ±")


def test_the_script_pairs_only_runs_of_one_draw_set(tmp_path: Path, capsys):
    script = load_script("question_noise")
    for run, seeds in (("a", (0, 1)), ("b", (0, 1, 2))):
        for seed in seeds:
            _write_eval(tmp_path / run / f"seed-{seed}", "ukmp-50", {"0": "red"})
    assert script.main([str(tmp_path / "a"), "--methods", "ukmp", "--against", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert "pair runs of one draw set" in err and "Traceback" not in err
