"""A method's command-line flags, declared beside its options: one place, read by every command.

Why: a method's options used to be typed out again in `ukmp prune` and `ukmp compare`, so a new
option meant editing three files and the two commands drifted apart (compare's ``--taylor`` set
LLM-Pruner's term only, prune's both). Now an options dataclass marks each field a user may set with
`option_flag(...)`; `add_method_flags` gives a command one argument group per options class, and
`method_options_from` builds every method's options back from the parsed flags.

Every method flag is parsed without a default (``argparse.SUPPRESS``), so a command can tell which
ones the user typed (a flag that decides scores cannot apply to saved scores); the ones not typed
take the caller's defaults (a preset's threshold) or the dataclass's.

A flag two options classes share (``--taylor``: UKMP's and LLM-Pruner's Taylor term) is declared by
the first and read by both, so one typed value sets every method that takes it.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import TYPE_CHECKING, Any

from ukmp.errors import UserError
from ukmp.methods.option_flag import flag_dest, flagged_fields

if TYPE_CHECKING:
    from ukmp.methods.base import MethodOptions


def option_types() -> dict[str, type]:
    """Every registered method's options class by its ``options_name``, in the registry's order (UKMP first)."""
    from ukmp.methods.registry import registered_scorers  # here: the registry imports the methods, which import this

    out: dict[str, type] = {}
    for cls in registered_scorers():
        if cls.options_name is not None and cls.options_type is not None:
            out.setdefault(cls.options_name, cls.options_type)
    return out


def method_flag_dests() -> tuple[str, ...]:
    """Every method flag's argparse attribute, each once."""
    flags = (flag for options_type in option_types().values() for flag in flagged_fields(options_type).values())
    dests = (flag_dest(flag) for flag in flags)
    return tuple(dict.fromkeys(dests))


def add_method_flags(parser: argparse.ArgumentParser) -> None:
    """One argument group per registered options class, with the flags its fields declare."""
    declared = set(parser._option_string_actions)
    for options_type in option_types().values():
        fields = [f for f in dataclasses.fields(options_type) if "flag" in f.metadata]
        fields = [f for f in fields if f.metadata["flag"] not in declared]
        if not fields:
            continue
        group = parser.add_argument_group(options_type.flag_group)
        for f in fields:
            meta = f.metadata
            shown = meta["default_text"] or str(f.default)
            kwargs: dict[str, Any] = {"default": argparse.SUPPRESS, "help": f"{meta['help']} (default: {shown})"}
            if isinstance(f.default, bool):
                kwargs.update(action="store_true", help=meta["help"])
            elif meta["choices"]:
                kwargs["choices"] = meta["choices"]
            group.add_argument(meta["flag"], **kwargs)
            declared.add(meta["flag"])


def method_options_from(args: argparse.Namespace, defaults: dict[str, dict[str, Any]] | None = None) -> MethodOptions:
    """Every method's options from the parsed flags; a flag not typed takes ``defaults[name][field]``, else the field's.

    A typed value that does not parse is one sentence (`UserError`).
    """
    from ukmp.methods.base import MethodOptions

    defaults = defaults or {}
    built = {}
    for name, options_type in option_types().items():
        values = dict(defaults.get(name, {}))
        for f in dataclasses.fields(options_type):
            flag = f.metadata.get("flag")
            if flag is None or flag_dest(flag) not in args:
                continue
            value = getattr(args, flag_dest(flag))
            if f.metadata["parse"] is not None:
                try:
                    value = f.metadata["parse"](value)
                except ValueError as exc:
                    raise UserError(str(exc)) from None
            values[f.name] = value
        built[name] = options_type(**values)
    options = MethodOptions(**built)
    options.validate()
    return options
