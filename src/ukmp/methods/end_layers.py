"""The layers of a stack left dense at its two ends: LLM-Pruner's rule, which any method may also plan with.

LLM-Pruner prunes only layers 4..29 of LLaMA-7B's 32. We keep the same fractions of every stack
(vision, LM encoder, LM decoder, LM): the first ``floor(4/32 * depth)`` and last
``floor(2/32 * depth)`` layers stay dense, so on stacks of fewer than 16 layers nothing is left out.
LLM-Pruner applies it to its own scores (``--skip-layers``); ``--keep-end-layers`` applies it to
any method's plan (beyond the paper). The rule lives apart from both, so the prune path reads it
without naming a method.
"""

from __future__ import annotations

import math

from ukmp.groups import PrunableGroup

#: 'llm-pruner': LLM-Pruner's fractions; 'none': every layer may be pruned
END_LAYER_RULES = ("llm-pruner", "none")
#: LLaMA-7B in LLM-Pruner: layers [4, 30) of 32 are pruned.
SKIP_FIRST_FRACTION = 4 / 32
SKIP_LAST_FRACTION = 2 / 32


def end_layer_groups(groups: list[PrunableGroup], rule: str = "llm-pruner") -> list[str]:
    """Names of the groups in the first/last layers of their stack that ``rule`` leaves dense."""
    if rule == "none":
        return []
    depth: dict[str, int] = {}
    for g in groups:
        depth[g.component] = max(depth.get(g.component, 0), g.layer + 1)
    out = []
    for g in groups:
        d = depth[g.component]
        first = math.floor(SKIP_FIRST_FRACTION * d)
        last = math.floor(SKIP_LAST_FRACTION * d)
        if g.layer < first or g.layer >= d - last:
            out.append(g.name)
    return out
