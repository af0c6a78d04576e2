"""Unit scores as a method produced them, with what is needed to trust and reuse them.

Scores are kept apart from plans so that a user can re-plan another ratio from saved scores
(`ukmp prune --scores FILE`) without recomputing them; the sidecar metadata says which scorer
made them and how, and which settings decided them (``settings``, `ukmp.provenance`), so that a
reuse with other settings is refused instead of mixed in.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from ukmp.atomic import atomic_path
from ukmp.errors import UserError
from ukmp.groups import PrunableGroup


@dataclass
class MethodScores:
    """Per-group unit scores plus everything needed to trust and reuse them."""

    method: str
    scores: dict[str, torch.Tensor]
    stats: dict = field(default_factory=dict)
    factors: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)
    #: the settings that decided the scores, by flag (`Scorer.settings`); empty in files written before them
    settings: dict = field(default_factory=dict)

    def save(self, path: str | Path) -> None:
        """scores.safetensors (tensors) + JSON metadata (method, options, timing, settings); atomic."""
        path = Path(path)
        tensors = {f"score/{k}": v.contiguous().double() for k, v in self.scores.items()}
        for factor, values in self.factors.items():
            tensors.update({f"{factor}/{k}": v.contiguous().double() for k, v in values.items()})
        with atomic_path(path) as tmp:
            metadata = {"method": self.method, "stats": json.dumps(self.stats), "settings": json.dumps(self.settings)}
            save_file(tensors, str(tmp), metadata=metadata)

    @classmethod
    def load(cls, path: str | Path) -> MethodScores:
        path = Path(path)
        if not path.is_file():
            raise UserError(f"scores file {path} does not exist; pass the scores.safetensors of an earlier run.")
        try:
            with safe_open(str(path), "pt") as f:
                meta = f.metadata() or {}
            tensors = load_file(str(path))
        except Exception as exc:
            raise UserError(f"{path} is not a readable scores file ({exc}).") from None
        if "method" not in meta:
            raise UserError(f"{path} has no method recorded; it was not written by `ukmp prune`.")
        stats, settings = json.loads(meta.get("stats", "{}")), json.loads(meta.get("settings", "{}"))
        out = cls(method=meta["method"], scores={}, stats=stats, settings=settings)
        for key, value in tensors.items():
            kind, name = key.split("/", 1)
            if kind == "score":
                out.scores[name] = value
            else:
                out.factors.setdefault(kind, {})[name] = value
        return out


def check_scores_match(scores: Mapping[str, torch.Tensor], groups: list[PrunableGroup]) -> None:
    """Saved scores must name exactly the model's groups, with one score per unit."""
    names = {g.name for g in groups}
    if set(scores) != names:
        missing = sorted(names - set(scores)) or sorted(set(scores) - names)
        raise UserError(
            f"the scores file does not match this model's groups (first mismatch: {missing[0]}); "
            "compute scores for this model and these --components."
        )
    for g in groups:
        if scores[g.name].numel() != g.num_units:
            raise UserError(
                f"the scores file has {scores[g.name].numel()} units for {g.name}, the model {g.num_units}."
            )
