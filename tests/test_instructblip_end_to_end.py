"""InstructBLIP (T5 and Llama, as InstructBLIP-Vicuna): every method prunes it, and generation matches its own.

InstructBLIP's Q-Former also reads the instruction (`qformer_input_ids`), so every place that
builds model inputs has to pass it: calibration (every calibrated method, here) and generation
(here, against `generate`). Evaluation, recovery and the benchmark run in the VLM contract
(`TestInstructBlipT5`, `TestInstructBlipLlama` in test_vision_language_contracts.py).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch
from transformers import AutoProcessor, InstructBlipForConditionalGeneration

import ukmp
from eval_tiny_model import build_tiny_instructblip
from ukmp.adapters import find_adapter
from ukmp.cli import main
from ukmp.data.calibration import calibration_batches, load_calibration_samples
from ukmp.data.index import load_task
from ukmp.data.reading import load_image
from ukmp.data.world_writer import write_split
from ukmp.evaluation.generation import VQA_SETTINGS, answer_questions, processor_inputs
from ukmp.loading import load_model
from ukmp.methods.registry import scorer_names
from ukmp.surgery import apply_plan_as_masks

LMS = ("t5", "llama")


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("instructblip")
    out = {lm: build_tiny_instructblip(root / lm, lm) for lm in LMS}
    data = root / "data"
    write_split("train", 12, data)
    write_split("val", 3, data)
    out["data"] = data
    return out


def _batch(folder: Path, data: Path) -> dict[str, torch.Tensor]:
    processor = AutoProcessor.from_pretrained(folder)
    model = load_model(folder)
    samples = load_calibration_samples(data, "train", seed=0)[:3]
    batch = next(calibration_batches(processor, samples, 3, model=model, place=False))
    assert "qformer_input_ids" in batch  # the Q-Former reads the instruction
    return batch


@pytest.mark.parametrize("lm", LMS)
def test_every_method_prunes_and_the_artifact_computes_what_the_masked_model_does(lm, folders, tmp_path) -> None:
    folder, data = folders[lm], folders["data"]
    batch = _batch(folder, data)
    dense = load_model(folder).eval()
    methods = scorer_names() if lm == "llama" else ("ukmp", "flap", "upop")  # T5 parts are covered by BLIP-2
    for method in methods:
        out = tmp_path / method
        argv = ["prune", str(folder), "--method", method, "--ratio", "0.3", "--calib", str(data)]
        assert main([*argv, "--num-samples", "3", "--batch-size", "2", "--out", str(out)]) == 0, method
        pruned = ukmp.load_pruned(out).eval()
        manifest = json.loads((out / "pruning.json").read_text())
        assert manifest["achieved_ratio"] >= 0.3
        with torch.no_grad():
            got = pruned(**batch).logits
            if method == "flap":  # its compensation biases exist only in the artifact
                continue
            masked = apply_plan_as_masks(copy.deepcopy(dense), pruned.ukmp_plan)
            torch.testing.assert_close(got, masked(**batch).logits, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("lm", LMS)
def test_answers_match_instructblip_generate(lm, folders) -> None:
    """Our batched generation places the prompt-dependent Q-Former features as `generate` does."""
    model = InstructBlipForConditionalGeneration.from_pretrained(folders[lm]).eval()
    processor = AutoProcessor.from_pretrained(folders[lm])
    records = load_task(folders["data"], "val", "vqa")[:4]
    ours = answer_questions(model, processor, records, batch_size=3, progress=False)
    s = VQA_SETTINGS
    with torch.inference_mode():
        for record in records:
            inputs = processor_inputs(
                processor, model, [load_image(record.image_path)], [s.prompt.format(record.question)]
            )
            assert "qformer_input_ids" in inputs
            out = model.generate(
                **inputs,
                num_beams=s.num_beams,
                max_new_tokens=s.max_new_tokens,
                min_new_tokens=s.min_new_tokens,
                length_penalty=s.length_penalty,
                do_sample=False,
            )
            if not find_adapter(model).inputs.encoder_decoder and out.shape[1] > inputs["input_ids"].shape[1]:
                out = out[:, inputs["input_ids"].shape[1] :]
            assert ours[record.question_id] == processor.batch_decode(out, skip_special_tokens=True)[0].strip()
