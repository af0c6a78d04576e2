"""Atomic writes: a file or folder appears whole under its final name, or not at all.

A run killed while writing must never leave half a results file or half a model where the next
run (or the user) will read it. Every writer in ukmp goes through these helpers: the content is
written under a temporary name in the same folder (so the final rename stays on one file system),
then renamed into place. Temporaries carry the writer's process id (`output_guard.temporary_prefix`),
so a later run recognises a dead writer's leftovers and removes them.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ukmp.output_guard import remove_stale_temporaries, temporary_prefix


def _temporary_beside(path: Path) -> Path:
    """An empty temporary file beside ``path``, named so a later run can tell a dead writer's leftovers.

    It keeps ``path``'s suffix, so writers that choose a format by suffix (matplotlib) write the
    right one. Leftovers of killed writers of ``path`` are removed first.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    fd, tmp = tempfile.mkstemp(prefix=temporary_prefix(path), suffix=path.suffix, dir=path.parent)
    os.close(fd)
    return Path(tmp)


def _publish(tmp: Path, path: Path) -> None:
    os.chmod(tmp, 0o644)  # mkstemp makes the file private; results and models are for reading
    os.replace(tmp, path)


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary file name beside ``path``; it becomes ``path`` if the block completes."""
    path = Path(path)
    tmp = _temporary_beside(path)
    try:
        yield tmp
        _publish(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_if_drawn(path: str | os.PathLike, draw: Callable[[Path], bool]) -> bool:
    """Call ``draw(temporary)``; rename the temporary to ``path`` only if it returns True.

    For figures that need at least two points: nothing drawn leaves ``path`` as it was.
    """
    path = Path(path)
    tmp = _temporary_beside(path)
    try:
        drawn = bool(draw(tmp))
        if drawn:
            _publish(tmp, path)
        return drawn
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically; returns the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_json_atomic(path: str | os.PathLike, data: Any, *, indent: int = 1) -> Path:
    """Write ``data`` as JSON (one trailing newline) to ``path`` atomically; returns the path."""
    return write_text_atomic(path, json.dumps(data, indent=indent) + "\n")


def replace_folder(tmp: Path, out: Path) -> None:
    """Move the finished folder ``tmp`` to ``out``, replacing what is there with one rename.

    The old folder is first renamed aside and removed only after the new one is in place, so at
    every moment ``out`` is either the complete old folder or the complete new one.
    """
    os.chmod(tmp, 0o755)  # mkdtemp makes the folder private; a saved model must be readable
    if out.exists() or out.is_symlink():
        old = out.parent / f"{temporary_prefix(out, 'old')}{uuid.uuid4().hex[:8]}"
        os.replace(out, old)
        os.replace(tmp, out)
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink()
    else:
        os.replace(tmp, out)


@contextmanager
def atomic_folder(out: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder beside ``out``; it replaces ``out`` if the block completes."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(out)
    tmp = Path(tempfile.mkdtemp(prefix=temporary_prefix(out), dir=out.parent))
    try:
        yield tmp
        replace_folder(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
