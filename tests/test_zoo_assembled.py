"""A zoo model shipped as a delta (`shapes-smolvlm`) is assembled once, at its name's first use, into an
ordinary model folder that every loader reads: the same outputs as the shipped delta merged, its own
processor back, reused afterwards, and nothing half-written when the assembly fails."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tiny_smolvlm import tiny_config, tiny_text_model
from ukmp import zoo
from ukmp.loading import load_model
from ukmp.processors import load_processor
from ukmp.zoo import resolve_model_name
from ukmp.zoo.assembled import assembled_folder
from ukmp.zoo.smolvlm_processor import ImageOnlySmolVLMProcessor
from ukmp.zoo.smolvlm_ship import load_shapes_smolvlm, train_shapes_smolvlm


@pytest.fixture(scope="module")
def shipped(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("shipped") / "shapes-smolvlm"
    train_shapes_smolvlm(out, tiny_config(), text_loader=tiny_text_model, progress=False)
    return out


def test_first_use_assembles_a_folder_every_loader_reads_once(shipped: Path, tmp_path: Path, monkeypatch) -> None:
    cache = tmp_path / "cache"
    folder = assembled_folder("shapes-smolvlm", shipped, text_loader=tiny_text_model, cache=cache, progress=False)
    model, processor = load_model(folder), load_processor(str(folder))
    assert isinstance(processor, ImageOnlySmolVLMProcessor)
    assert not any(".lora_" in name for name in model.state_dict())
    merged, _ = load_shapes_smolvlm(shipped, text_loader=tiny_text_model)
    image = Image.fromarray(np.random.default_rng(3).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    batch = processor(text=["<image>what colour is it"], images=[[image]], return_tensors="pt")
    with torch.no_grad():
        assert torch.equal(model(**batch).logits, merged(**batch).logits)
    written = (folder / "model.safetensors").stat().st_mtime_ns
    again = assembled_folder("shapes-smolvlm", shipped, text_loader=tiny_text_model, cache=cache, progress=False)
    assert again == folder and (folder / "model.safetensors").stat().st_mtime_ns == written
    assert [p.name for p in cache.iterdir()] == [folder.name]
    # the name resolves to the same folder, through the cache the environment names
    monkeypatch.setitem(zoo.ASSEMBLED, "shapes-smolvlm", shipped)
    monkeypatch.setenv("UKMP_CACHE", str(cache))
    monkeypatch.setattr("ukmp.zoo.assembled.smollm2_text_model", tiny_text_model)
    assert resolve_model_name("shapes-smolvlm") == str(folder)


def test_a_failed_assembly_leaves_nothing_that_looks_finished(shipped: Path, tmp_path: Path, monkeypatch) -> None:
    def broken(self, *args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(ImageOnlySmolVLMProcessor, "save_pretrained", broken)
    cache = tmp_path / "cache"
    with pytest.raises(RuntimeError, match="disk full"):
        assembled_folder("shapes-smolvlm", shipped, text_loader=tiny_text_model, cache=cache, progress=False)
    assert list(cache.iterdir()) == []
