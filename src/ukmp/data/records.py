"""The plain records every loader returns, whatever the file format on disk.

Evaluation and calibration code only ever sees these, so a new dataset format is one new loader
and nothing else changes. Image paths are resolved (absolute or relative to the working
directory) and checked to exist when the record is made, so a missing image is reported with its
file and record index up front instead of crashing half-way through an evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class CaptionRecord:
    """One image with its reference captions (captioning and retrieval)."""

    image_path: Path
    image_id: int | str
    references: tuple[str, ...]


@dataclass(frozen=True)
class VQARecord:
    """One question about one image with its human answers (10 in VQAv2 / OK-VQA, 1 in GQA)."""

    image_path: Path
    question_id: int | str
    question: str
    answers: tuple[str, ...]
    question_type: str = ""
    answer_type: str = ""


@dataclass(frozen=True)
class TextPair:
    """One image with one caption (calibration and recovery data)."""

    image_path: Path
    caption: str


class Records(list, Generic[T]):
    """A list of records that remembers where it came from and what it skipped.

    `skipped` holds one message per record dropped under `on_error="skip"`, so callers can report
    how much of a dataset was actually evaluated.
    """

    def __init__(self, items: list[T] | None = None, *, source: str = "", skipped: list[str] | None = None):
        super().__init__(items or [])
        self.source = source
        self.skipped: list[str] = list(skipped or [])
