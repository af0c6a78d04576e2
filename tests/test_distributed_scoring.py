"""UKMP scoring on two processes (`accelerate launch`, gloo on the CPU) equals scoring on one."""

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

from tiny_lm import save_tiny_lm, write_corpus
from ukmp.cli import main
from ukmp.distributed import World


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_shards_partition_the_samples() -> None:
    items = list(range(7))
    shards = [World(rank, 3).shard(items) for rank in range(3)]
    assert shards == [[0, 3, 6], [1, 4], [2, 5]]
    assert World().shard(items) == items and World().is_main and not World(1, 3).is_main


@pytest.mark.slow
def test_two_processes_give_the_one_process_scores(tmp_path: Path) -> None:
    model = save_tiny_lm(tmp_path / "lm")
    corpus = write_corpus(tmp_path / "corpus.txt")
    prune = ["prune", str(model), "--method", "ukmp", "--ratio", "0.25", "--of", "prunable", "--calib", str(corpus)]
    prune += ["--seq-len", "12", "--num-samples", "6", "--batch-size", "2", "--no-progress"]
    assert main([*prune, "--out", str(tmp_path / "one")]) == 0

    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2"]
    launch += ["--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
    launch += ["--main_process_port", str(_free_port()), "-m", "ukmp.cli", *prune, "--out", str(tmp_path / "two")]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(launch, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]

    one, two = (load_file(str(tmp_path / n / "scores.safetensors")) for n in ("one", "two"))
    assert one.keys() == two.keys()
    for name in one:
        torch.testing.assert_close(two[name], one[name], rtol=1e-5, atol=1e-9)
    manifests = [json.loads((tmp_path / n / "pruning.json").read_text()) for n in ("one", "two")]
    passes = [m["extra"]["scoring"] for m in manifests]
    for key in ("gradient_pass", "entropy_pass"):
        assert passes[0][key]["samples"] == passes[1][key]["samples"] == 6
    assert [p["gradient_pass"]["processes"] for p in passes] == [1, 2]
    assert passes[0]["gradient_pass"]["backpropagated_tokens"] == passes[1]["gradient_pass"]["backpropagated_tokens"]
    assert manifests[0]["groups"] == manifests[1]["groups"]


@pytest.mark.slow
def test_a_baseline_refuses_a_multi_process_launch_in_one_sentence(tmp_path: Path) -> None:
    model = save_tiny_lm(tmp_path / "lm")
    corpus = write_corpus(tmp_path / "corpus.txt")
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2"]
    launch += ["--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
    launch += ["--main_process_port", str(_free_port()), "-m", "ukmp.cli", "prune", str(model), "--method", "flap"]
    launch += ["--ratio", "0.25", "--calib", str(corpus), "--seq-len", "12", "--out", str(tmp_path / "out")]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(launch, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode != 0
    assert "--method flap scores in one process; only ukmp split their calibration samples" in proc.stderr
    assert not (tmp_path / "out").exists()
