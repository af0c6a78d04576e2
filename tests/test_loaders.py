"""The loaders read the generated world and tiny files in each real dataset's own layout.

The world is read through exactly the loaders (and the `ukmp_data.json` index) that read COCO,
VQAv2 and CC595K, and each real format gets a hand-written miniature; errors name the file and the
record index, and skip mode counts what it dropped.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from PIL import Image

from ukmp.cli import main
from ukmp.data.captions import load_karpathy_captions, load_nocaps
from ukmp.data.cc595k import load_cc595k
from ukmp.data.flickr import load_flickr30k_retrieval
from ukmp.data.index import available_tasks, load_task, resolve_data_dir
from ukmp.data.jsonl import load_jsonl_captions, load_jsonl_pairs, load_jsonl_vqa
from ukmp.data.prefix_lm import clean_caption, prefix_lm_samples
from ukmp.data.records import TextPair
from ukmp.data.shapes_world import QUESTION_TYPES
from ukmp.data.vqa import OKVQA_ANNOTATIONS, OKVQA_QUESTIONS, load_gqa, load_okvqa, load_vqav2
from ukmp.data.world_writer import write_split
from ukmp.errors import UserError

N_IMAGES = 6


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_split("val", N_IMAGES, tmp_path_factory.mktemp("world"))


def _image(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), (200, 10, 10)).save(path)
    return path


def _json(path: Path, obj: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))
    return path


# --- the generated world, read by the real-dataset loaders --------------------------------------


def test_world_through_the_index(world: Path) -> None:
    assert available_tasks(world, "val") == ["caption", "vqa", "retrieval", "calibration"]
    karpathy = json.loads((world / "captions_val.json").read_text())["images"]
    captions = load_task(world, "val", "caption")
    assert len(captions) == N_IMAGES
    assert [list(r.references) for r in captions] == [[s["raw"] for s in im["sentences"]] for im in karpathy]
    assert all(r.image_path.is_file() for r in captions)
    assert len(load_task(world, "val", "retrieval")) == N_IMAGES

    questions = json.loads((world / "vqa_val_questions.json").read_text())["questions"]
    vqa = load_task(world, "val", "vqa")
    assert [r.question for r in vqa] == [q["question"] for q in questions]
    assert all(len(r.answers) == 10 for r in vqa)
    assert {r.question_type for r in vqa} <= set(QUESTION_TYPES)
    assert {r.answer_type for r in vqa} <= {"yes/no", "number", "other"}

    pairs = load_task(world, "val", "calibration")
    cc = json.loads((world / "cc595k_val.json").read_text())
    assert [p.caption for p in pairs] == [r["blip_caption"] for r in cc]


def test_world_with_the_loaders_directly(world: Path) -> None:
    assert len(load_karpathy_captions(world / "captions_val.json", world, split="val")) == N_IMAGES
    with pytest.raises(UserError, match="no usable records"):
        load_karpathy_captions(world / "captions_val.json", world, split="test")
    vqa = load_vqav2(
        world / "vqa_val_questions.json",
        world / "vqa_val_annotations.json",
        world / "images/val",
        image_pattern="{image_id}.png",
    )
    assert len(vqa) > N_IMAGES
    assert len(load_cc595k(world / "cc595k_val.json", world)) == N_IMAGES


def test_data_command_and_shapes_cache(tmp_path: Path, monkeypatch, capsys) -> None:
    assert main(["data", "shapes", "--split", "heldout", "--n", "2", "--out", str(tmp_path / "d")]) == 0
    out = capsys.readouterr().out
    assert "2 images" in out and str(tmp_path / "d") in out and "ukmp_data.json" in out
    assert main(["data", "shapes", "--split", "heldout", "--n", "2", "--out", str(tmp_path / "d")]) == 2
    assert "--overwrite" in capsys.readouterr().err

    monkeypatch.setenv("UKMP_CACHE", str(tmp_path / "cache"))
    root = resolve_data_dir("shapes", "test", n_default=2)
    assert root == tmp_path / "cache" / "shapes"
    assert len(load_task(root, "test", "caption")) == 2
    assert resolve_data_dir("shapes", "test", n_default=1) == root  # big enough: reused as it is
    assert len(load_task(root, "test", "caption")) == 2
    assert resolve_data_dir("shapes", "test", n_default=3) == root  # too small: regenerated larger
    assert len(load_task(root, "test", "caption")) == 3


# --- miniatures of the real datasets ------------------------------------------------------------


def test_coco_karpathy_and_flickr(tmp_path: Path) -> None:
    _image(tmp_path / "coco/val2014/COCO_val2014_000000000001.jpg")
    _image(tmp_path / "coco/train2014/COCO_train2014_000000000002.jpg")
    coco = _json(
        tmp_path / "dataset_coco.json",
        {
            "images": [
                {
                    "filepath": "val2014",
                    "filename": "COCO_val2014_000000000001.jpg",
                    "cocoid": 1,
                    "split": "test",
                    "sentences": [{"raw": "A dog."}, {"raw": "A brown dog."}],
                },
                {
                    "filepath": "train2014",
                    "filename": "COCO_train2014_000000000002.jpg",
                    "cocoid": 2,
                    "split": "train",
                    "sentences": [{"raw": "A cat."}],
                },
            ]
        },
    )
    test = load_karpathy_captions(coco, tmp_path / "coco", split="test")
    assert [(r.image_id, r.references) for r in test] == [(1, ("A dog.", "A brown dog."))]
    assert len(load_karpathy_captions(coco, tmp_path / "coco")) == 2

    _image(tmp_path / "flickr30k-images/10.jpg")
    _image(tmp_path / "flickr30k-images/11.jpg")
    flickr = _json(
        tmp_path / "dataset_flickr30k.json",
        {
            "images": [
                {
                    "filename": "10.jpg",
                    "imgid": 0,
                    "split": "test",
                    "sentences": [{"raw": f"c{i}"} for i in range(5)],
                },
                {"filename": "11.jpg", "imgid": 1, "split": "train", "sentences": [{"raw": "x"}]},
            ]
        },
    )
    records = load_flickr30k_retrieval(flickr, tmp_path / "flickr30k-images")
    assert len(records) == 1 and len(records[0].references) == 5
    assert records[0].image_path == tmp_path / "flickr30k-images/10.jpg"


def test_nocaps(tmp_path: Path) -> None:
    _image(tmp_path / "nocaps/0013ea2087020901.jpg")
    path = _json(
        tmp_path / "nocaps_val_4500_captions.json",
        {
            "images": [{"id": 0, "file_name": "0013ea2087020901.jpg", "domain": "in-domain"}],
            "annotations": [{"image_id": 0, "caption": f"caption {i}", "id": i} for i in range(10)],
        },
    )
    (record,) = load_nocaps(path, tmp_path / "nocaps")
    assert record.image_id == 0 and len(record.references) == 10


def test_okvqa_and_gqa(tmp_path: Path) -> None:
    _image(tmp_path / "val2014/COCO_val2014_000000000042.jpg")
    q = _json(
        tmp_path / OKVQA_QUESTIONS,
        {"questions": [{"image_id": 42, "question": "What sport?", "question_id": 420}]},
    )
    answers = [
        {"answer_id": i + 1, "raw_answer": "Tennis", "answer": "tennis", "answer_confidence": "yes"} for i in range(10)
    ]
    a = _json(
        tmp_path / OKVQA_ANNOTATIONS,
        {
            "annotations": [
                {
                    "question_id": 420,
                    "image_id": 42,
                    "question_type": "eight",
                    "answer_type": "other",
                    "answers": answers,
                }
            ]
        },
    )
    (record,) = load_okvqa(q, a, tmp_path / "val2014")
    assert record.answers == ("tennis",) * 10 and record.question_type == "eight"
    assert record.image_path.name == "COCO_val2014_000000000042.jpg"

    _image(tmp_path / "gqa/images/n161313.jpg")
    gqa = _json(
        tmp_path / "testdev_balanced_questions.json",
        {
            "20968790": {
                "imageId": "n161313",
                "question": "Is it a dog?",
                "answer": "no",
                "fullAnswer": "No.",
                "types": {"structural": "verify", "semantic": "obj", "detailed": "existC"},
            },
        },
    )
    (record,) = load_gqa(gqa, tmp_path / "gqa/images")
    assert (record.question_id, record.answers, record.question_type) == ("20968790", ("no",), "verify")


def test_jsonl_formats(tmp_path: Path) -> None:
    _image(tmp_path / "imgs/a.png")
    _image(tmp_path / "imgs/b.png")
    caps = tmp_path / "caps.jsonl"
    caps.write_text(
        '{"image": "imgs/a.png", "caption": "one"}\n\n{"image": "imgs/b.png", "captions": ["x", "y"]}\n'
        '{"image": "imgs/a.png", "caption": "two"}\n'
    )
    records = load_jsonl_captions(caps)
    assert [(r.image_path.name, r.references) for r in records] == [
        ("a.png", ("one", "two")),
        ("b.png", ("x", "y")),
    ]
    vqa = tmp_path / "vqa.jsonl"
    vqa.write_text(
        '{"image": "imgs/a.png", "question": "color?", "answers": ["red", "red"]}\n'
        '{"image": "imgs/b.png", "question": "shape?", "answer": "circle", "question_type": "shape"}\n'
    )
    v = load_jsonl_vqa(vqa)
    assert [(r.question_id, r.answers, r.question_type) for r in v] == [
        (0, ("red", "red"), ""),
        (1, ("circle",), "shape"),
    ]
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text('{"image": "a.png", "caption": "one"}\n')
    assert load_jsonl_pairs(pairs, tmp_path / "imgs") == [TextPair(tmp_path / "imgs/a.png", "one")]


def test_real_formats_through_an_index(tmp_path: Path) -> None:
    _image(tmp_path / "images/n1.jpg")
    _json(tmp_path / "gqa.json", {"1": {"imageId": "n1", "question": "q?", "answer": "yes"}})
    _json(tmp_path / "cc.json", [{"id": "1", "image": "n1.jpg", "caption": "raw", "blip_caption": ""}])
    _json(
        tmp_path / "ukmp_data.json",
        {
            "format": "ukmp-data-index/1",
            "splits": {
                "testdev": {
                    "gqa": {"format": "gqa", "file": "gqa.json", "image_root": "images"},
                    "calibration": {"format": "cc595k", "file": "cc.json", "image_root": "images"},
                }
            },
        },
    )
    assert available_tasks(tmp_path, "testdev") == ["gqa", "calibration"]
    assert load_task(tmp_path, "testdev", "gqa")[0].answers == ("yes",)
    assert load_task(tmp_path, "testdev", "calibration")[0].caption == "raw"  # empty blip_caption falls back
    with pytest.raises(UserError, match="no caption data"):
        load_task(tmp_path, "testdev", "caption")
    with pytest.raises(UserError, match="has no 'val' split"):
        load_task(tmp_path, "val", "gqa")


# --- errors: path and record index, stop or skip-and-count ---------------------------------------


def _three_images(tmp_path: Path, break_record: dict | None = None, missing: bool = False) -> Path:
    images = []
    for i in range(3):
        if not (missing and i == 1):
            _image(tmp_path / f"im{i}.png")
        images.append({"filename": f"im{i}.png", "imgid": i, "sentences": [{"raw": f"caption {i}"}]})
    if break_record is not None:
        images[1] = break_record
    return _json(tmp_path / "dataset_coco.json", {"images": images})


def test_missing_image_names_file_and_record(tmp_path: Path) -> None:
    path = _three_images(tmp_path, missing=True)
    with pytest.raises(UserError) as err:
        load_karpathy_captions(path, tmp_path)
    message = str(err.value)
    assert "record 1 of" in message and str(path) in message and str(tmp_path / "im1.png") in message
    assert "--on-error skip" in message


def test_malformed_record_names_index_and_skip_counts(tmp_path: Path, caplog) -> None:
    path = _three_images(tmp_path, break_record={"filename": "im1.png", "imgid": 1})
    with pytest.raises(UserError, match=r"record 1 of .*dataset_coco\.json has no 'sentences' field"):
        load_karpathy_captions(path, tmp_path)
    with caplog.at_level(logging.WARNING, logger="ukmp.data"):
        records = load_karpathy_captions(path, tmp_path, on_error="skip")
    assert [r.image_id for r in records] == [0, 2]
    assert len(records.skipped) == 1 and "record 1" in records.skipped[0]
    assert "skipped 1 of 3 records" in caplog.text


def test_skip_mode_for_missing_images_and_bad_jsonl_lines(tmp_path: Path) -> None:
    records = load_karpathy_captions(_three_images(tmp_path, missing=True), tmp_path, on_error="skip")
    assert len(records) == 2 and len(records.skipped) == 1
    _image(tmp_path / "a.png")
    bad = tmp_path / "vqa.jsonl"
    bad.write_text('{"image": "a.png", "question": "q", "answer": "x"}\n{not json\n{"image": "a.png"}\n')
    with pytest.raises(UserError, match=r"record 1 \(line 2\) of .*vqa\.jsonl is not valid JSON"):
        load_jsonl_vqa(bad)
    kept = load_jsonl_vqa(bad, on_error="skip")
    assert len(kept) == 1 and len(kept.skipped) == 2


def test_unreadable_files_and_bad_options(tmp_path: Path) -> None:
    (tmp_path / "broken.json").write_text('{"images": [')
    with pytest.raises(UserError, match=r"broken\.json is not valid JSON"):
        load_karpathy_captions(tmp_path / "broken.json", tmp_path)
    with pytest.raises(UserError, match="does not exist"):
        load_nocaps(tmp_path / "nope.json", tmp_path)
    with pytest.raises(UserError, match="not a NoCaps caption file"):
        load_nocaps(_json(tmp_path / "x.json", {"images": []}), tmp_path)
    with pytest.raises(UserError, match="on_error"):
        load_cc595k(tmp_path / "x.json", tmp_path, on_error="ignore")
    with pytest.raises(UserError, match="does not exist"):
        resolve_data_dir(tmp_path / "missing", "val")
    with pytest.raises(UserError, match="no ukmp_data.json"):
        resolve_data_dir(tmp_path, "val")


# --- prefix-LM calibration samples ---------------------------------------------------------------


def test_clean_caption() -> None:
    assert clean_caption("A Red, circle; left of: the SQUARE!") == "a red circle left of the square"
    assert len(clean_caption(" ".join(["w"] * 80)).split()) == 50


def test_prefix_lm_split_is_seeded_and_in_range() -> None:
    pairs = [TextPair(Path(f"{i}.png"), " ".join(f"w{j}" for j in range(2 + i % 9))) for i in range(40)]
    first = prefix_lm_samples(pairs, seed=42)
    assert first == prefix_lm_samples(pairs, seed=42)
    assert first != prefix_lm_samples(pairs, seed=7)
    assert first[5:] == prefix_lm_samples(pairs, seed=42)[5:]  # each sample depends on (seed, index) only
    for pair, sample in zip(pairs, first, strict=True):
        n = len(pair.caption.split())
        k = len(sample.text_input.split())
        assert 1 <= k <= n // 2
        assert f"{sample.text_input} {sample.text_output}" == pair.caption
    ks = {len(s.text_input.split()) for p, s in zip(pairs, first, strict=True) if len(p.caption.split()) == 10}
    assert len(ks) > 1  # the split point varies
    (one,) = prefix_lm_samples([TextPair(Path("x.png"), "Circle.")])
    assert (one.text_input, one.text_output) == ("", "circle")
