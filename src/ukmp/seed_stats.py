"""Figures over several seeds: a mean with its spread, and orderings that say when they are noise.

One calibration draw can flip a ranking of pruning methods (the scores rest on a few hundred
samples), so every comparison that claims an order runs several seeds and reports, per cell, the
mean, the min-max range and a 95% t-interval of the mean. Two methods are compared *paired*: the
same seed gives both the same calibration samples, so the per-seed differences cancel the part of
the noise they share. An ordering "holds" when the 95% interval of the mean difference lies above
zero, "does not hold" when it lies below, and is "within noise" otherwise (always so for one seed).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from scipy import stats as scipy_stats

HOLDS = "holds"
DOES_NOT_HOLD = "does not hold"
WITHIN_NOISE = "within noise"


@dataclass(frozen=True)
class Spread:
    """Mean, min, max, sample standard deviation and 95% t-interval half-width of n values."""

    n: int
    mean: float
    min: float
    max: float
    std: float
    ci95: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)

    def text(self, digits: int = 1) -> str:
        """'57.1' for one value, '57.1 [52.0–61.3]' (mean [min–max]) for several."""
        if self.n == 1:
            return f"{self.mean:.{digits}f}"
        return f"{self.mean:.{digits}f} [{self.min:.{digits}f}–{self.max:.{digits}f}]"


def t_half_width(std: float, n: int) -> float:
    """Half-width of the two-sided 95% t-interval of a mean of n values (inf for n < 2)."""
    if n < 2:
        return math.inf
    return float(scipy_stats.t.ppf(0.975, n - 1)) * std / math.sqrt(n)


def spread(values: Sequence[float]) -> Spread:
    """The `Spread` of `values` (at least one)."""
    if not values:
        raise ValueError("spread of no values")
    n = len(values)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return Spread(n, mean, min(values), max(values), std, t_half_width(std, n))


def paired_ordering(better: Sequence[float], worse: Sequence[float]) -> tuple[str, Spread]:
    """Does `better` beat `worse`? Paired by position (seed); returns the verdict and the differences' spread."""
    if len(better) != len(worse):
        raise ValueError(f"paired values need equal lengths, got {len(better)} and {len(worse)}")
    diff = spread([a - b for a, b in zip(better, worse)])
    if diff.mean - diff.ci95 > 0:
        return HOLDS, diff
    if diff.mean + diff.ci95 < 0:
        return DOES_NOT_HOLD, diff
    return WITHIN_NOISE, diff
