"""A model's processor files either load or stop the command with one sentence naming the file.

Before, any exception while loading a processor fell back to the tokenizer: a vision-language model
whose processor_config.json did not load was pruned and saved with a tokenizer only, and the failure
appeared later, when something read an image.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from eval_tiny_model import tiny_model_dir
from tiny_lm import save_tiny_lm
from ukmp.cli import main
from ukmp.errors import UserError
from ukmp.processors import load_processor


@pytest.fixture()
def vlm(tmp_path: Path) -> Path:
    folder = tmp_path / "vlm"
    shutil.copytree(tiny_model_dir(), folder)
    return folder


def _break_image_processor(folder: Path) -> None:
    config = json.loads((folder / "processor_config.json").read_text())
    config["image_processor"]["size"] = "big"  # transformers cannot read this size
    (folder / "processor_config.json").write_text(json.dumps(config))


def test_a_processor_config_that_does_not_load_is_named(vlm: Path) -> None:
    assert hasattr(load_processor(str(vlm)), "image_processor")
    _break_image_processor(vlm)
    with pytest.raises(UserError, match=r"processor_config\.json does not load \(.*size.*\)"):
        load_processor(str(vlm))


def test_invalid_json_in_the_processor_config_is_named(vlm: Path) -> None:
    (vlm / "processor_config.json").write_text("{not json")
    with pytest.raises(UserError, match=r"processor_config\.json does not load"):
        load_processor(str(vlm))


def test_a_broken_tokenizer_is_named_as_the_tokenizer(vlm: Path) -> None:
    (vlm / "tokenizer.json").write_text("{broken")
    with pytest.raises(UserError, match=r"tokenizer_config\.json does not load|tokenizer\.json does not load"):
        load_processor(str(vlm))


def test_no_processor_here_still_falls_back(tmp_path: Path) -> None:
    lm = save_tiny_lm(tmp_path / "lm")  # a language model: tokenizer files, no processor file
    assert load_processor(str(lm)) is not None
    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(lm / "config.json", bare / "config.json")
    assert load_processor(str(bare)) is None


def test_prune_stops_with_one_sentence_instead_of_saving_a_tokenizer_only(vlm: Path, tmp_path: Path, capsys) -> None:
    _break_image_processor(vlm)
    out = tmp_path / "pruned"
    argv = ["prune", str(vlm), "--method", "magnitude", "--ratio", "0.2", "--out", str(out), "--no-progress"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("ukmp prune: error:") and "processor_config.json does not load" in last
    assert not out.exists()
