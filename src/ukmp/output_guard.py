"""Where a command may write, checked before any work that costs minutes.

A pruning or recovery run can score for many minutes before it saves; finding only then that
`--out` is read-only, or that `--overwrite` would replace the user's own model, loses the work or,
worse, the model. So every command checks its output first, in this order:

1. `--out` is not an input, does not lie inside one and does not contain one (a dense model
   replaced by its pruned copy cannot be recovered from it);
2. an existing, non-empty `--out` is replaced only with `--overwrite`, and only when it looks like
   something ukmp wrote (it holds one of the command's marker files): `--overwrite` never deletes a
   folder of photos or a project checkout;
3. the nearest existing folder above `--out` accepts a new entry (probed by creating one).

Temporary folders of an atomic write carry the writer's process id (`.NAME.tmp-<pid>-...`), so a
run killed while saving leaves something the next run can recognise as stale and remove.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

from ukmp.errors import UserError

_TEMP_NAME = re.compile(r"^\.(?P<name>.+)\.(?:tmp|old)-(?P<pid>\d+)-[^/]*$")


def check_output(
    out: str | os.PathLike,
    *,
    overwrite: bool,
    markers: Sequence[str],
    inputs: Iterable[str | os.PathLike | None] = (),
    resume: bool = False,
) -> None:
    """Refuse an output folder that would lose the user's data or fail late; see the module docstring.

    ``markers``: file or folder names (glob patterns) of which one marks a folder this command wrote.
    ``inputs``: the paths the command reads (models, data); names that are not local paths are ignored.
    ``resume``: the folder is to be continued, so its existence is expected.
    """
    target = Path(out).expanduser()
    resolved = target.resolve()
    if target.is_file() or (target.exists() and not target.is_dir()):
        raise UserError(f"{target} is a file; give a folder for --out.")
    if Path.cwd().resolve().is_relative_to(resolved):
        raise UserError(
            f"--out {target} is the current folder or one above it, which ukmp cannot replace; name a new folder, "
            "e.g. --out pruned."
        )
    for given in inputs:
        if given is None or not Path(given).expanduser().exists():
            continue
        source = Path(given).expanduser().resolve()
        if resolved == source:
            raise UserError(
                f"--out {target} is the input model; choose another folder (ukmp never replaces its input)."
            )
        if source.is_relative_to(resolved):
            raise UserError(f"--out {target} contains the input model {given}; choose a folder that does not hold it.")
        if resolved.is_relative_to(source):
            raise UserError(f"--out {target} is inside the input model {given}; choose a folder outside it.")
    if target.is_dir() and any(target.iterdir()) and not resume:
        if not overwrite:
            raise UserError(f"{target} already exists; pass --overwrite to replace it.")
        if not any(any(target.glob(m)) for m in markers):
            raise UserError(
                f"{target} is not a ukmp output (it has no {' or '.join(markers)}), and --overwrite replaces only "
                "folders ukmp wrote; choose another --out or empty it yourself."
            )
    check_writable(target)


def check_writable(target: Path) -> None:
    """The nearest existing folder at or above ``target`` accepts a new entry, probed by making one."""
    probe_in = target if target.is_dir() else target.parent
    while not probe_in.exists() and probe_in != probe_in.parent:
        probe_in = probe_in.parent
    try:
        probe = tempfile.mkdtemp(prefix=".ukmp-write-probe-", dir=probe_in)
    except OSError as exc:
        raise UserError(f"cannot write to {target} ({exc.strerror or exc}); choose a writable --out.") from None
    os.rmdir(probe)


def temporary_prefix(final: Path, kind: str = "tmp") -> str:
    """The name prefix of a temporary sibling of ``final``: hidden, with this process's id."""
    return f".{final.name}.{kind}-{os.getpid()}-"


def remove_stale_temporaries(final: Path) -> list[Path]:
    """Remove the temporary siblings of ``final`` left by runs that were killed; returns what went."""
    removed = []
    parent = final.parent
    if not parent.is_dir():
        return removed
    for entry in parent.iterdir():
        match = _TEMP_NAME.match(entry.name)
        if match is None or match["name"] != final.name or _alive(int(match["pid"])):
            continue
        shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink(missing_ok=True)
        removed.append(entry)
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
