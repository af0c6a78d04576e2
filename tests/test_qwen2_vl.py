"""Qwen2-VL's own inputs: likelihood retrieval scores through embeddings equal the model's own forward.

Why a test beyond the contract: retrieval scores a caption after the prompt's embeddings, where the
model cannot recompute its 3-D ("mrope") positions; ``Qwen2VLInputs`` gives them. Without them the
caption would be read at 1-D positions and every score would move, which this comparison catches.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tiny_qwen2_vl import save_tiny_qwen2_vl_with_processor
from ukmp.adapters import find_adapter
from ukmp.data.index import load_task
from ukmp.data.reading import load_image
from ukmp.data.world_writer import write_split
from ukmp.evaluation.generation import processor_inputs
from ukmp.evaluation.retrieval import caption_loglik_matrix
from ukmp.loading import load_model
from ukmp.processors import load_processor


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_split("train", 3, tmp_path_factory.mktemp("world"))


@pytest.mark.parametrize("family", ["qwen2-vl", "qwen2.5-vl"])
def test_retrieval_scores_equal_the_models_own_forward(family: str, data: Path, tmp_path: Path) -> None:
    folder = save_tiny_qwen2_vl_with_processor(tmp_path / family, family)
    model, processor = load_model(folder).eval(), load_processor(str(folder))
    records = load_task(data, "train", "retrieval")[:3]
    images = [r.image_path for r in records]
    captions = [c for r in records for c in r.references[:2]][:5]
    scores = caption_loglik_matrix(model, processor, images, captions, pair_batch_size=4, progress=False)
    prompt = find_adapter(model).inputs.placeholder_prompt(processor, "")
    eos = processor.tokenizer.eos_token_id
    with torch.inference_mode():
        for i, image in enumerate(images):
            prefix = processor_inputs(processor, model, [load_image(image)], [prompt])
            start = prefix["input_ids"].shape[1]
            for j, caption in enumerate(captions):
                ids = torch.tensor([processor.tokenizer(caption, add_special_tokens=False)["input_ids"] + [eos]])
                full = {
                    "pixel_values": prefix["pixel_values"],
                    "image_grid_thw": prefix["image_grid_thw"],
                    "input_ids": torch.cat([prefix["input_ids"], ids], dim=1),
                    "mm_token_type_ids": torch.cat([prefix["mm_token_type_ids"], torch.zeros_like(ids)], dim=1),
                }
                logp = torch.log_softmax(model(**full).logits[0], dim=-1)
                direct = torch.stack([logp[start + t - 1, tok] for t, tok in enumerate(ids[0])]).mean().item()
                assert scores[i, j].item() == pytest.approx(direct, abs=1e-4)
    assert scores.std(dim=0).max() > 1e-3  # the scores depend on the image, so the comparison can fail
