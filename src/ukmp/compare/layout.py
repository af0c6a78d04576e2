"""Where each piece of a `ukmp compare` run goes in its folder, and the check that OUT may be written.

Why: the run, the seeds aggregate and the scripts that read a run folder must agree on these names.
"""

from __future__ import annotations

from pathlib import Path

from ukmp.compare.config import CompareConfig
from ukmp.loading import resolve_model_ref
from ukmp.methods.registry import VARIANT_SEPARATOR
from ukmp.output_guard import check_output

#: what a compare run folder holds (one of them marks a folder `--overwrite` may replace)
COMPARE_MARKERS = ("results.json", "evals", "scores", "artifacts", "seed-*")
#: where a recovery of OUT/recovered/<name>/ records the settings that decided it
RECOVERY_SETTINGS = "compare_settings.json"
PLOT = "quality_vs_ratio.png"


def artifact_name(method: str, ratio: float) -> str:
    return f"{method.replace(VARIANT_SEPARATOR, '-')}-{round(ratio * 100):02d}"


def seed_folder(out: str | Path, seed: int) -> Path:
    return Path(out) / f"seed-{seed}"


def check_compare_output(config: CompareConfig, *, overwrite: bool) -> None:
    """OUT is neither an input nor, under --overwrite, a folder compare did not write (it is reused otherwise)."""
    inputs = (resolve_model_ref(config.model), config.calib, config.eval_data, *config.eval_texts)
    check_output(config.out, overwrite=overwrite, markers=COMPARE_MARKERS, inputs=inputs, resume=not overwrite)
