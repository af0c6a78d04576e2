"""The checks every supported vision-language architecture must pass, as a base class.

Subclass ``VisionLanguageContract`` as ``Test<Architecture>`` and give ``build(folder)``: a tiny
random model and its processor saved in ``folder`` (see ``tests/test_vision_language_contracts.py``).
The checks: the adapter finds vision and language groups; the sliced model computes what the masked
one computes (logits and greedy generation, on a calibration batch); every listed method prunes
with calibration data and its artifact reloads to the masked model's outputs; and ``ukmp evaluate``
(VQA and likelihood retrieval), ``ukmp recover`` (every LPD sub-phase trains; merged = unmerged) and
``ukmp bench`` run on each.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch
from transformers import AutoProcessor

import ukmp
from test_surgery_equivalence import heterogeneous_plan
from ukmp.adapters import find_adapter
from ukmp.cli import main
from ukmp.data.calibration import calibration_batches, load_calibration_samples
from ukmp.data.world_writer import write_split
from ukmp.groups import PruningPlan
from ukmp.loading import load_model
from ukmp.methods.base import Scorer
from ukmp.methods.registry import get_scorer
from ukmp.surgery import apply_plan_as_masks, apply_plan_physically


class VisionLanguageContract:
    """Subclass as ``Test<Architecture>`` and define ``build``."""

    architecture: str = ""
    #: calibrated methods every subclass prunes with (the full list runs in the architecture's own tests)
    methods: tuple[str, ...] = ("ukmp", "flap")

    def build(self, folder: Path) -> Path:
        raise NotImplementedError

    @pytest.fixture(scope="class")
    def folder(self, tmp_path_factory: pytest.TempPathFactory) -> Path:
        return self.build(tmp_path_factory.mktemp(type(self).__name__) / "model")

    @pytest.fixture(scope="class")
    def data(self, tmp_path_factory: pytest.TempPathFactory) -> Path:
        root = tmp_path_factory.mktemp("world")
        write_split("train", 12, root)
        write_split("val", 3, root)
        return root

    def batch(self, folder: Path, data: Path) -> dict[str, torch.Tensor]:
        model = load_model(folder)
        samples = load_calibration_samples(data, "train", seed=0)[:2]
        processor = AutoProcessor.from_pretrained(folder)
        # labels stay: an encoder-decoder derives its decoder inputs from them
        return next(calibration_batches(processor, samples, 2, model=model, place=False))

    def test_groups_cover_vision_and_language(self, folder: Path) -> None:
        model = load_model(folder)
        assert type(model).__name__ == self.architecture
        modalities = {g.modality for g in find_adapter(model).groups(model)}
        assert modalities == {"vision", "language"}

    def test_surgery_equals_masking_including_generate(self, folder: Path, data: Path) -> None:
        inputs = self.batch(folder, data)
        plan = heterogeneous_plan(load_model(folder), seed=3)
        sliced = apply_plan_physically(load_model(folder).eval(), plan)
        masked = apply_plan_as_masks(load_model(folder).eval(), plan)
        with torch.no_grad():
            torch.testing.assert_close(sliced(**inputs).logits, masked(**inputs).logits, rtol=1e-4, atol=1e-4)
            prompt = {k: v for k, v in inputs.items() if k != "labels" and not k.startswith("decoder_")}
            greedy = dict(max_new_tokens=4, do_sample=False)
            assert torch.equal(sliced.generate(**prompt, **greedy), masked.generate(**prompt, **greedy))

    def test_calibrated_methods_prune_and_reload(self, folder: Path, data: Path, tmp_path: Path) -> None:
        inputs = self.batch(folder, data)
        dense = load_model(folder).eval()
        for method in self.methods:
            out = tmp_path / method
            argv = ["prune", str(folder), "--method", method, "--ratio", "0.3", "--calib", str(data)]
            assert main([*argv, "--num-samples", "4", "--batch-size", "2", "--no-progress", "--out", str(out)]) == 0
            manifest = json.loads((out / "pruning.json").read_text())
            assert manifest["architecture"] == self.architecture
            if type(get_scorer(method)).finalize is not Scorer.finalize:
                continue  # the method changes kept weights too (FLAP's bias compensation): masking cannot match
            masked = apply_plan_as_masks(copy.deepcopy(dense), PruningPlan.from_dict(manifest["groups"]))
            with torch.no_grad():
                expected = masked(**inputs).logits
                torch.testing.assert_close(ukmp.load_pruned(out)(**inputs).logits, expected, rtol=1e-4, atol=1e-4)

    @pytest.mark.slow
    def test_evaluate_recover_and_bench(self, folder: Path, data: Path, tmp_path: Path, capsys) -> None:
        pruned = tmp_path / "pruned"
        assert main(["prune", str(folder), "--method", "magnitude", "--ratio", "0.3", "--out", str(pruned)]) == 0
        evaluate = ["evaluate", str(pruned), "--data", str(data), "--task", "vqa", "--limit", "2", "--no-progress"]
        recover = ["recover", str(pruned), "--data", str(data), "--split", "train", "--max-samples", "8"]
        recover += ["--batch-size", "2", "--merge", "--no-progress", "--out", str(tmp_path / "recovered")]
        assert main([*evaluate, "--out", str(tmp_path / "e.json")]) == 0
        assert "vqa" in json.loads((tmp_path / "e.json").read_text())["tasks"]
        retrieval = ["evaluate", str(pruned), "--data", str(data), "--task", "retrieval", "--limit", "2"]
        assert main([*retrieval, "--no-progress", "--out", str(tmp_path / "r.json")]) == 0
        assert json.loads((tmp_path / "r.json").read_text())["tasks"]["retrieval"]["num_images"] == 2
        assert main(recover) == 0
        history = json.loads((tmp_path / "recovered" / "history.json").read_text())
        phases = json.loads((tmp_path / "recovered" / "adapter_config.json").read_text())["recovery"]["phases"]
        assert all(p["steps"] > 0 for p in phases)  # every sub-phase trained, feature taps included
        assert any(k.startswith("mse_vision") for entry in history for k in entry)
        for entry in history:
            mse = [v for k, v in entry.items() if k.startswith("mse_")]
            assert all(v > 0 and v == v for v in mse)  # the pruned student's features differ from the teacher's
        inputs = self.batch(folder, data)
        with torch.no_grad():
            merged = ukmp.load_pruned(tmp_path / "recovered" / "merged")(**inputs).logits
            unmerged = load_model(tmp_path / "recovered")(**inputs).logits
        torch.testing.assert_close(merged, unmerged, rtol=1e-4, atol=1e-4)
        # the memory probe (a fresh process per model) is tested once, in test_bench.py
        bench = ["bench", str(folder), str(pruned), "--batch-sizes", "1", "--repeats", "1", "--warmup", "0"]
        assert main([*bench, "--no-memory", "--out", str(tmp_path / "bench.json")]) == 0
        models = json.loads((tmp_path / "bench.json").read_text())["models"]
        assert [m["kind"] for m in models][:2] == ["dense", "pruned"]
