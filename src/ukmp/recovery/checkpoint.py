"""Training checkpoints of a recovery run: everything needed to continue bit for bit, no pickle.

A checkpoint is a folder (``OUT/checkpoints/last``, replaced atomically each time)::

    state.json               where the run stands (sub-phase, step), the loss history, the settings
                             that determine the result, and the optimizer's hyper-parameters
    adapter.safetensors      the adapter parameters (``lora_`` tensors)
    optimizer.safetensors    AdamW's per-parameter state (step, exp_avg, exp_avg_sq) of the current
                             sub-phase (absent at a sub-phase boundary: the next one starts fresh)
    rng-<rank>.safetensors   each process's random-number state (LoRA dropout)

The data order is a pure function of (sub-phase, step), so nothing about the data needs saving.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch

from ukmp.atomic import replace_folder
from ukmp.errors import UserError
from ukmp.output_guard import remove_stale_temporaries

FORMAT = "ukmp-recovery-checkpoint/1"
STATE = "state.json"
ADAPTER = "adapter.safetensors"
OPTIMIZER = "optimizer.safetensors"


def rng_state() -> dict[str, torch.Tensor]:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            state[f"cuda.{i}"] = s
    return state


def set_rng_state(state: dict[str, torch.Tensor]) -> None:
    torch.set_rng_state(state["torch"])
    cuda = [state[k] for k in sorted(state) if k.startswith("cuda.")]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)


def optimizer_to_files(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], list[dict[str, Any]]]:
    """AdamW's state as flat tensors plus JSON-able parameter groups."""
    sd = optimizer.state_dict()
    tensors = {}
    for index, entry in sd["state"].items():
        for key, value in entry.items():
            value = value if isinstance(value, torch.Tensor) else torch.tensor(value)
            tensors[f"{index}.{key}"] = value.detach().cpu().contiguous()
    groups = []
    for group in sd["param_groups"]:
        clean = {}
        for key, value in group.items():
            if isinstance(value, tuple):
                value = list(value)
            if isinstance(value, torch.Tensor):
                value = value.item()
            clean[key] = value
        groups.append(clean)
    return tensors, groups


def optimizer_from_files(tensors: dict[str, torch.Tensor], groups: list[dict[str, Any]]) -> dict[str, Any]:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for name, value in tensors.items():
        index, key = name.split(".", 1)
        state.setdefault(int(index), {})[key] = value
    param_groups = []
    for group in groups:
        group = dict(group)
        if isinstance(group.get("betas"), list):
            group["betas"] = tuple(group["betas"])
        param_groups.append(group)
    return {"state": state, "param_groups": param_groups}


def write_checkpoint(
    folder: Path,
    *,
    accelerator,
    state: dict[str, Any],
    adapter: dict[str, torch.Tensor],
    optimizer: torch.optim.Optimizer | None,
) -> None:
    """Write a checkpoint to ``folder`` atomically; every process must call this together."""
    from safetensors.torch import save_file

    folder = Path(folder)
    tmp = folder.parent / f".{folder.name}.tmp"
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        remove_stale_temporaries(folder)  # an `.old-` folder of a run killed mid-swap
        tmp.mkdir(parents=True)
    accelerator.wait_for_everyone()
    save_file(rng_state(), str(tmp / f"rng-{accelerator.process_index}.safetensors"))
    if accelerator.is_main_process:
        save_file(adapter, str(tmp / ADAPTER))
        record = {"format": FORMAT, **state, "optimizer_groups": None}
        if optimizer is not None:
            tensors, groups = optimizer_to_files(optimizer)
            save_file(tensors, str(tmp / OPTIMIZER))
            record["optimizer_groups"] = groups
        (tmp / STATE).write_text(json.dumps(record, indent=1) + "\n")
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        replace_folder(tmp, folder)
    accelerator.wait_for_everyone()


def read_checkpoint(folder: Path) -> dict[str, Any]:
    """The parsed ``state.json`` of a checkpoint, or a one-sentence error."""
    file = Path(folder) / STATE
    if not file.is_file():
        raise UserError(f"there is no checkpoint to resume in {folder.parent.parent}; run without --resume.")
    state = json.loads(file.read_text())
    if state.get("format") != FORMAT:
        raise UserError(f"{file} is not a ukmp recovery checkpoint of format {FORMAT}.")
    return state


def load_tensors(file: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return {k: v.clone() for k, v in load_file(str(file)).items()}
