"""examples.html: one file that opens from disk in any browser, images embedded, no script and no server.

Why no script: the page must open from the file system anywhere (a results folder, an email, a CI
artifact), so everything it needs is in the file. The ratio (and draw) switch is plain HTML radio
buttons; CSS shows only the cells of the checked ratio and draw (``#ratio-1:checked ~ #draw-0:checked
~ table .r1.d0``), so every ratio's outputs are in the file and only one set shows at a time.
"""

from __future__ import annotations

import base64
import mimetypes
from html import escape
from pathlib import Path

from ukmp.examples_page.document import (
    MISSING,
    Document,
    columns_at,
    default_ratio,
    dense_columns,
    draw_text,
    draws,
    ratio_text,
    ratios,
)
from ukmp.examples_page.table import Row, column_note, item_rows, tally

STYLE = """
body { font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 1.2em; color: #1d232a; }
h1 { font-size: 1.35em; margin: 0 0 .4em; }
p.note { margin: .2em 0; color: #444; max-width: 70em; }
.legend span { margin-right: 1em; }
.switch-title { font-weight: 600; margin: 0 .4em 0 0; }
input.switch { position: absolute; opacity: 0; }
input.switch + label { display: inline-block; padding: .15em .7em; margin: .5em .25em .3em 0; border: 1px solid #8a96a3;
  border-radius: 4px; cursor: pointer; }
input.switch:checked + label { background: #24425f; border-color: #24425f; color: #fff; }
input.switch:focus-visible + label { outline: 2px solid #e08a00; }
table { border-collapse: collapse; margin-top: .6em; }
th, td { border: 1px solid #cfd6dd; padding: .25em .5em; vertical-align: top; text-align: left; }
thead th { background: #eef2f5; position: sticky; top: 0; }
thead th small { display: block; font-weight: normal; color: #555; }
tbody { border-top: 3px solid #8a96a3; }
td.image { background: #fafbfc; text-align: center; }
td.image img { width: 128px; height: auto; display: block; margin: 0 auto .2em; }
td.image img.small { image-rendering: pixelated; }
td.image small { color: #666; }
th.what { font-weight: normal; color: #333; background: #fafbfc; max-width: 16em; }
tr.caption th.what { font-style: italic; }
td.reference { background: #f4f8ee; }
td.dense { background: #f7f7fb; }
tr.caption td, tr.prompt td { max-width: 22em; }
td.right .mark { color: #1a7f37; }
td.partly { background: #fff8e1; }
td.partly .mark { color: #9a6700; font-weight: 600; }
td.wrong { background: #ffebe9; }
td.wrong .mark { color: #cf222e; font-weight: 700; }
td.missing { color: #999; }
.pick { display: none; }
"""


def _image_tag(root: Path, item: dict) -> str:
    """The item's image as a data URI (so the page is one file), or a link beside the page if it is not there."""
    alt = escape(f"image {item['id']}", quote=True)
    file = root / item["image"]
    if not file.is_file():
        return f'<img src="{escape(item["image"], quote=True)}" alt="{alt}">'
    mime = mimetypes.guess_type(file.name)[0] or "image/png"
    data = base64.b64encode(file.read_bytes()).decode("ascii")
    small = ""
    try:
        from PIL import Image

        with Image.open(file) as image:
            small = ' class="small"' if image.width < 128 else ""
    except OSError:
        pass
    return f'<img{small} src="data:{mime};base64,{data}" alt="{alt}">'


def _switches(doc: Document) -> tuple[list[str], list[str]]:
    """The radio buttons (siblings before the table, as the CSS needs) and the CSS rules that show a pick."""
    found_ratios, found_draws = ratios(doc), draws(doc)
    chosen = default_ratio(doc)
    html, css = [], []
    if found_ratios:
        html.append('<span class="switch-title">Ratio removed:</span>')
    for i, ratio in enumerate(found_ratios):
        checked = " checked" if ratio == chosen else ""
        html.append(f'<input type="radio" class="switch" name="ratio" id="ratio-{i}"{checked}>')
        html.append(f'<label for="ratio-{i}">{ratio_text(ratio)}</label>')
    if len(found_draws) > 1:
        html.append('<br><span class="switch-title">Calibration draw:</span>')
    for j, draw in enumerate(found_draws):
        checked = " checked" if j == 0 else ""
        hidden = "" if len(found_draws) > 1 else " hidden"
        html.append(f'<input type="radio" class="switch" name="draw" id="draw-{j}"{checked}{hidden}>')
        if len(found_draws) > 1:
            html.append(f'<label for="draw-{j}">{escape(draw_text(draw))}</label>')
        for i in range(len(found_ratios)):
            css.append(f"#ratio-{i}:checked ~ #draw-{j}:checked ~ table .pick.r{i}.d{j} {{ display: table-cell; }}")
    return html, css


