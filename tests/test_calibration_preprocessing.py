"""Each calibration image is preprocessed once, and the batches are the ones the two-pass code built.

Before, ``_decoder_only_batch`` ran the processor on images + prompts (to expand the image
placeholders) and then the image processor on the same images again for the pixel values.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import AutoProcessor

from tiny_llava import save_tiny_llava_with_processor
from ukmp.data.calibration import calibration_batches, load_calibration_samples, with_image_placeholder
from ukmp.data.reading import load_image
from ukmp.data.world_writer import write_split


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_split("train", 8, tmp_path_factory.mktemp("world"))


def _reference_batch(processor, samples) -> dict[str, torch.Tensor]:
    """What the two-pass code built: ids from the processor's prompts, pixels from the image processor."""
    images = [load_image(s.image_path) for s in samples]
    texts = [with_image_placeholder(processor, s.text_input) for s in samples]
    prompts = processor(images=images, text=texts, return_tensors=None)
    pixels = processor.image_processor(images, return_tensors="pt")
    tokenizer = processor.tokenizer
    rows, labels = [], []
    for ids, sample in zip(prompts["input_ids"], samples):
        target = tokenizer(" " + sample.text_output, add_special_tokens=False).input_ids + [tokenizer.eos_token_id]
        rows.append(list(ids) + target)
        labels.append([-100] * len(ids) + target)
    width = max(map(len, rows))
    out = {
        "pixel_values": pixels["pixel_values"],
        "input_ids": torch.tensor([r + [tokenizer.pad_token_id] * (width - len(r)) for r in rows]),
        "attention_mask": torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows]),
        "labels": torch.tensor([r + [-100] * (width - len(r)) for r in labels]),
    }
    if "image_sizes" in pixels:
        out["image_sizes"] = pixels["image_sizes"]
    return out


@pytest.mark.parametrize("combination", ["clip-llama", "clip-llama-next"])
def test_each_image_is_preprocessed_once_and_the_batches_are_unchanged(
    combination: str, data: Path, tmp_path: Path, monkeypatch
) -> None:
    folder = save_tiny_llava_with_processor(tmp_path / combination, combination)
    processor = AutoProcessor.from_pretrained(folder)
    samples = load_calibration_samples(data, "train", seed=0)[:6]
    expected = [_reference_batch(processor, samples[i : i + 3]) for i in (0, 3)]

    calls: list[int] = []
    image_processor = type(processor.image_processor)
    original = image_processor.__call__

    def counting(self, images, *args, **kwargs):
        calls.append(len(images))
        return original(self, images, *args, **kwargs)

    monkeypatch.setattr(image_processor, "__call__", counting)
    batches = list(calibration_batches(processor, samples, 3, encoder_decoder=False))
    assert calls == [3, 3]  # one pass over each batch's images
    for batch, want in zip(batches, expected, strict=True):
        assert set(batch) == set(want)
        for key, value in want.items():
            assert batch[key].dtype == value.dtype and torch.equal(batch[key], value), key
