"""Moving the inputs of every command into the adapters changed no input and no result.

The digests were recorded with the code as it was before the move (calibration batches built by
``calibration_batches(..., encoder_decoder=...)``, bench inputs and generation branching on the
model's kind). Three kinds, each through its own ``ModelInputs``: BLIP-2 with T5 (an encoder
reads the prompt), InstructBLIP with Llama (the Q-Former reads the instruction) and LLaVA-NeXT
(tiles and ``image_sizes``). A digest covers every tensor's dtype, shape and bytes, and the key
order, so a reordered, recast or re-tokenised batch fails; the UKMP plan's digest covers every
kept unit.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
from pathlib import Path

import pytest
import torch

from eval_tiny_model import build_tiny_blip2, build_tiny_instructblip
from tiny_llava import save_tiny_llava_with_processor
from ukmp.benchmark.measurement import bench_inputs
from ukmp.benchmark.options import BenchOptions
from ukmp.cli import main
from ukmp.data.calibration import calibration_batches, load_calibration_samples
from ukmp.data.index import load_task
from ukmp.data.world_writer import write_split
from ukmp.evaluation.generation import answer_questions
from ukmp.loading import load_model
from ukmp.processors import load_processor

#: name -> (builder, calibration batch digests, (bench forward, bench generate) digests, UKMP plan, VQA answers)
BEFORE = {
    "blip2-t5": (
        build_tiny_blip2,
        ["1c0537b3c6a5ef51", "690dd2caa6bbe7ea"],
        ["76759acd3b3c329e", "9ede029ddbd59799"],
        "c512142d8de77a08",
        "7c43ca9fa1131056",
    ),
    "instructblip-llama": (
        lambda folder: build_tiny_instructblip(folder, "llama"),
        ["1d0dd5bb0bf8483e", "1ea643e3c535524e"],
        ["bcb44562b60da965", "6d56818b85922bef"],
        "328c380843d20f3f",
        "e00a5d2b5b41fd42",
    ),
    "llava-next": (
        lambda folder: save_tiny_llava_with_processor(folder, "clip-llama-next"),
        ["9e739f04a272b249", "4aabcdf6658d139e"],
        ["0ee4700f6a7e44da", "0ee4700f6a7e44da"],
        "101557d216b52989",
        "3e8fdf7f8afd5d83",
    ),
}


def digest(value) -> str:
    """Keys in order, and every tensor's dtype, shape and bytes; anything else as sorted JSON."""
    h = hashlib.sha256()
    if isinstance(value, dict):
        for key in value:
            h.update(key.encode())
            h.update(digest(value[key]).encode())
    elif torch.is_tensor(value):
        h.update(str(value.dtype).encode())
        h.update(str(tuple(value.shape)).encode())
        h.update(value.detach().contiguous().cpu().numpy().tobytes())
    else:
        h.update(json.dumps(value, sort_keys=True, default=str).encode())
    return h.hexdigest()[:16]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("world")
    write_split("train", 12, root)
    write_split("val", 3, root)
    return root


@pytest.mark.parametrize("name", sorted(BEFORE))
def test_inputs_and_plans_as_before(name: str, data: Path, tmp_path: Path) -> None:
    build, calibration, bench, plan, answers = BEFORE[name]
    folder = tmp_path / "model"
    build(folder)
    model, processor = load_model(folder).eval(), load_processor(str(folder))
    samples = load_calibration_samples(data, "train", seed=0)[:4]
    assert [digest(b) for b in calibration_batches(processor, samples, 2, model=model)] == calibration
    assert [digest(x) for x in bench_inputs(model, 2, BenchOptions())] == bench
    vqa = answer_questions(model, processor, list(load_task(data, "val", "vqa"))[:4], progress=False)
    assert hashlib.sha256(json.dumps(vqa, sort_keys=True).encode()).hexdigest()[:16] == answers
    out = tmp_path / "pruned"
    argv = ["prune", str(folder), "--method", "ukmp", "--ratio", "0.3", "--calib", str(data), "--num-samples", "4"]
    with contextlib.redirect_stdout(io.StringIO()):
        assert main([*argv, "--batch-size", "2", "--no-progress", "--out", str(out)]) == 0
    assert digest(json.loads((out / "pruning.json").read_text())["groups"]) == plan
