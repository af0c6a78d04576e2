"""VQA datasets: VQAv2 and OK-VQA (official question + annotation files), and GQA balanced testdev.

VQAv2 and OK-VQA share the official layout: a questions file (`questions[{image_id, question,
question_id}]`) and an annotations file (`annotations[{question_id, image_id, question_type,
answer_type, answers[{answer}]}]`, 10 human answers per question); without the annotations file the
questions load with no answers, which is all a label-free use needs (the dense model answers them:
`--plan-search-answers teacher`, `ukmp recover --answers teacher`). Neither names the image file, so
the path comes from `image_id` through a pattern (COCO val2014: `COCO_val2014_{image_id:012d}.jpg`;
the shapes world: `{image_id}.png`). GQA's `testdev_balanced_questions.json` is one object keyed by
question id, each with `imageId`, `question` and a single `answer`; images are `<imageId>.jpg`.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ukmp.data.reading import RecordCollector, check_on_error, layout_error, need, read_json, reason
from ukmp.data.records import Records, VQARecord
from ukmp.errors import UserError

COCO_VAL2014_PATTERN = "COCO_val2014_{image_id:012d}.jpg"
OKVQA_QUESTIONS = "OpenEnded_mscoco_val2014_questions.json"
OKVQA_ANNOTATIONS = "mscoco_val2014_annotations.json"


def load_vqav2(
    questions_path: str | Path,
    annotations_path: str | Path | None,
    image_root: str | Path,
    *,
    image_pattern: str = COCO_VAL2014_PATTERN,
    on_error: str = "stop",
) -> Records[VQARecord]:
    """Questions joined with their annotations (by `question_id`), in the questions file's order.

    With ``annotations_path=None`` every question loads with no answers (see the module docstring).
    """
    check_on_error(on_error)
    questions = read_json(questions_path)
    if not isinstance(questions, dict) or not isinstance(questions.get("questions"), list):
        raise layout_error(questions_path, "VQA questions", "no top-level 'questions' list")
    out: RecordCollector[VQARecord] = RecordCollector(questions_path, on_error)
    by_qid = {} if annotations_path is None else _answers_by_question(annotations_path, on_error, out)
    root = Path(image_root)
    for index, q in enumerate(questions["questions"]):
        try:
            qid = need(q, "question_id", (int, str))
            image_id = need(q, "image_id", (int, str))
            text = need(q, "question")
            ann = by_qid.get(qid) if annotations_path is not None else _UNANSWERED
            if ann is None:
                raise KeyError(f"has question_id {qid!r}, which has no entry in {annotations_path}")
            image_path = root / image_pattern.format(image_id=image_id)
        except (KeyError, TypeError, ValueError) as exc:
            out.bad(index, reason(exc))
            continue
        if out.image_exists(image_path, index):
            out.add(VQARecord(image_path, qid, text, ann["answers"], ann["question_type"], ann["answer_type"]))
    return out.finish()


_UNANSWERED = {"answers": (), "question_type": "", "answer_type": ""}


def require_answers(records: Iterable[VQARecord], source: str, use: str, fix: str) -> None:
    """One sentence when a use that reads human answers meets questions loaded without them."""
    missing = sum(1 for record in records if not record.answers)
    if missing:
        raise UserError(f"{use} reads human answers, but {missing} of the questions in {source} have none; {fix}")


def _answers_by_question(
    annotations_path: str | Path, on_error: str, out: RecordCollector[VQARecord]
) -> dict[int | str, dict]:
    """An annotations file's answers and types by `question_id`; its bad records join `out`'s skipped ones."""
    annotations = read_json(annotations_path)
    if not isinstance(annotations, dict) or not isinstance(annotations.get("annotations"), list):
        raise layout_error(annotations_path, "VQA annotations", "no top-level 'annotations' list")
    by_qid: dict[int | str, dict] = {}
    ann_errors: RecordCollector[None] = RecordCollector(annotations_path, on_error)
    for index, ann in enumerate(annotations["annotations"]):
        try:
            qid = need(ann, "question_id", (int, str))
            answers = tuple(need(a, "answer") for a in need(ann, "answers", list))
            if not answers:
                raise ValueError("has an empty 'answers' list")
            by_qid[qid] = {
                "answers": answers,
                "question_type": str(ann.get("question_type", "")),
                "answer_type": str(ann.get("answer_type", "")),
            }
        except (KeyError, TypeError, ValueError) as exc:
            ann_errors.bad(index, reason(exc))
    out.skipped.extend(ann_errors.skipped)
    return by_qid


def load_okvqa(
    questions_path: str | Path,
    annotations_path: str | Path,
    image_root: str | Path,
    *,
    image_pattern: str = COCO_VAL2014_PATTERN,
    on_error: str = "stop",
) -> Records[VQARecord]:
    """OK-VQA (val2014 = its test set): the VQAv2 layout, with `OKVQA_QUESTIONS`/`OKVQA_ANNOTATIONS` files.

    Its annotations carry both `raw_answer` and the normalised `answer`; like the official scorer
    we read `answer`. LAVIS additionally lemmatises predictions for OK-VQA; ukmp does not.
    """
    return load_vqav2(questions_path, annotations_path, image_root, image_pattern=image_pattern, on_error=on_error)


def load_gqa(path: str | Path, image_root: str | Path, *, on_error: str = "stop") -> Records[VQARecord]:
    """GQA balanced questions (testdev in the paper): one answer each, structural type as question_type.

    `answer_type` holds GQA's semantic type (attr, rel, obj, cat, global), so the harness's
    per-type breakdowns work for GQA as they do for VQAv2.
    """
    check_on_error(on_error)
    data = read_json(path)
    if not isinstance(data, dict):
        raise layout_error(path, "GQA questions", "the top level is not an object keyed by question id")
    out: RecordCollector[VQARecord] = RecordCollector(path, on_error)
    root = Path(image_root)
    for qid, q in data.items():
        try:
            image_id = need(q, "imageId", (str, int))
            text = need(q, "question")
            answer = need(q, "answer")
            types = q.get("types") if isinstance(q.get("types"), dict) else {}
        except (KeyError, TypeError) as exc:
            out.bad(qid, reason(exc))
            continue
        image_path = root / f"{image_id}.jpg"
        if out.image_exists(image_path, qid):
            record = VQARecord(
                image_path,
                qid,
                text,
                (answer,),
                str(types.get("structural", "")),
                str(types.get("semantic", "")),
            )
            out.add(record)
    return out.finish()
