"""Calibration samples in prefix-LM form (docs/method-notes.md, BLIP-2 stage-2 style).

UKMP's calibration passes feed the first k words of a caption to the T5 encoder (after the query
embeddings) and train the decoder on the rest. The caption is cleaned first (lowercase, punctuation
stripped, at most 50 words); k is uniform in {1, ..., floor(n/2)} for an n-word caption.

The split point of sample i comes from its own generator seeded with (seed, i), so it depends
only on the seed and the sample's position, not on how many samples were drawn before it; the same
seed and the same pairs always give the same samples. A one-word caption cannot be split (the range
is empty): it becomes an empty prefix and the whole caption as target.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ukmp.data.records import TextPair

MAX_WORDS = 50
# Anything that is not a letter, digit, underscore, apostrophe or whitespace counts as punctuation.
_PUNCTUATION = re.compile(r"[^\w\s']")


@dataclass(frozen=True)
class PrefixLMSample:
    """One calibration sample: the image, the encoder text and the decoder target."""

    image_path: Path
    text_input: str
    text_output: str


def clean_caption(text: str, max_words: int = MAX_WORDS) -> str:
    """Lowercase, replace punctuation by spaces, collapse whitespace, keep at most `max_words` words."""
    words = _PUNCTUATION.sub(" ", text.lower()).split()
    return " ".join(words[:max_words])


def split_point(n_words: int, rng: np.random.Generator) -> int:
    """k uniform in {1, ..., floor(n/2)}; 0 when the caption has fewer than two words."""
    half = n_words // 2
    if half < 1:
        return 0
    return int(rng.integers(1, half + 1))


def prefix_lm_samples(pairs: Sequence[TextPair], *, seed: int = 42, max_words: int = MAX_WORDS) -> list[PrefixLMSample]:
    """Turn image-caption pairs into prefix-LM samples, deterministically for a given seed."""
    samples = []
    for index, pair in enumerate(pairs):
        words = clean_caption(pair.caption, max_words).split()
        k = split_point(len(words), np.random.default_rng([seed, index]))
        samples.append(PrefixLMSample(pair.image_path, " ".join(words[:k]), " ".join(words[k:])))
    return samples
