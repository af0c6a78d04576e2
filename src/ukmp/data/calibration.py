"""Calibration batches for scorers: prefix-LM samples turned into model inputs.

A scorer needs plain dicts it can pass to `model(**batch)`: pixel values, the encoder (or prompt)
ids with the image placeholders BLIP-2 expects in transformers 5, and labels with -100 wherever no
loss belongs. Encoder-decoder language models (T5) read the prefix in the encoder and predict the
rest in the decoder; decoder-only ones (OPT, Llama) read image tokens + prefix + target in one
sequence and only the target positions carry labels.

Samples are drawn from the front of the shuffled calibration set in consecutive, disjoint slices
(the authors' loader gives samples 1-1000 to the entropy pass and 1001-2000 to the gradients).

A standalone language model calibrates on plain text instead: when the calibration source is a
text or JSONL file (or a `TextCalibrationSource`, which also says how long a window is), the
samples are prefix-LM token windows (`ukmp.data.text_calibration`) and the batches carry no
image. Every scorer reads its samples through these two functions, so each accepts either source.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ukmp.data.prefix_lm import PrefixLMSample, prefix_lm_samples
from ukmp.data.reading import load_image
from ukmp.data.text import is_text_data, text_windows
from ukmp.data.text_calibration import DEFAULT_CALIB_SEQ_LEN, TextSample, pad_id, prefix_lm_windows, text_batches
from ukmp.errors import UserError


@dataclass(frozen=True)
class TextCalibrationSource:
    """A text / JSONL calibration file, the window length and the tokenizer that cut it; prints as the file.

    Scorers pass their calibration source around as an opaque path-like value; carrying the
    tokenizer here lets every scorer read text windows without a tokenizer argument of its own.
    """

    path: Path
    seq_len: int = DEFAULT_CALIB_SEQ_LEN
    tokenizer: Any = field(default=None, compare=False, repr=False)

    def __fspath__(self) -> str:
        return str(self.path)

    def __str__(self) -> str:
        return str(self.path)


def text_source(data_dir: str | Path | TextCalibrationSource) -> TextCalibrationSource | None:
    """The text source `data_dir` names, or None for an image-text data folder."""
    if isinstance(data_dir, TextCalibrationSource):
        return data_dir
    return TextCalibrationSource(Path(data_dir)) if is_text_data(data_dir) else None


def load_calibration_samples(
    data_dir: str | Path | TextCalibrationSource, split: str, *, seed: int = 42, tokenizer=None
) -> list[PrefixLMSample] | list[TextSample]:
    """The split's calibration pairs (CC595K layout), shuffled with `seed`, in prefix-LM form.

    A text source gives shuffled prefix-LM token windows instead (`split` does not apply); they
    need the `tokenizer` (default: the one the source carries).
    """
    from ukmp.data.index import load_task

    source = text_source(data_dir)
    if source is not None:
        tokenizer = tokenizer if tokenizer is not None else source.tokenizer
        if tokenizer is None:
            raise UserError("plain-text calibration needs the model's tokenizer, and this model has none.")
        tokenizer = getattr(tokenizer, "tokenizer", tokenizer)
        return prefix_lm_windows(text_windows(tokenizer, source.path, source.seq_len), seed=seed)

    pairs = list(load_task(data_dir, split, "calibration"))
    if not pairs:
        raise UserError(f"{data_dir} has no calibration pairs for split {split!r}.")
    order = np.random.default_rng(seed).permutation(len(pairs))
    return prefix_lm_samples([pairs[i] for i in order], seed=seed)


def take_disjoint(samples: Sequence[PrefixLMSample], counts: Sequence[int]) -> list[list[PrefixLMSample]]:
    """Consecutive, disjoint slices of `samples` of the given sizes (wrapping is refused)."""
    need = sum(counts)
    if need > len(samples):
        raise UserError(
            f"calibration needs {need} samples but the data has {len(samples)}; lower --num-samples "
            "or generate more calibration data."
        )
    out, start = [], 0
    for c in counts:
        out.append(list(samples[start : start + c]))
        start += c
    return out


def calibration_batches(
    processor, samples: Sequence[PrefixLMSample], batch_size: int, *, encoder_decoder: bool
) -> Iterator[dict[str, torch.Tensor]]:
    """Model inputs for `samples`, `batch_size` at a time, with -100 outside the targets."""
    if samples and isinstance(samples[0], TextSample):
        tokenizer = getattr(processor, "tokenizer", processor)
        yield from text_batches(samples, batch_size, pad_id(tokenizer))
        return
    tokenizer = processor.tokenizer
    for start in range(0, len(samples), batch_size):
        chunk = samples[start : start + batch_size]
        images = [load_image(s.image_path) for s in chunk]
        if encoder_decoder:
            enc = processor(images=images, text=[s.text_input for s in chunk], return_tensors="pt", padding=True)
            target = tokenizer([s.text_output for s in chunk], return_tensors="pt", padding=True)
            labels = target.input_ids.masked_fill(target.attention_mask == 0, -100)
            yield {
                "pixel_values": enc.pixel_values,
                "input_ids": enc.input_ids,
                "attention_mask": enc.attention_mask,
                "labels": labels,
            }
        else:
            yield _decoder_only_batch(processor, images, chunk)


def _decoder_only_batch(processor, images: list, chunk: Sequence[PrefixLMSample]) -> dict[str, torch.Tensor]:
    """image tokens + prefix + target in one right-padded sequence; labels only on the target."""
    tokenizer = processor.tokenizer
    prompts = processor(images=images, text=[s.text_input for s in chunk], return_tensors=None)
    rows, label_rows = [], []
    for ids, sample in zip(prompts["input_ids"], chunk):
        target = tokenizer(" " + sample.text_output, add_special_tokens=False).input_ids
        if tokenizer.eos_token_id is not None:
            target = target + [tokenizer.eos_token_id]
        rows.append(list(ids) + target)
        label_rows.append([-100] * len(ids) + target)
    width = max(map(len, rows))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    input_ids = torch.full((len(rows), width), pad)
    attention = torch.zeros((len(rows), width), dtype=torch.long)
    labels = torch.full((len(rows), width), -100)
    for r, (ids, lab) in enumerate(zip(rows, label_rows)):
        input_ids[r, : len(ids)] = torch.tensor(ids)
        attention[r, : len(ids)] = 1
        labels[r, : len(lab)] = torch.tensor(lab)
    pixel_values = processor.image_processor(images, return_tensors="pt").pixel_values
    return {
        "pixel_values": pixel_values,
        "input_ids": input_ids,
        "attention_mask": attention,
        "labels": labels,
    }
