"""Answers written by the dense teacher, so recovery can distil question answering without labels.

LPD distils the teacher's outputs and features; on caption prompts alone the student relearns
captioning and unlearns answering. The teacher answers questions as it was trained to, so its own
answers, generated with the evaluation's VQA settings (greedy beam search, short answers), are
targets that need no human: the task loss then matches the teacher's answer and the KL term its
whole distribution over those positions. Its mistakes are learnt too: the ceiling of this data is
the teacher's accuracy, not the labels'.
"""

from __future__ import annotations

from ukmp.data.recovery_mix import Answerer, Prompt
from ukmp.evaluation.generation import VQA_SETTINGS, generate_texts


def teacher_answerer(teacher, processor, *, batch_size: int = 32, progress: bool = True) -> Answerer:
    """A function that answers prompts with ``teacher`` (in eval mode, no gradients)."""

    def answer(prompts: list[Prompt]) -> list[str]:
        return generate_texts(
            teacher,
            processor,
            [p.image_path for p in prompts],
            [p.text for p in prompts],
            VQA_SETTINGS,
            batch_size=batch_size,
            desc="teacher answers",
            progress=progress,
        )

    return answer
