"""A model given as a GGUF file: loaded dequantised, pruned, and its quantised origin recorded."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

import ukmp
from tiny_lm import tiny_llama, tiny_tokenizer, write_corpus
from ukmp.checksums import file_sha256
from ukmp.cli import main
from ukmp.errors import UserError
from ukmp.gguf_models import find_gguf
from ukmp.loading import load_model

needs_gguf = pytest.mark.skipif(
    importlib.util.find_spec("gguf") is None, reason="the gguf package is not installed (pip install gguf)"
)


@pytest.fixture(scope="module")
def gguf_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if importlib.util.find_spec("gguf") is None:
        pytest.skip("the gguf package is not installed (pip install gguf)")
    from tiny_gguf import write_tiny_gguf

    folder = tmp_path_factory.mktemp("gguf")
    tok = tiny_tokenizer()
    model = tiny_llama(len(tok), seed=2)
    write_tiny_gguf(model, tok, folder / "tiny.F32.gguf", "F32")
    write_tiny_gguf(model, tok, folder / "tiny.Q8_0.gguf", "Q8_0")
    torch.save(model.state_dict(), folder / "reference.pt")
    return folder


def _logits(model: torch.nn.Module) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=torch.tensor([[1, 4, 9, 12, 5, 7, 3, 20]])).logits


def test_find_gguf_forms(tmp_path: Path) -> None:
    (tmp_path / "a.gguf").write_bytes(b"")
    assert find_gguf(tmp_path / "a.gguf") == (tmp_path, "a.gguf")
    assert find_gguf(tmp_path) == (tmp_path, "a.gguf")  # a folder with one GGUF file and no config.json
    assert find_gguf(tmp_path, "a.gguf") == (tmp_path, "a.gguf")
    (tmp_path / "b.gguf").write_bytes(b"")
    with pytest.raises(UserError, match="several GGUF files"):
        find_gguf(tmp_path)
    with pytest.raises(UserError, match="has no file c.gguf"):
        find_gguf(tmp_path, "c.gguf")
    (tmp_path / "config.json").write_text("{}")
    assert find_gguf(tmp_path) is None  # a transformers folder is not a GGUF model


@needs_gguf
def test_gguf_loads_dequantised_with_its_origin(gguf_dir: Path) -> None:
    reference = tiny_llama(len(tiny_tokenizer()), seed=2)
    reference.load_state_dict(torch.load(gguf_dir / "reference.pt"))
    exact = load_model(gguf_dir / "tiny.F32.gguf")
    assert torch.equal(_logits(exact), _logits(reference))  # unquantised storage round-trips exactly
    assert exact.ukmp_source["quantized"] is False

    quantised = load_model(gguf_dir, gguf_file="tiny.Q8_0.gguf")
    source = quantised.ukmp_source
    assert source["format"] == "gguf" and source["file"] == "tiny.Q8_0.gguf"
    assert source["quantization"] == "Q8_0" and source["quantized"] is True
    assert source["sha256"] == file_sha256(gguf_dir / "tiny.Q8_0.gguf")
    assert source["tensor_types"]["Q8_0"] == 16  # 7 linears per layer x 2 + embeddings + lm_head
    torch.testing.assert_close(_logits(quantised), _logits(reference), atol=0.5, rtol=0.1)
    assert next(quantised.parameters()).dtype == torch.float32


@needs_gguf
def test_prune_a_gguf_model_records_its_quantised_origin(gguf_dir: Path, tmp_path: Path, capsys) -> None:
    corpus = write_corpus(tmp_path / "c.txt")
    out = tmp_path / "pruned"
    argv = ["prune", str(gguf_dir), "--gguf-file", "tiny.Q8_0.gguf", "--method", "ukmp", "--ratio", "0.2"]
    argv += ["--calib", str(corpus), "--seq-len", "12", "--num-samples", "2", "--out", str(out)]
    assert main(argv) == 0
    manifest = json.loads((out / "pruning.json").read_text())
    source = manifest["base_model"]["source"]
    assert source["file"] == "tiny.Q8_0.gguf" and source["quantization"] == "Q8_0"
    assert source["sha256"] == file_sha256(gguf_dir / "tiny.Q8_0.gguf")
    assert source["dequantized_to"] == "float32"
    assert "quantization_config" not in json.loads((out / "config.json").read_text())  # plain float weights now

    pruned = ukmp.load_pruned(out)
    from ukmp.groups import PruningPlan
    from ukmp.surgery import apply_plan_physically

    rebuilt = apply_plan_physically(load_model(gguf_dir / "tiny.Q8_0.gguf"), PruningPlan.from_dict(manifest["groups"]))
    assert torch.equal(_logits(pruned), _logits(rebuilt))
    assert main(["inspect", str(out)]) == 0
    assert "dequantised from gguf file tiny.Q8_0.gguf (quantisation Q8_0" in capsys.readouterr().out


def test_missing_gguf_package_is_one_sentence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import ukmp.gguf_models as gm

    monkeypatch.setattr(gm.importlib.util, "find_spec", lambda name: None)
    (tmp_path / "m.gguf").write_bytes(b"GGUF")
    with pytest.raises(UserError, match="needs the gguf package.*pip install gguf"):
        load_model(tmp_path / "m.gguf")


@needs_gguf
def test_evaluate_perplexity_of_a_gguf_file(gguf_dir: Path, tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "c.txt")
    out = tmp_path / "ppl.json"
    argv = ["evaluate", str(gguf_dir), "--gguf-file", "tiny.F32.gguf", "--task", "perplexity", "--data", str(corpus)]
    assert main([*argv, "--seq-len", "16", "--no-progress", "--out", str(out)]) == 0
    ppl = json.loads(out.read_text())["tasks"]["perplexity"]
    assert ppl["predicted_tokens"] > 0 and ppl["perplexity"] > 1.0
