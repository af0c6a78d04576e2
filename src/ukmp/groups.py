"""The shared vocabulary: prunable groups of coupled weights, and the plan that says what stays.

A *group* is one attention block (its units are heads, or key/value groups under GQA) or one MLP
(its units are hidden channels). Removing unit ``u`` of a group removes, for every *producer*
Linear, the output rows that compute it (and their bias entries), and for every *consumer* Linear
the input columns that read it. Adapters create groups; scorers read weights through them;
surgery slices through them; the planner only sees their names, sizes and costs.

Unit indices always refer to the ORIGINAL (dense) model, so a plan stays meaningful after the
model has been sliced, and a manifest can be checked against a base model.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass(frozen=True)
class Member:
    """One Linear touched by a group.

    ``dim`` 0 removes output rows (and bias entries), 1 removes input columns. Unit ``u`` owns
    indices ``[offset + u*width, offset + (u+1)*width)`` along ``dim``. ``offset`` lets several
    members share one fused Linear (BLIP-2's ``qkv``: blocks at 0, E and 2E). ``width`` differs
    between members of one GQA group (query rows per unit vs key/value rows per unit).
    """

    module: str
    dim: int
    width: int
    offset: int = 0

    def indices(self, units: torch.Tensor | list[int]) -> torch.Tensor:
        """Row (dim 0) or column (dim 1) indices owned by ``units``, in unit order."""
        units = torch.as_tensor(units, dtype=torch.long).reshape(-1, 1)
        return (self.offset + units * self.width + torch.arange(self.width)).reshape(-1)


@dataclass(frozen=True)
class PrunableGroup:
    """A set of coupled weight slices that must be removed together, unit by unit.

    ``owner`` is the module whose attributes (head counts, inner widths) surgery must fix;
    ``params_per_unit`` is exact and includes the bias entries of producer rows (consumer
    biases live in the hidden dimension and are never removed). ``queries_per_unit`` is the
    number of query heads a unit carries (1, except Llama GQA where a unit is one key/value
    head plus its ``num_key_value_groups`` query heads).
    """

    name: str
    component: str
    modality: str
    kind: str
    layer: int
    owner: str
    producers: tuple[Member, ...]
    consumers: tuple[Member, ...]
    unit_size: int
    num_units: int
    params_per_unit: int
    queries_per_unit: int = 1
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def members(self) -> tuple[Member, ...]:
        return self.producers + self.consumers

    @property
    def total_params(self) -> int:
        return self.params_per_unit * self.num_units


def linear_unit_params(module: torch.nn.Linear, member: Member) -> int:
    """Exact parameters one unit owns in ``module`` through ``member`` (weights + own bias)."""
    if member.dim == 0:
        bias = member.width if module.bias is not None else 0
        return member.width * module.in_features + bias
    return member.width * module.out_features


def validate_kept(group: PrunableGroup, kept: list[int]) -> list[int]:
    """Sorted, unique, in range, and at least one unit: a group never disappears entirely.

    Removing every head of a block would leave a zero-width Linear that several kernels reject
    and that no later step could recover from; depth pruning is a different method.
    """
    from ukmp.errors import UserError

    clean = sorted({int(u) for u in kept})
    if not clean:
        raise UserError(f"the plan keeps no unit of {group.name}; every group must keep at least one unit.")
    if clean[0] < 0 or clean[-1] >= group.num_units:
        raise UserError(
            f"the plan keeps unit {clean[-1] if clean[-1] >= group.num_units else clean[0]} of {group.name}, "
            f"which has units 0..{group.num_units - 1}."
        )
    return clean


@dataclass
class PruningPlan:
    """Group name -> sorted kept unit indices (of the original model), plus original unit counts.

    Groups absent from ``kept`` are untouched. ``num_units`` records the dense size so a plan can
    be validated against a model (and a manifest against its weights) without the base model.
    """

    kept: dict[str, list[int]] = field(default_factory=dict)
    num_units: dict[str, int] = field(default_factory=dict)

    @classmethod
    def full(cls, groups: list[PrunableGroup]) -> PruningPlan:
        """A plan that keeps everything (useful as a starting point)."""
        return cls(
            kept={g.name: list(range(g.num_units)) for g in groups},
            num_units={g.name: g.num_units for g in groups},
        )

    def keep(self, group: PrunableGroup, kept: list[int]) -> None:
        self.kept[group.name] = validate_kept(group, kept)
        self.num_units[group.name] = group.num_units

    def removed(self, group: PrunableGroup) -> list[int]:
        kept = set(self.kept.get(group.name, range(group.num_units)))
        return [u for u in range(group.num_units) if u not in kept]

    def is_pruned(self, name: str) -> bool:
        return name in self.kept and len(self.kept[name]) < self.num_units.get(name, 0)

    def to_dict(self) -> dict[str, Any]:
        return {name: {"num_units": self.num_units[name], "kept": list(self.kept[name])} for name in sorted(self.kept)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PruningPlan:
        plan = cls()
        for name, entry in data.items():
            plan.kept[name] = [int(u) for u in entry["kept"]]
            plan.num_units[name] = int(entry["num_units"])
        return plan

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> PruningPlan:
        return cls.from_dict(json.loads(text))
