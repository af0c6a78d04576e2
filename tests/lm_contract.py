"""The checks every supported language-model architecture must pass, as a base class.

A new architecture gets all of them by subclassing ``LanguageModelContract`` in a few lines: name
the class ``Test...`` and give ``build(vocab_size, seed)``, a tiny randomly initialised model of
that architecture (see ``tests/test_language_model_contracts.py``). The checks: the adapter finds
groups in every layer; the physically sliced model computes what the masked one computes
(logits and greedy generation); ``ukmp prune`` writes an artifact that reloads bit-identically;
UKMP scoring runs on a text corpus; ``ukmp recover`` attaches recall-LoRA and its merged model
equals the unmerged one; ``ukmp evaluate`` and ``ukmp inspect`` run on the result.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import ukmp
from test_surgery_equivalence import heterogeneous_plan
from tiny_lm import tiny_tokenizer, write_corpus
from tiny_models import spread_weights
from ukmp.adapters import find_adapter
from ukmp.cli import main
from ukmp.groups import PruningPlan
from ukmp.loading import load_model
from ukmp.surgery import apply_plan_as_masks, apply_plan_physically

IDS = torch.tensor([[1, 4, 9, 12, 5, 7, 3, 20], [1, 6, 6, 8, 10, 11, 2, 9]])


def _logits(model: torch.nn.Module) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=IDS).logits


def _greedy(model: torch.nn.Module) -> torch.Tensor:
    with torch.no_grad():
        return model.generate(input_ids=IDS[:, :4], max_new_tokens=6, do_sample=False, pad_token_id=0)


class LanguageModelContract:
    """Subclass as ``Test<Architecture>`` and define ``build``."""

    #: the transformers class name the artifact's manifest must record
    architecture: str = ""

    def build(self, vocab_size: int, seed: int) -> torch.nn.Module:
        raise NotImplementedError

    def tiny(self, seed: int = 0) -> torch.nn.Module:
        torch.manual_seed(seed)
        model = self.build(len(tiny_tokenizer()), seed)
        spread_weights(model, seed)
        return model.float().eval()

    @pytest.fixture(scope="class")
    def model_dir(self, tmp_path_factory: pytest.TempPathFactory) -> Path:
        folder = tmp_path_factory.mktemp(type(self).__name__) / "model"
        self.tiny().save_pretrained(folder)
        tiny_tokenizer().save_pretrained(folder)
        return folder

    @pytest.fixture(scope="class")
    def corpus(self, tmp_path_factory: pytest.TempPathFactory) -> Path:
        return write_corpus(tmp_path_factory.mktemp("text") / "corpus.txt")

    @pytest.fixture(scope="class")
    def pruned_dir(self, model_dir: Path, corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
        """A UKMP-pruned artifact scored on the text corpus (the scoring check)."""
        out = tmp_path_factory.mktemp("pruned") / "ukmp"
        argv = ["prune", str(model_dir), "--method", "ukmp", "--ratio", "0.25", "--of", "prunable", "--out", str(out)]
        argv += ["--calib", str(corpus), "--seq-len", "12", "--num-samples", "4", "--batch-size", "2", "--no-progress"]
        assert main(argv) == 0
        return out

    def test_groups_cover_every_layer(self) -> None:
        model = self.tiny()
        groups = find_adapter(model).groups(model)
        layers = model.config.num_hidden_layers
        assert {(g.kind, g.layer) for g in groups} == {(k, i) for k in ("attention", "mlp") for i in range(layers)}

    def test_surgery_equals_masking_including_generate(self) -> None:
        plan = heterogeneous_plan(self.tiny(), seed=1)
        sliced, masked = apply_plan_physically(self.tiny(), plan), apply_plan_as_masks(self.tiny(), plan)
        assert sum(p.numel() for p in sliced.parameters()) < sum(p.numel() for p in masked.parameters())
        torch.testing.assert_close(_logits(sliced), _logits(masked), rtol=1e-4, atol=1e-5)
        assert torch.equal(_greedy(sliced), _greedy(masked))

    def test_prune_save_reload_is_bit_identical(self, model_dir: Path, pruned_dir: Path) -> None:
        manifest = json.loads((pruned_dir / "pruning.json").read_text())
        assert manifest["architecture"] == self.architecture
        assert manifest["achieved_ratio"] >= 0.25
        stats = manifest["extra"]["scoring"]["gradient_pass"]
        assert stats["samples"] == 4 and 0 < stats["backpropagated_tokens"]
        reloaded = ukmp.load_pruned(pruned_dir)
        rebuilt = apply_plan_physically(load_model(model_dir).float(), PruningPlan.from_dict(manifest["groups"]))
        assert torch.equal(_logits(reloaded), _logits(rebuilt))
        assert sum(p.numel() for p in reloaded.parameters()) == manifest["parameters"]["after"]["total"]

    def test_recovery_attaches_and_merges(self, pruned_dir: Path, corpus: Path, tmp_path: Path) -> None:
        out = tmp_path / "recovered"
        argv = ["recover", str(pruned_dir), "--data", str(corpus), "--seq-len", "12", "--max-samples", "4"]
        argv += ["--batch-size", "2", "--warmup-steps", "1", "--lr", "1e-3", "--no-progress", "--out", str(out)]
        assert main([*argv, "--merge"]) == 0
        unmerged, merged = load_model(out), ukmp.load_pruned(out / "merged")
        assert merged.ukmp_manifest["recovery"] is not None
        torch.testing.assert_close(_logits(merged), _logits(unmerged), rtol=1e-4, atol=1e-4)
        assert not torch.allclose(_logits(merged), _logits(ukmp.load_pruned(pruned_dir)))

    def test_evaluate_and_inspect_run_on_the_artifact(self, pruned_dir: Path, corpus: Path, tmp_path, capsys) -> None:
        out = tmp_path / "ppl.json"
        argv = ["evaluate", str(pruned_dir), "--task", "perplexity", "--data", str(corpus), "--seq-len", "16"]
        assert main([*argv, "--no-progress", "--out", str(out)]) == 0
        assert json.loads(out.read_text())["tasks"]["perplexity"]["perplexity"] > 1.0
        assert main(["inspect", str(pruned_dir)]) == 0
        assert self.architecture in capsys.readouterr().out
