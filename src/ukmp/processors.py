"""The processor (image processor + tokenizer) or tokenizer that belongs to a model source.

A pruned artifact carries a copy of its base model's processor files, so whatever loads here for
the dense model is also what the artifact will load with. That is why a processor file that is
there but does not load is an error here, named with its file: falling back to the tokenizer would
save a vision-language artifact that cannot read an image, and the failure would appear much later.
Only a source that holds no processor file at all ("no processor here") gets its tokenizer alone,
or nothing.
"""

from __future__ import annotations

from pathlib import Path

from ukmp.errors import UserError
from ukmp.gguf_models import find_gguf, load_gguf_tokenizer

#: the files that make a source have a processor (transformers 5 writes one processor_config.json;
#: older saves keep the image processor's settings in preprocessor_config.json)
PROCESSOR_FILES = ("processor_config.json", "preprocessor_config.json")
TOKENIZER_FILES = ("tokenizer_config.json", "tokenizer.json")


def load_processor(ref: str, gguf_file: str | None = None):
    """The model's processor or tokenizer, when the source has one (it is copied into the artifact).

    A GGUF model's tokenizer is read from the GGUF file itself; saved into the artifact as
    ordinary tokenizer files, it keeps the pruned model usable without the original file.
    """
    path = Path(ref)
    gguf = find_gguf(path, gguf_file) if (path.exists() or gguf_file is not None) else None
    if gguf is not None:
        return load_gguf_tokenizer(*gguf)
    processor_files = held_files(ref, PROCESSOR_FILES)
    tokenizer_files = held_files(ref, TOKENIZER_FILES)
    if not processor_files and not tokenizer_files:
        return None  # a model without processor files is fine: the artifact simply has none
    # imported here, not at the top: transformers' processing stack takes seconds to import, and
    # every `ukmp` command (even `--help`) imports this module through the prune path
    from transformers import AutoProcessor, AutoTokenizer

    own = _own_processor_class(ref, processor_files)
    try:
        return (own or AutoProcessor).from_pretrained(ref)
    except Exception as exc:
        if processor_files:
            raise UserError(_not_loading(ref, _culprit(ref, processor_files[0], tokenizer_files), exc)) from None
    try:
        return AutoTokenizer.from_pretrained(ref)  # no processor here: the tokenizer alone, as the model has it
    except Exception as exc:
        raise UserError(_not_loading(ref, tokenizer_files[0], exc)) from None


#: processor classes ukmp defines itself, by the name ``processor_config.json`` records: transformers'
#: AutoProcessor does not know them and would hand back the tokenizer alone, without a word
OWN_PROCESSORS = {"ImageOnlySmolVLMProcessor": "ukmp.zoo.smolvlm_processor"}


def _own_processor_class(ref: str, processor_files: list[str]):
    """The class of a processor ukmp wrote itself (`OWN_PROCESSORS`), or None for transformers' own."""
    import importlib
    import json

    if "processor_config.json" not in processor_files or not Path(ref).is_dir():
        return None
    try:
        name = json.loads((Path(ref) / "processor_config.json").read_text()).get("processor_class")
    except (OSError, ValueError, AttributeError):
        return None  # AutoProcessor reads it next and names the file if it is broken
    module = OWN_PROCESSORS.get(name)
    return getattr(importlib.import_module(module), name) if module else None


def held_files(ref: str, names: tuple[str, ...]) -> list[str]:
    """Which of ``names`` the source holds: a local folder's files, or a hub repository's (cached or fetched)."""
    path = Path(ref)
    if path.is_dir():
        return [n for n in names if (path / n).is_file()]
    if path.exists():
        return []
    from transformers.utils import cached_file

    quiet = dict(
        _raise_exceptions_for_missing_entries=False,
        _raise_exceptions_for_connection_errors=False,
        _raise_exceptions_for_gated_repo=False,
    )
    return [n for n in names if cached_file(ref, n, **quiet) is not None]


def _culprit(ref: str, processor_file: str, tokenizer_files: list[str]) -> str:
    """The file a failed processor load is down to: the tokenizer's when it fails alone too, else the processor's."""
    if not tokenizer_files:
        return processor_file
    from transformers import AutoTokenizer

    try:
        AutoTokenizer.from_pretrained(ref)
    except Exception:
        return tokenizer_files[0]
    return processor_file


def _not_loading(ref: str, name: str, exc: BaseException) -> str:
    where = Path(ref) / name if Path(ref).is_dir() else f"{name} of {ref}"
    text = str(exc).strip()
    reason = text.splitlines()[0][:200] if text else type(exc).__name__
    return f"{where} does not load ({reason}); repair or replace that file."
