"""LLaVA (CLIP + Llama, SigLIP + Qwen2, CLIP + Mistral): groups, surgery = masking, artifacts, data-free prune."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import ukmp
from test_surgery_equivalence import heterogeneous_plan
from tiny_llava import COMBINATIONS, llava_inputs, tiny_llava
from ukmp.adapters import find_adapter, is_vision_language_model
from ukmp.artifact import load_model
from ukmp.cli import main
from ukmp.groups import PruningPlan
from ukmp.surgery import apply_plan_as_masks, apply_plan_physically


@pytest.mark.parametrize("combination", sorted(COMBINATIONS))
def test_groups_cover_the_vision_tower_and_the_language_model(combination: str) -> None:
    model = tiny_llava(combination)
    adapter = find_adapter(model)
    groups = adapter.groups(model)
    assert {(g.component, g.kind, g.layer) for g in groups} == {
        (c, k, i) for c in ("vision", "lm") for k in ("attention", "mlp") for i in range(2)
    }
    assert not any("multi_modal_projector" in m.module for g in groups for m in [*g.producers, *g.consumers])
    assert not is_vision_language_model(model)  # not BLIP-style: no Q-Former inputs
    vision_blocks = adapter.block_paths(model, ["vision"])["vision"]
    assert all(isinstance(model.get_submodule(p), torch.nn.Module) for p in vision_blocks)


@pytest.mark.parametrize("combination", sorted(COMBINATIONS))
def test_surgery_equals_masking_including_generate(combination: str) -> None:
    plan = heterogeneous_plan(tiny_llava(combination), seed=2)
    sliced = apply_plan_physically(tiny_llava(combination), plan)
    masked = apply_plan_as_masks(tiny_llava(combination), plan)
    inputs = llava_inputs(sliced)
    assert sum(p.numel() for p in sliced.parameters()) < sum(p.numel() for p in masked.parameters())
    with torch.no_grad():
        torch.testing.assert_close(sliced(**inputs).logits, masked(**inputs).logits, rtol=1e-4, atol=1e-5)
        greedy = dict(max_new_tokens=5, do_sample=False, pad_token_id=0)
        assert torch.equal(sliced.generate(**inputs, **greedy), masked.generate(**inputs, **greedy))


@pytest.mark.parametrize("combination", sorted(COMBINATIONS))
def test_prune_save_reload_is_bit_identical(combination: str, tmp_path: Path, capsys) -> None:
    base, out = tmp_path / "base", tmp_path / "pruned"
    tiny_llava(combination).save_pretrained(base)
    assert main(["prune", str(base), "--method", "magnitude", "--ratio", "0.3", "--out", str(out)]) == 0
    manifest = json.loads((out / "pruning.json").read_text())
    assert manifest["architecture"] == "LlavaForConditionalGeneration"
    reloaded = ukmp.load_pruned(out)
    rebuilt = apply_plan_physically(load_model(base).float(), PruningPlan.from_dict(manifest["groups"]))
    inputs = llava_inputs(reloaded)
    with torch.no_grad():
        assert torch.equal(reloaded(**inputs).logits, rebuilt(**inputs).logits)
    assert sum(p.numel() for p in reloaded.parameters()) == manifest["parameters"]["after"]["total"]
    assert main(["inspect", str(out)]) == 0
    assert "vision" in capsys.readouterr().out


def test_bench_measures_a_pruned_llava(tmp_path: Path) -> None:
    base, out = tmp_path / "base", tmp_path / "pruned"
    tiny_llava("siglip-qwen2").save_pretrained(base)
    assert main(["prune", str(base), "--method", "random", "--ratio", "0.3", "--out", str(out)]) == 0
    bench = tmp_path / "bench.json"
    argv = ["bench", str(base), str(out), "--batch-sizes", "1", "--repeats", "1", "--warmup", "0"]
    assert main([*argv, "--out", str(bench)]) == 0
    models = json.loads(bench.read_text())["models"]
    assert len(models) >= 2
