"""Which adapter handles which model: one table, readable without importing any adapter.

Why a table of names rather than imports: a config.json is checked (``supported_config``) before
any weight or modelling code is loaded, and ``ukmp --help`` must stay fast; an adapter module
(which imports transformers' modelling code) is imported only when a model of its kind is found.
Adding an architecture is its adapter file plus one entry here; nothing else names it.

Two kinds of entries:

- ``LanguageModel``: a ``Part`` for a language-model family, found at the root of a standalone
  model or at the language-model path inside a wrapper;
- ``Wrapper``: a builder of the whole ``ModelAdapter`` for a composite model (BLIP-2's vision
  tower, Q-Former and language model), which looks up its language model through this table.

Classes are matched by name along the model's class hierarchy, so a subclass (a user's own
wrapper of ``LlamaForCausalLM``) is handled like its base.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from ukmp.adapters.base import describe
from ukmp.errors import UserError


@dataclass(frozen=True)
class LanguageModel:
    part: str  #: "module:Class" of its ``Part``
    classes: tuple[str, ...]  #: transformers classes it handles (a causal LM and the bare model inside wrappers)
    model_types: tuple[str, ...]  #: config.json ``model_type`` values
    label: str  #: how messages name the family
    gguf_architectures: tuple[str, ...] = ()  #: GGUF ``general.architecture`` values that load as one
    #: one stack reading the prompt and writing the continuation (OPT, Llama); T5 is an encoder-decoder
    decoder_only: bool = True


@dataclass(frozen=True)
class Wrapper:
    builder: str  #: "module:function" taking the model, returning its ``ModelAdapter``
    classes: tuple[str, ...]
    model_types: tuple[str, ...]
    label: str
    #: holds a language model that must be in ``LANGUAGE_MODELS`` (found in config.json's text_config)
    has_language_model: bool = True
    #: an image encoder feeding a Q-Former feeding the language model (BLIP-2 / InstructBLIP); how
    #: commands feed each kind is the adapter's ``ModelInputs``, this only names the kind
    blip_style: bool = True
    #: the builder handles its own language model (a family-specific text model, not a ``LANGUAGE_MODELS`` entry)
    own_language_model: bool = False


LANGUAGE_MODELS: tuple[LanguageModel, ...] = (
    LanguageModel(
        "ukmp.adapters.t5:T5Part",
        ("T5ForConditionalGeneration", "T5Model", "T5EncoderModel"),
        ("t5",),
        "T5",
        decoder_only=False,
    ),
    LanguageModel("ukmp.adapters.opt:OPTPart", ("OPTForCausalLM",), ("opt",), "OPT"),
    LanguageModel(
        "ukmp.adapters.llama:LlamaPart",
        (
            "LlamaForCausalLM",
            "LlamaModel",
            "MistralForCausalLM",
            "MistralModel",
            "Qwen2ForCausalLM",
            "Qwen2Model",
            "Gemma3ForCausalLM",
            "Gemma3TextModel",
        ),
        ("llama", "mistral", "qwen2", "gemma3_text"),
        "Llama, Mistral, Qwen2, Gemma-3",
        gguf_architectures=("llama", "mistral", "qwen2", "gemma3"),
    ),
)

WRAPPERS: tuple[Wrapper, ...] = (
    Wrapper("ukmp.adapters.blip2:blip2_adapter", ("Blip2ForConditionalGeneration",), ("blip-2",), "BLIP-2"),
    Wrapper(
        "ukmp.adapters.blip2:instructblip_adapter",
        ("InstructBlipForConditionalGeneration",),
        ("instructblip",),
        "InstructBLIP",
    ),
    Wrapper(
        "ukmp.adapters.llava:llava_adapter",
        ("LlavaForConditionalGeneration", "LlavaNextForConditionalGeneration"),
        ("llava", "llava_next"),
        "LLaVA and LLaVA-NeXT (CLIP or SigLIP vision tower)",
        blip_style=False,
    ),
    Wrapper(
        "ukmp.adapters.qwen2_vl:qwen2_vl_adapter",
        ("Qwen2VLForConditionalGeneration", "Qwen2_5_VLForConditionalGeneration"),
        ("qwen2_vl", "qwen2_5_vl"),
        "Qwen2-VL and Qwen2.5-VL",
        blip_style=False,
        own_language_model=True,
    ),
    Wrapper(
        "ukmp.adapters.idefics3:idefics3_adapter",
        ("Idefics3ForConditionalGeneration", "SmolVLMForConditionalGeneration"),
        ("idefics3", "smolvlm"),
        "Idefics3 and SmolVLM",
        blip_style=False,
    ),
    Wrapper(
        "ukmp.adapters.blip2:vision_adapter",
        ("Blip2VisionModel", "InstructBlipVisionModel"),
        ("blip_2_vision_model", "instructblip_vision_model"),
        "their vision towers",
        has_language_model=False,
        blip_style=False,
    ),
)


def _resolve(reference: str) -> Any:
    module, name = reference.split(":")
    return getattr(importlib.import_module(module), name)


def _class_names(module: nn.Module) -> list[str]:
    return [cls.__name__ for cls in type(module).__mro__]


def language_model_entry(module: nn.Module) -> LanguageModel | None:
    for name in _class_names(module):
        for entry in LANGUAGE_MODELS:
            if name in entry.classes:
                return entry
    return None


def language_part(model: nn.Module, prefix: str) -> Any:
    """The ``Part`` for the language model at ``prefix`` of ``model``, or None when no entry handles it."""
    root = model.get_submodule(prefix.rstrip(".")) if prefix else model
    entry = language_model_entry(root)
    return _resolve(entry.part)(model, prefix) if entry is not None else None


def require_language_part(model: nn.Module, prefix: str) -> Any:
    """``language_part``, or the one-sentence refusal naming the language model a wrapper holds."""
    language = language_part(model, prefix)
    if language is None:
        inner = model.get_submodule(prefix.rstrip("."))
        raise UserError(
            f"ukmp has no adapter for the language model {describe(inner)} inside {type(model).__name__}; "
            f"supported language models are {language_model_labels()}."
        )
    return language


def wrapper_entry(model: nn.Module) -> Wrapper | None:
    for name in _class_names(model):
        for entry in WRAPPERS:
            if name in entry.classes:
                return entry
    return None


def wrapper_builder(entry: Wrapper) -> Callable[[nn.Module], Any]:
    return _resolve(entry.builder)


def language_model_types() -> tuple[str, ...]:
    return tuple(t for entry in LANGUAGE_MODELS for t in entry.model_types)


def gguf_architectures() -> tuple[str, ...]:
    return tuple(a for entry in LANGUAGE_MODELS for a in entry.gguf_architectures)


def language_model_labels() -> str:
    return ", ".join(entry.label for entry in LANGUAGE_MODELS)


def supported_summary() -> str:
    """One sentence fragment naming every model class the table supports."""
    with_lm = ", ".join(c for w in WRAPPERS if w.has_language_model and not w.own_language_model for c in w.classes)
    alone = [c for w in WRAPPERS if not w.has_language_model or w.own_language_model for c in w.classes]
    standalone = [c for entry in LANGUAGE_MODELS for c in entry.classes if c.endswith(("ForCausalLM", "Generation"))]
    return f"{with_lm} (with a {language_model_labels()} language model), {', '.join(alone + standalone)}"
