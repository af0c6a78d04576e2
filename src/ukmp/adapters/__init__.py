"""Architecture adapters: the only place that knows module names.

``find_adapter(model)`` picks the adapter from the model's class (and, for BLIP-2 /
InstructBLIP, from the class of its language model) and raises a one-sentence ``UserError``
naming the architecture when there is none.
"""

from __future__ import annotations

from torch import nn

from ukmp.adapters.base import ModelAdapter, Part
from ukmp.errors import UserError

__all__ = ["ModelAdapter", "Part", "find_adapter", "SUPPORTED", "supported_config", "is_vision_language_model"]

SUPPORTED = (
    "Blip2ForConditionalGeneration and InstructBlipForConditionalGeneration (with T5, OPT or Llama), "
    "Blip2VisionModel, T5ForConditionalGeneration, OPTForCausalLM, LlamaForCausalLM"
)

#: config.json model types the adapters below accept (read before any weight is loaded)
LANGUAGE_MODEL_TYPES = ("t5", "opt", "llama")
WRAPPER_MODEL_TYPES = ("blip-2", "instructblip")
#: GGUF `general.architecture` values that load as a model an adapter accepts
GGUF_ARCHITECTURES = ("llama",)


def supported_config(config: dict) -> str | None:
    """The one-sentence refusal for a parsed config.json no adapter handles, or None when one does."""
    model_type = config.get("model_type")
    name = (config.get("architectures") or ["a model"])[0]
    if model_type in WRAPPER_MODEL_TYPES:
        inner = (config.get("text_config") or {}).get("model_type")
        if inner is not None and inner not in LANGUAGE_MODEL_TYPES:
            return (
                f"ukmp has no adapter for the language model (model_type {inner!r}) inside {name}; "
                "supported language models are T5, OPT and Llama."
            )
        return None
    if model_type in (*LANGUAGE_MODEL_TYPES, "blip_2_vision_model", "instructblip_vision_model"):
        return None
    return f"ukmp has no adapter for {name} (model_type {model_type!r}); supported: {SUPPORTED}."


def is_vision_language_model(model: nn.Module) -> bool:
    """A BLIP-2-style model: vision tower -> Q-Former -> language model (BLIP-2 or InstructBLIP)."""
    from transformers import Blip2ForConditionalGeneration, InstructBlipForConditionalGeneration

    return isinstance(model, Blip2ForConditionalGeneration | InstructBlipForConditionalGeneration)


def _describe(model: nn.Module) -> str:
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    return f"{type(model).__name__} (model_type {model_type!r})" if model_type else type(model).__name__


def _language_part(model: nn.Module, prefix: str) -> Part | None:
    from transformers import (
        LlamaForCausalLM,
        OPTForCausalLM,
        T5EncoderModel,
        T5ForConditionalGeneration,
        T5Model,
    )

    from ukmp.adapters.llama import LlamaPart
    from ukmp.adapters.opt import OPTPart
    from ukmp.adapters.t5 import T5Part

    root = model.get_submodule(prefix.rstrip(".")) if prefix else model
    if isinstance(root, T5ForConditionalGeneration | T5Model | T5EncoderModel):
        return T5Part(model, prefix)
    if isinstance(root, OPTForCausalLM):
        return OPTPart(model, prefix)
    if isinstance(root, LlamaForCausalLM):
        return LlamaPart(model, prefix)
    return None


def find_adapter(model: nn.Module) -> ModelAdapter:
    """The adapter for ``model``, or a ``UserError`` naming its architecture."""
    from transformers import (
        Blip2ForConditionalGeneration,
        Blip2VisionModel,
        InstructBlipForConditionalGeneration,
        InstructBlipVisionModel,
    )

    from ukmp.adapters.blip_vision import BlipVisionPart
    from ukmp.adapters.qformer import QFormerPart

    if isinstance(model, Blip2ForConditionalGeneration | InstructBlipForConditionalGeneration):
        language = _language_part(model, "language_model.")
        if language is None:
            raise UserError(
                f"ukmp has no adapter for the language model {_describe(model.language_model)} inside "
                f"{type(model).__name__}; supported language models are T5, OPT and Llama."
            )
        vision = BlipVisionPart(model, "vision_model.")
        return ModelAdapter(
            model,
            [vision, QFormerPart(model, "qformer."), language],
            default_components=vision.components + language.components,
            extra_buckets={"query_tokens": "qformer", "language_projection": "projection"},
        )
    if isinstance(model, Blip2VisionModel | InstructBlipVisionModel):
        return ModelAdapter(model, [BlipVisionPart(model, "")])
    language = _language_part(model, "")
    if language is not None:
        return ModelAdapter(model, [language])
    raise UserError(f"ukmp has no adapter for {_describe(model)}; supported: {SUPPORTED}.")
