"""UKMP's presets: ukmp's own defaults, and the paper's exact settings one flag away (`--preset paper`).

The two differ only where our measurements say the paper's choice does not hold on the models we
can test; `results/README.md` has the figures and `README.md` the reasoning. Everything else (the
first-order Taylor term, entropy injection by cosine histograms, mean normalisation recomputed at every
step) is the paper's in both.
"""

from __future__ import annotations

from dataclasses import dataclass

from ukmp.methods.token_selection import DEFAULT_THRESHOLD, PAPER_THRESHOLD


@dataclass(frozen=True)
class Preset:
    """The UKMI and schedule settings a preset stands for."""

    name: str
    threshold: float | str
    norm: str = "mean"
    scope: str = "modality"
    iterative: bool = True
    summary: str = ""


PRESETS = {
    # No token selection (T = 1.0). With the paper's T = 0.4 a model that is sure of most calibration
    # tokens backpropagates little more than one token per sample (12% of them on the shipped model),
    # and the scores follow the calibration draw: at 50% UKMP's VQA accuracy spanned 26-57% over five
    # draws, against 64-72% without selection (results/README.md, "Evidence at 50%").
    # The schedule's normaliser pools a whole modality (the paper) or each kind of unit apart, whichever
    # pruned model has the lower calibration loss: one mean collapsed SmolLM2 on one draw of eight, per-kind
    # means lose 13 VQA points on the shipped model at 50%, and the loss picked the better one in 27 of 32
    # paired cases (results/norm-scope/).
    "ukmp": Preset(
        "ukmp",
        DEFAULT_THRESHOLD,
        scope="auto",
        summary="ukmp's defaults: no token selection (T = 1.0); normaliser scope chosen by calibration loss",
    ),
    "paper": Preset("paper", PAPER_THRESHOLD, summary="the paper's exact settings (T = 0.4, one mean per modality)"),
}
DEFAULT_PRESET = "ukmp"
