"""A compare run's image-text evaluation: every task of `ukmp evaluate` on its data, one file per model.

Why its own module: a text comparison measures perplexity instead (`ukmp.compare.text_eval`); both
answer the run with the same two calls, ``cached`` and ``evaluate``, and key their cache alike.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ukmp.atomic import write_json_atomic
from ukmp.compare.cache import KEPT_OUTPUTS, recorded_eval_settings, without_predictions
from ukmp.compare.config import CompareConfig
from ukmp.evaluation.harness import evaluate_tasks
from ukmp.evaluation.model_loading import load_model_and_processor
from ukmp.examples_page.outputs import missing_outputs
from ukmp.provenance import COMPARE_FIX, Settings, as_recorded, check_reusable, data_key


class ImageEvaluation:
    """OUT/evals/<name>.json: one `ukmp evaluate`-format result per model, every caption and answer kept."""

    def __init__(self, config: CompareConfig, out: Path) -> None:
        self.config = config
        self.out = out

    def files(self, name: str) -> list[Path]:
        """The files that hold model ``name``'s evaluation."""
        return [self.out / "evals" / f"{name}.json"]

    def settings(self) -> Settings:
        """What decides an evaluation besides the model: the data, its split, the tasks and their limits."""
        c = self.config
        limit = "all" if c.limit is None else c.limit
        out: Settings = {"--eval": data_key(c.eval_data), "--eval-split": c.eval_split, "--tasks": list(c.tasks)}
        if any(task != "caption" for task in c.tasks):
            out["--limit"] = limit
        if "caption" in c.tasks:
            out["--caption-limit"] = limit if c.caption_limit is None else c.caption_limit
        return out

    def cached(self, name: str, settings: Settings) -> dict[str, Any] | None:
        """OUT/evals/<name>.json without its answers, if there and made with this run's settings.

        ``settings`` are those that decided the evaluated model; the evaluation's own are added here.
        """
        file = self.out / "evals" / f"{name}.json"
        if not file.is_file():
            return None
        cached = json.loads(file.read_text())
        check_reusable(file, recorded_eval_settings(cached), {**settings, **self.settings()}, COMPARE_FIX)
        if self.config.examples and missing_outputs(cached, KEPT_OUTPUTS):
            return None  # made before evaluations kept every output: evaluated again, for the examples page
        return without_predictions(cached)

    def evaluate(
        self, model_ref: str | Path, name: str, settings: Settings, label: str | None = None
    ) -> dict[str, Any]:
        """`ukmp evaluate`-format results for one model, cached as OUT/evals/<name>.json.

        ``settings`` are those that decided the model; with the evaluation's own they key the cache.
        `label` is the results file's "model" field (default `name`); the dense model's names its
        reference too, so that `ukmp report` on the run folder recognises it as the base model.
        """
        cached = self.cached(name, settings)
        if cached is not None:
            return cached
        file = self.out / "evals" / f"{name}.json"
        asked = {**settings, **self.settings()}
        c = self.config
        model, processor, _ = load_model_and_processor(str(model_ref), device=c.device)
        merged = evaluate_tasks(
            model,
            processor,
            c.eval_data,
            c.eval_split,
            c.eval_limits(),
            c.eval_batch_size,
            model_name=label or name,
            progress=c.progress,
            # Per-question answers let `ukmp.question_noise` separate the plans' spread over
            # draws from the noise of the question sample they were measured on; captions and
            # answers together are what the examples page shows.
            keep_predictions=KEPT_OUTPUTS,
        )
        merged["settings"] = as_recorded(asked)
        write_json_atomic(file, merged)
        return without_predictions(merged)
