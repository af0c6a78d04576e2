"""The rows and cells the examples page shows, shared by the HTML and the Markdown renderings.

Why one place: both renderings must show the same content (the Markdown one is for reading on a code
host, where HTML files are not displayed), so what goes in a row and in a cell, and how an answer
is marked, is decided here once; the renderers only lay it out.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ukmp.examples_page.document import MARKS, MISSING, Column, Document, mark, ratio_text

EMPTY = "(empty)"


@dataclass(frozen=True)
class Cell:
    """One model's output in one row: its text and its mark (right, partly, wrong, missing or '' for free text)."""

    text: str
    mark: str = ""

    @property
    def display(self) -> str:
        """The text as shown: an empty output says so rather than leaving the cell blank."""
        return self.text if self.text.strip() else EMPTY

    @property
    def sign(self) -> str:
        """✓, ~ or ✗ for a scored answer; nothing for free text or an output not kept."""
        return "" if self.mark == MISSING else MARKS.get(self.mark, "")

    @property
    def shown(self) -> str:
        """The text with its sign, or a dash for an output the evaluation did not keep."""
        if self.mark == MISSING:
            return "–"
        return f"{self.display} {self.sign}" if self.sign else self.display


@dataclass(frozen=True)
class Row:
    """One line of an item: what it is about (caption, a question, a prompt), the reference and one cell per column."""

    item: dict[str, Any]
    kind: str  # "caption", "question" or "prompt"
    what: str
    reference: str
    key: str  # the question id, or the item id for a caption or a prompt
    cells: dict[str, Cell]  # column key -> cell


def reference_answer(answers: Sequence[str]) -> str:
    """The answer most annotators gave (the first of those tied)."""
    return Counter(answers).most_common(1)[0][0] if answers else ""


def _output(col: Column, item_id: str) -> dict[str, Any]:
    return col["outputs"].get(item_id) or {}


def item_rows(doc: Document, item: dict[str, Any]) -> Iterator[Row]:
    """An image's caption row and one row per question, or a prompt's one row."""
    columns = doc["columns"]
    if doc["kind"] == "text":
        cells = {}
        for col in columns:
            text = _output(col, item["id"]).get("continuation")
            cells[col["key"]] = Cell("", MISSING) if text is None else Cell(text)
        yield Row(item, "prompt", item["prompt"], item["reference"], item["id"], cells)
        return
    if item.get("captions"):
        cells = {}
        for col in columns:
            text = _output(col, item["id"]).get("caption")
            cells[col["key"]] = Cell("", MISSING) if text is None else Cell(text)
        yield Row(item, "caption", "caption", item["captions"][0], item["id"], cells)
    for q in item.get("questions") or ():
        cells = {}
        for col in columns:
            given = (_output(col, item["id"]).get("answers") or {}).get(q["id"]) or {}
            answer = given.get("answer")
            cells[col["key"]] = Cell("", MISSING) if answer is None else Cell(answer, mark(given.get("score")))
        yield Row(item, "question", q["question"], reference_answer(q["answers"]), q["id"], cells)


def tally(doc: Document, col: Column) -> str:
    """'✓ 41 of 48' (answers fully right on the sample), '' for a page without questions."""
    marks = [
        row.cells[col["key"]].mark for item in doc["items"] for row in item_rows(doc, item) if row.kind == "question"
    ]
    kept = [m for m in marks if m != MISSING]
    if not kept:
        return ""
    return f"{MARKS['right']} {sum(m == 'right' for m in kept)} of {len(kept)}"


def column_note(col: Column) -> str:
    """What sits under a column's name: how much it removed (achieved) and its draw."""
    if col["ratio"] is None:
        return "not pruned"
    achieved = col.get("achieved")
    note = f"{ratio_text(achieved if achieved is not None else col['ratio'])} removed"
    return note if col["draw"] is None else f"{note}, seed {col['draw']}"
