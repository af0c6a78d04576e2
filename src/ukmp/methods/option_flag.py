"""How a method's options dataclass declares the command-line flag of a field (`option_flag`).

A leaf module, imported by the options classes themselves: the commands' side of the flags
(`ukmp.methods.flags`) reads the registry, which imports the methods, so the declaration must live
apart from it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any


def option_flag(
    default: Any,
    flag: str,
    help: str,
    *,
    choices: tuple[str, ...] | None = None,
    parse: Callable[[str], Any] | None = None,
    default_text: str | None = None,
) -> Any:
    """A dataclass field that the user sets with ``flag`` (a bool field is a switch).

    ``parse`` turns the typed text into the field's value and raises ValueError with a sentence;
    ``default_text`` is what ``--help`` says the default is, where the dataclass default is not it.
    """
    meta = {"flag": flag, "help": help, "choices": choices, "parse": parse, "default_text": default_text}
    return dataclasses.field(default=default, metadata=meta)


def flagged_fields(options_type: type) -> dict[str, str]:
    """Field name -> flag, for the fields of ``options_type`` a user may set, in declaration order."""
    return {f.name: f.metadata["flag"] for f in dataclasses.fields(options_type) if "flag" in f.metadata}


def flag_dest(flag: str) -> str:
    """The attribute argparse stores ``flag`` under: ``--entropy-on-vision`` -> ``entropy_on_vision``."""
    return flag.lstrip("-").replace("-", "_")
