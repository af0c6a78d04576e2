"""Idefics3 and SmolVLM beyond the contract: the connector stays whole, and crops of mixed counts read right.

Why these checks: the contract's world has square images only, so every sample of a batch has
the same crops and the same number of image tokens. Real images differ in shape: with image
splitting a wide image gives fewer crops than a square one, the processor pads the batch with
all-zero images and the prompts with padding tokens, and the model must drop those crops and fill
each prompt's image tokens with its own crops' features. Retrieval scores built through the
adapter's embeddings path must then equal the model's own forward on each image alone, and a
calibration batch must equal its samples one by one. Pruning must leave the connector's input
(the tower's full width, times the pixel shuffle's ``scale_factor**2``) untouched.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import ukmp
from tiny_idefics3 import IMAGE_SEQ_LEN, SCALE_FACTOR, VISION, save_tiny_idefics3_with_processor
from ukmp.adapters import find_adapter
from ukmp.cli import main
from ukmp.data.index import load_task
from ukmp.data.prefix_lm import PrefixLMSample
from ukmp.data.reading import load_image
from ukmp.data.world_writer import write_split
from ukmp.evaluation.retrieval import caption_loglik_matrix
from ukmp.loading import load_model
from ukmp.processors import load_processor

FAMILIES = [("smolvlm", True), ("idefics3", False), ("idefics3", True)]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_split("train", 3, tmp_path_factory.mktemp("world"))


def mixed_images(data: Path, folder: Path) -> list[Path]:
    """Two world images as they are (square) and the top half of a third (twice as wide as high)."""
    paths = [r.image_path for r in load_task(data, "train", "retrieval")[:3]]
    wide = folder / "wide.png"
    image = load_image(paths[2])
    image.crop((0, 0, image.width, image.height // 2)).save(wide)
    return [paths[0], wide, paths[1]]


def image_token_counts(processor, images: list[Path]) -> list[int]:
    """Image tokens the processor writes for each image alone."""
    image_id = processor.tokenizer.convert_tokens_to_ids("<image>")
    counts = []
    for path in images:
        ids = processor(images=[[load_image(path)]], text=["<image>"])["input_ids"][0]
        counts.append(sum(1 for i in ids if i == image_id))
    return counts


@pytest.mark.parametrize(("family", "splitting"), FAMILIES)
def test_retrieval_scores_equal_the_models_own_forward(
    family: str, splitting: bool, data: Path, tmp_path: Path
) -> None:
    folder = save_tiny_idefics3_with_processor(tmp_path / family, family, splitting)
    model, processor = load_model(folder).eval(), load_processor(str(folder))
    images = mixed_images(data, tmp_path)
    counts = image_token_counts(processor, images)
    # split: a square image is 2x2 crops + a global view, a wide one 2x1 + 1; unsplit: one view each
    assert counts == ([20, 12, 20] if splitting else [IMAGE_SEQ_LEN] * 3)
    records = load_task(data, "train", "retrieval")[:3]
    captions = [c for r in records for c in r.references[:2]][:5]
    scores = caption_loglik_matrix(model, processor, images, captions, pair_batch_size=4, progress=False)
    prompt = find_adapter(model).inputs.placeholder_prompt(processor, "")
    eos = processor.tokenizer.eos_token_id
    with torch.inference_mode():
        for i, image in enumerate(images):
            alone = processor(images=[[load_image(image)]], text=[prompt], return_tensors="pt")
            start = alone["input_ids"].shape[1]
            for j, caption in enumerate(captions):
                ids = torch.tensor([processor.tokenizer(caption, add_special_tokens=False)["input_ids"] + [eos]])
                full = {
                    "pixel_values": alone["pixel_values"],
                    "pixel_attention_mask": alone["pixel_attention_mask"],
                    "input_ids": torch.cat([alone["input_ids"], ids], dim=1),
                }
                logp = torch.log_softmax(model(**full).logits[0], dim=-1)
                direct = torch.stack([logp[start + t - 1, tok] for t, tok in enumerate(ids[0])]).mean().item()
                assert scores[i, j].item() == pytest.approx(direct, abs=1e-4)
    assert scores.std(dim=0).max() > 1e-3  # the scores depend on the image, so the comparison can fail


@pytest.mark.parametrize(("family", "splitting"), FAMILIES[:2])
def test_a_calibration_batch_of_mixed_crops_equals_its_samples_alone(
    family: str, splitting: bool, data: Path, tmp_path: Path
) -> None:
    folder = save_tiny_idefics3_with_processor(tmp_path / family, family, splitting)
    model, processor = load_model(folder).eval(), load_processor(str(folder))
    images = mixed_images(data, tmp_path)
    samples = [PrefixLMSample(path, "what shape is it", "a red circle") for path in images]
    inputs = find_adapter(model).inputs
    batch = inputs.calibration_batch(processor, [load_image(p) for p in images], samples)
    real_crops = (batch["pixel_values"].flatten(2) != 0).any(-1).sum(-1)
    image_tokens = (batch["input_ids"] == model.config.image_token_id).sum(-1)
    assert torch.equal(image_tokens, real_crops * IMAGE_SEQ_LEN)
    assert real_crops.tolist() == ([5, 3, 5] if splitting else [1, 1, 1])
    with torch.inference_mode():
        together = model(**batch).logits
        for i, piece in enumerate(inputs.sample_pieces(batch)):
            length = int(piece["attention_mask"].sum())
            alone = model(**piece).logits[0, :length]
            torch.testing.assert_close(together[i, :length], alone, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("family", ["smolvlm", "idefics3"])
def test_the_connector_reads_the_towers_whole_width_after_pruning_at_a_high_ratio(family: str, tmp_path: Path) -> None:
    folder = save_tiny_idefics3_with_processor(tmp_path / family, family)
    out = tmp_path / "pruned"
    argv = ["prune", str(folder), "--method", "magnitude", "--ratio", "0.8", "--of", "prunable"]
    assert main([*argv, "--out", str(out)]) == 0
    manifest = json.loads((out / "pruning.json").read_text())
    kept = {name: len(group["kept"]) for name, group in manifest["groups"].items()}
    assert kept["vision.layers.0.mlp"] < VISION["intermediate_size"]  # the tower itself was pruned
    dense, pruned = load_model(folder), ukmp.load_pruned(out)
    width = VISION["hidden_size"]
    projection = pruned.model.connector.modality_projection.proj
    assert projection.in_features == width * SCALE_FACTOR**2
    torch.testing.assert_close(projection.weight, dense.model.connector.modality_projection.proj.weight)
    for layer in pruned.model.vision_model.encoder.layers:
        assert layer.self_attn.out_proj.out_features == width and layer.mlp.fc2.out_features == width
    assert pruned.model.vision_model.post_layernorm.weight.shape == (width,)
    example = find_adapter(pruned).example_inputs(pruned, batch=2, text_len=4)
    with torch.inference_mode():
        assert pruned(**example).logits.shape[:2] == example["input_ids"].shape
