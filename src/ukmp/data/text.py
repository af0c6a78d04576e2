"""Plain-text data for language models: documents from a file, cut into fixed-length token windows.

Two file forms are read:

- a text file (``.txt`` or ``.text``), UTF-8: documents are separated by one or more blank lines
  (a file without blank lines is one document);
- a JSONL file (``.jsonl``): one JSON object per line, its ``text`` field is one document.

Every document is tokenised on its own without special tokens, the tokenizer's end-of-sequence
token (when it has one) is appended as a separator, and the documents are concatenated into one
stream in file order. The stream is cut into consecutive, non-overlapping windows of ``seq_len``
tokens; the last, shorter window is kept when it has at least two tokens (one to read, one to
predict), so no text is silently dropped. A window is read on its own, without the tokens before
it, so every window's first token is context only and is never predicted.

Windows are the unit of both the perplexity evaluation (``ukmp.evaluation.perplexity``) and the
prefix-LM calibration samples (``ukmp.data.text_calibration``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from ukmp.errors import UserError

JSONL_SUFFIX = ".jsonl"
TEXT_SUFFIXES = (".txt", ".text", JSONL_SUFFIX)
MIN_WINDOW = 2
_BLANK_LINES = re.compile(r"\n[ \t]*\n")


def is_text_data(path: str | Path | None) -> bool:
    """True for an existing file with a text suffix: such a --data/--calib means plain text, not a folder."""
    if path is None:
        return False
    p = Path(path).expanduser()
    return p.is_file() and p.suffix.lower() in TEXT_SUFFIXES


def read_documents(path: str | Path) -> list[str]:
    """The non-empty documents of a text or JSONL file, in file order."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise UserError(f"text data {p} does not exist; give a .txt file or a .jsonl file with a 'text' field.")
    try:
        content = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"{p} is not UTF-8 text (byte {exc.start}); convert it to UTF-8.") from None
    if p.suffix.lower() == JSONL_SUFFIX:
        docs = _jsonl_documents(p, content)
    else:
        docs = [d.strip() for d in _BLANK_LINES.split(content.replace("\r\n", "\n"))]
    docs = [d for d in docs if d]
    if not docs:
        raise UserError(f"{p} holds no text.")
    return docs


def _jsonl_documents(path: Path, content: str) -> list[str]:
    docs = []
    for number, line in enumerate(content.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UserError(f"line {number} of {path} is not valid JSON ({exc.msg}).") from None
        text = record.get("text") if isinstance(record, dict) else None
        if not isinstance(text, str):
            raise UserError(f"line {number} of {path} has no string 'text' field.")
        docs.append(text.strip())
    return docs


def token_stream(tokenizer, documents: list[str]) -> list[int]:
    """All documents' token ids, each followed by the end-of-sequence token when there is one."""
    eos = getattr(tokenizer, "eos_token_id", None)
    encoded = tokenizer(documents, add_special_tokens=False)["input_ids"]
    stream: list[int] = []
    for ids in encoded:
        stream.extend(ids)
        if eos is not None:
            stream.append(eos)
    return stream


def cut_windows(ids: list[int], seq_len: int) -> list[list[int]]:
    """Consecutive non-overlapping windows of ``seq_len`` tokens; a final shorter one if it has >= 2."""
    if seq_len < MIN_WINDOW:
        raise UserError(f"--seq-len must be at least {MIN_WINDOW} tokens, got {seq_len}.")
    windows = [ids[i : i + seq_len] for i in range(0, len(ids), seq_len)]
    return [w for w in windows if len(w) >= MIN_WINDOW]


def text_windows(tokenizer, path: str | Path, seq_len: int) -> list[list[int]]:
    """The file's token windows (see the module doc)."""
    if tokenizer is None:
        raise UserError("plain-text data needs the model's tokenizer, and this model has none saved with it.")
    tokenizer = getattr(tokenizer, "tokenizer", tokenizer)  # a multimodal processor wraps its tokenizer
    windows = cut_windows(token_stream(tokenizer, read_documents(path)), seq_len)
    if not windows:
        raise UserError(f"{path} has fewer than {MIN_WINDOW} tokens.")
    return windows
