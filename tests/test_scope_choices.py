"""scripts/scope_choices.py: the table of `--norm-scope auto` choices read from a compare run's manifests."""

from __future__ import annotations

import json
from pathlib import Path

from script_loader import load_script


def _script():
    return load_script("scope_choices")


def _manifest(folder: Path, choice: dict | None) -> None:
    folder.mkdir(parents=True)
    options = {} if choice is None else {"norm_scope_choice": choice}
    (folder / "pruning.json").write_text(json.dumps({"method": {"options": options}}))


def test_choices_are_listed_per_draw_with_their_margin(tmp_path: Path) -> None:
    kept_kind = {"losses": {"modality": 6.9444, "kind": 6.9066}, "chosen": "kind", "samples": 128}
    kept_modality = {"losses": {"modality": 6.6420, "kind": 6.9712}, "chosen": "modality", "samples": 128}
    _manifest(tmp_path / "seed-0" / "artifacts" / "ukmp-20", kept_kind)
    _manifest(tmp_path / "seed-1" / "artifacts" / "ukmp-50", kept_modality)
    _manifest(tmp_path / "seed-0" / "artifacts" / "flap-20", None)  # another method: not listed
    script = _script()
    rows = script.choices(tmp_path, "ukmp")
    assert [(draw, name) for draw, name, _ in rows] == [("seed-0", "ukmp-20"), ("seed-1", "ukmp-50")]
    lines = script.table(rows).splitlines()
    assert lines[2] == "| seed-0 | ukmp-20 | 6.9444 | 6.9066 | kind | 0.0378 |"
    assert lines[3] == "| seed-1 | ukmp-50 | 6.6420 | 6.9712 | modality | 0.3292 |"
