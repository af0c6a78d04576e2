"""Which images the examples page shows: the same few for every method, ratio and draw.

Why the first images of the evaluation rather than a random draw: the evaluation reads the first
records of each task (``--caption-limit`` images, ``--limit`` questions), so the first images are the
ones every evaluated model has outputs for, and the choice depends on nothing a method, ratio or
calibration seed changes. Images with both a caption and questions come first (they show most);
the others fill the sample only when those run out.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ukmp.data.index import load_task

#: the evaluation tasks whose outputs the page shows (retrieval ranks, it says nothing to show)
SHOWN_TASKS = ("caption", "vqa", "gqa")


@dataclass(frozen=True)
class Question:
    """One evaluated question about an image, with the human answers its score is measured against."""

    id: str
    task: str
    question: str
    answers: tuple[str, ...]


@dataclass(frozen=True)
class ImageItem:
    """One image of the sample: where it is, its reference captions and its evaluated questions."""

    id: str
    path: Path
    captions: tuple[str, ...]
    questions: tuple[Question, ...]


def image_sample(data_dir: Path, split: str, limits: dict[str, int | None], n: int) -> list[ImageItem]:
    """The first ``n`` evaluated images of ``split``: with a caption and questions first, in record order.

    ``limits`` are the evaluation's (task -> number of records read, None for all): only records the
    evaluation read can have outputs.
    """
    captions: dict[Path, tuple[str, tuple[str, ...]]] = {}
    questions: dict[Path, list[Question]] = {}
    order: list[Path] = []
    for task, limit in limits.items():
        if task not in SHOWN_TASKS:
            continue
        records = load_task(data_dir, split, task)
        used = records if limit is None else records[:limit]
        for record in used:
            path = Path(record.image_path)
            if path not in captions and path not in questions:
                order.append(path)
            if task == "caption":
                captions[path] = (str(record.image_id), tuple(record.references))
            else:
                asked = Question(str(record.question_id), task, record.question, tuple(record.answers))
                questions.setdefault(path, []).append(asked)
    full = [p for p in order if p in captions and p in questions]
    rest = [p for p in order if p not in full]
    chosen = (full + rest)[:n]
    return [
        ImageItem(
            id=captions[p][0] if p in captions else p.stem,
            path=p,
            captions=captions[p][1] if p in captions else (),
            questions=tuple(questions.get(p, ())),
        )
        for p in chosen
    ]