def _picks(doc: Document) -> list[tuple[str, dict]]:
    """(CSS classes, column) of every switchable column: each ratio and draw's pruned and recovered models."""
    out = []
    for i, ratio in enumerate(ratios(doc)):
        for j, draw in enumerate(draws(doc)):
            out += [(f"pick r{i} d{j}", col) for col in columns_at(doc, ratio, draw)]
    return out


def _header(doc: Document, picks: list[tuple[str, dict]]) -> str:
    first = ["prompt", "what followed"] if doc["kind"] == "text" else ["image", "", "reference"]
    cells = [f"<th>{escape(name)}</th>" for name in first]
    for classes, col in [("dense", c) for c in dense_columns(doc)] + picks:
        score = tally(doc, col)
        note = column_note(col) + (f" · {score}" if score else "")
        cells.append(
            f'<th class="{classes}" data-model="{escape(col["key"], quote=True)}">{escape(col["label"])}'
            f"<small>{escape(note)}</small></th>"
        )
    return "<thead><tr>" + "".join(cells) + "</tr></thead>"


def _row(doc: Document, row: Row, picks: list[tuple[str, dict]], lead: str) -> str:
    attrs = (
        f' class="{row.kind}" data-{"question" if row.kind == "question" else "row"}="{escape(row.key, quote=True)}"'
    )
    cells = [lead]
    if row.kind == "prompt":
        cells.append(f'<td class="prompt">{escape(row.what)}</td>')
    else:
        cells.append(f'<th class="what">{escape(row.what)}</th>')
    title = ""
    if row.kind == "caption" and len(row.item.get("captions") or ()) > 1:
        title = f' title="{escape(" | ".join(row.item["captions"]), quote=True)}"'
    cells.append(f'<td class="reference"{title}>{escape(row.reference)}</td>')
    for classes, col in [("dense", c) for c in dense_columns(doc)] + picks:
        cell = row.cells[col["key"]]
        mark_class = f" {cell.mark}" if cell.mark else ""
        text = escape(cell.shown if cell.mark == MISSING else cell.display)
        mark = f' <span class="mark">{cell.sign}</span>' if cell.sign else ""
        cells.append(
            f'<td class="output {classes}{mark_class}" data-model="{escape(col["key"], quote=True)}">{text}{mark}</td>'
        )
    return f"<tr{attrs}>" + "".join(cells) + "</tr>"


def _body(doc: Document, root: Path, picks: list[tuple[str, dict]]) -> list[str]:
    out = []
    for item in doc["items"]:
        rows = list(item_rows(doc, item))
        out.append(f'<tbody data-item="{escape(item["id"], quote=True)}">')
        for n, row in enumerate(rows):
            lead = ""
            if doc["kind"] != "text" and n == 0:
                label = f"<small>{escape(item['id'])}</small>"
                lead = f'<td class="image" rowspan="{len(rows)}">{_image_tag(root, item)}{label}</td>'
            out.append(_row(doc, row, picks, lead))
        out.append("</tbody>")
    return out


def html_page(doc: Document, root: Path) -> str:
    """The page; ``root`` is the folder the document's image paths are relative to (they are embedded)."""
    title = f"What pruning did: {doc['model']}"
    switches, rules = _switches(doc)
    picks = _picks(doc)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title>",
        "<style>" + STYLE + "\n".join(rules) + "\n</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        *[f'<p class="note">{escape(note)}</p>' for note in doc["notes"]],
        *switches,
        "<table>",
        _header(doc, picks),
        *_body(doc, root, picks),
        "</table>",
        "</body></html>",
        "",
    ]
    return "\n".join(parts)
