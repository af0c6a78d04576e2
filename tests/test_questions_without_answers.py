"""Questions without answers: they load, the label-free uses take them, the uses that read answers refuse them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from eval_tiny_model import tiny_model_dir
from ukmp.cli import main
from ukmp.data.index import load_task
from ukmp.data.jsonl import load_jsonl_vqa
from ukmp.data.prefix_lm import PrefixLMSample
from ukmp.data.recovery_mix import mix_vqa
from ukmp.data.world_writer import write_split
from ukmp.errors import UserError


@pytest.fixture(scope="module")
def labelled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_split("train", 8, tmp_path_factory.mktemp("labelled"))


@pytest.fixture(scope="module")
def questions_only(labelled: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same folder with its annotations file gone and its index entry naming none."""
    folder = tmp_path_factory.mktemp("unlabelled") / "data"
    shutil.copytree(labelled, folder)
    (folder / "vqa_train_annotations.json").unlink()
    index = json.loads((folder / "ukmp_data.json").read_text())
    del index["splits"]["train"]["vqa"]["annotations"]
    (folder / "ukmp_data.json").write_text(json.dumps(index))
    return folder


def test_questions_load_without_their_annotations_file(labelled: Path, questions_only: Path) -> None:
    with_answers, without = list(load_task(labelled, "train", "vqa")), list(load_task(questions_only, "train", "vqa"))
    assert [(r.image_path.name, r.question) for r in without] == [(r.image_path.name, r.question) for r in with_answers]
    assert all(r.answers for r in with_answers) and not any(r.answers for r in without)


def test_a_jsonl_question_without_an_answer_loads_with_none(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(b"")
    lines = [{"image": "a.png", "question": "what colour?"}, {"image": "a.png", "question": "how many?", "answer": "2"}]
    (tmp_path / "q.jsonl").write_text("\n".join(json.dumps(line) for line in lines))
    records = list(load_jsonl_vqa(tmp_path / "q.jsonl"))
    assert [r.answers for r in records] == [(), ("2",)]


def _prune(questions: Path, out: Path, answers: str) -> list[str]:
    argv = ["prune", str(tiny_model_dir()), "--method", "magnitude", "--ratio", "0.3", "--out", str(out)]
    return [*argv, "--calib", str(questions), "--plan-search", "3", "--plan-search-samples", "5",
            "--plan-search-answers", answers]  # fmt: skip


def test_the_teacher_judge_searches_on_questions_without_answers(
    labelled: Path, questions_only: Path, tmp_path: Path
) -> None:
    assert main(_prune(questions_only, tmp_path / "unlabelled", "teacher")) == 0
    assert main(_prune(labelled, tmp_path / "labelled", "teacher")) == 0
    traces = [
        json.loads((tmp_path / run / "pruning.json").read_text())["method"]["options"]["plan_search"]
        for run in ("unlabelled", "labelled")
    ]
    assert traces[0]["answers"] == "teacher" and len(traces[0]["losses"]) == 3
    assert traces[0]["losses"] == traces[1]["losses"]  # the answers file never entered the judge


def test_the_labelled_judge_refuses_questions_without_answers_in_one_sentence(
    questions_only: Path, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "o"
    assert main(_prune(questions_only, out, "labels")) == 2
    err = capsys.readouterr().err
    assert "have none" in err and "--plan-search-answers teacher" in err and "Traceback" not in err
    assert not out.exists()


def test_evaluating_questions_without_answers_is_one_sentence(questions_only: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "eval.json"
    argv = ["evaluate", str(tiny_model_dir()), "--task", "vqa", "--data", str(questions_only), "--split", "train"]
    assert main([*argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "scoring vqa reads human answers" in err and "add their answers" in err
    assert "Traceback" not in err and not out.exists()


def test_recovery_on_labelled_questions_refuses_them_and_the_teacher_answers_them(questions_only: Path) -> None:
    captions = [PrefixLMSample(Path(f"{i}.png"), "", f"caption {i}") for i in range(4)]
    with pytest.raises(UserError, match="--answers teacher"):
        mix_vqa(captions, questions_only, "train", 0.5, seed=0)
    mixed = mix_vqa(captions, questions_only, "train", 0.5, seed=0, answer=lambda prompts: ["yes"] * len(prompts))
    answered = [s for s in mixed if s.text_input.startswith("Question:")]
    assert len(answered) == 2 and all(s.text_output == "yes" for s in answered)
