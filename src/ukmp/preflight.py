"""Checks that cost nothing, run before work that costs minutes.

Loading a model, dequantising a GGUF file or scoring a calibration set takes from seconds to many
minutes; a mistake found only afterwards (an architecture no adapter handles, a truncated weights
file, a processor for another image size, a ratio typed as a percentage) wastes that time and
often ends in a library's traceback. Each check here reads at most a file header or a config and
raises `UserError` with the fix.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from safetensors import safe_open

from ukmp.adapters import supported_config
from ukmp.errors import UserError
from ukmp.gguf_models import find_gguf

MODEL_FILE_SUFFIXES = (".gguf", ".safetensors", ".bin", ".pt")


def check_ratio(ratio: float, flag: str = "--ratio") -> None:
    """A fraction in (0, 1); a percentage such as 50 gets the fraction it probably meant."""
    if isinstance(ratio, float) and math.isnan(ratio):
        raise UserError(f"{flag} must be between 0 and 1 (exclusive), got {ratio}.")
    if 2.0 <= ratio < 100.0:  # 50 means 50%; 1.5 is more likely a slip than 1.5%
        raise UserError(
            f"{flag} is a fraction of the parameters, not a percentage; for {ratio:g}% pass {flag} {ratio / 100:g}."
        )
    if not 0.0 < ratio < 1.0:
        raise UserError(f"{flag} must be between 0 and 1 (exclusive), got {ratio}.")


def looks_local(ref: str) -> bool:
    """A reference meant as a local path: hub ids are `name` or `org/name` and never end in a file suffix."""
    if ref.startswith(("/", ".", "~")) or "\\" in ref or ref.count("/") > 1:
        return True
    if ref.lower().endswith(MODEL_FILE_SUFFIXES):
        return True
    head = ref.split("/", 1)[0]
    return "/" in ref and Path(head).is_dir()


def check_model_source(ref: str, gguf_file: str | None = None) -> None:
    """Before any weight is read: the model exists, its architecture is one ukmp prunes, its files parse."""
    path = Path(ref).expanduser()
    if not path.exists():
        if looks_local(ref):
            raise UserError(f"{ref} does not exist.")
        return  # a hub id: the loader reports what the hub says
    if find_gguf(path, gguf_file) is not None:
        return  # the GGUF loader reads the header (architecture included) before it dequantises anything
    if not path.is_dir() or (path / "pruning.json").is_file() or (path / "adapter_config.json").is_file():
        return  # files and ukmp outputs have their own loaders with their own sentences
    config = path / "config.json"
    if not config.is_file():
        return
    try:
        parsed = json.loads(config.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(
            f"{config} is not valid JSON ({getattr(exc, 'msg', exc)}); re-download or re-save the model."
        ) from None
    if not isinstance(parsed, dict):
        raise UserError(f"{config} is not a model configuration (expected a JSON object); re-download the model.")
    refusal = supported_config(parsed)
    if refusal:
        raise UserError(refusal)
    for weights in sorted(path.glob("*.safetensors")):
        check_safetensors(weights)


def check_safetensors(file: Path) -> None:
    """The header parses and every tensor it lists lies inside the file (a short download fails here)."""
    try:
        with safe_open(str(file), "pt") as fh:
            fh.keys()
    except Exception as exc:  # safetensors raises its own error type for bad headers and short files
        reason = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise UserError(f"{file} is truncated or corrupt ({reason}); re-download or re-save the model.") from None


def check_processor_matches(model: Any, processor: Any, where: str) -> None:
    """The processor makes images of the size the vision encoder was built for."""
    vision = getattr(getattr(model, "config", None), "vision_config", None)
    image_processor = getattr(processor, "image_processor", None)
    if vision is None or image_processor is None:
        return
    size = getattr(image_processor, "size", None) or {}
    height, width = size.get("height"), size.get("width")
    expected = getattr(vision, "image_size", None)
    if expected is None or height is None:
        return
    if (height, width) != (expected, expected):
        raise UserError(
            f"the processor in {where} makes {height}x{width} images, which does not match the model's vision "
            f"encoder ({expected}x{expected}); save the model's own processor beside its weights."
        )


def require_image_processor(processor: Any, where: str) -> None:
    """A vision-language model needs an image processor to read any image-text data."""
    if getattr(processor, "image_processor", None) is None:
        raise UserError(
            f"{where} has no image processor (processor_config.json or preprocessor_config.json and the "
            "tokenizer files); copy its base model's processor files into it, or re-create it with ukmp prune."
        )


def check_calibration_data(data_dir: Path, split: str) -> None:
    """The split's calibration pairs parse and the first image decodes: seconds, before loading the model."""
    from ukmp.data.index import load_task
    from ukmp.data.reading import load_image

    records = load_task(data_dir, split, "calibration")
    if not records:
        raise UserError(f"the {split!r} split of {data_dir} has no calibration pairs; choose another --calib-split.")
    load_image(records[0].image_path)
