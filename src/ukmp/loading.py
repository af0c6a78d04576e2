"""The one way a model is loaded: a zoo name, a local folder, a hub id, a GGUF file, a pruned artifact
or an unmerged recovery output, each recognised from what the path holds.

Why one function: every command takes "a model" from the user, and each kind needs its own reading
(a pruned artifact rebuilds its sliced shapes, a GGUF file is dequantised, a recovery output attaches
its adapter to its pruned model and teacher); callers then never ask which kind they were given.
The processor (or tokenizer) that goes with a model is ``ukmp.processors.load_processor``.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from safetensors import safe_open
from torch import nn

from ukmp.artifact import MANIFEST, WEIGHTS, is_pruned_artifact, load_pruned, model_class
from ukmp.errors import UserError
from ukmp.gguf_models import find_gguf, load_gguf_model
from ukmp.preflight import looks_local
from ukmp.recovery.recovered import load_recovered
from ukmp.zoo import resolve_model_name


def resolve_model_ref(name: str) -> str:
    """A local path as given, else a short zoo name resolved by ``ukmp.zoo`` (if it offers one).

    The zoo is part of ukmp, so it is imported like any other module: were its import to fail, zoo
    names would otherwise quietly stop resolving and surface much later as a model "not on the Hub".
    """
    if Path(name).expanduser().exists():
        return str(Path(name).expanduser())
    resolved = resolve_model_name(name)
    return str(resolved) if resolved else name


def base_reference(model_ref: str, gguf_file: str | None = None) -> str:
    """How a manifest names its base model so that it resolves from any working directory.

    A local folder or file becomes its absolute path; a zoo name and a hub id stay as they are
    (both resolve anywhere; the hub revision is recorded beside it from the loaded config).
    """
    path = Path(model_ref).expanduser()
    if gguf_file:
        path = path / gguf_file
    return str(path.resolve()) if path.exists() else model_ref


def load_model(
    path_or_id: str | os.PathLike,
    *,
    device: str | torch.device | None = None,
    gguf_file: str | None = None,
) -> nn.Module:
    """Load a pruned artifact, a recovered model folder, a dense model directory, a GGUF file or a hub id.

    A GGUF model (a ``.gguf`` path, or a folder plus ``gguf_file``) is dequantised to float32 and
    carries ``ukmp_source``, the description of its file that a pruned artifact's manifest records.
    """
    ref = resolve_model_ref(str(path_or_id))
    path = Path(ref)
    gguf = find_gguf(path, gguf_file) if (path.exists() or gguf_file is not None) else None
    if gguf is not None:
        model = load_gguf_model(*gguf)
    elif path.is_dir() and (path / "adapter_config.json").is_file() and not is_pruned_artifact(path):
        # an unmerged `ukmp recover` output
        model = load_recovered(path, load_pruned=load_pruned, load_teacher=load_model, device=device)
    elif path.is_dir():
        model = load_pruned(path, device=device) if is_pruned_artifact(path) else _load_dense(ref, local=True)
    elif path.exists():
        raise UserError(f"{ref} is a file; give the model directory (the one with config.json) or a .gguf file.")
    elif looks_local(ref):
        raise UserError(f"{ref} does not exist.")
    else:
        model = _load_dense(ref, local=False)
    if device is not None:
        model.to(device)
    return model.eval()


def _written_by_ukmp(weights: Path) -> bool:
    try:
        with safe_open(str(weights), "pt") as fh:
            return (fh.metadata() or {}).get("producer") == "ukmp"
    except Exception:  # unreadable files are reported by the loader that reads them
        return False


def _load_dense(ref: str, *, local: bool) -> nn.Module:
    from transformers import AutoConfig

    if local and _written_by_ukmp(Path(ref) / WEIGHTS):
        raise UserError(
            f"{ref} holds ukmp-pruned weights but no {MANIFEST}; per-layer widths cannot be loaded with "
            f"from_pretrained, so restore {MANIFEST} and load it with ukmp.load_pruned."
        )

    try:
        config = AutoConfig.from_pretrained(ref)
    except Exception as exc:
        if local:
            raise UserError(f"{ref} is not a transformers model directory ({_first_line(exc)}).") from None
        raise UserError(
            f"{ref} does not exist locally and could not be fetched from the Hugging Face Hub ({_first_line(exc)})."
        ) from None
    cls = model_class(config)
    try:
        return cls.from_pretrained(ref)
    except (RuntimeError, ValueError) as exc:
        if "size mismatch" in str(exc) or "mismatch" in str(exc).lower():
            raise UserError(
                f"the weights in {ref} do not fit its config.json; if it is a ukmp pruned model its "
                f"{MANIFEST} is missing, and per-layer widths cannot be loaded with from_pretrained."
            ) from None
        raise
    except OSError as exc:
        raise UserError(f"could not load the weights of {ref} ({_first_line(exc)}).") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__
