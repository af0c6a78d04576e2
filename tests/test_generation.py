"""Batched generation reuses each image's features across its questions, yet matches `model.generate`."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import AutoProcessor, Blip2ForConditionalGeneration

from eval_tiny_model import tiny_model_dir
from ukmp.data.index import load_task
from ukmp.data.reading import load_image
from ukmp.data.world_writer import write_split
from ukmp.evaluation.generation import VQA_SETTINGS, answer_questions, processor_inputs


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_split("val", 2, tmp_path_factory.mktemp("world"))


def test_answers_match_blip2_generate_and_are_deterministic(world: Path) -> None:
    model_dir = tiny_model_dir()
    model = Blip2ForConditionalGeneration.from_pretrained(model_dir).eval()
    processor = AutoProcessor.from_pretrained(model_dir)
    records = load_task(world, "val", "vqa")[:6]  # several questions share an image
    assert len({r.image_path for r in records}) < len(records)
    ours = answer_questions(model, processor, records, batch_size=4, progress=False)
    assert ours == answer_questions(model, processor, records, batch_size=3, progress=False)

    s = VQA_SETTINGS
    with torch.inference_mode():
        for record in records:
            inputs = processor_inputs(
                processor, model, [load_image(record.image_path)], [s.prompt.format(record.question)]
            )
            out = model.generate(
                **inputs,
                num_beams=s.num_beams,
                max_new_tokens=s.max_new_tokens,
                min_new_tokens=s.min_new_tokens,
                length_penalty=s.length_penalty,
                do_sample=False,
            )
            assert ours[record.question_id] == processor.batch_decode(out, skip_special_tokens=True)[0].strip()
