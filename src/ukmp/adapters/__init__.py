"""Architecture adapters: the only place that knows module names.

``find_adapter(model)`` looks the model up in the registry (``adapters/registry.py``): a wrapper
entry (BLIP-2, InstructBLIP) builds the whole adapter, else a language-model entry gives the one
part of a standalone model. A model no entry handles is refused in one sentence naming it.
"""

from __future__ import annotations

from torch import nn

from ukmp.adapters.base import ModelAdapter, Part, describe
from ukmp.adapters.inputs import ModelInputs
from ukmp.adapters.registry import (
    WRAPPERS,
    gguf_architectures,
    language_model_entry,
    language_model_labels,
    language_model_types,
    language_part,
    supported_summary,
    wrapper_builder,
    wrapper_entry,
)
from ukmp.errors import UserError

__all__ = [
    "ModelAdapter",
    "ModelInputs",
    "Part",
    "find_adapter",
    "SUPPORTED",
    "GGUF_ARCHITECTURES",
    "supported_config",
    "is_vision_language_model",
    "is_image_in_prompt_model",
    "is_language_model",
]

SUPPORTED = supported_summary()
#: GGUF `general.architecture` values that load as a model an adapter accepts
GGUF_ARCHITECTURES = gguf_architectures()


def supported_config(config: dict) -> str | None:
    """The one-sentence refusal for a parsed config.json no adapter handles, or None when one does."""
    model_type = config.get("model_type")
    name = (config.get("architectures") or ["a model"])[0]
    for wrapper in WRAPPERS:
        if model_type not in wrapper.model_types:
            continue
        inner = (config.get("text_config") or {}).get("model_type")
        checks_inner = wrapper.has_language_model and not wrapper.own_language_model
        if checks_inner and inner is not None and inner not in language_model_types():
            return (
                f"ukmp has no adapter for the language model (model_type {inner!r}) inside {name}; "
                f"supported language models are {language_model_labels()}."
            )
        return None
    if model_type in language_model_types():
        return None
    return f"ukmp has no adapter for {name} (model_type {model_type!r}); supported: {SUPPORTED}."


def is_vision_language_model(model: nn.Module) -> bool:
    """A BLIP-2-style model: vision tower -> Q-Former -> language model (BLIP-2 or InstructBLIP)."""
    entry = wrapper_entry(model)
    return entry is not None and entry.blip_style


def is_image_in_prompt_model(model: nn.Module) -> bool:
    """A vision-language model whose image enters the language model as tokens of its prompt (LLaVA)."""
    entry = wrapper_entry(model)
    return entry is not None and entry.has_language_model and not entry.blip_style


def is_language_model(model: nn.Module) -> bool:
    """A standalone decoder-only language model with its head (what bench and recover run as text-only).

    Decided by the model's class in the registry, not by its config: a bare vision tower (CLIP,
    SigLIP, BLIP-2's) has neither a ``vision_config`` nor an encoder-decoder flag either, and a bare
    ``LlamaModel`` has no head to generate or to compute a loss with.
    """
    if wrapper_entry(model) is not None:
        return False
    entry = language_model_entry(model)
    can_generate = getattr(model, "can_generate", None)
    return entry is not None and entry.decoder_only and callable(can_generate) and bool(can_generate())


def find_adapter(model: nn.Module) -> ModelAdapter:
    """The adapter for ``model``, or a ``UserError`` naming its architecture."""
    entry = wrapper_entry(model)
    if entry is not None:
        return wrapper_builder(entry)(model)
    language = language_part(model, "")
    if language is not None:
        return ModelAdapter(model, [language], inputs=ModelInputs(model, end_to_end=is_language_model(model)))
    raise UserError(f"ukmp has no adapter for {describe(model)}; supported: {SUPPORTED}.")
