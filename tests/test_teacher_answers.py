"""Label-free recovery data: question prompts answered by the dense teacher, never by the labels."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval_tiny_model import tiny_model_dir
from ukmp.cli import main
from ukmp.data.calibration import load_calibration_samples
from ukmp.data.recovery_mix import Prompt, mix_questions, mix_vqa, read_prompts, split_questions
from ukmp.data.world_writer import write_split
from ukmp.errors import UserError
from ukmp.evaluation.generation import VQA_SETTINGS, generate_texts
from ukmp.loading import load_model
from ukmp.processors import load_processor
from ukmp.pruning import PruneConfig, prune
from ukmp.recovery.teacher_answers import teacher_answerer


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_split("train", 8, tmp_path_factory.mktemp("teacher-answers") / "data")


def test_question_prompts_carry_the_teachers_answers_not_the_labels(data: Path) -> None:
    teacher, processor = load_model(tiny_model_dir()), load_processor(tiny_model_dir())
    captions = load_calibration_samples(data, "train", seed=0)
    taught = mix_vqa(captions, data, "train", 0.5, seed=3, answer=teacher_answerer(teacher, processor, progress=False))
    labelled = mix_vqa(captions, data, "train", 0.5, seed=3)
    questions = [s for s in taught if s.text_input.startswith("Question: ")]
    assert len(questions) == 4
    # the same prompts in the same places, whoever answers them
    assert [(s.image_path, s.text_input) for s in taught] == [(s.image_path, s.text_input) for s in labelled]
    expected = generate_texts(
        teacher, processor, [s.image_path for s in questions], [s.text_input for s in questions], VQA_SETTINGS
    )
    assert [s.text_output for s in questions] == expected
    labels = {(p.image_path, p.text): label for p, label in split_questions(data, "train")}
    assert [s.text_output for s in questions] != [labels[(s.image_path, s.text_input)] for s in questions]


def test_only_the_chosen_prompts_are_answered(data: Path) -> None:
    pool = [Prompt(Path(f"{i}.png"), f"q{i}") for i in range(10)]
    asked: list[Prompt] = []

    def answer(prompts: list[Prompt]) -> list[str]:
        asked.extend(prompts)
        return [p.text.upper() for p in prompts]

    captions = load_calibration_samples(data, "train")[:4]
    mixed = mix_questions(captions, pool, 0.5, answer, seed=0)
    assert len(asked) == 2 and {s.text_output for s in mixed if s.text_input.startswith("q")} == {
        p.text.upper() for p in asked
    }


def test_a_prompts_file_is_read_and_its_mistakes_are_sentences(tmp_path: Path, data: Path) -> None:
    image = next((data / "images").rglob("*.png"))
    good = tmp_path / "prompts.jsonl"
    good.write_text(json.dumps({"image": str(image), "prompt": "Question: what is it? Short answer:"}) + "\n\n")
    assert read_prompts(good) == [Prompt(image, "Question: what is it? Short answer:")]
    for text, message in [
        ("not json\n", "line 1 is not a prompt"),
        (json.dumps({"image": str(image)}) + "\n", "line 1 is not a prompt"),
        (json.dumps({"image": "missing.png", "prompt": "x"}) + "\n", "which does not exist"),
        ("\n", "holds no prompts"),
    ]:
        bad = tmp_path / "bad.jsonl"
        bad.write_text(text)
        with pytest.raises(UserError, match=message):
            read_prompts(bad)


def test_recover_from_the_users_prompts_without_labels(tmp_path: Path, data: Path, capsys) -> None:
    pruned = tmp_path / "pruned"
    prune(PruneConfig(str(tiny_model_dir()), pruned, "magnitude", 0.3), verbose=False)
    prompts = tmp_path / "prompts.jsonl"
    images = sorted((data / "images").rglob("*.png"))[:4]
    prompts.write_text(
        "".join(json.dumps({"image": str(p), "prompt": "Question: what? Short answer:"}) + "\n" for p in images)
    )
    argv = ["recover", str(pruned), "--data", str(data), "--out", str(tmp_path / "rec"), "--batch-size", "2"]
    argv += ["--warmup-steps", "1", "--no-progress", "--threads", "1", "--vqa-fraction", "0.5"]
    assert main([*argv, "--answers", "teacher", "--prompts", str(prompts)]) == 0
    assert (tmp_path / "rec" / "adapter.safetensors").is_file()
    assert main([*argv, "--prompts", str(prompts), "--answers", "labels", "--overwrite"]) == 2
    assert "--answers teacher" in capsys.readouterr().err


def test_the_recovery_mix_does_not_depend_on_how_many_images_the_world_cache_holds(tmp_path, monkeypatch) -> None:
    """The shared cache may hold more images than a run asks for (an earlier, larger run wrote them)."""
    from ukmp.data.index import resolve_data_dir

    monkeypatch.setenv("UKMP_CACHE", str(tmp_path / "cache"))

    def mix() -> list:
        data = resolve_data_dir("shapes", "train", 6)
        captions = load_calibration_samples(data, "train", seed=0, pool=6)
        return mix_vqa(captions, data, "train", 0.5, seed=1, images=6)

    fresh = mix()
    resolve_data_dir("shapes", "train", 12)  # another run grows the cache
    assert mix() == fresh
