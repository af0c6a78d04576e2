"""The components ukmp names (a vision tower, a Q-Former, a language model's stacks), in one table.

Why one table: a component's name is read in several places — its modality (whose mean normalises
its scores in UKMP's schedule), which of LPD's phases supervises it in recovery, where it sits in
the forward (recovery stops the forward after the last supervised block), and its title in bench
and report tables. They used to be four closed lists. An adapter whose family brings a component of
its own (an audio tower, say) registers it here once (``register_component``) and every command
knows it.

The table lists components in forward order. Besides the prunable stacks it holds the parameter
buckets of the accounting (``projection``, ``lm_embeddings``, ``lm_head``), which have no modality:
nothing in them is pruned.
"""

from __future__ import annotations

from dataclasses import dataclass

#: LPD's three supervision roles (the paper's visual, encoder and decoder sub-phases)
RECOVERY_ROLES = ("visual", "encoder", "decoder")


@dataclass(frozen=True)
class Component:
    """A named part of a model, with what each command needs to know about it."""

    name: str
    title: str
    #: "vision" or "language" for a prunable stack; None for a bucket nothing is pruned in
    modality: str | None = None
    #: which of LPD's sub-phases supervises its blocks' outputs (one of ``RECOVERY_ROLES``), or None
    recovery_role: str | None = None


_TABLE: list[Component] = [
    Component("vision", "Vision encoder", "vision", "visual"),
    Component("qformer", "Q-Former", "vision"),
    Component("projection", "Projection"),
    Component("lm_encoder", "LM encoder", "language", "encoder"),
    Component("lm_decoder", "LM decoder", "language", "decoder"),
    Component("lm", "Language model", "language", "decoder"),
    Component("lm_embeddings", "LM embeddings"),
    Component("lm_head", "LM head"),
]


def register_component(component: Component, *, before: str | None = None) -> Component:
    """Add ``component`` to the table (before ``before`` in forward order, else last); idempotent."""
    if component.modality not in (None, "vision", "language"):
        raise ValueError(f"a component's modality is 'vision', 'language' or None, got {component.modality!r}")
    if component.recovery_role not in (None, *RECOVERY_ROLES):
        raise ValueError(f"a recovery role is one of {RECOVERY_ROLES} or None, got {component.recovery_role!r}")
    known = {c.name: c for c in _TABLE}
    if component.name in known:
        if known[component.name] != component:
            raise ValueError(f"a component named {component.name!r} is already registered differently")
        return component
    names = [c.name for c in _TABLE]
    _TABLE.insert(names.index(before) if before in names else len(_TABLE), component)
    return component


def component(name: str) -> Component:
    """The registered component ``name`` (a KeyError names the known ones)."""
    for entry in _TABLE:
        if entry.name == name:
            return entry
    raise KeyError(f"unknown component {name!r}; registered: {', '.join(c.name for c in _TABLE)}")


def forward_order() -> tuple[str, ...]:
    """Every component's name, in the order a forward pass meets them."""
    return tuple(c.name for c in _TABLE)


def prunable_components() -> tuple[str, ...]:
    """The components with a modality (the stacks whose heads and channels are pruned), in forward order."""
    return tuple(c.name for c in _TABLE if c.modality is not None)


def modality_of(name: str) -> str:
    """The modality of a prunable component."""
    modality = component(name).modality
    if modality is None:
        raise KeyError(f"component {name!r} holds nothing prunable, so it has no modality")
    return modality


def title_of(name: str) -> str:
    """A component's title for tables, or its name when it is not registered."""
    try:
        return component(name).title
    except KeyError:
        return name
