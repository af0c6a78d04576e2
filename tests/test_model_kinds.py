"""Which models bench and recover accept is decided by the model's class in the adapter registry.

Before, ``is_language_model`` read the config ("no vision_config, not encoder-decoder"), which a bare
vision tower (CLIP, SigLIP, BLIP-2's) also satisfies: bench and recover took it for a language model
and crashed later.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from transformers import (
    Blip2VisionModel,
    CLIPVisionConfig,
    CLIPVisionModel,
    LlamaModel,
    SiglipVisionConfig,
    SiglipVisionModel,
    T5Config,
    T5ForConditionalGeneration,
)

from eval_tiny_model import tiny_model_dir
from tiny_llava import VISION, tiny_llava
from tiny_lm import tiny_llama
from tiny_models import blip2_config, tiny_blip2
from ukmp.adapters import is_image_in_prompt_model, is_language_model, is_vision_language_model
from ukmp.cli import main
from ukmp.pruning import PruneConfig, prune


def _vision_towers() -> list[torch.nn.Module]:
    torch.manual_seed(0)
    return [
        CLIPVisionModel(CLIPVisionConfig(**VISION)),
        SiglipVisionModel(SiglipVisionConfig(**VISION)),
        Blip2VisionModel(blip2_config("t5").vision_config),
    ]


def test_only_decoder_only_language_models_with_a_head_are_language_models() -> None:
    assert is_language_model(tiny_llama(64))
    for tower in _vision_towers():
        assert not is_language_model(tower), type(tower).__name__
    t5 = T5ForConditionalGeneration(T5Config(vocab_size=64, d_model=16, d_kv=4, d_ff=32, num_layers=1, num_heads=4))
    assert not is_language_model(t5)  # an encoder-decoder
    bare = LlamaModel(tiny_llama(64).config)
    assert not is_language_model(bare)  # no language-modelling head to generate with
    assert not is_language_model(tiny_blip2("opt")) and is_vision_language_model(tiny_blip2("opt"))
    assert not is_language_model(tiny_llava("clip-llama")) and is_image_in_prompt_model(tiny_llava("clip-llama"))


@pytest.mark.parametrize("index", [0, 1, 2])
def test_bench_refuses_a_vision_tower_in_one_sentence(index: int, tmp_path: Path, capsys) -> None:
    tower = _vision_towers()[index]
    tower.save_pretrained(tmp_path / "tower")
    argv = ["bench", str(tmp_path / "tower"), "--batch-sizes", "1", "--repeats", "1", "--warmup", "0"]
    assert main([*argv, "--no-memory", "--threads", "1", "--out", str(tmp_path / "b.json")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("ukmp bench: error:") and type(tower).__name__ in last


def test_recover_refuses_a_pruned_vision_tower_in_one_sentence(tmp_path: Path, capsys) -> None:
    tower = _vision_towers()[2]
    tower.save_pretrained(tmp_path / "tower")
    for name in ("processor_config.json", "tokenizer.json", "tokenizer_config.json"):  # a processor to read data
        shutil.copy(tiny_model_dir() / name, tmp_path / "tower" / name)
    prune(PruneConfig(str(tmp_path / "tower"), tmp_path / "pruned", "magnitude", 0.2), verbose=False)
    argv = ["recover", str(tmp_path / "pruned"), "--data", "shapes", "--out", str(tmp_path / "rec"), "--no-progress"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("ukmp recover: error:") and "Blip2VisionModel" in last
