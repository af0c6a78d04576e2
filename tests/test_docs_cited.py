"""Every document that a `--help` text, the README or a doc cites exists in the repository."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from ukmp.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
CITED = re.compile(r"\bdocs/[\w.-]+\.md\b")


def help_texts() -> dict[str, str]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {"ukmp": parser.format_help(), **{name: p.format_help() for name, p in sub.choices.items()}}


def test_help_texts_cite_existing_docs() -> None:
    cited = {(name, doc) for name, text in help_texts().items() for doc in CITED.findall(text)}
    assert cited, "no --help text cites a document; the check would pass vacuously"
    missing = sorted((name, doc) for name, doc in cited if not (ROOT / doc).is_file())
    assert missing == []


def test_readme_and_docs_cite_existing_docs() -> None:
    sources = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    missing = [(s.name, doc) for s in sources for doc in CITED.findall(s.read_text()) if not (ROOT / doc).is_file()]
    assert missing == []


def test_switches_show_no_misleading_default() -> None:
    bench = help_texts()["bench"]
    line = next(line for line in bench.splitlines() if "--no-masked" in line and "skip" in line)
    assert "default" not in line
