"""Load the model and processor to evaluate from a zoo name, a local folder or a hub id.

Resolution order: a short zoo name (`shapes-blip2-t5`, via `ukmp.zoo.resolve_model_name`), then the
argument as given. Loading goes through `ukmp.artifact.load_model`, which understands both dense
transformers folders and pruned ukmp artifacts; where that module is not available the dense
`Blip2ForConditionalGeneration.from_pretrained` is used. The processor always comes from the same
folder: a pruned artifact carries a copy of its base model's processor files.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from ukmp.errors import UserError
from ukmp.evaluation.harness import evaluate
from ukmp.preflight import looks_local


def _optional(module: str, attr: str):
    """`module.attr`, or None when that module (not one of its imports) or attribute does not exist."""
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name == module:
            return None
        raise
    return getattr(mod, attr, None)


def resolve_model_path(name: str) -> str:
    """A zoo name becomes its folder; anything else is returned unchanged."""
    resolve = _optional("ukmp.zoo", "resolve_model_name")
    resolved = resolve(name) if resolve is not None else None
    return str(resolved) if resolved else name


def pick_device(device: str = "auto"):
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except RuntimeError as exc:
        raise UserError(f"unknown device {device!r}; use cpu, cuda, cuda:N or auto.") from exc


def load_model_and_processor(name: str, *, device: str = "auto", gguf_file: str | None = None):
    """(model in eval mode on `device`, processor, resolved path or id).

    A GGUF model (a .gguf file, or a folder and `gguf_file`) is dequantised on load and its
    tokenizer comes from the same file; a language model folder's "processor" is its tokenizer.
    """
    from transformers import AutoProcessor

    path = resolve_model_path(name)
    gguf = _optional("ukmp.gguf_models", "find_gguf")
    if gguf is not None and (Path(path).expanduser().exists() or gguf_file is not None):
        found = gguf(Path(path).expanduser(), gguf_file)
        if found is not None:
            from ukmp.gguf_models import load_gguf_model, load_gguf_tokenizer

            model = load_gguf_model(*found)
            return model.to(pick_device(device)).eval(), load_gguf_tokenizer(*found), str(found[0] / found[1])
    if looks_local(path) or Path(path).exists():
        folder = Path(path).expanduser()
        if not folder.is_dir():
            raise UserError(
                f"model {name!r} not found: {folder} is not a folder (nor a zoo name such as shapes-blip2-t5)."
            )
        path = str(folder)

    loader = _optional("ukmp.artifact", "load_model")
    try:
        if loader is not None:
            model = loader(path)
        else:
            from transformers import Blip2ForConditionalGeneration

            model = Blip2ForConditionalGeneration.from_pretrained(path)
        processor = _processor_or_tokenizer(path, AutoProcessor)
    except OSError as exc:
        raise UserError(
            f"cannot load model {name!r} from {path} ({str(exc).splitlines()[0]}); pass a local "
            f"model folder, a zoo name, or a hub id that is in the local cache."
        ) from exc
    return model.to(pick_device(device)).eval(), processor, path


def _processor_or_tokenizer(path: str, auto_processor):
    """The processor of a vision-language model; a text-only model's tokenizer stands in for it."""
    try:
        return auto_processor.from_pretrained(path)
    except (OSError, ValueError):
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(path)


def evaluate_model(
    model_ref: str,
    data_dir: str | Path,
    *,
    split: str = "val",
    tasks: tuple[str, ...] = ("all",),
    limit: int | None = None,
    name: str | None = None,
    batch_size: int = 64,
    progress: bool = True,
) -> dict:
    """Load a dense model or a pruned artifact and run the evaluation harness on it."""
    model, processor, _ = load_model_and_processor(model_ref, device="cpu")
    return evaluate(
        model,
        processor,
        data_dir,
        split,
        tasks,
        limit,
        batch_size,
        model_name=name or model_ref,
        progress=progress,
    )
