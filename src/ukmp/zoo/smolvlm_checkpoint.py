"""Checkpoints of the `shapes-smolvlm` recipe: a killed run continues where it stopped, with the same result.

One file, replaced atomically, holds everything the rest of the run depends on: which stage and step
come next, every trained tensor, the stage's optimizer state, the data generator's state, torch's
random state, the loss log and the recipe it belongs to. Resuming loads them all, so the resumed run
draws the same batches and takes the same optimizer steps as one that never stopped (on a CPU the
weights are bit-identical).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

FILE = "state.pt"


@dataclass
class RunState:
    """Where a run is: the next (stage, step), its tensors and generators, and what it has logged."""

    stage: int = 0
    step: int = 0
    trained: dict[str, torch.Tensor] = field(default_factory=dict)
    optimizer: dict | None = None
    data_rng: dict | None = None
    torch_rng: torch.Tensor | None = None
    log: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    recipe: dict[str, Any] = field(default_factory=dict)


def save_state(folder: Path, state: RunState) -> None:
    """Write `state` to `folder`/state.pt through a temporary file, so a kill never leaves half a file."""
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{FILE}.tmp"
    torch.save(state.__dict__, tmp)
    os.replace(tmp, folder / FILE)


def load_state(folder: Path) -> RunState | None:
    """The state saved in `folder`, or None when there is none."""
    file = folder / FILE
    if not file.is_file():
        return None
    return RunState(**torch.load(file, weights_only=False))
