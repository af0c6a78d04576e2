"""`--help` that shows defaults where they inform, and not for on/off switches.

argparse's `ArgumentDefaultsHelpFormatter` prints "(default: True)" after `--no-masked`, which
reads as if the switch were on by default; a switch's help text says what it does instead.
"""

from __future__ import annotations

import argparse


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Defaults for options that take a value; none for flags that store a constant."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.nargs == 0:
            return action.help
        return super()._get_help_string(action)
