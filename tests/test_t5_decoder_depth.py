"""A T5 whose decoder is deeper or shallower than its encoder generates, in bench and in evaluation.

transformers 5 sizes ``generate``'s default cache from the top-level config's layer count, which for
T5 is the encoder's (``num_layers``); a decoder with more layers (``num_decoder_layers``) ran past the
end of that cache: IndexError inside ``cache.update``, dense and pruned alike.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from eval_tiny_model import build_tiny_blip2, tiny_model_dir
from ukmp.benchmark.measurement import bench_inputs
from ukmp.benchmark.options import BenchOptions
from ukmp.cli import main
from ukmp.data.world_writer import write_split
from ukmp.evaluation.generation import generation_cache
from ukmp.loading import load_model
from ukmp.pruning import PruneConfig, prune


@pytest.mark.slow
@pytest.mark.parametrize(("encoder", "decoder"), [(1, 2), (2, 1)])
def test_bench_and_evaluate_a_t5_with_another_decoder_depth(encoder: int, decoder: int, tmp_path: Path) -> None:
    dense = build_tiny_blip2(tmp_path / "dense", lm_layers=encoder, decoder_layers=decoder)
    model = load_model(dense)
    assert (len(model.language_model.encoder.block), len(model.language_model.decoder.block)) == (encoder, decoder)
    prune(PruneConfig(str(dense), tmp_path / "pruned", "magnitude", 0.3), verbose=False)
    out = tmp_path / "bench.json"
    argv = ["bench", dense, tmp_path / "pruned", "--batch-sizes", "2", "--repeats", "1", "--warmup", "0"]
    argv += ["--caption-tokens", "3", "--no-memory", "--threads", "1", "--out", out]
    assert main([str(a) for a in argv]) == 0
    models = json.loads(out.read_text())["models"]
    assert [m["kind"] for m in models] == ["dense", "pruned", "masked"]
    assert all(m["generated_tokens"] == {"2": 3} for m in models)
    val = write_split("val", 2, tmp_path / "val")
    for ref in (dense, tmp_path / "pruned"):
        # VQA's answers come from the same `generate` as captions (the Java caption metrics add nothing here)
        argv = ["evaluate", str(ref), "--data", str(val), "--task", "vqa", "--limit", "3"]
        assert main([*argv, "--out", str(tmp_path / "eval.json"), "--no-progress"]) == 0


def test_the_cache_changes_nothing_where_the_depths_are_equal() -> None:
    model = load_model(tiny_model_dir())
    _, inputs = bench_inputs(model, 2, BenchOptions())
    settings = dict(max_new_tokens=4, min_new_tokens=4, do_sample=False, num_beams=3)
    with torch.inference_mode():
        plain = model.generate(**inputs, **settings)
        cached = model.generate(**inputs, **settings, **generation_cache(model))
    assert torch.equal(plain, cached)
