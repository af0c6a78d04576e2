"""Likelihood retrieval: the batched matrix equals a direct per-pair computation; recalls by hand."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import (
    AutoProcessor,
    Blip2Config,
    Blip2ForConditionalGeneration,
    Blip2Processor,
    BlipImageProcessor,
)

from eval_tiny_model import tiny_model_dir, world_texts
from ukmp.data.index import load_task
from ukmp.data.reading import load_image
from ukmp.data.world_tokenizer import (
    EOS_ID,
    IMAGE_ID,
    PAD_ID,
    as_transformers_tokenizer,
    train_word_tokenizer,
)
from ukmp.data.world_writer import write_split
from ukmp.evaluation.generation import processor_inputs
from ukmp.evaluation.retrieval import caption_loglik_matrix, evaluate_retrieval, retrieval_recalls


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_split("val", 3, tmp_path_factory.mktemp("world"))


def _images_and_captions(world: Path) -> tuple[list[Path], list[str]]:
    records = load_task(world, "val", "retrieval")
    captions = [c for r in records for c in r.references[:3]][:7]
    return [r.image_path for r in records], captions


def test_t5_matrix_matches_direct_forward(world: Path) -> None:
    model_dir = tiny_model_dir()
    model = Blip2ForConditionalGeneration.from_pretrained(model_dir).eval()
    processor = AutoProcessor.from_pretrained(model_dir)
    images, captions = _images_and_captions(world)
    # pair_batch_size 5 -> blocks of 1 image x 5 captions: exercises ragged blocks and length sorting
    scores = caption_loglik_matrix(model, processor, images, captions, pair_batch_size=5, progress=False)
    assert scores.shape == (len(images), len(captions))
    with torch.inference_mode():
        for i, image in enumerate(images):
            inputs = processor_inputs(processor, model, [load_image(image)], [""])
            for j, caption in enumerate(captions):
                labels = processor.tokenizer([caption], return_tensors="pt")["input_ids"]
                direct = -model(**inputs, labels=labels).loss.item()  # mean token NLL over the caption
                assert scores[i, j].item() == pytest.approx(direct, abs=1e-4)
    assert scores.std(dim=0).max() > 1e-3  # scores depend on the image, so the test can fail


def _tiny_opt_blip2() -> tuple[Blip2ForConditionalGeneration, Blip2Processor]:
    tokenizer = as_transformers_tokenizer(train_word_tokenizer(world_texts(10)))
    config = Blip2Config(
        vision_config=dict(
            hidden_size=32,
            intermediate_size=48,
            num_hidden_layers=1,
            num_attention_heads=4,
            image_size=64,
            patch_size=16,
        ),
        qformer_config=dict(
            hidden_size=32,
            intermediate_size=48,
            num_hidden_layers=1,
            num_attention_heads=4,
            encoder_hidden_size=32,
            vocab_size=64,
        ),
        text_config=dict(
            model_type="opt",
            vocab_size=len(tokenizer),
            hidden_size=32,
            ffn_dim=48,
            num_hidden_layers=1,
            num_attention_heads=4,
            max_position_embeddings=128,
            word_embed_proj_dim=32,
            pad_token_id=PAD_ID,
            bos_token_id=EOS_ID,
            eos_token_id=EOS_ID,
        ),
        num_query_tokens=4,
        image_token_index=IMAGE_ID,
    )
    torch.manual_seed(0)
    model = Blip2ForConditionalGeneration(config).eval()
    with torch.no_grad():
        for param in model.parameters():
            if param.dim() >= 2:
                param.normal_(0.0, 0.1)
    image_processor = BlipImageProcessor(size={"height": 64, "width": 64}, image_mean=[0.5] * 3, image_std=[0.5] * 3)
    return model, Blip2Processor(image_processor, tokenizer, num_query_tokens=4)


def assert_matches_direct_decoder_forward(model, processor, images, captions, scores, prompt: str = "") -> None:
    """Each score equals the mean log-probability of the caption's tokens (then EOS) in one plain forward
    of the model over the processor's prompt for that image followed by the caption."""
    eos = processor.tokenizer.eos_token_id
    with torch.inference_mode():
        for i, image in enumerate(images):
            prefix = processor_inputs(processor, model, [load_image(image)], [prompt])
            pixels = {k: v for k, v in prefix.items() if k in ("pixel_values", "image_sizes")}  # LLaVA-NeXT: tiles
            start = prefix["input_ids"].shape[1]
            for j, caption in enumerate(captions):
                ids = processor.tokenizer(caption, add_special_tokens=False)["input_ids"] + [eos]
                full = torch.cat([prefix["input_ids"], torch.tensor([ids])], dim=1)
                logp = torch.log_softmax(model(**pixels, input_ids=full).logits[0], dim=-1)
                direct = torch.stack([logp[start + t - 1, tok] for t, tok in enumerate(ids)]).mean().item()
                assert scores[i, j].item() == pytest.approx(direct, abs=1e-4)
    assert scores.std(dim=0).max() > 1e-3  # the scores depend on the image, so the comparison can fail


def test_decoder_only_matrix_matches_direct_forward(world: Path) -> None:
    model, processor = _tiny_opt_blip2()
    assert processor.tokenizer.eos_token_id == EOS_ID
    images, captions = _images_and_captions(world)
    scores = caption_loglik_matrix(model, processor, images, captions, pair_batch_size=4, progress=False)
    assert_matches_direct_decoder_forward(model, processor, images, captions, scores)


def test_recalls_by_hand() -> None:
    # 3 images, 2 captions each (captions 0,1 -> image 0; 2,3 -> image 1; 4,5 -> image 2)
    scores = torch.tensor(
        [
            [0.9, 0.1, 0.8, 0.0, 0.0, 0.0],  # image 0: own caption 0 ranks first
            [0.0, 0.0, 0.1, 0.2, 0.5, 0.3],  # image 1: own best 0.2 has captions 4, 5 above -> rank 2
            [0.0, 0.0, 0.0, 0.0, 0.4, 0.0],  # image 2: own caption 4 first
        ]
    )
    owners = [0, 0, 1, 1, 2, 2]
    r = retrieval_recalls(scores, owners, ks=(1, 2, 3))
    assert (r["TR@1"], r["TR@2"], r["TR@3"]) == (66.67, 66.67, 100.0)
    # Other images scoring a caption at least as high as its own image (ties count against):
    # c0 0, c1 0, c2 1 (image 0: 0.8), c3 0, c4 1 (image 1: 0.5), c5 2 (image 1: 0.3, image 0 ties at 0.0)
    assert (r["IR@1"], r["IR@2"], r["IR@3"]) == (50.0, 83.33, 100.0)


def test_evaluate_retrieval_reports_recalls(world: Path) -> None:
    model_dir = tiny_model_dir()
    model = Blip2ForConditionalGeneration.from_pretrained(model_dir).eval()
    processor = AutoProcessor.from_pretrained(model_dir)
    records = load_task(world, "val", "retrieval")
    out = evaluate_retrieval(model, processor, records, progress=False)
    assert out["num_images"] == 3 and out["num_captions"] == sum(len(r.references) for r in records)
    assert out["TR@10"] == 100.0 and out["IR@10"] == 100.0  # 3 images: every rank is < 10
    assert all(0.0 <= out[k] <= 100.0 for k in ("TR@1", "TR@5", "IR@1", "IR@5"))
