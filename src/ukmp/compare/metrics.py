"""Which way a compared metric improves: accuracies and caption scores up, perplexity down.

Why one place: the best method per ratio, the paired orderings over seeds and their signs all turn
on it, and a perplexity ranked by its maximum would crown the worst model.
"""

from __future__ import annotations

from pathlib import Path

PERPLEXITY = "perplexity"


def perplexity_metric(held_out: str | Path) -> str:
    """The metric a held-out text's perplexity is reported under: ``perplexity (<file name without suffix>)``."""
    return f"{PERPLEXITY} ({Path(held_out).stem})"


def lower_is_better(metric: str) -> bool:
    return metric.startswith(PERPLEXITY)


def gain(metric: str, value: float, other: float) -> float:
    """How much better ``value`` is than ``other`` on ``metric`` (positive: better), whichever way it improves."""
    return other - value if lower_is_better(metric) else value - other


def better_than(metric: str) -> str:
    """How an ordering reads: ``a > b`` (higher is better) or ``a < b`` (lower is better)."""
    return "<" if lower_is_better(metric) else ">"
