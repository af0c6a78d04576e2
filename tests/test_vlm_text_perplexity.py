"""A vision-language model's language model measured on plain text: the value its language model alone gives."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from eval_tiny_model import build_tiny_blip2_decoder, world_texts
from tiny_idefics3 import save_tiny_idefics3_with_processor
from tiny_llava import save_tiny_llava_with_processor
from tiny_qwen2_vl import save_tiny_qwen2_vl_with_processor
from ukmp.cli import main
from ukmp.data.text import text_windows
from ukmp.loading import load_model
from ukmp.processors import load_processor

SEQ_LEN = 16


def _text(folder: Path) -> Path:
    file = folder / "held-out.txt"
    file.write_text("\n\n".join(world_texts()[:40]))
    return file


def _language_model_alone(model: torch.nn.Module, family: str):
    """The decoder-only language model and its head, called without the vision-language wrapper."""
    if family == "blip2-opt":
        return lambda ids, mask: model.language_model(input_ids=ids, attention_mask=mask).logits
    inner = model.model.text_model if family == "smolvlm" else model.model.language_model

    def logits(ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return model.lm_head(inner(input_ids=ids, attention_mask=mask).last_hidden_state)

    return logits


def _by_hand(model: torch.nn.Module, family: str, windows: list[list[int]]) -> float:
    """exp(total NLL / predicted tokens), one window at a time (no padding), in float64."""
    logits_of = _language_model_alone(model, family)
    total, count = 0.0, 0
    with torch.no_grad():
        for window in windows:
            ids = torch.tensor([window])
            logits = logits_of(ids, torch.ones_like(ids))[0, :-1].double()
            total += float(F.cross_entropy(logits, ids[0, 1:], reduction="sum"))
            count += len(window) - 1
    return math.exp(total / count)


BUILDERS = {
    "llava": lambda folder: save_tiny_llava_with_processor(folder, "clip-llama"),
    "blip2-opt": lambda folder: build_tiny_blip2_decoder(folder, "opt"),
    "qwen2-vl": lambda folder: save_tiny_qwen2_vl_with_processor(folder),
    "smolvlm": lambda folder: save_tiny_idefics3_with_processor(folder, "smolvlm"),
}


@pytest.mark.parametrize("family", sorted(BUILDERS))
def test_evaluate_perplexity_on_a_vlm_is_its_language_models_perplexity_on_the_text(family: str, tmp_path: Path):
    folder = tmp_path / "model"
    BUILDERS[family](folder)
    text, out = _text(tmp_path), tmp_path / "ppl.json"
    argv = ["evaluate", str(folder), "--task", "perplexity", "--data", str(text), "--seq-len", str(SEQ_LEN)]
    assert main([*argv, "--limit", "6", "--batch-size", "4", "--out", str(out), "--no-progress"]) == 0
    reported = json.loads(out.read_text())["tasks"]["perplexity"]
    model, processor = load_model(str(folder)).eval(), load_processor(str(folder))
    windows = text_windows(processor, text, SEQ_LEN)[:6]
    assert reported["windows"] == 6
    assert reported["perplexity"] == pytest.approx(_by_hand(model, family, windows), rel=1e-4)


def test_examples_with_a_vlms_perplexity_is_one_sentence(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "model"
    save_tiny_llava_with_processor(folder, "clip-llama")
    out = tmp_path / "ppl.json"
    argv = ["evaluate", str(folder), "--task", "perplexity", "--data", str(_text(tmp_path)), "--examples", "2"]
    assert main([*argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "drop --examples" in err and "Traceback" not in err and not out.exists()
