"""Real English text from two Debian packages, split into calibration and held-out evaluation sets.

- ``fortunes`` (/usr/share/games/fortunes): quotations, jokes and short poems. Every file of the
  package's main collection except the two ASCII-art files (``art``, ``ascii-art``) is read; entries
  are separated by a line holding only ``%``. An entry is kept when it has 20 to 2000 characters
  and at least 60% letters or spaces (this drops tables and drawings that slip into other files).
- ``wordnet-base`` (/usr/share/wordnet/data.{noun,verb,adj,adv}): every synset becomes one
  document ``"<first lemma>: <gloss>"``, the gloss being WordNet's definitions and its quoted
  example sentences, e.g. ``dwarf: a plant or animal that is atypically small``.

The split. Exact duplicates are removed; then each document goes to the held-out evaluation set
when the first 8 hex digits of the SHA-256 of its UTF-8 text, read as a number, are divisible by
10 (about 10% of each corpus), and to the calibration pool otherwise. The rule depends on the text
alone, so the split does not change with file order, package version additions elsewhere, or the
seed. Both sets are written in the order of that hash (a well-mixed order that no reader of the
files chose). The benchmark calibrates (and recovers) on the fortunes pool only and evaluates on the
held-out part of both corpora: fortunes is in-domain, WordNet glosses are out-of-domain text.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from pathlib import Path

FORTUNES = Path("/usr/share/games/fortunes")
WORDNET = Path("/usr/share/wordnet")
FORTUNE_SKIP = {"art", "ascii-art"}
WORDNET_FILES = ("data.noun", "data.verb", "data.adj", "data.adv")
EVAL_MODULUS = 10


def _plausible_prose(text: str) -> bool:
    letters = sum(ch.isalpha() or ch.isspace() for ch in text)
    return 20 <= len(text) <= 2000 and letters >= 0.6 * len(text)


def fortune_documents(root: Path = FORTUNES) -> list[str]:
    """The entries of every fortune file of the main collection, in file then entry order."""
    docs = []
    for file in sorted(root.iterdir()):
        if file.suffix or file.is_symlink() or not file.is_file() or file.name in FORTUNE_SKIP:
            continue  # .dat indexes, .u8 links and the ASCII art
        text = file.read_text(encoding="utf-8", errors="replace")
        for entry in re.split(r"^%\s*$", text, flags=re.MULTILINE):
            entry = "\n".join(line.rstrip() for line in entry.strip("\n").splitlines()).strip()
            if _plausible_prose(entry):
                docs.append(entry)
    return docs


def wordnet_documents(root: Path = WORDNET) -> list[str]:
    """One ``"lemma: gloss"`` document per synset of the four data files."""
    docs = []
    for name in WORDNET_FILES:
        for line in (root / name).read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("  ") or " | " not in line:
                continue  # the licence header, which starts with two spaces
            fields, gloss = line.split(" | ", 1)
            lemma = fields.split()[4].replace("_", " ")
            lemma = re.sub(r"\([a-z]+\)$", "", lemma)  # adjective markers such as (a), (p)
            docs.append(f"{lemma}: {gloss.strip()}")
    return docs


def _key(text: str) -> int:
    return int(hashlib.sha256(text.encode("utf-8")).hexdigest()[:8], 16)


def split_documents(docs: Iterable[str]) -> tuple[list[str], list[str]]:
    """(calibration pool, held-out evaluation set), deduplicated and ordered by hash."""
    unique = sorted(set(docs), key=lambda d: (_key(d), d))
    held_out = [d for d in unique if _key(d) % EVAL_MODULUS == 0]
    pool = [d for d in unique if _key(d) % EVAL_MODULUS != 0]
    return pool, held_out


def write_jsonl(path: Path, docs: list[str]) -> Path:
    """One ``{"text": ...}`` object per line (the format `ukmp` reads as plain-text data)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(json.dumps({"text": d}, ensure_ascii=False) + "\n" for d in docs), encoding="utf-8")
    tmp.replace(path)
    return path


def build_corpora(folder: Path) -> dict[str, dict]:
    """Write fortunes-calib / fortunes-eval / wordnet-eval .jsonl into ``folder``; returns their sizes."""
    fortunes_pool, fortunes_eval = split_documents(fortune_documents())
    _, wordnet_eval = split_documents(wordnet_documents())
    files = {
        "fortunes-calib": fortunes_pool,
        "fortunes-eval": fortunes_eval,
        "wordnet-eval": wordnet_eval,
    }
    info = {}
    for name, docs in files.items():
        path = write_jsonl(folder / f"{name}.jsonl", docs)
        info[name] = {"file": str(path), "documents": len(docs), "characters": sum(map(len, docs))}
    return info


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Write fortunes-calib / fortunes-eval / wordnet-eval .jsonl.")
    parser.add_argument("--out", type=Path, required=True, help="folder for the three .jsonl files")
    for name, info in build_corpora(parser.parse_args().out).items():
        print(f"{name}: {info['documents']} documents, {info['characters']} characters -> {info['file']}")
