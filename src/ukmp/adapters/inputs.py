"""How a model reads its inputs: what every command asks its adapter instead of asking what the model is.

Why here: calibration, generation, retrieval, bench and recovery all feed the same models, and
each used to branch on the model's kind (BLIP-2-style, image-in-prompt, language model) to build
its inputs. A new family then meant editing every one of them. Now each adapter carries one
``ModelInputs`` object that answers for its family; the commands only call it.

This base class is a standalone language model (text in, text out). The vision-language kinds
refine it: ``query_token_inputs.QueryTokenInputs`` (BLIP-2, InstructBLIP: image features fill
query-token slots), ``prompt_image_inputs.PromptImageInputs`` (LLaVA family: the processor expands
an image placeholder in the prompt), and the Qwen2-VL adapter's own subclass of the latter.

Imports of the evaluation and data helpers stay inside the methods of the subclasses' modules:
this module is imported whenever any adapter is, and must stay light.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from ukmp.errors import UserError

#: builds a model's example inputs from random text ids (batch, text_len) and a seeded generator
ExampleBuilder = Callable[[nn.Module, torch.Tensor, torch.Generator], dict[str, torch.Tensor]]


def language_model_inputs(model: nn.Module, ids: torch.Tensor, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """A language model reads ``ids`` (an encoder-decoder also as its decoder tokens)."""
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    if getattr(model.config, "is_encoder_decoder", False):
        inputs["decoder_input_ids"] = ids.clone()
    return inputs


def reads_with_encoder(model: nn.Module) -> bool:
    """True for a T5-style language model (prompt in the encoder), from the config, never from tensor shapes."""
    config = getattr(model.config, "text_config", model.config)  # a standalone LM is its own text config
    return bool(getattr(config, "is_encoder_decoder", False))


class ModelInputs:
    """A standalone language model: text in, text out. Subclasses add images.

    ``end_to_end`` says whether evaluate, recover and bench can run the model (it reads a prompt and
    writes text); a bare vision tower or a language model without its head cannot.
    """

    #: the processor output keys, besides the prompt's ids and mask, that carry the image
    image_keys: tuple[str, ...] = ()

    def __init__(self, model: nn.Module, *, end_to_end: bool = True, examples: ExampleBuilder | None = None) -> None:
        #: the language model reads the prompt in an encoder and writes in a decoder (T5)
        self.encoder_decoder = reads_with_encoder(model)
        self.end_to_end = end_to_end
        self._examples = examples or language_model_inputs

    # ------------------------------------------------------------------------------ examples

    def example_inputs(self, model: nn.Module, ids: torch.Tensor, gen: torch.Generator) -> dict[str, torch.Tensor]:
        """A deterministic synthetic input built around the random text ``ids`` (FLOPs, bench, smoke checks)."""
        return self._examples(model, ids, gen)

    # --------------------------------------------------------------------------- calibration

    def calibration_batch(self, processor: Any, images: list, samples: Sequence[Any]) -> dict[str, torch.Tensor]:
        """One image-text calibration batch (image tokens + prefix + target, labels on the target)."""
        raise UserError("this model reads no images; calibrate it on a text file (.txt or .jsonl).")

    def sample_pieces(self, batch: dict[str, Any]) -> list[dict[str, Any]]:
        """The batch as one input per sample (per-sample gradients, per-sample entropy passes).

        Every tensor here has one row per sample; a family that packs its images otherwise
        (Qwen2-VL's flattened patches) splits them its own way.
        """
        n = batch["labels"].shape[0]
        return [{k: v[i : i + 1] if torch.is_tensor(v) else v for k, v in batch.items()} for i in range(n)]

    #: keys laid out position by position like ``input_ids`` (cut with it when padding is dropped)
    token_keys: tuple[str, ...] = ()

    # ---------------------------------------------------------------------------- generation

    def prepare_processor(self, processor: Any, model: nn.Module) -> Any:
        """Pad on the side the model needs: an encoder reads a right-padded prompt through its mask;
        a decoder continues the last position, so its prompts are left-padded."""
        processor.tokenizer.padding_side = "right" if self.encoder_decoder else "left"
        return processor

    def generate_batch(
        self, model: nn.Module, processor: Any, image_paths: Sequence[Any], prompts: list[str], settings: Any
    ) -> list[str]:
        """One generated text per (image, prompt) pair of one batch, with ``settings`` (a ``GenerationSettings``)."""
        raise UserError("this model reads no images; evaluate it on a text file (perplexity).")

    # ----------------------------------------------------------------------------- retrieval

    def retrieval_prefix(
        self, model: nn.Module, processor: Any, image_paths: Sequence[Any], prompt: str
    ) -> dict[str, torch.Tensor]:
        """Per image, what every caption is scored after (row-aligned tensors; ``mask`` is the attention mask)."""
        raise UserError("this model reads no images; image-text retrieval needs a vision-language model.")

    def caption_logits(self, model: nn.Module, prefix: dict[str, torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
        """Logits aligned with ``labels`` (-100 = padding): position t predicts ``labels[:, t]``."""
        raise UserError("this model reads no images; image-text retrieval needs a vision-language model.")

    def caption_ids(self, tokenizer: Any, captions: Sequence[str], max_tokens: int) -> list[list[int]]:
        """Caption token ids ending in end-of-sequence: T5's tokenizer adds it; for a decoder we append it."""
        if self.encoder_decoder:
            return tokenizer(list(captions), truncation=True, max_length=max_tokens)["input_ids"]
        ids = tokenizer(list(captions), add_special_tokens=False, truncation=True, max_length=max_tokens - 1)
        return [seq + [tokenizer.eos_token_id] for seq in ids["input_ids"]]

    # ----------------------------------------------------------------------------- text only

    def text_logits(self, model: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Next-token logits of the language model reading text alone, with no image.

        Why: a vision-language model's language model is measured on plain text (perplexity) to see
        whether pruning for images kept what it knew. Image-in-prompt families read a prompt without
        an image placeholder as their language model does; BLIP-style ones override this.
        """
        if self.encoder_decoder:
            raise UserError(
                "perplexity needs a decoder-only language model, and this model's language model reads its prompt "
                "in an encoder (T5); evaluate it with --task caption or --task vqa instead."
            )
        return model(input_ids=input_ids, attention_mask=attention_mask).logits

    # --------------------------------------------------------------------------------- bench

    def bench_generate_inputs(self, model: nn.Module, forward: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """What bench's ``generate`` continues, given its forward inputs: here the whole prompt."""
        return dict(forward)

    def encode_inputs(self, forward: dict[str, torch.Tensor]) -> dict[str, torch.Tensor] | None:
        """``get_image_features`` keyword arguments for bench's ``encode``, or None when it has no such step."""
        return None

    def new_tokens(self, output: torch.Tensor, inputs: dict[str, torch.Tensor]) -> int:
        """Tokens generated per sequence (T5's output starts with the decoder start token)."""
        if self.encoder_decoder:
            return int(output.shape[1]) - 1
        return int(output.shape[1] - inputs["input_ids"].shape[1])
