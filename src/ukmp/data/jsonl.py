"""A generic format for your own data: a folder of images plus one JSON object per line.

Captions: `{"image": "rel/path.jpg", "caption": "..."}` (or `"captions": [...]`; lines naming the
same image are merged into one image with all their references). VQA: `{"image": ..., "question":
..., "answers": [...]}` (or a single `"answer"`, or none: a question alone serves the label-free
uses; optional `question_id`, `question_type`, `answer_type`). Calibration pairs: `{"image": ...,
"caption": ...}`. Image paths are relative to `image_root`, which defaults to the JSONL file's folder.
Record indices count non-blank lines from 0.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ukmp.data.reading import RecordCollector, need, reason
from ukmp.data.records import CaptionRecord, Records, TextPair, VQARecord
from ukmp.errors import UserError


def _lines(path: Path, out: RecordCollector) -> Iterator[tuple[int, str, Any]]:
    """(index, label, parsed object) per non-blank line; unparsable lines are reported as bad records."""
    if not path.is_file():
        raise UserError(f"dataset file {path} does not exist; check the path (or the index in ukmp_data.json).")
    try:
        with open(path, encoding="utf-8") as f:
            lines = [(n, line) for n, line in enumerate(f, start=1) if line.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read dataset file {path} ({exc}); check its permissions and encoding.") from exc
    for index, (line_no, line) in enumerate(lines):
        label = f"{index} (line {line_no})"
        try:
            yield index, label, json.loads(line)
        except json.JSONDecodeError as exc:
            out.bad(label, f"is not valid JSON ({exc.msg})")


def _root(path: Path, image_root: str | Path | None) -> Path:
    return path.parent if image_root is None else Path(image_root)


def load_jsonl_captions(
    path: str | Path, image_root: str | Path | None = None, *, on_error: str = "stop"
) -> Records[CaptionRecord]:
    """Images with their captions, merged per image in first-seen order."""
    path = Path(path)
    out: RecordCollector[CaptionRecord] = RecordCollector(path, on_error)
    root = _root(path, image_root)
    refs: dict[str, list[str]] = {}
    ids: dict[str, int | str] = {}
    for _, label, obj in _lines(path, out):
        try:
            image = need(obj, "image")
            if "captions" in obj:
                caps = [c for c in need(obj, "captions", list) if isinstance(c, str)]
                if not caps:
                    raise ValueError("has an empty or non-text 'captions' list")
            else:
                caps = [need(obj, "caption")]
        except (KeyError, TypeError, ValueError) as exc:
            out.bad(label, reason(exc))
            continue
        if not out.image_exists(root / image, label):
            continue
        refs.setdefault(image, []).extend(caps)
        ids.setdefault(image, obj.get("image_id", image))
    for image, caps in refs.items():
        out.add(CaptionRecord(root / image, ids[image], tuple(caps)))
    return out.finish()


def load_jsonl_vqa(
    path: str | Path, image_root: str | Path | None = None, *, on_error: str = "stop"
) -> Records[VQARecord]:
    """Questions with their answers (or none); `question_id` defaults to the record index."""
    path = Path(path)
    out: RecordCollector[VQARecord] = RecordCollector(path, on_error)
    root = _root(path, image_root)
    for number, label, obj in _lines(path, out):
        try:
            image = need(obj, "image")
            question = need(obj, "question")
            if "answers" in obj:
                answers = tuple(a if isinstance(a, str) else need(a, "answer") for a in need(obj, "answers", list))
                if not answers:
                    raise ValueError("has an empty 'answers' list")
            else:  # a question without an answer serves the label-free uses (see `ukmp.data.vqa`)
                answers = (need(obj, "answer"),) if "answer" in obj else ()
        except (KeyError, TypeError, ValueError) as exc:
            out.bad(label, reason(exc))
            continue
        if out.image_exists(root / image, label):
            out.add(
                VQARecord(
                    root / image,
                    obj.get("question_id", number),
                    question,
                    answers,
                    str(obj.get("question_type", "")),
                    str(obj.get("answer_type", "")),
                )
            )
    return out.finish()


def load_jsonl_pairs(
    path: str | Path, image_root: str | Path | None = None, *, on_error: str = "stop"
) -> Records[TextPair]:
    """One (image, caption) pair per line, for calibration or recovery."""
    path = Path(path)
    out: RecordCollector[TextPair] = RecordCollector(path, on_error)
    root = _root(path, image_root)
    for _, label, obj in _lines(path, out):
        try:
            image, caption = need(obj, "image"), need(obj, "caption")
        except (KeyError, TypeError) as exc:
            out.bad(label, reason(exc))
            continue
        if out.image_exists(root / image, label):
            out.add(TextPair(root / image, caption))
    return out.finish()
