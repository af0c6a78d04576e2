"""examples.md: the page's content for reading on a code host, which shows Markdown but not HTML files.

Markdown has no switch, so each ratio (and each draw) gets a section of its own with the same table
the HTML page shows when that ratio is chosen; the images are the files beside it.
"""

from __future__ import annotations

from html import escape

from ukmp.examples_page.document import (
    Column,
    Document,
    columns_at,
    dense_columns,
    draw_text,
    draws,
    ratio_text,
    ratios,
)
from ukmp.examples_page.table import column_note, item_rows, tally


def _cell(text: str) -> str:
    """``text`` safe inside a table cell: no pipes or line breaks to split it."""
    return text.replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def _table(doc: Document, columns: list[Column]) -> list[str]:
    first = ["prompt", "what followed"] if doc["kind"] == "text" else ["image", "", "reference"]
    names = []
    for col in columns:
        score = tally(doc, col)
        names.append(f"**{col['label']}** ({column_note(col)}{', ' + score if score else ''})")
    lines = ["| " + " | ".join(first + names) + " |", "|" + "---|" * (len(first) + len(names))]
    for item in doc["items"]:
        for n, row in enumerate(item_rows(doc, item)):
            lead = []
            if doc["kind"] != "text":
                image = ""
                if n == 0:
                    src, alt = escape(item["image"], quote=True), escape(f"image {item['id']}", quote=True)
                    image = f'<img src="{src}" width="96" alt="{alt}"><br>{item["id"]}'
                what = f"*{row.what}*" if row.kind == "caption" else row.what
                lead = [image, what]
            else:
                lead = [row.what]
            cells = [row.cells[c["key"]].shown for c in columns]
            lines.append("| " + " | ".join(_cell(t) for t in [*lead, row.reference, *cells]) + " |")
    return lines


def markdown_page(doc: Document) -> str:
    """The notes, then one table per ratio and draw: the dense model's column and every method's at that ratio."""
    lines = [f"# What pruning did: {doc['model']}", ""]
    for note in doc["notes"]:
        lines += [note, ""]
    found_draws = draws(doc)
    found_ratios = ratios(doc)
    if not found_ratios:
        lines += _table(doc, dense_columns(doc)) + [""]
    for ratio in found_ratios:
        for draw in found_draws:
            at = columns_at(doc, ratio, draw)
            if not at:
                continue
            title = f"## {ratio_text(ratio)} of the parameters removed"
            if len(found_draws) > 1:
                title += f" ({draw_text(draw)})"
            lines += [title, ""] + _table(doc, dense_columns(doc) + at) + [""]
    return "\n".join(lines)
