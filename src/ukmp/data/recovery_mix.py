"""Recovery data beyond the paper: captions mixed with question prompts, answered by labels or by the teacher.

The paper recovers on CC595K captions alone. Real VLMs are tuned on instruction data as well, and
a pruned model recovered on captions alone relearns captioning but not answering (on the shipped
model, caption-only recovery moved VQA accuracy by less than a point). ``mix_questions`` replaces a
fraction of the caption samples by question prompts written in the evaluation's prompt form, so
recovery sees both tasks.

Where the answers come from is the caller's choice (``answer``): the split's human labels, or, with
no labels at all, the dense teacher's own answers (`ukmp.recovery.teacher_answers`): LPD's premise
is that the teacher holds the knowledge, and the teacher answers questions as well as it captions.
A user's own unlabelled prompts (``read_prompts``: a JSONL file of images and prompts) take the
split's place. The questions are drawn the same way whatever answers them, so runs that differ only
in their answers see the same prompts.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ukmp.data.index import is_world_cache, load_task
from ukmp.data.prefix_lm import PrefixLMSample
from ukmp.data.vqa import require_answers
from ukmp.errors import UserError
from ukmp.evaluation.generation import VQA_PROMPT

#: (prompts) -> one answer per prompt
Answerer = Callable[[list["Prompt"]], list[str]]


@dataclass(frozen=True)
class Prompt:
    """An image and the text the model reads with it (a question in the evaluation's form)."""

    image_path: Path
    text: str


def split_questions(
    data_dir: str | Path, split: str, *, images: int | None = None, labelled_for: tuple[str, str] | None = None
) -> list[tuple[Prompt, str]]:
    """Every VQA question of the split as (its prompt, its most common human answer, or "" without one).

    ``labelled_for`` = (the use, its fix) names a use that reads the answers: a question without
    one then ends the run in one sentence instead of training or judging on an empty answer.

    In the built-in world's cache only the questions on its first ``images`` images count, as only
    those images are drawn for calibration (`ukmp.data.calibration.load_calibration_samples`).
    """
    records = list(load_task(data_dir, split, "vqa"))
    if images is not None and is_world_cache(data_dir):
        first = {pair.image_path for pair in list(load_task(data_dir, split, "calibration"))[:images]}
        records = [r for r in records if r.image_path in first]
    if labelled_for is not None:
        use, fix = labelled_for
        require_answers(records, f"split {split!r} of {data_dir}", use, fix)
    out = []
    for record in records:
        answers = list(record.answers)
        best = max(set(answers), key=answers.count) if answers else ""
        out.append((Prompt(record.image_path, VQA_PROMPT.format(record.question)), best))
    return out


def vqa_samples(
    data_dir: str | Path, split: str, *, labelled_for: tuple[str, str] | None = None
) -> list[PrefixLMSample]:
    """Every VQA question of the split as (image, 'Question: q Short answer:', most common answer)."""
    questions = split_questions(data_dir, split, labelled_for=labelled_for)
    return [PrefixLMSample(p.image_path, p.text, label) for p, label in questions]


def read_prompts(file: str | Path) -> list[Prompt]:
    """A user's unlabelled prompts: one JSON object per line, ``{"image": PATH, "prompt": TEXT}``.

    Image paths are relative to the file's folder unless absolute. A line that is not such an
    object, or names an image that is not there, ends with one sentence naming the line.
    """
    file = Path(file)
    if not file.is_file():
        raise UserError(f"--prompts {file} does not exist.")
    prompts = []
    for number, line in enumerate(file.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            entry = None
        if not isinstance(entry, dict) or not isinstance(entry.get("image"), str) or not entry.get("prompt"):
            raise UserError(
                f'{file} line {number} is not a prompt: each line must be {{"image": "path.png", "prompt": "text"}}.'
            )
        image = Path(entry["image"]) if Path(entry["image"]).is_absolute() else file.parent / entry["image"]
        if not image.is_file():
            raise UserError(f"{file} line {number} names the image {image}, which does not exist.")
        prompts.append(Prompt(image, str(entry["prompt"])))
    if not prompts:
        raise UserError(f"{file} holds no prompts; give one JSON object per line with an image and a prompt.")
    return prompts


def mix_questions(
    captions: Sequence[PrefixLMSample],
    pool: Sequence[Prompt],
    fraction: float,
    answer: Answerer | Sequence[str],
    *,
    seed: int,
) -> list[PrefixLMSample]:
    """`len(captions)` samples: round(fraction * n) prompts of ``pool`` and the first captions, shuffled
    with `seed`. ``answer`` is each pool prompt's label, or a function that answers the chosen prompts
    (only those are answered)."""
    if not 0.0 <= fraction <= 1.0:
        raise UserError(f"--vqa-fraction must be between 0 and 1, got {fraction:g}.")
    n = len(captions)
    n_vqa = round(fraction * n)
    if n_vqa == 0:
        return list(captions)
    if len(pool) < n_vqa:
        raise UserError(f"the recovery data has {len(pool)} question prompts, fewer than the {n_vqa} the mix needs.")
    rng = np.random.default_rng([seed, 7])
    order = [int(i) for i in rng.permutation(len(pool))[:n_vqa]]
    chosen = [pool[i] for i in order]
    answers = answer(chosen) if callable(answer) else [answer[i] for i in order]
    questions = [PrefixLMSample(p.image_path, p.text, a) for p, a in zip(chosen, answers, strict=True)]
    mixed = list(captions[: n - n_vqa]) + questions
    return [mixed[int(i)] for i in rng.permutation(n)]


def mix_vqa(
    captions: Sequence[PrefixLMSample],
    data_dir: str | Path,
    split: str,
    fraction: float,
    *,
    seed: int,
    answer: Answerer | None = None,
    images: int | None = None,
) -> list[PrefixLMSample]:
    """Captions mixed with the split's questions (on the first ``images`` of the built-in world, as in
    ``split_questions``), answered by their labels or (``answer``) otherwise."""
    labelled = ("recovery with --answers labels", "use --answers teacher: the dense model answers them.")
    labelled = None if answer else labelled
    questions = split_questions(data_dir, split, images=images, labelled_for=labelled) if fraction > 0 else []
    pool = [prompt for prompt, _ in questions]
    return mix_questions(captions, pool, fraction, answer or [label for _, label in questions], seed=seed)
