"""Load the model and processor to evaluate from a zoo name, a local folder or a hub id.

Resolution order: a short zoo name (`shapes-blip2-t5`, via `ukmp.zoo.resolve_model_name`), then the
argument as given. Loading goes through the one loader, `ukmp.loading.load_model` (dense folders,
hub ids, GGUF files, pruned artifacts, recovery outputs), and `ukmp.processors.load_processor`. The
processor comes from the same folder: a pruned artifact carries a copy of its base's processor files.
"""

from __future__ import annotations

from pathlib import Path

from ukmp.errors import UserError
from ukmp.evaluation.harness import evaluate
from ukmp.loading import load_model, resolve_model_ref
from ukmp.placement import resolve_device
from ukmp.preflight import looks_local
from ukmp.processors import load_processor


def load_model_and_processor(name: str, *, device: str = "auto", gguf_file: str | None = None):
    """(model in eval mode on `device`, processor, resolved path or id), through the one loader.

    A GGUF model's tokenizer comes from the same file; a language model folder's "processor" is its
    tokenizer; None when the source has neither (the caller says what is missing).
    """
    path = resolve_model_ref(name)
    if looks_local(path) and not Path(path).expanduser().exists():
        raise UserError(
            f"model {name!r} not found: {path} does not exist (nor is it a zoo name such as shapes-blip2-t5)."
        )
    model = load_model(path, gguf_file=gguf_file)
    processor = load_processor(path, gguf_file)
    return model.to(resolve_device(device)).eval(), processor, path


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
    device: str = "cpu",
) -> dict:
    """Load a dense model or a pruned artifact (on ``device``) and run the evaluation harness on it."""
    model, processor, _ = load_model_and_processor(model_ref, device=device)
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
