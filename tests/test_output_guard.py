"""The output guard: stale temporaries of killed runs go, live ones and the user's files stay."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ukmp.artifact import atomic_directory
from ukmp.errors import UserError
from ukmp.output_guard import check_output, remove_stale_temporaries, temporary_prefix


def dead_pid() -> int:
    """The id of a process that has finished (and been reaped)."""
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(proc.stdout)


def test_a_killed_runs_temporary_is_removed_by_the_next_write(tmp_path: Path) -> None:
    out = tmp_path / "pruned"
    stale = tmp_path / f".pruned.tmp-{dead_pid()}-abc123"
    stale.mkdir()
    (stale / "model.safetensors").write_bytes(b"half")
    live = tmp_path / f"{temporary_prefix(out)}xyz"  # this process is alive: another run's work in progress
    live.mkdir()
    other = tmp_path / f".other.tmp-{dead_pid()}-abc"  # a temporary of another output: not ours to judge
    other.mkdir()
    with atomic_directory(out) as tmp:
        (tmp / "pruning.json").write_text("{}")
    assert not stale.exists()
    assert live.exists() and other.exists()
    assert (out / "pruning.json").is_file()


def test_remove_stale_temporaries_reports_what_it_removed(tmp_path: Path) -> None:
    final = tmp_path / "r.json"
    stale = tmp_path / f".r.json.tmp-{dead_pid()}-q"
    stale.write_text("x")
    assert remove_stale_temporaries(final) == [stale]
    assert remove_stale_temporaries(final) == []


def test_overwrite_needs_a_marker_and_never_takes_an_input(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="not a ukmp output"):
        check_output(out, overwrite=True, markers=("pruning.json",))
    (out / "pruning.json").write_text("{}")
    check_output(out, overwrite=True, markers=("pruning.json",))  # a ukmp folder may be replaced
    with pytest.raises(UserError, match="already exists"):
        check_output(out, overwrite=False, markers=("pruning.json",))
    with pytest.raises(UserError, match="is the input model"):
        check_output(out, overwrite=True, markers=("pruning.json",), inputs=[out])
    with pytest.raises(UserError, match="inside the input model"):
        check_output(out / "sub", overwrite=False, markers=("pruning.json",), inputs=[out])
    with pytest.raises(UserError, match="contains the input model"):
        check_output(tmp_path, overwrite=True, markers=("*",), inputs=[out])


def test_an_unwritable_place_is_refused_before_any_work() -> None:
    with pytest.raises(UserError, match="cannot write"):
        check_output(Path("/proc/ukmp-out"), overwrite=False, markers=("pruning.json",))
