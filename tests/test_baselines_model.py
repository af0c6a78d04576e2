"""Baselines on a tiny BLIP-2: one shared calibration pass, FLAP's bias compensation, its artifact."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch

import ukmp
from eval_tiny_model import tiny_model_dir
from ukmp.accounting import parameter_counts
from ukmp.adapters import find_adapter
from ukmp.adapters.base import get_module
from ukmp.artifact import save_pruned
from ukmp.cli import main
from ukmp.data.world_writer import write_split
from ukmp.loading import load_model
from ukmp.methods.base import MethodOptions, ScoringInputs
from ukmp.methods.calibration_pass import CalibrationPass
from ukmp.methods.ecoflap_sp import ECoFLaPOptions
from ukmp.methods.registry import get_scorer
from ukmp.methods.ukmi import UKMIOptions, accumulate_gradients
from ukmp.planning.schedules import plan_from_scores
from ukmp.processors import load_processor
from ukmp.pruning import PruneConfig, prune
from ukmp.surgery import apply_plan_physically


@pytest.fixture(scope="module")
def calib(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_split("train", 8, tmp_path_factory.mktemp("calib"))


@pytest.fixture(scope="module")
def dense():
    ref = str(tiny_model_dir())
    model = load_model(ref).float().eval()
    adapter = find_adapter(model)
    return model, adapter, adapter.groups(model), load_processor(ref)


def _calibration(dense, calib: Path, n: int = 3) -> CalibrationPass:
    model, _, groups, processor = dense
    return CalibrationPass(
        model, processor, groups, calib, "train", num_samples=n, batch_size=2, seed=0, progress=False
    )


def test_one_pass_serves_activations_and_plain_loss_gradients(dense, calib: Path) -> None:
    cal = _calibration(dense, calib)
    cal.require("activations", "gradients")
    stats = cal.activations()
    grads, _ = cal.gradients()
    assert len(cal.passes) == 1 and cal.passes[0]["computes"] == ["activations", "gradients"]
    assert all(s.count > 0 for s in stats.values())
    # the same gradients as UKMI's pass with token selection off (T = 1: every target token)
    model, _, groups, _ = dense
    reference, _, _ = accumulate_gradients(
        model, groups, cal.batches(1), UKMIOptions(threshold=1.0, entropy="off"), total=3
    )
    # two float computations of one loss (plain cross-entropy; the selected-token loss at T = 1) differ in
    # the last bits, which near-cancelling elements turn into ~1e-6 absolute; the gradients are ~1e-3 to 1e-1
    for name, g in grads.items():
        assert g.abs().max() > 1e-3, name
        torch.testing.assert_close(g, reference[name], rtol=1e-4, atol=1e-5)
    cal.gradients(fisher=True)  # a later need runs one more pass, and says so
    assert len(cal.passes) == 2 and "fisher" in cal.passes[1]["computes"]


def _flap_pruned(dense, calib: Path, ratio: float = 0.3):
    """FLAP through its registered scorer: scores from the shared pass, compensation in ``finalize``."""
    model, adapter, groups, processor = dense
    scorer = get_scorer("flap")
    inputs = ScoringInputs(model, processor, groups, calib, "train", num_samples=3, batch_size=2, progress=False)
    inputs.shared_pass = _calibration(dense, calib)
    scored = scorer.score(inputs)
    basis = parameter_counts(model, adapter)["total"]
    result = plan_from_scores(scored.scores, groups, schedule="global", target_ratio=ratio, basis_params=basis)
    pruned = copy.deepcopy(model)
    scorer.finalize(pruned, groups, result.plan, scored, lambda: apply_plan_physically(pruned, result.plan, adapter))
    return pruned, result.plan


def test_flap_compensated_layer_keeps_the_dense_output_mean_on_calibration_data(dense, calib: Path) -> None:
    model, _, groups, processor = dense
    pruned, plan = _flap_pruned(dense, calib)
    group = next(g for g in groups if g.kind == "mlp" and g.component == "lm_encoder" and plan.removed(g))
    name = group.consumers[0].module
    assert get_module(model, name).bias is None and get_module(pruned, name).bias is not None  # T5 wo: created
    assert name in pruned.ukmp_added_biases
    inputs = []
    hook = get_module(model, name).register_forward_pre_hook(lambda _m, args: inputs.append(args[0].detach()))
    cal = _calibration(dense, calib)
    with torch.no_grad():
        for batch in cal.batches(1):
            model(**batch)
    hook.remove()
    x = torch.cat([t.reshape(-1, t.shape[-1]) for t in inputs])
    kept = torch.tensor(plan.kept[group.name])
    with torch.no_grad():
        dense_mean = get_module(model, name)(x).mean(dim=0)
        compensated = get_module(pruned, name)(x[:, kept]).mean(dim=0)
        plain = torch.nn.functional.linear(x[:, kept], get_module(pruned, name).weight).mean(dim=0)
    torch.testing.assert_close(compensated, dense_mean, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(plain, dense_mean, atol=1e-5)  # without the bias the mean shifts


def test_flap_artifact_with_created_biases_reloads_bit_identically(dense, calib: Path, tmp_path: Path) -> None:
    pruned, plan = _flap_pruned(dense, calib)
    out = save_pruned(pruned, plan, tmp_path / "flap", method="flap", target_ratio=0.3)
    manifest = json.loads((out / "pruning.json").read_text())
    assert manifest["added_biases"] == pruned.ukmp_added_biases and manifest["added_biases"]
    assert manifest["parameters"]["before"]["total"] == parameter_counts(dense[0])["total"]
    reloaded = ukmp.load_pruned(out)
    batch = next(_calibration(dense, calib).batches(2))
    with torch.no_grad():
        assert torch.equal(pruned(**batch).logits, reloaded(**batch).logits)


@pytest.mark.parametrize("method", ["flap", "ecoflap-sp"])
def test_prune_cli_runs_a_baseline_and_records_it(method: str, calib: Path, tmp_path: Path) -> None:
    out = tmp_path / method
    argv = ["prune", str(tiny_model_dir()), "--method", method, "--ratio", "0.3", "--calib", str(calib)]
    assert main([*argv, "--num-samples", "3", "--out", str(out)]) == 0
    manifest = json.loads((out / "pruning.json").read_text())
    assert manifest["achieved_ratio"] >= 0.3
    assert manifest["extra"]["scoring"]["scoring"]["peak_memory_mb"] > 0
    assert (manifest["added_biases"] != []) == (method == "flap")
    ukmp.load_pruned(out)


def test_ecoflap_layer_sparsity_margin_reaches_the_planner(calib: Path, tmp_path: Path) -> None:
    """ECoFLaP-sp caps each block at the mean sparsity plus a margin: with no margin every block is
    pruned alike; with a wide one the block scores move the split. The option must reach the plan."""
    model = str(tiny_model_dir())
    scored = tmp_path / "scored"
    prune(PruneConfig(model, scored, "ecoflap-sp", 0.3, calib=calib, num_samples=3, progress=False), verbose=False)

    def kept_fractions(margin: float) -> dict[str, float]:
        options = MethodOptions(ecoflap=ECoFLaPOptions(max_sparsity_margin=margin))
        out = tmp_path / f"margin-{margin}"
        config = PruneConfig(
            model, out, "ecoflap-sp", 0.3, options=options, scores_file=scored / "scores.safetensors", progress=False
        )
        prune(config, verbose=False)
        groups = json.loads((out / "pruning.json").read_text())["groups"]
        return {name: len(g["kept"]) / g["num_units"] for name, g in groups.items()}

    tight, wide = kept_fractions(0.0), kept_fractions(0.9)
    assert max(tight.values()) - min(tight.values()) < 0.15  # alike, up to whole units
    assert tight != wide
