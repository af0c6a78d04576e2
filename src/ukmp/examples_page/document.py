"""examples.json: everything the examples page shows, as plain JSON, so the page can be rendered again.

Why a document between the evaluations and the page: ``ukmp compare`` writes it beside its results,
and ``ukmp report`` renders the page again from it (into its own folder) without reading every
evaluation file or the evaluation data. Its layout (format ``ukmp-examples/1``)::

    {"format": "ukmp-examples/1", "model": "shapes-blip2-t5", "kind": "image" | "text",
     "notes": ["which images, which draws ..."],
     "items": [  # kind image: one per image; the image file sits beside examples.json
        {"id": "20000000", "image": "examples/image-01.png", "captions": ["reference", ...],
         "questions": [{"id": "200000000", "task": "vqa", "question": "...", "answers": ["blue", ...]}]},
        # kind text: one per prompt
        {"id": "0", "prompt": "...", "reference": "the text that followed the prompt"}],
     "columns": [  # the dense model first; draw and ratio are null for it (it is shown at every ratio)
        {"key": "seed-0/ukmp-50", "label": "ukmp", "method": "ukmp", "ratio": 0.5, "achieved": 0.501,
         "draw": 0, "recovery": null,
         "outputs": {"20000000": {"caption": "...", "answers": {"200000000": {"answer": "red", "score": 0.0}}},
                     "0": {"continuation": "..."}}}]}

A score is the answer's accuracy against the reference answers (VQA accuracy, GQA exact match);
``mark`` turns it into right, partly right or wrong.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

FORMAT = "ukmp-examples/1"
Document = dict[str, Any]
Column = dict[str, Any]

RIGHT, PARTLY, WRONG, MISSING = "right", "partly", "wrong", "missing"
MARKS = {RIGHT: "✓", PARTLY: "~", WRONG: "✗", MISSING: ""}


def mark(score: float | None) -> str:
    """right (full credit), partly (VQA's partial credit), wrong (none), or missing (no answer kept)."""
    if score is None:
        return MISSING
    if score >= 1.0 - 1e-9:
        return RIGHT
    return WRONG if score <= 0.0 else PARTLY


def column(
    key: str,
    label: str,
    outputs: Mapping[str, Any],
    *,
    method: str | None = None,
    ratio: float | None = None,
    achieved: float | None = None,
    draw: int | None = None,
    recovery: str | None = None,
) -> Column:
    """One model's column; the dense model's has no method, ratio or draw."""
    return {
        "key": key,
        "label": label,
        "method": method,
        "ratio": ratio,
        "achieved": achieved,
        "draw": draw,
        "recovery": recovery,
        "outputs": dict(outputs),
    }


def document(
    model: str, kind: str, items: Sequence[Mapping[str, Any]], columns: Sequence[Column], notes: Sequence[str]
) -> Document:
    """The examples.json content."""
    return {
        "format": FORMAT,
        "model": model,
        "kind": kind,
        "notes": list(notes),
        "items": [dict(i) for i in items],
        "columns": list(columns),
    }


def ratios(doc: Document) -> list[float]:
    """The ratios the page can switch between, ascending."""
    return sorted({c["ratio"] for c in doc["columns"] if c["ratio"] is not None})


def draws(doc: Document) -> list[int | None]:
    """The draws the page can switch between, in the order they appear (one ``None`` when no column has one)."""
    found = list(dict.fromkeys(c["draw"] for c in doc["columns"] if c["ratio"] is not None))
    return found or [None]


def default_ratio(doc: Document) -> float | None:
    """The ratio shown first: the one closest to half the parameters removed (the paper's headline)."""
    found = ratios(doc)
    return min(found, key=lambda r: (abs(r - 0.5), -r)) if found else None


def dense_columns(doc: Document) -> list[Column]:
    return [c for c in doc["columns"] if c["ratio"] is None]


def columns_at(doc: Document, ratio: float, draw: int | None) -> list[Column]:
    """The pruned and recovered models at ``ratio`` in ``draw``, in document order."""
    return [c for c in doc["columns"] if c["ratio"] == ratio and c["draw"] == draw]


def ratio_text(ratio: float) -> str:
    """0.5 -> '50%'; 0.125 -> '12.5%'."""
    return f"{ratio * 100:.4g}%"


def plural(n: int, noun: str) -> str:
    """'1 image', '8 images'."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def draw_text(draw: int | None) -> str:
    return "one draw" if draw is None else f"seed {draw}"
