"""An import error in ukmp's own code is a bug: it must surface, never turn into a quietly missing feature."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ukmp.cli import COMMAND_MODULES, build_parser


def test_a_command_module_that_fails_to_import_is_not_skipped(monkeypatch) -> None:
    # None in sys.modules makes the import fail with ModuleNotFoundError naming the module itself,
    # the case the parser used to skip as "not built yet" (`ukmp report` then silently did not exist)
    monkeypatch.setitem(sys.modules, "ukmp.commands.report", None)
    with pytest.raises(ImportError, match="ukmp.commands.report"):
        build_parser()


def test_every_command_is_registered() -> None:
    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    assert list(commands) == COMMAND_MODULES


def test_a_zoo_that_fails_to_import_is_not_silently_bypassed() -> None:
    # before: an ImportError in ukmp.zoo made every zoo name resolve to itself, and the failure surfaced
    # later as "does not exist locally and could not be fetched from the Hub"
    code = (
        "import sys; sys.modules['ukmp.zoo'] = None\n"
        "from ukmp.loading import resolve_model_ref\n"
        "print(resolve_model_ref('shapes-blip2-t5'))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode != 0 and not done.stdout
    assert "ModuleNotFoundError" in done.stderr and "ukmp.zoo" in done.stderr
