"""`ukmp bench` on a standalone Llama: forward and generation only (no image), with memory on the CPU."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tiny_lm import save_tiny_lm
from ukmp.cli import main
from ukmp.pruning import PruneConfig, prune


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    root = tmp_path_factory.mktemp("bench-lm")
    dense = save_tiny_lm(root / "dense")
    prune(PruneConfig(str(dense), root / "p40", "magnitude", 0.4), verbose=False)
    out = root / "bench.json"
    argv = ["bench", dense, root / "p40", "--batch-sizes", "1,2", "--repeats", "1", "--warmup", "0",
            "--text-len", "6", "--caption-tokens", "3", "--threads", "1", "--out", out]  # fmt: skip
    assert main([str(a) for a in argv]) == 0
    return json.loads(out.read_text()), root


@pytest.mark.slow
def test_language_model_is_timed_on_forward_and_generation(bench) -> None:
    results, root = bench
    assert [m["kind"] for m in results["models"]] == ["dense", "pruned", "masked"]
    for model in results["models"]:
        assert set(model["flops_per_image"]) == {"forward", "generate"}
        assert {"lm", "lm_head"} <= set(model["flops_per_image"]["forward"])
        for result in model["batches"].values():
            assert "encode" not in result and result["forward"]["median_s"] > 0
            assert result["peak_memory_mib"] is None or result["peak_memory_mib"] > 0
        assert model["generated_tokens"] == {"1": 3, "2": 3}
    dense, pruned, masked = results["models"]
    assert pruned["flops_per_image"]["forward"]["total"] < dense["flops_per_image"]["forward"]["total"]
    assert masked["flops_per_image"]["forward"]["total"] == dense["flops_per_image"]["forward"]["total"]
    table = (root / "bench.md").read_text()
    assert "| dense | dense |" in table and "| – |" in table  # no image encoding column value


def test_bench_refuses_an_encoder_decoder_language_model(tmp_path: Path, capsys) -> None:
    from transformers import T5Config, T5ForConditionalGeneration

    T5ForConditionalGeneration(T5Config(d_model=16, d_ff=16, num_layers=1, num_heads=2, d_kv=8)).save_pretrained(
        tmp_path / "t5"
    )
    assert main(["bench", str(tmp_path / "t5"), "--no-memory"]) == 2
    assert "decoder-only language models" in capsys.readouterr().err
