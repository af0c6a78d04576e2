"""Recovery data beyond the paper: captions mixed with question-answer pairs.

The paper recovers on CC595K captions alone. Real VLMs are tuned on instruction data as well, and
a pruned model recovered on captions alone relearns captioning but not answering (on the shipped
model, caption-only recovery moved VQA accuracy by less than a point). `mix_vqa` replaces a
fraction of the caption samples by the split's VQA pairs written in the evaluation's prompt form,
so recovery sees both tasks; the result is reported apart from the paper-faithful caption-only run.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ukmp.data.index import load_task
from ukmp.data.prefix_lm import PrefixLMSample
from ukmp.errors import UserError
from ukmp.evaluation.generation import VQA_PROMPT


def vqa_samples(data_dir: str | Path, split: str) -> list[PrefixLMSample]:
    """Every VQA question of the split as (image, 'Question: q Short answer:', most common answer)."""
    records = load_task(data_dir, split, "vqa")
    out = []
    for record in records:
        answers = list(record.answers)
        best = max(set(answers), key=answers.count) if answers else ""
        out.append(PrefixLMSample(record.image_path, VQA_PROMPT.format(record.question), best))
    return out


def mix_vqa(
    captions: Sequence[PrefixLMSample], data_dir: str | Path, split: str, fraction: float, *, seed: int
) -> list[PrefixLMSample]:
    """`len(captions)` samples: round(fraction * n) VQA pairs and the first captions, shuffled with `seed`."""
    if not 0.0 <= fraction <= 1.0:
        raise UserError(f"--vqa-fraction must be between 0 and 1, got {fraction:g}.")
    n = len(captions)
    n_vqa = round(fraction * n)
    if n_vqa == 0:
        return list(captions)
    pool = vqa_samples(data_dir, split)
    if len(pool) < n_vqa:
        raise UserError(f"the {split!r} split has {len(pool)} VQA questions, fewer than the {n_vqa} the mix needs.")
    rng = np.random.default_rng([seed, 7])
    chosen = [pool[int(i)] for i in rng.permutation(len(pool))[:n_vqa]]
    mixed = list(captions[: n - n_vqa]) + chosen
    return [mixed[int(i)] for i in rng.permutation(n)]
