"""Find a scorer by the name a user types: ``--method NAME`` or, in a comparison, ``NAME:VARIANT``.

The built-in methods are listed here; a new method is one file defining a ``Scorer`` subclass,
registered with ``register_scorer`` (see `docs/extending.md`). Nothing outside the scorers
compares method names: the prune path, `ukmp compare` and the reports ask the scorer.
"""

from __future__ import annotations

from ukmp.errors import UserError
from ukmp.methods.base import MethodOptions, Scorer
from ukmp.methods.ecoflap_sp import ECoFLaPSPScorer
from ukmp.methods.flap import FLAPScorer
from ukmp.methods.llm_pruner import LLMPrunerGlobalScorer, LLMPrunerLocalScorer
from ukmp.methods.magnitude import MagnitudeScorer
from ukmp.methods.random import RandomScorer
from ukmp.methods.ukmp import UKMPScorer
from ukmp.methods.upop import UPopScorer
from ukmp.methods.wanda_sp import WandaSPScorer

VARIANT_SEPARATOR = ":"

_SCORERS: dict[str, type[Scorer]] = {}


def register_scorer(cls: type[Scorer]) -> type[Scorer]:
    """Make ``cls`` available as ``--method cls.name``; usable as a class decorator."""
    if not cls.name or VARIANT_SEPARATOR in cls.name:
        raise ValueError(f"a scorer needs a name without {VARIANT_SEPARATOR!r}, got {cls.name!r}")
    if _SCORERS.get(cls.name, cls) is not cls:
        raise ValueError(f"a scorer named {cls.name!r} is already registered")
    _SCORERS[cls.name] = cls
    return cls


for _cls in (
    UKMPScorer,
    LLMPrunerGlobalScorer,
    LLMPrunerLocalScorer,
    FLAPScorer,
    WandaSPScorer,
    ECoFLaPSPScorer,
    UPopScorer,
    MagnitudeScorer,
    RandomScorer,
):
    register_scorer(_cls)


def registered_scorers() -> tuple[type[Scorer], ...]:
    """Every registered scorer class, in registration order."""
    return tuple(_SCORERS.values())


def scorer_names() -> tuple[str, ...]:
    """Every registered method name, in registration order (the paper's method first)."""
    return tuple(_SCORERS)


def compared_by_default() -> tuple[str, ...]:
    """The methods `ukmp compare` runs when --methods is not given: those that ask to be, in registration order."""
    return tuple(name for name, cls in _SCORERS.items() if cls.compared_by_default)


def base_method(method: str) -> str:
    """'ukmp' for 'ukmp:q0.34'; a plain method name unchanged."""
    return method.split(VARIANT_SEPARATOR, 1)[0]


def get_scorer(method: str, options: MethodOptions | None = None) -> Scorer:
    """The scorer ``method`` names (with its variant, if any), configured with ``options``."""
    base, _, variant = method.partition(VARIANT_SEPARATOR)
    if base not in _SCORERS:
        raise UserError(f"unknown method {method!r}; choose one of {', '.join(_SCORERS)}.")
    return _SCORERS[base](options, variant if VARIANT_SEPARATOR in method else None)


def is_proposed(method: str) -> bool:
    """Whether ``method`` is (a variant of) the method the paper proposes, which reports hold against the rest."""
    cls = _SCORERS.get(base_method(method))
    return bool(cls and cls.proposed)
