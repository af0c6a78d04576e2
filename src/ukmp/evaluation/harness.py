"""The evaluation harness: one call measures a model on every task a data folder provides.

`evaluate` reads the records through the same loaders as the real benchmarks (`ukmp.data.index`),
generates or scores with the model, and returns one JSON-able dict; `write_results` writes it
atomically (temp file, then rename) so a killed run never leaves a truncated results file that a
later comparison would trust.

Units follow each benchmark's convention: VQA / GQA accuracy and retrieval recalls in percent,
caption metrics as pycocoevalcap returns them (CIDEr 1.5, not 150). `--limit N` keeps the first N
records of every task: images for captioning and retrieval, questions for VQA and GQA. Retrieval
costs 5N^2 decoder passes for N images, so without a limit it uses the first
`DEFAULT_RETRIEVAL_IMAGES` images (pass `retrieval_limit=None` for all).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from ukmp.atomic import write_json_atomic
from ukmp.data.index import available_tasks, load_task, portable_path, resolve_data_dir
from ukmp.data.reading import check_on_error
from ukmp.data.vqa import require_answers
from ukmp.errors import UserError
from ukmp.evaluation.caption_metrics import caption_scores
from ukmp.evaluation.generation import (
    CAPTION_SETTINGS,
    VQA_SETTINGS,
    GenerationSettings,
    answer_questions,
    generate_captions,
)
from ukmp.evaluation.retrieval import evaluate_retrieval
from ukmp.evaluation.vqa_metric import exact_match_scores, vqa_scores
from ukmp.version import __version__

TASKS = ("caption", "vqa", "gqa", "retrieval")
DEFAULT_RETRIEVAL_IMAGES = 50
RESULTS_FORMAT = "ukmp-eval/1"
N_EXAMPLES = 3


def expand_tasks(tasks: Sequence[str] | str, data_dir: Path, split: str) -> tuple[list[str], dict[str, str]]:
    """The tasks to run and, for `all`, the ones the split lacks (with why)."""
    names = [tasks] if isinstance(tasks, str) else list(tasks)
    for name in names:
        if name != "all" and name not in TASKS:
            raise UserError(f"unknown task {name!r}; choose from {', '.join(TASKS)} or all.")
    if "all" not in names:
        return list(dict.fromkeys(names)), {}
    have = available_tasks(data_dir, split)
    run = [t for t in TASKS if t in have]
    if not run:
        raise UserError(f"the {split!r} split of {data_dir} provides none of the tasks {', '.join(TASKS)}.")
    return run, {t: f"the {split!r} split has no {t} data" for t in TASKS if t not in have}


def _examples(predictions: dict, truth: dict) -> list[dict]:
    return [{"id": k, "prediction": predictions[k], "reference": truth[k]} for k in list(predictions)[:N_EXAMPLES]]


def evaluate(
    model,
    processor,
    data_dir: str | Path,
    split: str = "val",
    tasks: Sequence[str] | str = ("all",),
    limit: int | None = None,
    batch_size: int = 32,
    *,
    caption_settings: GenerationSettings = CAPTION_SETTINGS,
    vqa_settings: GenerationSettings = VQA_SETTINGS,
    retrieval_limit: int | None = DEFAULT_RETRIEVAL_IMAGES,
    retrieval_prompt: str = "",
    pair_batch_size: int = 256,
    on_error: str = "stop",
    keep_predictions: bool = False,
    model_name: str | None = None,
    spice: bool | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Evaluate `model` on `tasks` of `split` in `data_dir` (a folder with ukmp_data.json, or `shapes`)."""
    check_on_error(on_error)
    if limit is not None and limit <= 0:
        raise UserError(f"--limit must be a positive number of records, got {limit}.")
    if batch_size <= 0:
        raise UserError(f"--batch-size must be positive, got {batch_size}.")
    root = resolve_data_dir(data_dir, split)
    run, skipped_tasks = expand_tasks(tasks, root, split)
    started = time.perf_counter()
    results: dict[str, Any] = {"tasks": {}}
    for task in run:
        t0, cpu0 = time.perf_counter(), time.process_time()
        records = load_task(root, split, task, on_error=on_error)
        if task in ("vqa", "gqa"):
            fix = "add their answers (the annotations file, or `answers` on each JSONL line) to score them."
            require_answers(records, f"split {split!r} of {root}", f"scoring {task}", fix)
        n_limit = limit if limit is not None else (retrieval_limit if task == "retrieval" else None)
        used = records[:n_limit] if n_limit is not None else list(records)
        common = {"split": split, "source": portable_path(records.source), "skipped_records": len(records.skipped)}
        if task == "caption":
            preds = generate_captions(
                model, processor, used, caption_settings, batch_size=batch_size, progress=progress
            )
            refs = {r.image_id: list(r.references) for r in used}
            metrics = caption_scores(preds, refs, spice=spice)
            notes = metrics.pop("notes")
            out = {
                "num_images": len(used),
                "metrics": metrics,
                "notes": notes,
                "settings": caption_settings.as_dict(),
                "examples": _examples(preds, refs),
            }
        elif task in ("vqa", "gqa"):
            preds = answer_questions(
                model, processor, used, vqa_settings, batch_size=batch_size, progress=progress, desc=task
            )
            scorer = vqa_scores if task == "vqa" else exact_match_scores
            truth = {r.question_id: r.answers[0] for r in used}
            out = {
                **scorer(preds, used),
                "settings": vqa_settings.as_dict(),
                "examples": _examples(preds, truth),
            }
        else:
            preds = None
            out = evaluate_retrieval(
                model,
                processor,
                used,
                prompt=retrieval_prompt,
                batch_size=batch_size,
                pair_batch_size=pair_batch_size,
                progress=progress,
            )
        if keep_predictions and preds is not None:
            out["predictions"] = {str(k): v for k, v in preds.items()}
        # CPU seconds of this process (all its threads; not the Java scorers): on a shared machine
        # wall time says more about the neighbours than about the model.
        out.update(
            common,
            seconds=round(time.perf_counter() - t0, 2),
            cpu_seconds=round(time.process_time() - cpu0, 2),
        )
        results["tasks"][task] = out
    return {
        "format": RESULTS_FORMAT,
        "model": model_name,
        "data": portable_path(root),
        "split": split,
        "limit": limit,
        **_environment(model),
        "tasks": results["tasks"],
        "skipped_tasks": skipped_tasks,
        "seconds": round(time.perf_counter() - started, 2),
    }


