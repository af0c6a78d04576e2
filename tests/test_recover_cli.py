"""`ukmp recover` end to end on a tiny saved model: resume equivalence, merge, errors, two processes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from eval_tiny_model import tiny_model_dir
from ukmp.artifact import load_pruned
from ukmp.cli import main
from ukmp.data.calibration import calibration_batches, load_calibration_samples
from ukmp.data.world_writer import write_split
from ukmp.loading import load_model
from ukmp.processors import load_processor
from ukmp.pruning import PruneConfig, prune


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("recover")
    data = write_split("train", 10, root / "data")
    pruned = root / "pruned"
    prune(PruneConfig(str(tiny_model_dir()), pruned, "magnitude", 0.3), verbose=False)
    return {"data": data, "pruned": pruned, "root": root}


def _recover(setup: dict[str, Path], out: Path, *extra: str) -> int:
    argv = ["recover", str(setup["pruned"]), "--data", str(setup["data"]), "--out", str(out)]
    argv += ["--batch-size", "1", "--lr", "1e-3", "--warmup-steps", "2", "--checkpoint-every", "3"]
    return main([*argv, "--no-progress", "--threads", "1", *extra])


@pytest.mark.slow
def test_resumed_run_ends_with_the_same_weights_and_merge_writes_an_artifact(setup, tmp_path: Path) -> None:
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    assert _recover(setup, whole, "--merge") == 0
    # 10 samples at batch 1: six one-step MSE sub-phases, then 4 steps of task + KL; stop inside the top phase
    assert _recover(setup, parts, "--stop-after", "8") == 0
    state = json.loads((parts / "checkpoints" / "last" / "state.json").read_text())
    assert (state["phase"], state["step"], state["global_step"]) == (6, 2, 8)
    assert not (parts / "adapter.safetensors").exists()
    assert _recover(setup, parts, "--resume", "--merge") == 0

    a, b = load_file(str(whole / "adapter.safetensors")), load_file(str(parts / "adapter.safetensors"))
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(v.abs().sum() > 0 for k, v in a.items() if "lora_B" in k)
    history = json.loads((whole / "history.json").read_text())
    assert history == json.loads((parts / "history.json").read_text())
    assert [h["phase"] for h in history][:7] == [
        "low_visual",
        "high_visual",
        "low_encoder",
        "high_encoder",
        "low_decoder",
        "high_decoder",
        "top",
    ]
    assert (whole / "loss_curve.png").stat().st_size > 0

    # the merged artifact is a normal pruned model whose manifest records the recovery
    manifest = json.loads((whole / "merged" / "pruning.json").read_text())
    assert manifest["recovery"]["schedule"] == "lpd" and manifest["recovery"]["steps"] == 10
    original = json.loads((setup["pruned"] / "pruning.json").read_text())
    assert manifest["groups"] == original["groups"]
    merged = load_pruned(whole / "merged")
    unmerged = load_model(whole)  # rebuilt from the pruned model, the teacher and the saved adapter
    pruned = load_pruned(setup["pruned"])
    processor = load_processor(str(setup["pruned"]))
    samples = load_calibration_samples(setup["data"], "train")
    batch = next(calibration_batches(processor, samples[:3], 3, encoder_decoder=True))
    with torch.no_grad():
        got, want, before = merged(**batch).logits, unmerged(**batch).logits, pruned(**batch).logits
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
    assert not torch.allclose(got, before)
    assert sum(p.numel() for p in merged.parameters()) == sum(p.numel() for p in pruned.parameters())


def test_resume_refuses_other_settings(setup, tmp_path: Path, capsys) -> None:
    out = tmp_path / "r"
    assert _recover(setup, out, "--stop-after", "1", "--schedule", "task") == 0
    assert _recover(setup, out, "--resume", "--schedule", "kl-task") == 2
    assert "schedule='task'" in capsys.readouterr().err
    assert _recover(setup, out, "--schedule", "task") == 2  # exists: needs --resume or --overwrite


def test_wrong_teacher_is_one_sentence(setup, tmp_path: Path, capsys) -> None:
    other = tmp_path / "other"
    from eval_tiny_model import build_tiny_blip2

    build_tiny_blip2(other, seed=5)
    capsys.readouterr()
    assert _recover(setup, tmp_path / "x", "--teacher", str(other)) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "is not the base model" in err and err.startswith("ukmp recover: error:")
    assert not (tmp_path / "x").exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_process_run_finishes(setup, tmp_path: Path) -> None:
    """`accelerate launch` with two CPU processes (gloo); a one-sample step leaves one process without data."""
    out = tmp_path / "ddp"
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2"]
    launch += ["--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
    launch += ["--main_process_port", str(_free_port()), "-m", "ukmp.cli", "recover", str(setup["pruned"])]
    launch += ["--data", str(setup["data"]), "--out", str(out), "--cpu", "--max-samples", "8", "--batch-size", "2"]
    launch += ["--lr", "1e-3", "--warmup-steps", "1", "--no-progress"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(launch, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "2 process(es)" in proc.stdout
    info = json.loads((out / "adapter_config.json").read_text())
    assert info["recovery"]["num_processes"] == 2
    adapter = load_file(str(out / "adapter.safetensors"))
    assert any(v.abs().sum() > 0 for k, v in adapter.items() if "lora_B" in k)
