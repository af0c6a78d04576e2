"""Results files name generated data portably: no home folder, the same string on every machine."""

from __future__ import annotations

from pathlib import Path

from ukmp.data.index import portable_path


def test_paths_under_the_cache_are_written_relative_to_it(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("UKMP_CACHE", str(tmp_path / "cache"))
    assert portable_path(tmp_path / "cache" / "shapes" / "captions_val.json") == "$UKMP_CACHE/shapes/captions_val.json"
    assert portable_path(tmp_path / "mine" / "coco") == str(tmp_path / "mine" / "coco")
