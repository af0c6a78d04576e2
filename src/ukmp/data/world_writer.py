"""Write a split of the shapes world to disk in the formats of the real benchmarks.

The point is that the evaluation and calibration code reads the world through exactly the loaders
that read COCO/Karpathy, VQAv2 and LLaVA-CC595K, so the real-data path is the tested path. Files:

- `images/<split>/<image_id>.png`
- `captions_<split>.json`: Karpathy layout (`dataset_coco.json` style: images with sentences)
- `vqa_<split>_questions.json` and `vqa_<split>_annotations.json`: the official VQAv2 layout,
  10 human-style answers per question
- `cc595k_<split>.json`: LLaVA-CC595K `metadata.json` layout (id, image, caption, blip_caption)
- `ukmp_data.json`: an index naming, per split, each task's files, so `--data DIR` is enough

Each split is written to a temporary folder first and moved into place, so an interrupted run
never leaves half a split behind, and an existing split is only replaced with `overwrite=True`.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from tqdm import tqdm

from ukmp.atomic import write_json_atomic
from ukmp.data.alt_text import ALT_TEXT_SPLIT, alt_text_captions
from ukmp.data.shapes_world import SPLIT_SEEDS, captions, make_scene, questions, render
from ukmp.errors import UserError

INDEX_NAME = "ukmp_data.json"
INDEX_FORMAT = "ukmp-data-index/1"


def split_files(split: str) -> dict[str, dict[str, str]]:
    """The index entry of one split: which file serves which task."""
    return {
        "captions": {"format": "karpathy", "file": f"captions_{split}.json", "image_root": "."},
        "vqa": {
            "format": "vqav2",
            "questions": f"vqa_{split}_questions.json",
            "annotations": f"vqa_{split}_annotations.json",
            "image_root": f"images/{split}",
            "image_pattern": "{image_id}.png",
        },
        "calibration": {"format": "cc595k", "file": f"cc595k_{split}.json", "image_root": "."},
        "retrieval": {"format": "karpathy", "file": f"captions_{split}.json", "image_root": "."},
    }


def _write_json(path: Path, obj: object) -> None:
    with open(path, "w") as f:
        json.dump(obj, f, separators=(",", ":"))


def write_split(split: str, n: int, out_dir: str | Path, *, overwrite: bool = False) -> Path:
    """Generate `n` images of `split` with their captions and questions into `out_dir`."""
    if split not in SPLIT_SEEDS:
        raise UserError(f"unknown split {split!r}; choose one of {', '.join(SPLIT_SEEDS)}.")
    if n <= 0:
        raise UserError(f"--n must be a positive number of images, got {n}.")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    targets = [out / "images" / split, *(out / f for f in _split_file_names(split))]
    if any(t.exists() for t in targets) and not overwrite:
        raise UserError(f"split {split!r} already exists in {out}; pass --overwrite to replace it.")

    tmp = Path(tempfile.mkdtemp(prefix=f".{split}-", dir=out))
    try:
        image_dir = tmp / "images" / split
        image_dir.mkdir(parents=True)
        karpathy, vqa_q, vqa_a, cc = [], [], [], []
        sent_id = 0
        for index in tqdm(range(n), desc=f"shapes/{split}", unit="img"):
            scene = make_scene(split, index)
            image_id = scene.image_id
            file_name = f"{image_id}.png"
            render(scene).save(image_dir / file_name)
            caps = alt_text_captions(scene) if split == ALT_TEXT_SPLIT else captions(scene)
            sentences = []
            for text in caps:
                sentences.append(
                    {
                        "raw": text,
                        "tokens": text.replace(",", " ,").split(),
                        "imgid": index,
                        "sentid": sent_id,
                    }
                )
                sent_id += 1
            karpathy.append(
                {
                    "filepath": f"images/{split}",
                    "filename": file_name,
                    "imgid": index,
                    "cocoid": image_id,
                    "split": split,
                    "sentids": [s["sentid"] for s in sentences],
                    "sentences": sentences,
                    "objects": [o.__dict__ for o in scene.objects],
                }
            )
            for k, q in enumerate(questions(scene)):
                qid = image_id * 10 + k
                vqa_q.append({"image_id": image_id, "question": q.question, "question_id": qid})
                answer_type = "yes/no" if q.answer in ("yes", "no") else "number" if q.answer.isdigit() else "other"
                vqa_a.append(
                    {
                        "question_id": qid,
                        "image_id": image_id,
                        "question_type": q.qtype,
                        "answer_type": answer_type,
                        "multiple_choice_answer": q.answer,
                        "answers": [
                            {"answer": q.answer, "answer_confidence": "yes", "answer_id": j + 1} for j in range(10)
                        ],
                    }
                )
            cc.append(
                {
                    "id": f"{image_id}",
                    "image": f"images/{split}/{file_name}",
                    "caption": caps[0],
                    "blip_caption": caps[1 % len(caps)],
                }
            )
        _write_json(tmp / f"captions_{split}.json", {"dataset": "shapes", "images": karpathy})
        info = {"description": "ukmp shapes world", "version": "1"}
        _write_json(
            tmp / f"vqa_{split}_questions.json",
            {
                "info": info,
                "task_type": "Open-Ended",
                "data_type": "shapes",
                "data_subtype": split,
                "questions": vqa_q,
            },
        )
        _write_json(
            tmp / f"vqa_{split}_annotations.json",
            {"info": info, "data_type": "shapes", "data_subtype": split, "annotations": vqa_a},
        )
        _write_json(tmp / f"cc595k_{split}.json", cc)

        for t in targets:
            if t.is_dir():
                shutil.rmtree(t)
            elif t.exists():
                t.unlink()
        (out / "images").mkdir(exist_ok=True)
        os.replace(image_dir, out / "images" / split)
        for name in _split_file_names(split):
            os.replace(tmp / name, out / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    _update_index(out, split, n)
    return out


def _split_file_names(split: str) -> list[str]:
    return [
        f"captions_{split}.json",
        f"vqa_{split}_questions.json",
        f"vqa_{split}_annotations.json",
        f"cc595k_{split}.json",
    ]


def _update_index(out: Path, split: str, n: int) -> None:
    index_path = out / INDEX_NAME
    index = {"format": INDEX_FORMAT, "name": "shapes", "splits": {}}
    if index_path.exists():
        index = json.loads(index_path.read_text())
    index["splits"][split] = {"num_images": n, **split_files(split)}
    write_json_atomic(index_path, index, indent=2)
