"""`shapes-smolvlm`'s recipe on a tiny language model: what each stage trains, resuming, shipping and loading."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tiny_smolvlm import tiny_config, tiny_text_model
from ukmp.errors import UserError
from ukmp.zoo.smolvlm import trained_parameters
from ukmp.zoo.smolvlm_ship import ADAPTER, load_shapes_smolvlm, train_shapes_smolvlm
from ukmp.zoo.smolvlm_training import build_trainable_model, stage_parameters, train_smolvlm_run


def test_stages_train_only_their_parameters(tmp_path: Path) -> None:
    cfg = tiny_config()
    fresh, _ = build_trainable_model(tiny_text_model(), cfg)
    before = {n: p.detach().clone() for n, p in fresh.named_parameters()}
    names = set(before)
    vision = {n for n in names if n.startswith("model.vision_model.")}
    connector = {n for n in names if n.startswith("model.connector.")}
    lora = {n for n in names if ".lora_" in n}
    assert vision and connector and lora
    assert set(stage_parameters(fresh, "vision", cfg)) == vision
    assert set(stage_parameters(fresh, "align", cfg)) == vision | connector
    assert set(stage_parameters(fresh, "align", tiny_config(align_trains_vision=False))) == connector
    assert set(stage_parameters(fresh, "instruct", cfg)) == vision | connector | lora
    frozen = tiny_config(align_trains_vision=False, instruct_trains_vision=False)
    assert set(stage_parameters(fresh, "instruct", frozen)) == connector | lora
    assert not any(p.requires_grad for p in fresh.parameters())

    def changed(run) -> set[str]:
        return {n for n, p in run.model.named_parameters() if not torch.equal(p.detach().cpu(), before[n])}

    run = train_smolvlm_run(tmp_path / "ckpt", cfg, text_loader=tiny_text_model, stop_after=5, progress=False)
    assert changed(run) == vision | connector  # LM frozen, LoRA untouched through stage 2 ("align")
    run = train_smolvlm_run(tmp_path / "ckpt", cfg, text_loader=tiny_text_model, progress=False)
    lora_b = {n for n in lora if ".lora_B." in n}
    assert lora_b <= changed(run) <= vision | connector | lora
    assert [r["stage"] for r in run.state.log] == ["vision"] * 2 + ["align"] * 3 + ["instruct"] * 3
    assert all(np.isfinite(r["loss"]) for r in run.state.log)


@pytest.mark.parametrize("stop_after", [3, 6])  # inside "align", inside "instruct"
def test_resumed_run_equals_uninterrupted_run(tmp_path: Path, stop_after: int) -> None:
    cfg = tiny_config()
    whole, _ = train_shapes_smolvlm(tmp_path / "whole", cfg, text_loader=tiny_text_model, progress=False)
    parts = tmp_path / "parts"
    assert train_shapes_smolvlm(parts, cfg, text_loader=tiny_text_model, stop_after=stop_after, progress=False) is None
    assert (parts / "checkpoint").is_dir() and not (parts / ADAPTER).exists()
    resumed, _ = train_shapes_smolvlm(parts, cfg, text_loader=tiny_text_model, progress=False)
    a, b = trained_parameters(whole), trained_parameters(resumed)
    assert all(torch.equal(a[n], b[n]) for n in a)
    assert (tmp_path / "whole" / "training.json").read_text().count('"loss"') == 8
    assert not (parts / "checkpoint").exists()


def test_shipped_folder_is_small_and_loads_the_trained_model(tmp_path: Path) -> None:
    out = tmp_path / "model"
    model, processor = train_shapes_smolvlm(out, tiny_config(), text_loader=tiny_text_model, progress=False)
    from safetensors import safe_open

    with safe_open(str(out / ADAPTER), "pt") as saved:
        assert set(saved.keys()) == set(trained_parameters(model))  # tower, connector, LoRA: no LM weight
    trained = sum(p.numel() for p in trained_parameters(model).values())
    assert (out / ADAPTER).stat().st_size < 2 * trained + 100_000  # float16
    assert (out / "loss_curve.png").is_file()
    loaded, loaded_processor = load_shapes_smolvlm(out, text_loader=tiny_text_model, merge=False)
    merged, _ = load_shapes_smolvlm(out, text_loader=tiny_text_model)
    image = Image.fromarray(np.random.default_rng(1).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    batch = processor(text=["<image>what colour is it"], images=[[image]], return_tensors="pt")
    again = loaded_processor(text=["<image>what colour is it"], images=[[image]], return_tensors="pt")
    assert all(torch.equal(batch[k], again[k]) for k in batch)
    with torch.no_grad():
        assert torch.equal(model(**batch).logits, loaded(**batch).logits)
        delta = (merged(**batch).logits - loaded(**batch).logits).abs().max()
    assert any(".lora_B." in n and p.abs().sum() > 0 for n, p in loaded.named_parameters())  # a delta to merge
    assert not any(".lora_" in n for n, _ in merged.named_parameters())  # plain Linear layers again
    assert delta < 1e-4  # folding B A into W moves only the rounding
    with pytest.raises(UserError, match="sha256"):
        load_shapes_smolvlm(out, text_loader=lambda: tiny_text_model(seed=2))
    with pytest.raises(UserError, match="already holds a trained model"):
        train_shapes_smolvlm(out, tiny_config(), text_loader=tiny_text_model, progress=False)


def test_autocast_dtype_trains_with_float32_weights(tmp_path: Path) -> None:
    run = train_smolvlm_run(
        tmp_path / "ckpt", tiny_config(), text_loader=tiny_text_model, dtype=torch.bfloat16, progress=False
    )
    assert all(np.isfinite(r["loss"]) for r in run.state.log)
    assert all(p.dtype == torch.float32 for p in trained_parameters(run.model).values())


def test_overwrite_starts_afresh_and_foreign_folders_are_refused(tmp_path: Path) -> None:
    out = tmp_path / "model"
    assert train_shapes_smolvlm(out, tiny_config(), text_loader=tiny_text_model, stop_after=4, progress=False) is None
    model, _ = train_shapes_smolvlm(
        out, tiny_config(), text_loader=tiny_text_model, overwrite=True, stop_after=None, progress=False
    )
    assert not (out / "checkpoint").exists() and (out / ADAPTER).is_file()
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="not a shapes-smolvlm training folder"):
        train_shapes_smolvlm(foreign, tiny_config(), text_loader=tiny_text_model, overwrite=True, progress=False)
    assert (foreign / "notes.txt").read_text() == "mine"


def test_replaying_the_recipe_gives_the_logged_losses(tmp_path: Path) -> None:
    from ukmp.zoo.smolvlm_ship import replay_smolvlm

    out = tmp_path / "model"
    train_shapes_smolvlm(out, tiny_config(), text_loader=tiny_text_model, progress=False)
    recorded, replayed = replay_smolvlm(out, text_loader=tiny_text_model)
    assert len(replayed) == 8 and replayed == recorded  # the whole tiny run, to the last digit
    recorded, replayed = replay_smolvlm(out, 4, text_loader=tiny_text_model)
    assert len(replayed) == 4 and replayed == recorded
    with pytest.raises(UserError, match="not a trained shapes-smolvlm folder"):
        replay_smolvlm(tmp_path, text_loader=tiny_text_model)
