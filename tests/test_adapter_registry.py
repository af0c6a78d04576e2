"""The adapter registry: a wrapper around a language model no entry handles is refused in one sentence."""

from __future__ import annotations

import pytest
from transformers import Blip2Config, Blip2ForConditionalGeneration, GPT2Config

from tiny_models import blip2_config
from ukmp.adapters import SUPPORTED, find_adapter, supported_config
from ukmp.errors import UserError


def test_a_blip2_over_an_unsupported_language_model_is_refused_naming_it() -> None:
    base = blip2_config("opt").to_dict()
    text = GPT2Config(vocab_size=64, n_embd=32, n_layer=1, n_head=4).to_dict()
    config = Blip2Config(
        vision_config=base["vision_config"],
        qformer_config=base["qformer_config"],
        text_config=text,
        num_query_tokens=base["num_query_tokens"],
        image_token_index=base.get("image_token_index"),
    )
    model = Blip2ForConditionalGeneration(config)
    with pytest.raises(UserError) as caught:
        find_adapter(model)
    message = str(caught.value)
    assert "language model GPT2LMHeadModel (model_type 'gpt2') inside Blip2ForConditionalGeneration" in message
    assert "Llama, Mistral, Qwen2, Gemma-3" in message
    assert "gpt2" in supported_config({"model_type": "blip-2", "text_config": {"model_type": "gpt2"}})
    assert supported_config({"model_type": "qwen2"}) is None and "LlavaForConditionalGeneration" in SUPPORTED
