"""A tiny standalone Llama (grouped-query attention) and a word-level tokenizer, built offline.

The tokenizer is trained on the test corpus itself, so every word is in the vocabulary and the
model's vocabulary size matches it exactly; weights are spread (``tiny_models.spread_weights``)
so every head and channel changes the output.
"""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from tiny_models import spread_weights

SPECIALS = ["<pad>", "<s>", "</s>", "<unk>"]
CORPUS = [
    "the cat sat on the mat and the dog sat on the log",
    "a bird sings in the tree while the wind blows over the hill",
    "people who read books often find that the books read them too",
    "the river runs to the sea and the sea returns it as rain",
    "small models learn small things but they learn them quickly",
    "every word here is known to the tokenizer because it was trained on these lines",
]


def tiny_tokenizer() -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.train_from_iterator(CORPUS, trainer=trainers.WordLevelTrainer(special_tokens=SPECIALS))
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", bos_token="<s>", eos_token="</s>", unk_token="<unk>"
    )


def tiny_llama(vocab_size: int, seed: int = 0, **overrides) -> LlamaForCausalLM:
    """2 layers, width 32, 4 query heads over 2 key/value heads, MLP 64, in eval mode."""
    settings = dict(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        tie_word_embeddings=False,
    )
    settings.update(overrides)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(LlamaConfig(**settings))
    spread_weights(model, seed)
    return model.eval()


def save_tiny_lm(folder: Path, seed: int = 0) -> Path:
    """A model folder (config, safetensors, tokenizer) that `ukmp` commands read like a downloaded one."""
    tokenizer = tiny_tokenizer()
    model = tiny_llama(len(tokenizer), seed)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def write_corpus(path: Path, repeats: int = 4) -> Path:
    """The corpus as a text file of blank-line-separated documents."""
    path.write_text("\n\n".join(CORPUS * repeats) + "\n")
    return path
