"""The processor (image processor + tokenizer) or tokenizer that belongs to a model source.

A pruned artifact carries a copy of its base model's processor files, so whatever loads here for
the dense model is also what the artifact will load with.
"""

from __future__ import annotations

from pathlib import Path

from ukmp.gguf_models import find_gguf, load_gguf_tokenizer


def load_processor(ref: str, gguf_file: str | None = None):
    """The model's processor or tokenizer, when the source has one (it is copied into the artifact).

    A GGUF model's tokenizer is read from the GGUF file itself; saved into the artifact as
    ordinary tokenizer files, it keeps the pruned model usable without the original file.
    """
    path = Path(ref)
    gguf = find_gguf(path, gguf_file) if (path.exists() or gguf_file is not None) else None
    if gguf is not None:
        return load_gguf_tokenizer(*gguf)
    if path.is_dir():
        names = (
            "preprocessor_config.json",
            "processor_config.json",
            "tokenizer_config.json",
            "tokenizer.json",
        )
        if not any((path / n).exists() for n in names):
            return None
    # imported here, not at the top: transformers' processing stack takes seconds to import, and
    # every `ukmp` command (even `--help`) imports this module through the prune path
    from transformers import AutoProcessor, AutoTokenizer

    for loader in (AutoProcessor, AutoTokenizer):
        try:
            return loader.from_pretrained(ref)
        except Exception:  # a model without processor files is fine: the artifact simply has none
            continue
    return None
