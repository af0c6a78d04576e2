"""Learning-rate schedules of the shipped recipe's stages, in one place.

Both are a cosine decay to `min_ratio * peak` after a linear warm-up; they differ in how the two
are joined, and each stage keeps the one it was trained with so its log replays exactly.
"""

from __future__ import annotations

import math


def warmup_then_cosine(step: int, steps: int, peak: float, warmup: int, min_ratio: float) -> float:
    """Linear warm-up for `warmup` steps, then a cosine over the remaining steps (stage 2)."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return peak * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def ramped_cosine(step: int, steps: int, peak: float, warmup: int, min_ratio: float) -> float:
    """A cosine over all `steps`, scaled by a linear ramp over the first `warmup` steps (stages 1 and 3)."""
    ramp = min(1.0, (step + 1) / warmup)
    return peak * ramp * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * step / steps)))
