"""Every standalone language model ukmp supports, through the same contract (``tests/lm_contract.py``)."""

from __future__ import annotations

from transformers import (
    Gemma3ForCausalLM,
    Gemma3TextConfig,
    LlamaConfig,
    LlamaForCausalLM,
    MistralConfig,
    MistralForCausalLM,
    OPTConfig,
    OPTForCausalLM,
    Qwen2Config,
    Qwen2ForCausalLM,
)

from lm_contract import LanguageModelContract

#: 2 layers, width 32, 4 query heads over 2 key/value heads, MLP 64: the shape every tiny LM shares
SMALL = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2)
TOKENS = dict(pad_token_id=0, bos_token_id=1, eos_token_id=2, max_position_embeddings=64, tie_word_embeddings=False)


class TestLlama(LanguageModelContract):
    architecture = "LlamaForCausalLM"

    def build(self, vocab_size, seed):
        return LlamaForCausalLM(LlamaConfig(vocab_size=vocab_size, **SMALL, **TOKENS))


class TestMistral(LanguageModelContract):
    architecture = "MistralForCausalLM"

    def build(self, vocab_size, seed):
        return MistralForCausalLM(MistralConfig(vocab_size=vocab_size, sliding_window=None, **SMALL, **TOKENS))


class TestQwen2(LanguageModelContract):
    """Qwen2's q/k/v projections carry biases: the producer rows' bias entries go with them."""

    architecture = "Qwen2ForCausalLM"

    def build(self, vocab_size, seed):
        return Qwen2ForCausalLM(Qwen2Config(vocab_size=vocab_size, **SMALL, **TOKENS))


class TestGemma3(LanguageModelContract):
    """Gemma-3: per-head q/k norms, an explicit head_dim, sliding-window and global layers."""

    architecture = "Gemma3ForCausalLM"

    def build(self, vocab_size, seed):
        config = Gemma3TextConfig(vocab_size=vocab_size, head_dim=8, sliding_window=4, **SMALL, **TOKENS)
        return Gemma3ForCausalLM(config)


class TestOPT(LanguageModelContract):
    architecture = "OPTForCausalLM"

    def build(self, vocab_size, seed):
        config = OPTConfig(
            vocab_size=vocab_size, hidden_size=32, ffn_dim=64, num_hidden_layers=2, num_attention_heads=4,
            word_embed_proj_dim=32, max_position_embeddings=64, pad_token_id=0, bos_token_id=1, eos_token_id=2,
        )  # fmt: skip
        return OPTForCausalLM(config)
