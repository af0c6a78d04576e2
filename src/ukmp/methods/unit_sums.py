"""Sum an element-wise weight salience over the slices a unit owns.

Every baseline ends the same way: some per-weight quantity (|w*g|, |w|*||x||, w^2*var(x), w*g)
is summed over the producer rows and/or consumer columns of each unit. Doing it in one place
keeps the index arithmetic (offsets, widths, fused qkv) identical to what surgery removes.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ukmp.groups import Member, PrunableGroup

SIDES = ("all", "producers", "consumers")


def member_unit_sums(member: Member, values: torch.Tensor, num_units: int) -> torch.Tensor:
    """Per-unit sum (float64) of ``values`` (shaped like the member's weight) over its slices."""
    index = member.indices(torch.arange(num_units)).to(values.device)
    per_index = values.index_select(member.dim, index).sum(dim=1 - member.dim).to(torch.float64).cpu()
    return per_index.reshape(num_units, member.width).sum(dim=1)


def unit_sums(
    group: PrunableGroup,
    values_of: Callable[[str], torch.Tensor],
    side: str = "all",
) -> torch.Tensor:
    """Sum ``values_of(module name)`` per unit over the members on ``side`` of the group."""
    if side not in SIDES:
        raise ValueError(f"side must be one of {SIDES}")
    members = {"all": group.members, "producers": group.producers, "consumers": group.consumers}[side]
    total = torch.zeros(group.num_units, dtype=torch.float64)
    for member in members:
        total += member_unit_sums(member, values_of(member.module), group.num_units)
    return total
