"""A vision-language comparison that also reads each model's language model on plain text.

Why: pruning a VLM for its tasks can quietly cost its language model what it knew; a user who asks
"does it stay a language model?" needs the tasks and the text perplexity of the same artifacts, in
the same table. With image-text calibration and ``--eval-text``, each model gets both evaluations:
the tasks (`ImageEvaluation`, OUT/evals/<name>.json) and one perplexity per held-out text
(`TextEvaluation`, OUT/evals/<name>--<text>.json, the language model reading the text alone through
`ModelInputs.text_logits`). Each keeps its own cache keys, so adding a held-out text evaluates
only it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ukmp.compare.config import CompareConfig
from ukmp.compare.image_eval import ImageEvaluation
from ukmp.compare.text_eval import PERPLEXITIES, TextEvaluation
from ukmp.provenance import Settings


class TasksAndTextEvaluation:
    """Every task of the image-text data, plus perplexity on every --eval-text file."""

    def __init__(self, config: CompareConfig, out: Path) -> None:
        self.tasks = ImageEvaluation(config, out)
        self.text = TextEvaluation(config, out)

    def files(self, name: str) -> list[Path]:
        return [*self.tasks.files(name), *self.text.files(name)]

    def cached(self, name: str, settings: Settings) -> dict[str, Any] | None:
        tasks, text = self.tasks.cached(name, settings), self.text.cached(name, settings)
        if tasks is None or text is None:
            return None
        return {**tasks, PERPLEXITIES: text[PERPLEXITIES]}

    def evaluate(
        self, model_ref: str | Path, name: str, settings: Settings, label: str | None = None
    ) -> dict[str, Any]:
        tasks = self.tasks.evaluate(model_ref, name, settings, label)
        text = self.text.evaluate(model_ref, name, settings, label)
        return {**tasks, PERPLEXITIES: text[PERPLEXITIES]}
