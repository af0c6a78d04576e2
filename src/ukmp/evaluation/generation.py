"""Batched, deterministic generation with a BLIP-2 model: captions and short VQA answers.

Settings follow docs/method-notes.md: VQA (VQAv2, OK-VQA, GQA) uses the prompt
"Question: {} Short answer:" with beam 5, at most 10 and at least 1 new tokens, and (as LAVIS's
BLIP-2 answer prediction does) length penalty -1, which favours short answers. For captions the
paper (NoCaps) uses the prompt "a photo of", beam 5, max 30, min 8; that minimum is in
sentencepiece tokens of real captions. The shapes world's captions can be three words long in a
word-level vocabulary, where a minimum of 8 would force padding words onto every caption, so ukmp's
caption default is beam 5, max 30, **min 1**, empty prompt, length penalty 1;
`PAPER_CAPTION_SETTINGS` holds the paper's values for real data (CLI: `--caption-prompt "a photo of"
--caption-min-new-tokens 8`).

Decoding is plain beam search without sampling under `torch.inference_mode`, so the same model
and inputs give the same text. transformers 5's BLIP-2 needs `num_query_tokens` `<image>`
placeholders at the start of `input_ids`; the processor adds them when its `num_query_tokens` is set
(`prepare_processor` sees to it), and `prompt_inputs` lays them out the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from tqdm import tqdm

from ukmp.data.records import CaptionRecord, VQARecord

VQA_PROMPT = "Question: {} Short answer:"


@dataclass(frozen=True)
class GenerationSettings:
    """Beam-search settings of one task; `prompt` may contain `{}` for the question."""

    prompt: str = ""
    num_beams: int = 5
    max_new_tokens: int = 30
    min_new_tokens: int = 1
    length_penalty: float = 1.0

    def as_dict(self) -> dict:
        return asdict(self)

    def generate_kwargs(self) -> dict:
        """What ``generate`` is called with: these beams and lengths, greedy (no sampling)."""
        return dict(
            num_beams=self.num_beams,
            max_new_tokens=self.max_new_tokens,
            min_new_tokens=self.min_new_tokens,
            length_penalty=self.length_penalty,
            do_sample=False,
        )


CAPTION_SETTINGS = GenerationSettings(prompt="", num_beams=5, max_new_tokens=30, min_new_tokens=1)
PAPER_CAPTION_SETTINGS = GenerationSettings(prompt="a photo of", num_beams=5, max_new_tokens=30, min_new_tokens=8)
VQA_SETTINGS = GenerationSettings(
    prompt=VQA_PROMPT, num_beams=5, max_new_tokens=10, min_new_tokens=1, length_penalty=-1.0
)


def prepare_processor(processor, model):
    """Make the processor emit the model's image placeholders and pad on the side the model needs
    (the model's adapter knows both: ``ModelInputs.prepare_processor``)."""
    from ukmp.adapters import find_adapter

    return find_adapter(model).inputs.prepare_processor(processor, model)


def generation_cache(model) -> dict[str, Any]:
    """``generate``'s cache argument for an encoder-decoder language model: one that grows layer by layer.

    Why: transformers 5 sizes the default cache of ``generate`` from the top-level config's layer
    count, which for T5 is the encoder's (``num_layers``); a decoder with more layers
    (``num_decoder_layers``, as in several T5 variants) then runs past the end of it (IndexError in
    ``cache.update``). A cache without a config appends a layer whenever the decoder reaches one, so it
    fits any depth and holds the same keys and values. Decoder-only models keep transformers' default.
    """
    from ukmp.adapters.inputs import reads_with_encoder

    if not reads_with_encoder(model):
        return {}
    from transformers.cache_utils import DynamicCache, EncoderDecoderCache
    from transformers.generation import utils as generation_utils

    # transformers renamed generate's `past_key_values` to `cache` within 5.x; the old name still works, warned
    name = "cache" if "cache" in getattr(generation_utils, "ALL_CACHE_NAMES", ()) else "past_key_values"
    return {name: EncoderDecoderCache(DynamicCache(), DynamicCache())}


def model_device_dtype(model) -> tuple[torch.device, torch.dtype]:
    param = next(model.parameters())
    return param.device, param.dtype


def processor_inputs(processor, model, images: list[Image.Image], prompts: list[str]) -> dict:
    """Processor outputs on the model's device, pixel values in the model's dtype."""
    device, dtype = model_device_dtype(model)
    batch = processor(images=images, text=prompts, padding=True, return_tensors="pt")
    out = {}
    for key, value in batch.items():
        if key == "pixel_values":
            out[key] = value.to(device=device, dtype=dtype)
        elif isinstance(value, torch.Tensor):
            out[key] = value.to(device)
    return out


def image_features(model, pixel_values: torch.Tensor, **extra: torch.Tensor) -> torch.Tensor:
    """What the language model reads in the image slots: BLIP-2's projected Q-Former outputs, one row of
    ``num_query_tokens`` vectors per image; or LLaVA's projected vision features, one vector per image
    token, image after image (a LLaVA-NeXT image has as many tokens as its tiles give).

    ``extra`` holds InstructBLIP's ``qformer_input_ids`` / ``qformer_attention_mask`` (its Q-Former
    reads the instruction too) or LLaVA-NeXT's ``image_sizes``; BLIP-2 and LLaVA take none.
    """
    extra = {k: v for k, v in extra.items() if v is not None}
    features = model.get_image_features(pixel_values=pixel_values, return_dict=True, **extra).pooler_output
    return torch.cat(list(features)) if isinstance(features, (list, tuple)) else features  # LLaVA: per image


def prefix_embeddings(model, input_ids: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
    """Prompt token embeddings with the image features written over the `<image>` placeholder slots."""
    embeds = model.get_input_embeddings()(input_ids)
    slots = (input_ids == model.config.image_token_id).unsqueeze(-1)
    return embeds.masked_scatter(slots, features.to(embeds.dtype))


def prompt_inputs(processor, model, prompts: list[str]) -> dict[str, torch.Tensor]:
    """`num_query_tokens` `<image>` ids, then each tokenised (padded) prompt: the processor's layout.

    Built here rather than by the processor so that the images of a batch can be fewer than its
    prompts (several questions about one image share its features).
    """
    device, _ = model_device_dtype(model)
    text = processor.tokenizer(prompts, padding=True, return_tensors="pt", return_token_type_ids=False)
    n, b = model.config.num_query_tokens, len(prompts)
    image_ids = torch.full((b, n), model.config.image_token_id, dtype=text["input_ids"].dtype)
    return {
        "input_ids": torch.cat([image_ids, text["input_ids"]], dim=1).to(device),
        "attention_mask": torch.cat([torch.ones_like(image_ids), text["attention_mask"]], dim=1).to(device),
    }


def generate_texts(
    model,
    processor,
    image_paths: Sequence[Path],
    prompts: Sequence[str],
    settings: GenerationSettings,
    *,
    batch_size: int = 32,
    desc: str = "generate",
    progress: bool = True,
) -> list[str]:
    """One generated text per (image, prompt) pair, in input order.

    How one batch becomes text is the model's adapter's (``ModelInputs.generate_batch``): BLIP-2
    computes each distinct image's features once and generates with its language model; LLaVA
    and Qwen2-VL hand the processor's output to ``model.generate``.
    """
    from ukmp.adapters import find_adapter

    if len(image_paths) != len(prompts):
        raise ValueError("need exactly one prompt per image")
    inputs = find_adapter(model).inputs
    inputs.prepare_processor(processor, model)
    model.eval()
    texts: list[str] = []
    starts = range(0, len(prompts), batch_size)
    with torch.inference_mode():
        for start in tqdm(starts, desc=desc, unit="batch", disable=not progress):
            paths = list(image_paths[start : start + batch_size])
            batch_prompts = list(prompts[start : start + batch_size])
            texts.extend(inputs.generate_batch(model, processor, paths, batch_prompts, settings))
    return texts


def generate_captions(
    model,
    processor,
    records: Sequence[CaptionRecord],
    settings: GenerationSettings = CAPTION_SETTINGS,
    *,
    batch_size: int = 32,
    progress: bool = True,
) -> dict[int | str, str]:
    """image_id -> generated caption."""
    texts = generate_texts(
        model,
        processor,
        [r.image_path for r in records],
        [settings.prompt] * len(records),
        settings,
        batch_size=batch_size,
        desc="caption",
        progress=progress,
    )
    return {r.image_id: t for r, t in zip(records, texts, strict=True)}


def answer_questions(
    model,
    processor,
    records: Sequence[VQARecord],
    settings: GenerationSettings = VQA_SETTINGS,
    *,
    batch_size: int = 32,
    progress: bool = True,
    desc: str = "vqa",
) -> dict[int | str, str]:
    """question_id -> generated short answer."""
    prompts = [
        settings.prompt.format(r.question) if "{}" in settings.prompt else settings.prompt + r.question for r in records
    ]
    texts = generate_texts(
        model,
        processor,
        [r.image_path for r in records],
        prompts,
        settings,
        batch_size=batch_size,
        desc=desc,
        progress=progress,
    )
    return {r.question_id: t for r, t in zip(records, texts, strict=True)}
