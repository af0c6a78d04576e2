"""Artifacts keep the base model's dtypes: a bf16 checkpoint gives a bf16 artifact that reloads bit-identically.

Scoring and slicing run in float32; the sliced weights are cast back once, each to the dtype the
base checkpoint gave it (a T5 keeps `wo` in float32 inside a float16 checkpoint), and a merged
recovery adapter is folded in float32 before the same single cast.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import ukmp
from eval_tiny_model import build_tiny_blip2
from ukmp.artifact import WEIGHTS, cast_to_saved_dtype, weight_dtypes
from ukmp.cli import main
from ukmp.data.calibration import calibration_batches, load_calibration_samples
from ukmp.data.world_writer import write_split
from ukmp.loading import load_model
from ukmp.methods.registry import get_scorer
from ukmp.pruning import PruneConfig, load_dense, plan, score
from ukmp.surgery import apply_plan_physically


@pytest.fixture(scope="module")
def bases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("dtype")
    out = {}
    for dtype in ("bfloat16", "float16"):
        folder = build_tiny_blip2(root / "fp32")
        model = load_model(folder)
        model.to(getattr(torch, dtype)).save_pretrained(root / dtype)
        for name in ("processor_config.json", "tokenizer.json", "tokenizer_config.json"):
            if (folder / name).is_file():
                (root / dtype / name).write_bytes((folder / name).read_bytes())
        out[dtype] = root / dtype
    out["data"] = write_split("train", 8, root / "data")
    return out


def _batch(folder: Path, data: Path) -> dict[str, torch.Tensor]:
    from ukmp.processors import load_processor

    samples = load_calibration_samples(data, "train", seed=0)[:2]
    return next(calibration_batches(load_processor(str(folder)), samples, 2, encoder_decoder=True))


def test_a_bf16_base_gives_a_bf16_artifact_with_identical_logits(bases, tmp_path: Path) -> None:
    base = bases["bfloat16"]
    out = tmp_path / "p"
    assert main(["prune", str(base), "--method", "magnitude", "--ratio", "0.3", "--out", str(out)]) == 0
    assert json.loads((out / "pruning.json").read_text())["dtype"] == "bfloat16"
    assert set(weight_dtypes(out / WEIGHTS).values()) == {torch.bfloat16}
    # the same steps by hand: float32 slicing, then one cast back
    config = PruneConfig(str(base), out, "magnitude", 0.3)
    dense = load_dense(config)
    scorer = get_scorer("magnitude")
    result, _ = plan(config, dense, scorer, score(config, dense, scorer))
    expected = apply_plan_physically(dense.model, result.plan, dense.adapter)
    cast_to_saved_dtype(expected, "auto", dense.param_dtypes)
    reloaded = ukmp.load_pruned(out)
    batch = _batch(base, bases["data"])
    batch["pixel_values"] = batch["pixel_values"].to(torch.bfloat16)
    with torch.no_grad():
        assert torch.equal(reloaded(**batch).logits, expected(**batch).logits)
    wide = tmp_path / "p32"
    argv = ["prune", str(base), "--method", "magnitude", "--ratio", "0.3", "--dtype", "float32", "--out", str(wide)]
    assert main(argv) == 0
    assert set(weight_dtypes(wide / WEIGHTS).values()) == {torch.float32}
    assert (out / WEIGHTS).stat().st_size < 0.55 * (wide / WEIGHTS).stat().st_size


def test_a_float16_t5_keeps_its_float32_wo_and_flap_biases_follow_their_weights(bases, tmp_path: Path) -> None:
    base = bases["float16"]
    out = tmp_path / "flap"
    argv = ["prune", str(base), "--method", "flap", "--ratio", "0.3", "--calib", str(bases["data"])]
    assert main([*argv, "--num-samples", "3", "--out", str(out)]) == 0
    # as transformers loads the base: float16, but T5's `wo` in float32 (its `_keep_in_fp32_modules`)
    base_dtypes = {n: p.dtype for n, p in load_model(base).state_dict().items()}
    saved = weight_dtypes(out / WEIGHTS)
    assert {torch.float16, torch.float32} == set(base_dtypes.values())
    for name, dtype in saved.items():
        owner = name.rsplit(".", 1)[0]
        assert dtype == base_dtypes.get(name, base_dtypes.get(f"{owner}.weight")), name


def test_merging_a_recovery_adapter_keeps_the_artifact_dtypes(bases, tmp_path: Path) -> None:
    base, data = bases["bfloat16"], bases["data"]
    pruned = tmp_path / "p"
    assert main(["prune", str(base), "--method", "magnitude", "--ratio", "0.3", "--out", str(pruned)]) == 0
    argv = ["recover", str(pruned), "--data", str(data), "--split", "train", "--max-samples", "4", "--batch-size", "2"]
    assert main([*argv, "--merge", "--out", str(tmp_path / "r"), "--no-progress"]) == 0
    assert weight_dtypes(tmp_path / "r" / "merged" / WEIGHTS) == weight_dtypes(pruned / WEIGHTS)


def test_float32_checksum_of_a_bf16_model_equals_the_checksum_of_its_float32_copy(monkeypatch):
    """Manifests record the checksum of the float32 base; computing it a slice at a time must not change it."""
    import ukmp.artifact as artifact_module
    from ukmp.artifact import state_dict_sha256

    monkeypatch.setattr(artifact_module, "_HASH_CHUNK", 7)  # many slices, one partial
    state = {"w": torch.randn(5, 3).bfloat16(), "ids": torch.arange(4), "empty": torch.zeros(0, 2).half()}
    upcast = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    assert state_dict_sha256(state, as_float32=True) == state_dict_sha256(upcast)
    assert state_dict_sha256(state) != state_dict_sha256(upcast)
