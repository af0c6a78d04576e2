"""The sub-phases of progressive distillation (Eq. 13, Table A), generated from the model's depths.

Table A, for EVA ViT-g (39 blocks) and FlanT5-XL (24 + 24 blocks), on the 595K pairs of CC595K:

    tau1  low_visual     VE 0,2,..,22                          MSE            20K
    tau1  high_visual    VE 0,2,..,38                          MSE            20K
    tau2  low_encoder    VE all + LE 1,3,..,11                 MSE            80K
    tau2  high_encoder   VE all + LE 1,3,..,23                 MSE            40K
    tau2  low_decoder    VE + LE all + LD 1,3,..,11            MSE            80K
    tau2  high_decoder   VE + LE + LD 1,3,..,23                MSE            80K
    tau3  top            none                                  task + KL     275K

How the pattern is read so that it applies to any depth:

- *Supervised blocks* are every other block counted back from the last one: n-1, n-3, ... For 39
  ViT blocks these are the even blocks 0..38, for 24 T5 blocks the odd blocks 1..23, exactly the
  code's sets; for a 1-block stack it is that block.
- The *low* sub-phase supervises the first part of those blocks: 12 of the 20 vision blocks
  (fraction 0.6, up to block 22 of 39) and 6 of the 12 language blocks (fraction 0.5). The fractions
  are options; the defaults are Table A's.
- Data volumes are Table A's shares of the recovery set (20/595, 20/595, ...); the top phase takes
  what is left after rounding down the others.
- A decoder-only LM (component ``lm``) gets the same scheme without the encoder phases: its blocks
  play the decoder's part (β = 1e8, volumes 80K + 80K). A model without a vision part skips tau1.

Feature weights β: 1e6 vision, 1e9 LM encoder, 1e8 LM decoder (appendix).

Schedules for Table B's LPD ablations:

- ``lpd``             the seven sub-phases above (MSE + KL + Task over the whole run);
- ``kl-task``         one phase over the whole set with task + KL (no feature supervision);
- ``task``            one phase with the task loss only;
- ``no-progressive``  one phase with all losses at once: MSE on every supervised block + KL + task.

Plain LoRA (no recall branches) is an adapter option, independent of the schedule; the baselines'
recovery is plain LoRA with the ``task`` schedule.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ukmp.components import RECOVERY_ROLES, component, forward_order
from ukmp.errors import UserError

SCHEDULES = ("lpd", "kl-task", "task", "no-progressive")
LOSSES = ("mse", "kl", "task")

#: Table A data volumes in thousands of CC595K pairs (595K in all).
TABLE_A_VOLUMES = {
    "low_visual": 20,
    "high_visual": 20,
    "low_encoder": 80,
    "high_encoder": 40,
    "low_decoder": 80,
    "high_decoder": 80,
    "top": 275,
}
#: per recovery role (``ukmp.components``): the feature weight β and the share of blocks the low sub-phase supervises
ROLE_BETAS = {"visual": 1e6, "encoder": 1e9, "decoder": 1e8}
ROLE_LOWER_FRACTIONS = {"visual": 0.6, "encoder": 0.5, "decoder": 0.5}
#: per role: (the stage of its two sub-phases, the sub-phases' name suffix)
ROLE_STAGES = {"visual": "tau1", "encoder": "tau2", "decoder": "tau2"}


def feature_weights() -> dict[str, float]:
    """β per supervised component, from its recovery role (1e6 vision, 1e9 LM encoder, 1e8 LM decoder)."""
    return {c: ROLE_BETAS[role] for c, role in _roles().items()}


def default_lower_fractions() -> dict[str, float]:
    """Per supervised component, the share of its supervised blocks the low sub-phase reads."""
    return {c: ROLE_LOWER_FRACTIONS[role] for c, role in _roles().items()}


def _roles() -> dict[str, str]:
    return {name: role for name in forward_order() if (role := component(name).recovery_role) is not None}


@dataclass(frozen=True)
class Phase:
    """One sub-phase: which block outputs are supervised, with which losses, on what share of data."""

    name: str
    stage: str
    supervised: dict[str, tuple[int, ...]] = field(default_factory=dict)
    losses: tuple[str, ...] = ("mse",)
    volume: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "stage": self.stage,
            "supervised": {k: list(v) for k, v in self.supervised.items()},
            "losses": list(self.losses),
            "volume": self.volume,
        }

    @property
    def needs_logits(self) -> bool:
        return "kl" in self.losses or "task" in self.losses


def supervised_blocks(depth: int) -> tuple[int, ...]:
    """Every other block, counted back from the last: (..., n-3, n-1), ascending."""
    return tuple(sorted(range(depth - 1, -1, -2)))


def lower_part(blocks: tuple[int, ...], fraction: float) -> tuple[int, ...]:
    """The first ``round(fraction * len)`` of ``blocks`` (at least one)."""
    count = max(1, int(fraction * len(blocks) + 0.5))
    return blocks[:count]


def lpd_phases(
    depths: dict[str, int],
    *,
    lower_fractions: dict[str, float] | None = None,
) -> list[Phase]:
    """Table A's sub-phases for a model whose prunable stacks have the given depths.

    ``depths`` maps components (``vision``, ``lm_encoder``, ``lm_decoder`` or ``lm``) to block counts.
    """
    fractions = {**default_lower_fractions(), **(lower_fractions or {})}
    roles = _roles()
    unknown = set(depths) - set(roles)
    if unknown:
        raise UserError(f"progressive distillation cannot supervise component {sorted(unknown)[0]!r}.")
    sup = {c: supervised_blocks(d) for c, d in depths.items() if d > 0}
    phases: list[Phase] = []
    done: dict[str, tuple[int, ...]] = {}

    def add(name: str, stage: str, component: str) -> None:
        low = name.startswith("low_")
        blocks = lower_part(sup[component], fractions[component]) if low else sup[component]
        phases.append(Phase(name, stage, {**done, component: blocks}, ("mse",), TABLE_A_VOLUMES[name]))
        if not low:
            done[component] = blocks

    for role in RECOVERY_ROLES:  # visual, then encoder, then decoder: the paper's progression
        for name in (c for c in forward_order() if c in sup and roles[c] == role):
            add(f"low_{role}", ROLE_STAGES[role], name)
            add(f"high_{role}", ROLE_STAGES[role], name)
    phases.append(Phase("top", "tau3", {}, ("task", "kl"), TABLE_A_VOLUMES["top"]))
    return phases


def make_schedule(name: str, depths: dict[str, int], **kwargs: Any) -> list[Phase]:
    """The sub-phases of schedule ``name`` (see the module docstring)."""
    if name == "lpd":
        return lpd_phases(depths, **kwargs)
    if name == "kl-task":
        return [Phase("all", "single", {}, ("task", "kl"), 1.0)]
    if name == "task":
        return [Phase("all", "single", {}, ("task",), 1.0)]
    if name == "no-progressive":
        every = {c: supervised_blocks(d) for c, d in depths.items() if d > 0 and c in _roles()}
        return [Phase("all", "single", every, ("mse", "task", "kl"), 1.0)]
    raise UserError(f"unknown schedule {name!r}; choose one of {', '.join(SCHEDULES)}.")


def allocate_samples(phases: list[Phase], total: int) -> list[int]:
    """Split ``total`` samples over the phases in proportion to their volumes.

    Every phase but the last gets the rounded-down share; the last takes the rest (for 595,000
    samples this gives exactly Table A's 20K, 20K, 80K, 40K, 80K, 80K, 275K). When there are at
    least as many samples as phases, no phase is left empty (the last one gives up samples).
    """
    if total < 1:
        raise UserError("the recovery set is empty; give more data or a larger --max-samples.")
    weight = sum(p.volume for p in phases)
    counts = [int(total * p.volume // weight) for p in phases[:-1]]
    if total >= len(phases):
        counts = [max(1, c) for c in counts]
    counts.append(total - sum(counts))
    if counts[-1] < 1 and total >= len(phases):
        raise AssertionError("sample allocation left the last phase empty")
    return counts
