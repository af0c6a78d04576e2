"""A text comparison's evaluation: each model's perplexity on each held-out text, one file per (model, text).

Why per text: each OUT/evals/<name>--<text>.json is exactly what `ukmp evaluate MODEL --task
perplexity --data TEXT --seq-len L --limit N` writes (plus the settings that key its reuse), so a
figure in the table can be checked with that command, and adding a held-out text evaluates only it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ukmp.atomic import write_json_atomic
from ukmp.compare.config import CompareConfig
from ukmp.compare.metrics import perplexity_metric
from ukmp.evaluation.model_loading import load_model_and_processor
from ukmp.evaluation.perplexity import evaluate_perplexity
from ukmp.provenance import COMPARE_FIX, Settings, as_recorded, check_reusable, data_key

#: the key of a text evaluation's summary that holds its perplexities (`ukmp.compare.report` reads it)
PERPLEXITIES = "perplexities"
#: the name the dense model's evaluations go under (read from MODEL, with --gguf-file where given)
DENSE = "dense"


class TextEvaluation:
    """Perplexity of every model on every --eval-text file, cached under the settings that decided it."""

    def __init__(self, config: CompareConfig, out: Path) -> None:
        self.config = config
        self.out = out

    def file(self, name: str, held_out: str) -> Path:
        return self.out / "evals" / f"{name}--{Path(held_out).stem}.json"

    def files(self, name: str) -> list[Path]:
        """The files that hold model ``name``'s evaluation, one per held-out text."""
        return [self.file(name, held_out) for held_out in self.config.eval_texts]

    def settings_of(self, held_out: str) -> Settings:
        """What decides one perplexity besides the model: the text, the window length and how many windows."""
        c = self.config
        windows = "all" if c.eval_windows is None else c.eval_windows
        return {"--eval-text": data_key(held_out), "--eval-seq-len": c.eval_seq_len, "--eval-windows": windows}

    def _cached_one(self, name: str, held_out: str, settings: Settings) -> dict[str, Any] | None:
        file = self.file(name, held_out)
        if not file.is_file():
            return None
        cached = json.loads(file.read_text())
        check_reusable(file, cached.get("settings") or {}, {**settings, **self.settings_of(held_out)}, COMPARE_FIX)
        return cached

    def cached(self, name: str, settings: Settings) -> dict[str, Any] | None:
        """The perplexities of model ``name`` if every held-out text's file is there (a mismatch: one sentence)."""
        found = {f: self._cached_one(name, f, settings) for f in self.config.eval_texts}
        if any(result is None for result in found.values()):
            return None
        return self.summary(name, found)

    def evaluate(
        self, model_ref: str | Path, name: str, settings: Settings, label: str | None = None
    ) -> dict[str, Any]:
        """Perplexity of one model on each held-out text: cached files are read, the missing ones computed.

        The model is loaded once (as `ukmp evaluate` loads it) for all the texts it still lacks.
        """
        c = self.config
        found = {f: self._cached_one(name, f, settings) for f in c.eval_texts}
        missing = [f for f, result in found.items() if result is None]
        if missing:
            gguf_file = c.gguf_file if name == DENSE else None
            model, tokenizer, _ = load_model_and_processor(str(model_ref), device=c.device, gguf_file=gguf_file)
            for held_out in missing:
                result = evaluate_perplexity(
                    model,
                    tokenizer,
                    held_out,
                    seq_len=c.eval_seq_len,
                    batch_size=c.perplexity_batch_size,
                    limit=c.eval_windows,
                    model_name=label or name,
                    progress=c.progress,
                )
                result["settings"] = as_recorded({**settings, **self.settings_of(held_out)})
                write_json_atomic(self.file(name, held_out), result)
                found[held_out] = result
        return self.summary(name, found)

    def summary(self, name: str, results: dict[str, dict[str, Any]]) -> dict[str, Any]:
        """What the run's table reads: one perplexity per held-out text, and the seconds they took."""
        values = {perplexity_metric(f): r["tasks"]["perplexity"]["perplexity"] for f, r in results.items()}
        seconds = sum(r["tasks"]["perplexity"]["seconds"] for r in results.values())
        return {"model": name, PERPLEXITIES: values, "seconds": round(seconds, 2)}