def evaluate_tasks(
    model,
    processor,
    data_dir: str | Path,
    split: str,
    limits: dict[str, int | None],
    batch_size: int = 32,
    *,
    model_name: str | None = None,
    progress: bool = True,
    keep_predictions: Sequence[str] = (),
) -> dict[str, Any]:
    """``evaluate`` with a limit of its own per task (1,000 questions and 200 images, say), merged into one result.

    ``keep_predictions`` names the tasks whose per-record answers stay in the result.
    """
    merged: dict[str, Any] | None = None
    for task, limit in limits.items():
        result = evaluate(
            model,
            processor,
            data_dir,
            split,
            (task,),
            limit,
            batch_size,
            model_name=model_name,
            progress=progress,
            keep_predictions=task in keep_predictions,
        )
        if merged is None:
            merged = result
        else:
            merged["tasks"].update(result["tasks"])
            merged["seconds"] = round(merged["seconds"] + result["seconds"], 2)
    if merged is None:
        raise UserError("no task to evaluate; name at least one.")
    merged["limits"] = dict(limits)
    return merged


def _environment(model) -> dict[str, Any]:
    import transformers

    param = next(model.parameters())
    return {
        "num_parameters": sum(p.numel() for p in model.parameters()),
        "device": str(param.device),
        "dtype": str(param.dtype).removeprefix("torch."),
        "versions": {
            "ukmp": __version__,
            "torch": torch.__version__,
            "transformers": transformers.__version__,
        },
    }


def write_results(results: dict[str, Any], path: str | Path) -> Path:
    """Write `results` as JSON to `path` atomically: a temp file in the same folder, then a rename."""
    return write_json_atomic(path, results, indent=2)


def summary_rows(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(task, metric, value) rows of the headline numbers, for a compact table."""
    rows: list[tuple[str, str, str]] = []
    for task, out in results["tasks"].items():
        if task == "caption":
            for name in ("CIDEr", "BLEU-4", "BLEU-1", "METEOR", "ROUGE-L", "SPICE"):
                value = out["metrics"].get(name)
                rows.append((task, name, "n/a (see notes)" if value is None else f"{value:.4f}"))
        elif task == "perplexity":
            rows.append((task, "exp(mean NLL)", f"{out['perplexity']:.3f}"))
            rows.append((task, "mean NLL", f"{out['mean_nll']:.4f}"))
        elif task in ("vqa", "gqa"):
            rows.append((task, "accuracy %", f"{out['accuracy']:.2f}"))
            for qtype, acc in out["per_question_type"].items():
                rows.append((task, f"  {qtype}", f"{acc:.2f}"))
        else:
            for name in ("TR@1", "TR@5", "TR@10", "IR@1", "IR@5", "IR@10"):
                rows.append((task, f"{name} %", f"{out[name]:.2f}"))
    return rows


def format_table(results: dict[str, Any]) -> str:
    """The summary rows as aligned text, with each task's size and time."""
    lines = []
    for task, out in results["tasks"].items():
        size = out.get("num_images") or out.get("num_questions") or out.get("predicted_tokens")
        unit = "images" if "num_images" in out else "questions" if "num_questions" in out else "tokens"
        lines.append(
            f"{task}: {size} {unit}, {out['seconds']:.1f} s ({out['cpu_seconds']:.1f} s CPU)"
            + (f", {out['skipped_records']} records skipped" if out["skipped_records"] else "")
        )
    rows = summary_rows(results)
    width = max((len(r[1]) for r in rows), default=0)
    lines += [f"  {task:<9} {metric:<{width}}  {value}" for task, metric, value in rows]
    for task, why in results.get("skipped_tasks", {}).items():
        lines.append(f"  {task:<9} not run: {why}")
    return "\n".join(lines)
