"""Results files name generated data portably: no home folder, the same string on every machine."""

from __future__ import annotations

from pathlib import Path

from ukmp.data.index import local_path, portable_path


def test_paths_under_the_cache_are_written_relative_to_it(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("UKMP_CACHE", str(tmp_path / "cache"))
    assert portable_path(tmp_path / "cache" / "shapes" / "captions_val.json") == "$UKMP_CACHE/shapes/captions_val.json"
    assert portable_path(tmp_path / "mine" / "coco") == str(tmp_path / "mine" / "coco")


def test_a_portable_path_reads_back_under_this_machines_cache(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("UKMP_CACHE", str(tmp_path / "here"))
    assert local_path("$UKMP_CACHE/shapes") == tmp_path / "here" / "shapes"
    assert local_path("$UKMP_CACHE") == tmp_path / "here"
    assert local_path(str(tmp_path / "mine" / "coco")) == tmp_path / "mine" / "coco"
    assert local_path(portable_path(tmp_path / "here" / "shapes" / "x.json")) == tmp_path / "here" / "shapes" / "x.json"
