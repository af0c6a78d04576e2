"""The `ukmp` command line.

Each sub-command lives in its own module under `ukmp.commands` and exposes
`register(subparsers)`; this file only wires them together and turns `UserError` into one
sentence on stderr and a non-zero exit.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from ukmp.errors import UserError
from ukmp.version import __version__

# Modules under ukmp.commands, in the order they appear in `ukmp --help`.
COMMAND_MODULES = [
    "demo",
    "data",
    "zoo",
    "inspect",
    "prune",
    "compare",
    "recover",
    "evaluate",
    "bench",
    "report",
]


#: what an interrupted command leaves behind (every output is written to a temporary and renamed)
AFTER_INTERRUPT = {
    None: "no output was half-written.",
    "recover": "no output was half-written; continue from the last checkpoint with --resume.",
    "compare": "what was finished is kept; run the same command again to continue.",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ukmp",
        description="Structured pruning and recovery of vision-language models (UKMP and baselines).",
    )
    parser.add_argument("--version", action="version", version=f"ukmp {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        # every listed command is ours: one that fails to import is a bug to see, not a command to drop
        importlib.import_module(f"ukmp.commands.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        result = args.func(args)
    except UserError as exc:
        print(f"ukmp {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            f"ukmp {args.command}: interrupted; {AFTER_INTERRUPT.get(args.command, AFTER_INTERRUPT[None])}",
            file=sys.stderr,
        )
        return 130
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
