"""The examples document of a ``ukmp compare`` run, from the evaluations it ran anyway.

Every evaluation of a compare run keeps each caption and answer in ``OUT/evals/<name>.json``; this
reads those of the dense model and of every row (pruned, and recovered where it was) for the sample
of images (``sample.image_sample``). Over ``--seeds N`` each draw's rows become columns of their own
draw, and the page switches between draws as it does between ratios; the dense model is shared.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ukmp.data.index import resolve_data_dir
from ukmp.examples_page.document import Column, Document, column, document, plural
from ukmp.examples_page.outputs import image_outputs
from ukmp.examples_page.sample import SHOWN_TASKS, ImageItem, image_sample

#: `ukmp.compare.draw.CompareRun`, named here without importing it: compare imports this module, and a
#: module must not import one that imports it back (tests/test_import_graph.py)
CompareRun = Any

IMAGES = "examples"
MARKS_NOTE = (
    "✓ right, ~ partly right, ✗ wrong: each answer's accuracy against the reference answers by the metric the "
    "tables average (VQA accuracy, GQA exact match)."
)


def _read(file: Path) -> dict[str, Any] | None:
    return json.loads(file.read_text()) if file.is_file() else None


def _item(item: ImageItem, image: str) -> dict[str, Any]:
    questions = [
        {"id": q.id, "task": q.task, "question": q.question, "answers": list(q.answers)} for q in item.questions
    ]
    return {"id": item.id, "image": image, "captions": list(item.captions), "questions": questions}


def _columns(run: CompareRun, items: list[ImageItem], draw: int | None) -> list[Column]:
    """The pruned (and recovered) columns of one draw's rows whose evaluations are on disk."""
    out = []
    key = "" if draw is None else f"seed-{draw}/"
    for row in run.rows:
        stages = [(row["name"], None)]
        if row.get("recovered_eval") is not None:
            stages.append((f"{row['name']}-recovered", row.get("recovery")))
        for name, recovery in stages:
            result = _read(run.out / "evals" / f"{name}.json")
            if result is None:
                continue
            label = row["method"] if recovery is None else f"{row['method']} + {recovery}"
            out.append(
                column(
                    key + name,
                    label,
                    image_outputs(result, items),
                    method=row["method"],
                    ratio=row["target_ratio"],
                    achieved=row.get("achieved_ratio"),
                    draw=draw,
                    recovery=recovery,
                )
            )
    return out


def _notes(runs: Sequence[CompareRun], items: list[ImageItem], by_draw: bool) -> list[str]:
    c = runs[0].config
    asked = c.examples
    sample = (
        f"{plural(len(items), 'image')} of {c.eval_data} ({c.eval_split} split): the first the evaluation read, "
        "those with a caption and questions first; the same images for every model, ratio and draw."
    )
    if len(items) < asked:
        sample += f" ({asked} were asked for; the evaluation read no more.)"
    seeds = [r.config.seed for r in runs]
    if by_draw:
        draws = (
            f"Draws: seeds {', '.join(map(str, seeds))}, each calibrating on other samples; the switch shows one draw "
            "at a time (the first by default). The dense model is the same in every draw."
        )
    else:
        draws = f"One calibration draw (seed {seeds[0]})."
    outputs = (
        "Every caption and answer is the one the comparison's evaluation generated and kept in evals/<name>.json; "
        "nothing was generated for this page."
    )
    return [sample, draws, MARKS_NOTE, outputs]


def compare_document(runs: Sequence[CompareRun], *, by_draw: bool = False) -> tuple[Document, dict[str, Path]] | None:
    """The document of one compare run (or, ``by_draw``, of each draw of a --seeds run) and its images.

    The images map each image's path on the page to the evaluation file it copies.

    None when the run asks for no examples, evaluates no task with outputs to show (retrieval only), or
    compares language models on text (no images to show).
    """
    c = runs[0].config
    limits = c.eval_limits()
    if c.examples == 0 or c.text or not any(t in SHOWN_TASKS for t in limits):
        return None
    items = image_sample(resolve_data_dir(c.eval_data, c.eval_split), c.eval_split, limits, c.examples)
    images = {f"{IMAGES}/image-{i:02d}{item.path.suffix.lower()}": item.path for i, item in enumerate(items, 1)}
    columns = []
    dense = _read(runs[0].out / "evals" / "dense.json")
    if dense is not None:
        columns.append(column("dense", "dense", image_outputs(dense, items)))
    for run in runs:
        columns += _columns(run, items, run.config.seed if by_draw else None)
    doc_items = [_item(item, page_path) for item, page_path in zip(items, images, strict=True)]
    return document(c.model, "image", doc_items, columns, _notes(runs, items, by_draw)), images


def write_compare_examples(runs: Sequence[CompareRun], out: str | Path, *, by_draw: bool = False) -> list[Path]:
    """Write OUT/examples.html, examples.md and examples.json (with the images in OUT/examples/); [] for no page."""
    from ukmp.examples_page.files import write_page

    built = compare_document(runs, by_draw=by_draw)
    if built is None:
        return []
    doc, images = built
    return write_page(out, doc, images)
