"""A standalone Llama end to end: prune on plain text, save, reload, evaluate perplexity, inspect."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import ukmp
from tiny_lm import tiny_llama, tiny_tokenizer
from ukmp.cli import main
from ukmp.data.text import text_windows
from ukmp.evaluation.perplexity import evaluate_perplexity
from ukmp.groups import PruningPlan
from ukmp.loading import load_model
from ukmp.processors import load_processor
from ukmp.pruning import PruneConfig, prune
from ukmp.surgery import apply_plan_as_masks, apply_plan_physically


def _logits(model: torch.nn.Module) -> torch.Tensor:
    ids = torch.tensor([[1, 4, 9, 12, 5, 7, 3, 20], [1, 6, 6, 8, 10, 11, 2, 0]])
    with torch.no_grad():
        return model(input_ids=ids).logits


@pytest.mark.parametrize("method", ["ukmp", "magnitude"])
def test_prune_save_reload_gives_the_same_logits(lm_dir: Path, corpus: Path, tmp_path: Path, method: str) -> None:
    out = tmp_path / method
    argv = ["prune", str(lm_dir), "--method", method, "--ratio", "0.25", "--out", str(out)]
    if method == "ukmp":
        argv += ["--calib", str(corpus), "--seq-len", "12", "--num-samples", "4", "--batch-size", "2"]
    assert main(argv) == 0
    manifest = json.loads((out / "pruning.json").read_text())
    assert manifest["architecture"] == "LlamaForCausalLM"
    assert manifest["achieved_ratio"] >= 0.25
    assert manifest["base_model"]["source"] is None  # safetensors weights: nothing quantised to record
    if method == "ukmp":
        calib = manifest["method"]["options"]["calibration_text"]
        assert calib["seq_len"] == 12 and calib["file"] == str(corpus)
        stats = manifest["extra"]["scoring"]
        assert stats["gradient_pass"]["samples"] == 4 and stats["entropy_pass"]["samples"] == 4
        assert 0 < stats["gradient_pass"]["backpropagated_tokens"] <= stats["gradient_pass"]["target_tokens"]

    pruned = ukmp.load_pruned(out)
    plan = PruningPlan.from_dict(manifest["groups"])
    rebuilt = apply_plan_physically(load_model(lm_dir).float(), plan)
    assert torch.equal(_logits(pruned), _logits(rebuilt))
    masked = apply_plan_as_masks(load_model(lm_dir).float(), plan)
    torch.testing.assert_close(_logits(pruned), _logits(masked), rtol=1e-4, atol=1e-5)
    assert sum(p.numel() for p in pruned.parameters()) == manifest["parameters"]["after"]["total"]
    assert (out / "tokenizer.json").is_file()  # the artifact can be evaluated on text on its own


def test_perplexity_is_exp_of_the_mean_token_nll(corpus: Path) -> None:
    tok = tiny_tokenizer()
    model = tiny_llama(len(tok), seed=1)
    windows = text_windows(tok, corpus, 7)
    assert len(windows[-1]) < 7  # the short last window counts by its tokens
    total, count = 0.0, 0
    with torch.no_grad():
        for w in windows:  # one window at a time, no padding: the definition, computed by hand
            logp = F.log_softmax(model(input_ids=torch.tensor([w])).logits[0].double(), dim=-1)
            for t in range(1, len(w)):
                total -= float(logp[t - 1, w[t]])
                count += 1
    result = evaluate_perplexity(model, tok, corpus, seq_len=7, batch_size=3, progress=False)
    out = result["tasks"]["perplexity"]
    assert out["predicted_tokens"] == count == sum(len(w) - 1 for w in windows)
    assert out["perplexity"] == pytest.approx(math.exp(total / count), rel=1e-5)
    limited = evaluate_perplexity(model, tok, corpus, seq_len=7, limit=2, progress=False)["tasks"]["perplexity"]
    assert limited["windows"] == 2 and limited["predicted_tokens"] == 12


def test_evaluate_perplexity_cli_writes_results(lm_dir: Path, corpus: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "ppl.json"
    argv = ["evaluate", str(lm_dir), "--task", "perplexity", "--data", str(corpus), "--seq-len", "16"]
    assert main([*argv, "--batch-size", "4", "--no-progress", "--out", str(out)]) == 0
    results = json.loads(out.read_text())
    ppl = results["tasks"]["perplexity"]
    assert results["format"] == "ukmp-eval/1" and ppl["seq_len"] == 16
    assert 1.0 < ppl["perplexity"] < 10 * len(tiny_tokenizer())
    assert "perplexity" in capsys.readouterr().out


def test_perplexity_needs_a_text_file(lm_dir: Path, tmp_path: Path, capsys) -> None:
    argv = ["evaluate", str(lm_dir), "--task", "perplexity", "--data", str(tmp_path), "--out", str(tmp_path / "r.json")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "needs --data to be a .txt or .jsonl file" in err and err.count("\n") == 1


def test_inspect_lists_the_llama_groups(lm_dir: Path, capsys) -> None:
    assert main(["inspect", str(lm_dir)]) == 0
    text = capsys.readouterr().out
    assert "LlamaForCausalLM" in text and "kv-groups" in text and "channels" in text


@pytest.mark.parametrize("plain", [False, True])
def test_recover_a_pruned_lm_on_text(lm_dir: Path, corpus: Path, tmp_path: Path, plain: bool) -> None:
    pruned = tmp_path / "pruned"
    assert main(["prune", str(lm_dir), "--method", "magnitude", "--ratio", "0.3", "--out", str(pruned)]) == 0
    out = tmp_path / "recovered"
    argv = ["recover", str(pruned), "--data", str(corpus), "--seq-len", "12", "--max-samples", "8"]
    argv += ["--batch-size", "4", "--warmup-steps", "1", "--lr", "1e-3", "--merge", "--no-progress", "--out", str(out)]
    argv += ["--plain-lora", "--schedule", "task"] if plain else []
    assert main(argv) == 0
    merged = ukmp.load_pruned(out / "merged")
    assert merged.ukmp_manifest["recovery"] is not None
    before = evaluate_perplexity(ukmp.load_pruned(pruned), tiny_tokenizer(), corpus, seq_len=12, progress=False)
    after = evaluate_perplexity(merged, tiny_tokenizer(), corpus, seq_len=12, progress=False)
    assert after["tasks"]["perplexity"]["perplexity"] != before["tasks"]["perplexity"]["perplexity"]


def test_a_preloaded_model_gives_the_same_plan(lm_dir: Path, tmp_path: Path) -> None:
    prune(PruneConfig(str(lm_dir), tmp_path / "a", "magnitude", 0.3), verbose=False)
    preloaded = (load_model(lm_dir), load_processor(str(lm_dir)))
    prune(PruneConfig(str(lm_dir), tmp_path / "b", "magnitude", 0.3), verbose=False, preloaded=preloaded)
    a, b = (json.loads((tmp_path / n / "pruning.json").read_text()) for n in "ab")
    assert a["groups"] == b["groups"] and a["base_model"]["sha256"] == b["base_model"]["sha256"]
