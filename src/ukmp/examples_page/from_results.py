"""The examples page of a run folder for `ukmp report`: a compare run's examples.json, or a language model's results.

Why two sources: a ``ukmp compare`` folder already holds the document (``examples.json``, with its
images in ``examples/``), so the report renders it again into its own folder. A folder of language
models made by hand (pruned artifacts and their ``ukmp evaluate --task perplexity --examples N``
results) holds no document; its results carry the prompts and continuations, and the report builds
the document from them: the dense model's column and one per artifact, at the artifact's target
ratio. Results of other prompts (another text file or window length) than the dense model's are
left out, since their rows would not line up.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ukmp.examples_page.document import FORMAT, Column, Document, column, document, plural
from ukmp.examples_page.files import PAGE_JSON

#: `ukmp.reporting`'s Run and EvalResult, named here without importing them: reporting imports this
#: module, and a module must not import one that imports it back (tests/test_import_graph.py)
Run = Any
EvalResult = Any


def _written(result: EvalResult) -> dict[str, Any] | None:
    return ((result.data.get("tasks") or {}).get("perplexity") or {}).get("continuations")


def _recovery(manifest: dict[str, Any]) -> str | None:
    recovery = manifest.get("recovery")
    if not recovery:
        return None
    return "lora" if recovery.get("plain_lora") else "lpd"


def _column(result: EvalResult, ids: dict[str, str]) -> Column | None:
    written = _written(result) or {}
    outputs = {
        ids[i["prompt"]]: {"continuation": i["continuation"]} for i in written.get("items", []) if i["prompt"] in ids
    }
    if result.dense:
        return column("dense", "dense", outputs)
    artifact = result.artifact
    if artifact is None:
        return None
    recovery = _recovery(artifact.manifest)
    target = artifact.manifest.get("target_ratio")
    return column(
        artifact.name,
        artifact.method if recovery is None else f"{artifact.method} + {recovery}",
        outputs,
        method=artifact.method,
        ratio=float(target) if target is not None else artifact.ratio,
        achieved=artifact.ratio,
        recovery=recovery,
    )


def text_document(run: Run) -> Document | None:
    """Prompts and each model's continuation, from the run's perplexity results that kept them; None if none did."""
    results = [r for r in run.results if _written(r)]
    if not results:
        return None
    first = next((r for r in results if r.dense), results[0])
    written = _written(first)
    items = [{"id": i["id"], "prompt": i["prompt"], "reference": i["reference"]} for i in written["items"]]
    ids = {i["prompt"]: i["id"] for i in items}
    ordered = sorted(results, key=lambda r: (not r.dense, r.artifact.name if r.artifact else r.model))
    columns = [c for c in (_column(r, ids) for r in ordered) if c is not None and c["outputs"]]
    left = [r.file.name for r in results if r.artifact is None and not r.dense]
    data = first.data.get("data")
    perplexity = first.data["tasks"]["perplexity"]
    notes = [
        f"{plural(len(items), 'prompt')}: the openings (at most {written['prompt_tokens']} tokens, at most half a "
        f"window) of the first windows of {data} (--seq-len {perplexity.get('seq_len')}), the text that followed "
        f"them, and each model's greedy continuation ({written['new_tokens']} new tokens at most).",
        "Every continuation is the one `ukmp evaluate --task perplexity --examples N` kept in the model's results; "
        "nothing was generated for this page.",
    ]
    if left:
        notes.append(f"Left out (no pruned model of that name in the folder): {', '.join(left)}.")
    model = first.model if first.dense else (first.artifact.base_reference if first.artifact else first.model)
    return document(str(model), "text", items, columns, notes)


def report_document(run: Run) -> tuple[Document, dict[str, Path]] | None:
    """The page of ``run``'s folder and its images (page path -> file), or None when it has no examples."""
    file = run.root / PAGE_JSON
    if file.is_file():
        doc = json.loads(file.read_text())
        if isinstance(doc, dict) and doc.get("format") == FORMAT:
            images = {i["image"]: run.root / i["image"] for i in doc["items"] if i.get("image")}
            return doc, images
    doc = text_document(run)
    return None if doc is None else (doc, {})
