"""One model's outputs on the sample, read from its evaluation results, each answer scored.

Why scores are computed here and not read from the evaluation: the evaluation keeps each answer
(``predictions``) but only the task's mean accuracy; the page needs the per-question verdict, and it
is the same metric the evaluation averages (VQA accuracy against the human answers, GQA exact
match), so right and wrong on the page agree with the accuracy in the tables.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ukmp.evaluation.vqa_metric import exact_match, vqa_accuracy
from ukmp.examples_page.sample import ImageItem, Question


def answer_score(question: Question, answer: str | None) -> float | None:
    """The answer's accuracy in [0, 1] by its task's metric; None when no answer was kept."""
    if answer is None:
        return None
    if question.task == "gqa":
        return exact_match(answer, question.answers[0])
    return vqa_accuracy(answer, question.answers)


def _predictions(result: Mapping[str, Any], task: str) -> Mapping[str, str]:
    return ((result.get("tasks") or {}).get(task) or {}).get("predictions") or {}


def image_outputs(result: Mapping[str, Any], items: Sequence[ImageItem]) -> dict[str, dict[str, Any]]:
    """item id -> {"caption": text or None, "answers": {question id: {"answer", "score"}}} of one evaluation."""
    captions = _predictions(result, "caption")
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        answers = {}
        for q in item.questions:
            answer = _predictions(result, q.task).get(q.id)
            answers[q.id] = {"answer": answer, "score": answer_score(q, answer)}
        out[item.id] = {"caption": captions.get(item.id) if item.captions else None, "answers": answers}
    return out


def missing_outputs(result: Mapping[str, Any], tasks: Sequence[str]) -> list[str]:
    """The tasks of ``tasks`` the evaluation ran without keeping their outputs (an evaluation made before it did)."""
    ran = result.get("tasks") or {}
    return [t for t in tasks if t in ran and "predictions" not in ran[t]]
