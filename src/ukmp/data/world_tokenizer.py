"""A word-level tokenizer for the shapes world, trained offline with HF `tokenizers`.

The world's language is small and closed, so a word-level vocabulary is exact (no unknown words on
any split) and keeps sequences short, which matters for training speed on a CPU. The result is a
normal `tokenizer.json` that `PreTrainedTokenizerFast.from_pretrained` reads, with T5's special-token
layout (pad=0, eos=1, unk=2) plus the BLIP-2 `<image>` placeholder.
"""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers

SPECIAL_TOKENS = ["<pad>", "</s>", "<unk>", "<image>"]
PAD_ID, EOS_ID, UNK_ID, IMAGE_ID = 0, 1, 2, 3


def train_word_tokenizer(texts: Iterable[str]) -> Tokenizer:
    """Train a lower-casing word-level tokenizer whose encodings end with `</s>` (as T5's do)."""
    tokenizer = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.WhitespaceSplit(),
            pre_tokenizers.Punctuation(),
            pre_tokenizers.Digits(individual_digits=True),
        ]
    )
    trainer = trainers.WordLevelTrainer(special_tokens=SPECIAL_TOKENS, min_frequency=1)
    tokenizer.train_from_iterator(texts, trainer=trainer)
    tokenizer.post_processor = processors.TemplateProcessing(
        single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", EOS_ID)]
    )
    tokenizer.decoder = None
    return tokenizer


def as_transformers_tokenizer(tokenizer: Tokenizer):
    """Wrap a trained tokenizer as a `PreTrainedTokenizerFast` with T5's special tokens."""
    from transformers import PreTrainedTokenizerFast

    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
        additional_special_tokens=["<image>"],
    )
    return fast
