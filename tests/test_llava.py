"""LLaVA (CLIP + Llama, SigLIP + Qwen2, CLIP + Mistral) and LLaVA-NeXT (CLIP + Llama): groups, surgery = masking,
artifacts, calibrated and data-free pruning, batched answers, likelihood retrieval."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch

import ukmp
from test_surgery_equivalence import heterogeneous_plan
from tiny_llava import COMBINATIONS, llava_inputs, tiny_llava
from ukmp.adapters import find_adapter, is_vision_language_model
from ukmp.cli import main
from ukmp.groups import PruningPlan
from ukmp.loading import load_model
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
    assert manifest["architecture"] == type(tiny_llava(combination)).__name__
    reloaded = ukmp.load_pruned(out)
    rebuilt = apply_plan_physically(load_model(base).float(), PruningPlan.from_dict(manifest["groups"]))
    inputs = llava_inputs(reloaded)
    with torch.no_grad():
        assert torch.equal(reloaded(**inputs).logits, rebuilt(**inputs).logits)
    assert sum(p.numel() for p in reloaded.parameters()) == manifest["parameters"]["after"]["total"]
    assert main(["inspect", str(out)]) == 0
    assert "vision" in capsys.readouterr().out


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from tiny_llava import save_tiny_llava_with_processor
    from ukmp.data.world_writer import write_split

    root = tmp_path_factory.mktemp("llava")
    folders = {
        c: save_tiny_llava_with_processor(root / c, c) for c in ("clip-llama", "siglip-qwen2", "clip-llama-next")
    }
    write_split("train", 12, root / "data")
    return {**folders, "data": root / "data"}


@pytest.mark.parametrize("combination", ["clip-llama", "siglip-qwen2"])
def test_every_calibrated_method_prunes_a_llava(combination: str, calibrated, tmp_path: Path) -> None:
    """Calibration puts the processor's `<image>` placeholder in front of each prompt; labels only on targets."""
    from transformers import AutoProcessor

    from ukmp.data.calibration import calibration_batches, load_calibration_samples
    from ukmp.methods.registry import scorer_names

    folder, data = calibrated[combination], calibrated["data"]
    processor = AutoProcessor.from_pretrained(folder)
    samples = load_calibration_samples(data, "train", seed=0)[:2]
    batch = next(calibration_batches(processor, samples, 2, encoder_decoder=False))
    dense = load_model(folder).eval()
    image_token, vision = dense.config.image_token_index, dense.model.vision_tower.config
    patches = (vision.image_size // vision.patch_size) ** 2
    assert (batch["input_ids"] == image_token).sum(dim=1).tolist() == [patches] * 2
    assert ((batch["labels"] != -100) & (batch["input_ids"] == image_token)).sum() == 0
    methods = scorer_names() if combination == "clip-llama" else ("ukmp", "flap")
    for method in methods:
        out = tmp_path / method
        argv = ["prune", str(folder), "--method", method, "--ratio", "0.3", "--calib", str(data)]
        assert main([*argv, "--num-samples", "4", "--batch-size", "2", "--no-progress", "--out", str(out)]) == 0
        manifest = json.loads((out / "pruning.json").read_text())
        pruned = ukmp.load_pruned(out)
        if not manifest.get("added_biases"):  # FLAP's compensation changes what the masked model computes
            masked = apply_plan_as_masks(copy.deepcopy(dense), PruningPlan.from_dict(manifest["groups"]))
            model_inputs = {k: v for k, v in batch.items() if k != "labels"}
            with torch.no_grad():
                torch.testing.assert_close(
                    pruned(**model_inputs).logits, masked(**model_inputs).logits, rtol=1e-4, atol=1e-4
                )
        if method == "ukmp":
            assert manifest["extra"]["scoring"]["gradient_pass"]["backpropagated_tokens"] > 0


def test_batched_answers_equal_one_at_a_time(calibrated) -> None:
    """LLaVA answers come from `model.generate` on left-padded prompts: batching must not change them."""
    from transformers import AutoProcessor

    from ukmp.data.index import load_task
    from ukmp.evaluation.generation import GenerationSettings, answer_questions

    folder, data = calibrated["siglip-qwen2"], calibrated["data"]
    model, processor = load_model(folder).eval(), AutoProcessor.from_pretrained(folder)
    records = load_task(data, "train", "vqa")[:5]  # questions of different lengths
    greedy = GenerationSettings(prompt="Question: {} Short answer:", num_beams=1, max_new_tokens=4)
    batched = answer_questions(model, processor, records, greedy, batch_size=5, progress=False)
    single = answer_questions(model, processor, records, greedy, batch_size=1, progress=False)
    assert batched == single and len(set(batched.values())) > 1


@pytest.mark.parametrize("combination", ["clip-llama", "siglip-qwen2", "clip-llama-next"])
def test_retrieval_scores_equal_the_models_own_forward(combination: str, calibrated) -> None:
    """s(image, caption) = mean log p(caption token | image, earlier tokens), by LLaVA's own forward on the
    processor's expanded prompt followed by the caption; batched blocks must not change it."""
    from transformers import AutoProcessor

    from test_retrieval import assert_matches_direct_decoder_forward
    from ukmp.data.index import load_task
    from ukmp.evaluation.retrieval import caption_loglik_matrix

    folder, data = calibrated[combination], calibrated["data"]
    model, processor = load_model(folder).eval(), AutoProcessor.from_pretrained(folder)
    records = load_task(data, "train", "retrieval")[:3]
    images = [r.image_path for r in records]
    captions = [c for r in records for c in r.references[:2]][:5]
    scores = caption_loglik_matrix(model, processor, images, captions, pair_batch_size=4, progress=False)
    assert_matches_direct_decoder_forward(model, processor, images, captions, scores, prompt="<image>\n")


def test_retrieval_runs_on_a_pruned_llava(calibrated, tmp_path: Path) -> None:
    folder, data = calibrated["clip-llama"], calibrated["data"]
    pruned = tmp_path / "pruned"
    assert main(["prune", str(folder), "--method", "magnitude", "--ratio", "0.3", "--out", str(pruned)]) == 0
    argv = ["evaluate", str(pruned), "--data", str(data), "--split", "train", "--task", "retrieval", "--limit", "4"]
    assert main([*argv, "--no-progress", "--out", str(tmp_path / "e.json")]) == 0
    result = json.loads((tmp_path / "e.json").read_text())["tasks"]["retrieval"]
    assert result["num_images"] == 4 and 0.0 <= result["TR@1"] <= 100.0
