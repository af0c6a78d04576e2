"""What a cached piece of a `ukmp compare` run records, read back for the reuse check (`ukmp.provenance`).

Why: a piece written before its settings were recorded keeps being reused for the settings its
files do show, so committed runs stay reusable as the record grows.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ukmp.compare.layout import RECOVERY_SETTINGS
from ukmp.provenance import Settings
from ukmp.recovery.distill import MERGED_DIR

#: the tasks whose every output an evaluation keeps in OUT/evals/ (retrieval has none to keep)
KEPT_OUTPUTS = ("vqa", "gqa", "caption")


def without_predictions(result: dict[str, Any]) -> dict[str, Any]:
    """`result` without its per-question answers: they stay in OUT/evals/, out of the compare table."""
    tasks = {task: {k: v for k, v in out.items() if k != "predictions"} for task, out in result["tasks"].items()}
    return {**result, "tasks": tasks}


def recorded_eval_settings(cached: dict[str, Any]) -> Settings:
    """The settings a cached evaluation records; for one written before they were, those its limits show."""
    if "settings" in cached:
        return cached["settings"]
    limits = cached.get("limits") or {}
    out: Settings = {"--tasks": list(cached.get("tasks") or {})}
    for task, limit in limits.items():
        out["--caption-limit" if task == "caption" else "--limit"] = "all" if limit is None else limit
    return out


def recorded_recovery_settings(folder: Path) -> Settings:
    """The settings a cached recovery records; for one written before they were, those its merged manifest shows."""
    record = folder / RECOVERY_SETTINGS
    if record.is_file():
        return json.loads(record.read_text())
    manifest = json.loads((folder / MERGED_DIR / "pruning.json").read_text())
    recovery = manifest.get("recovery") or {}
    out = dict((manifest.get("extra") or {}).get("settings") or {})
    if "plain_lora" in recovery:
        out["--recover"] = "lora" if recovery["plain_lora"] else "lpd"
    if "batch_size" in recovery:
        out["--recover-batch-size"] = recovery["batch_size"]
    for key, flag in (("lr", "--recover-lr"), ("warmup_steps", "--recover-warmup-steps")):
        if key in recovery:
            out[flag] = recovery[key]
    return out
