"""Calibration batches from plain text, in UKMP's prefix-LM form (docs/method-notes.md).

UKMP calibrates on prefix-LM samples: a prefix the model only reads, then target tokens it must
predict. For a standalone language model a sample is one token window of the text file
(``ukmp.data.text``) split at k tokens, k uniform in {1, ..., floor(n/2)} for an n-token window,
exactly as a caption is split at a word; the prefix and the target stay in one sequence and only
the target positions carry labels (-100 elsewhere), as for the decoder-only language models
inside BLIP-2 (``ukmp.data.calibration``). The Taylor selection then picks among the target
tokens only.

Windows are shuffled with the seed before consecutive, disjoint slices are handed to the entropy
and the gradient passes, so the two passes never see the same text; the split point of window i
comes from a generator seeded with (seed, i), so the samples depend only on the seed and the file.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ukmp.data.prefix_lm import split_point
from ukmp.data.text import text_windows
from ukmp.errors import UserError

DEFAULT_CALIB_SEQ_LEN = 128


@dataclass(frozen=True)
class TextSample:
    """One prefix-LM sample: token ids and how many of them are the (unlabelled) prefix."""

    ids: tuple[int, ...]
    prefix_len: int


def prefix_lm_windows(windows: Sequence[Sequence[int]], *, seed: int) -> list[TextSample]:
    """Shuffle the windows with ``seed`` and split each at its own random token k."""
    order = np.random.default_rng(seed).permutation(len(windows))
    samples = []
    for index, w in enumerate(windows[i] for i in order):
        k = max(split_point(len(w), np.random.default_rng([seed, index])), 1)
        samples.append(TextSample(tuple(w), k))
    return samples


def text_batches(samples: Sequence[TextSample], batch_size: int, pad_id: int) -> Iterator[dict[str, torch.Tensor]]:
    """Right-padded ``input_ids`` / ``attention_mask`` and ``labels`` only on each target."""
    for start in range(0, len(samples), batch_size):
        chunk = samples[start : start + batch_size]
        width = max(len(s.ids) for s in chunk)
        input_ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
        attention = torch.zeros((len(chunk), width), dtype=torch.long)
        labels = torch.full((len(chunk), width), -100, dtype=torch.long)
        for row, sample in enumerate(chunk):
            ids = torch.tensor(sample.ids, dtype=torch.long)
            input_ids[row, : len(ids)] = ids
            attention[row, : len(ids)] = 1
            labels[row, sample.prefix_len : len(ids)] = ids[sample.prefix_len :]
        yield {"input_ids": input_ids, "attention_mask": attention, "labels": labels}


def pad_id(tokenizer) -> int:
    """Padding never reaches a loss or a statistic (masks and labels exclude it); any id will do."""
    for name in ("pad_token_id", "eos_token_id"):
        value = getattr(tokenizer, name, None)
        if value is not None:
            return int(value)
    return 0


def text_calibration_sets(
    tokenizer,
    path: str | Path,
    counts: Sequence[int],
    batch_size: int,
    *,
    seq_len: int = DEFAULT_CALIB_SEQ_LEN,
    seed: int = 0,
) -> list[list[dict[str, torch.Tensor]]]:
    """Disjoint calibration sets of ``counts[i]`` samples each, as lists of batches."""
    tokenizer = getattr(tokenizer, "tokenizer", tokenizer)
    samples = prefix_lm_windows(text_windows(tokenizer, path, seq_len), seed=seed)
    need = sum(counts)
    if need > len(samples):
        raise UserError(
            f"calibration needs {need} windows of {seq_len} tokens but {path} has {len(samples)}; "
            "lower --num-samples or --seq-len, or give more text."
        )
    pad = pad_id(tokenizer)
    out, start = [], 0
    for count in counts:
        out.append(list(text_batches(samples[start : start + count], batch_size, pad)))
        start += count
    return out
