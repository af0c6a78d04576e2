"""Models given as a GGUF file: found, described and loaded (dequantised) through transformers.

A GGUF file (llama.cpp's format) holds a model's config, tokenizer and weights, usually quantised
to a few bits per weight. transformers reads it with ``from_pretrained(folder, gguf_file=name)``
and dequantises every tensor to float, which needs the ``gguf`` package (``pip install gguf`` or
``pip install -e '.[gguf]'`` from a clone). ukmp then prunes the dequantised float model like any other.

Pruning never sees the original full-precision weights, only their quantised approximation, so
the artifact's manifest must say so: ``gguf_origin`` describes the file (name, sha256, the
quantisation type written in its header and the count of tensors per storage type) and
``load_gguf_model`` attaches that description to the model as ``ukmp_source``, which
``save_pruned`` copies into ``base_model.source``.

A GGUF model is named either by the file's path (``model.Q4_1.gguf``) or by its folder plus the
file name (``--gguf-file``); a folder with no ``config.json`` and exactly one ``.gguf`` file is
taken to mean that file.
"""

from __future__ import annotations

import importlib.util
from collections import Counter
from pathlib import Path
from typing import Any

from torch import nn

from ukmp.adapters import GGUF_ARCHITECTURES
from ukmp.adapters.registry import language_model_labels
from ukmp.checksums import file_sha256
from ukmp.errors import UserError

SUFFIX = ".gguf"
INSTALL_HINT = "pip install gguf (or, from a clone of ukmp, pip install -e '.[gguf]')"


def find_gguf(ref: str | Path, gguf_file: str | None = None) -> tuple[Path, str] | None:
    """(folder, file name) when ``ref`` (with ``gguf_file``) names a GGUF model, else None."""
    path = Path(ref).expanduser()
    if gguf_file is not None:
        if not path.is_dir():
            raise UserError(f"--gguf-file needs MODEL to be the folder holding {gguf_file}; {path} is not a folder.")
        if not (path / gguf_file).is_file():
            raise UserError(f"{path} has no file {gguf_file}; check --gguf-file.")
        return path, gguf_file
    if path.is_file() and path.suffix.lower() == SUFFIX:
        return path.parent, path.name
    if path.is_dir() and not (path / "config.json").is_file():
        candidates = sorted(p.name for p in path.glob(f"*{SUFFIX}"))
        if len(candidates) == 1:
            return path, candidates[0]
        if len(candidates) > 1:
            raise UserError(f"{path} holds several GGUF files ({', '.join(candidates)}); choose one with --gguf-file.")
    return None


def require_gguf() -> None:
    """transformers dequantises GGUF tensors with the gguf package; say how to install it."""
    if importlib.util.find_spec("gguf") is None:
        raise UserError(f"reading a GGUF model needs the gguf package, which is not installed: {INSTALL_HINT}.")


def gguf_origin(file: Path) -> dict[str, Any]:
    """What the manifest records about a GGUF base: file, checksum, quantisation type, tensor types."""
    import gguf

    reader = gguf.GGUFReader(str(file))
    info: dict[str, Any] = {
        "format": "gguf",
        "file": file.name,
        "sha256": file_sha256(file),
        "bytes": file.stat().st_size,
        "quantized": True,
        "dequantized_to": "float32",
    }
    field = reader.fields.get("general.file_type")
    if field is not None:
        code = int(field.contents())
        try:
            info["quantization"] = gguf.LlamaFileType(code).name.removeprefix("MOSTLY_")
        except ValueError:
            info["quantization"] = f"file_type {code}"
    else:
        info["quantization"] = None  # older files do not write it; the tensor types below still tell
    info["tensor_types"] = dict(sorted(Counter(t.tensor_type.name for t in reader.tensors).items()))
    storage = set(info["tensor_types"])
    info["quantized"] = bool(storage - {"F32", "F16", "BF16", "F64"})
    name = reader.fields.get("general.name")
    if name is not None:
        info["model_name"] = str(name.contents())
    return info


def check_gguf_header(file: Path) -> None:
    """The GGUF header parses and names an architecture ukmp prunes: seconds before minutes of dequantising."""
    require_gguf()
    import gguf

    try:
        reader = gguf.GGUFReader(str(file))
    except Exception as exc:  # the reader raises ValueError, struct errors, IndexError on garbage
        reason = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise UserError(f"{file} is not a readable GGUF file ({reason}); re-download it.") from None
    field = reader.fields.get("general.architecture")
    architecture = str(field.contents()) if field is not None else None
    if architecture not in GGUF_ARCHITECTURES:
        raise UserError(
            f"{file} holds a model of architecture {architecture!r}, which ukmp cannot prune; supported GGUF "
            f"architectures: {', '.join(GGUF_ARCHITECTURES)} ({language_model_labels()} and their relatives)."
        )


def load_gguf_model(folder: Path, file: str) -> nn.Module:
    """The dequantised float32 causal LM in ``folder/file``, with ``ukmp_source`` describing the file."""
    check_gguf_header(folder / file)
    from transformers import AutoModelForCausalLM, GgufConfig

    try:
        model = AutoModelForCausalLM.from_pretrained(
            str(folder),
            gguf_file=file,
            dtype="float32",
            # unpack every weight now: pruning slices plain float Linear weights, never GGUF blocks
            quantization_config=GgufConfig(gguf_file=file, dequantize=True),
        )
    except (ValueError, OSError, KeyError) as exc:
        reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise UserError(f"transformers cannot load {folder / file} as a causal language model ({reason}).") from None
    # Once dequantised the model is an ordinary float model: forget the loader's quantizer, or
    # transformers refuses .float() and a saved config.json would claim GGUF-packed weights.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.ukmp_source = gguf_origin(folder / file)
    return model


def load_gguf_tokenizer(folder: Path, file: str):
    """The tokenizer stored in the GGUF file (saved into the artifact, so it outlives the file)."""
    require_gguf()
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(folder), gguf_file=file)
