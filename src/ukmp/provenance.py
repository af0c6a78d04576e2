"""The settings that decided a saved result, recorded with it, and the one check before it is reused.

Why: `ukmp compare` caches scores, artifacts, evaluations and recoveries in its run folder by file
name, and `ukmp prune --scores` re-plans scores saved earlier; both reuse a result that may have been
made with other flags, which would otherwise be mixed silently with the ones asked for now. So each
result records the settings that decided it, keyed by the flag a user sets each with
(``{"--num-samples": 8, "--score-dtype": "float32"}``), and a reuse compares them with the settings
asked for now: a mismatch is one sentence naming the flag, both values and the fix.

Records chain: an artifact's settings include those of the scores it was planned from, an
evaluation's those of the model it evaluated, so a setting that changed anywhere upstream shows.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ukmp.data.index import portable_path
from ukmp.errors import UserError

Settings = dict[str, Any]

#: the model a result was computed from, by the checksum of its weights (two models of one architecture
#: have scores of the same shapes, so nothing else would tell them apart)
MODEL = "MODEL (weights sha256)"
#: what `ukmp compare` says to do about a cached result that another setting made
COMPARE_FIX = "pass --overwrite to start afresh, or another --out"


def as_recorded(settings: Mapping[str, Any]) -> Settings:
    """``settings`` as they read back from JSON (tuples become lists), so that a fresh ask compares equal."""
    return json.loads(json.dumps(dict(settings)))


def data_key(data: Any) -> str:
    """A data folder or file as recorded: portable under the data cache, else absolute (``./d`` and ``d`` agree)."""
    text = str(data)
    if text.startswith("$UKMP_CACHE"):
        return text
    path = Path(text).expanduser()
    return portable_path(path.resolve()) if path.exists() else text


def calibration_settings(record: Mapping[str, Any]) -> Settings:
    """The settings a calibration record (``ScoringInputs.calibration_record``) stands for.

    The batch size is left out: it does not decide the scores, only how many samples run at once.
    """
    out = {
        "--calib": data_key(record["data"]),
        "--calib-split": record["split"],
        "--num-samples": record["num_samples"],
        "--seed": record["seed"],
    }
    if "seq_len" in record:
        out["--seq-len"] = record["seq_len"]
    return out


def first_mismatch(recorded: Mapping[str, Any], asked: Mapping[str, Any]) -> tuple[str, Any, Any] | None:
    """(flag, recorded value, asked value) of the first asked setting the record holds otherwise, or None.

    A setting the record does not hold is not compared: a result written before its setting was
    recorded keeps being reused for the settings it does record.
    """
    asked = as_recorded(asked)
    for flag, value in asked.items():
        if flag in recorded and recorded[flag] != value:
            return flag, recorded[flag], value
    return None


def check_reusable(where: str | Path, recorded: Mapping[str, Any], asked: Mapping[str, Any], fix: str) -> None:
    """Refuse to reuse the result at ``where`` when a setting it records differs from the one asked for."""
    found = first_mismatch(recorded, asked)
    if found is not None:
        flag, was, now = found
        raise UserError(f"{where} was made with {flag} {shown(was)}, but this run asks for {flag} {shown(now)}; {fix}.")


def shown(value: Any) -> str:
    """A setting as a user would type it: lists comma-separated, a checksum shortened."""
    if isinstance(value, list):
        return ",".join(shown(v) for v in value)
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value):
        return value[:12] + "…"
    return "none" if value is None else str(value)
