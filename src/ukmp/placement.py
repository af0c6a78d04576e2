"""Where a model runs and in what precision while it is scored: a device, a scoring dtype, a device map.

Why one object: every scorer, the scope choice and the plan search run the same model on the same
inputs, so the choice is made once (``Placement``), checked once (one sentence for a device that is
not there, a map that names unknown modules, a precision the device cannot do) and applied once
(``place``). Inputs follow the model (``to_model``): a batch goes where the model's first weight is,
with its floating tensors (pixel values) in the model's precision.

A model larger than one device is placed with accelerate's big-model dispatch (``--device-map``):
its blocks stay where the map puts them, and accelerate's hooks move activations between devices.
Every part keeps real weights that it runs where it sits (a part on the CPU runs on the CPU), so
gradients reach every weight; accelerate's offloading (weights parked on the CPU or disk and
streamed to a GPU per forward) leaves no weight for a gradient or a weight norm to read, so it is
not used, and ``disk`` is refused in a map.

CPU float32 is the default on a machine without CUDA and reproduces every figure measured before
these options existed: nothing is cast or moved then.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ukmp.errors import UserError

#: the scoring precisions; "auto" is bfloat16 on a GPU that supports it, float32 elsewhere
SCORE_DTYPES = ("auto", "float32", "bfloat16")
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
#: of each device's free memory, the share the weights may take in an automatic map: a gradient
#: scorer holds one gradient per prunable weight (about as much again) and a batch's activations
WEIGHT_SHARE = {True: 0.45, False: 0.9}


@dataclass(frozen=True)
class Placement:
    """``device``: cpu, cuda, cuda:N or auto; ``dtype``: the scoring precision; ``device_map``: auto, or
    a JSON object (or a file holding one) from module names to devices."""

    device: str = "auto"
    dtype: str = "auto"
    device_map: str | None = None

    def resolved(self) -> Placement:
        """The placement with ``auto`` replaced and every choice checked (one sentence on a bad one)."""
        device = resolve_device(self.device)
        dtype = resolve_dtype(self.dtype, device)
        if self.device_map is not None and self.device_map != "auto":
            parse_device_map(self.device_map)  # a bad file or a bad device fails before any weight is read
        return Placement(str(device), dtype, self.device_map)

    @property
    def torch_dtype(self) -> torch.dtype:
        return DTYPES[resolve_dtype(self.dtype, resolve_device(self.device))]

    def place(self, model: nn.Module, *, runs: bool, gradients: bool) -> nn.Module:
        """Cast ``model`` to the scoring precision (when it ``runs``) and put it on its device(s), in place.

        A model that never runs (a data-free scorer) keeps its own dtype: its scores are norms of
        exact upcasts, and a cast would only cost a copy of its weights.
        """
        placement = self.resolved()
        if runs:
            model.to(placement.torch_dtype)
        if placement.device_map is None:
            return model.to(placement.device)
        device_map = (
            auto_device_map(model, gradients=gradients)
            if placement.device_map == "auto"
            else check_map_modules(model, parse_device_map(placement.device_map))
        )
        return dispatch(model, device_map)


def resolve_device(text: str) -> torch.device:
    """``text`` as a device that exists here; ``auto`` is the first GPU when there is one."""
    text = text.strip().lower()
    if text == "auto":
        return torch.device("cuda", 0) if torch.cuda.is_available() else torch.device("cpu")
    try:
        device = torch.device(text)
    except (RuntimeError, ValueError):
        raise UserError(f"--device must be cpu, cuda, cuda:N or auto, got {text!r}.") from None
    if device.type == "cpu":
        return torch.device("cpu")
    if device.type != "cuda":
        raise UserError(f"--device must be cpu, cuda, cuda:N or auto, got {text!r}.")
    if not torch.cuda.is_available():
        raise UserError(f"--device {text} needs CUDA, and this machine has none: pass --device cpu (or auto).")
    index = 0 if device.index is None else device.index
    count = torch.cuda.device_count()
    if index >= count:
        raise UserError(f"--device {text} does not exist: this machine has {count} GPU(s), cuda:0 to cuda:{count - 1}.")
    return torch.device("cuda", index)


def resolve_dtype(text: str, device: torch.device) -> str:
    """The scoring precision on ``device``: ``auto`` is bfloat16 on a GPU that has it, else float32."""
    if text not in SCORE_DTYPES:
        raise UserError(f"--score-dtype must be one of {', '.join(SCORE_DTYPES)}, got {text!r}.")
    bf16_ok = device.type == "cpu" or (device.type == "cuda" and torch.cuda.is_bf16_supported())
    if text == "auto":
        return "bfloat16" if device.type == "cuda" and bf16_ok else "float32"
    if text == "bfloat16" and not bf16_ok:
        raise UserError(f"--score-dtype bfloat16: {device} cannot compute in bfloat16; pass --score-dtype float32.")
    return text


def parse_device_map(text: str) -> dict[str, str]:
    """A device map from a JSON object or a JSON file: module name -> cpu / cuda:N (checked to exist)."""
    path = Path(text)
    source = f"the device map {text}" if path.is_file() else "--device-map"
    try:
        raw = json.loads(path.read_text() if path.is_file() else text)
    except (json.JSONDecodeError, OSError):
        raise UserError(
            f'--device-map must be auto, a JSON object such as \'{{"vision_model": "cuda:0", "": "cuda:1"}}\', '
            f"or a file holding one; {text!r} is neither."
        ) from None
    if not isinstance(raw, dict) or not raw or not all(isinstance(v, (str, int)) for v in raw.values()):
        raise UserError(f"{source} must map module names to devices (cpu, cuda:N), got {raw!r}.")
    out = {}
    for name, value in raw.items():
        value = f"cuda:{value}" if isinstance(value, int) else value
        if value == "disk":
            raise UserError(
                f"{source} puts {name or 'the model'} on disk; scoring reads every weight, so place it on a "
                "GPU or the CPU."
            )
        try:
            device = resolve_device(value)
        except UserError as exc:
            raise UserError(f"{source}: {exc}") from None
        out[name] = str(device)
    return out


def check_map_modules(model: nn.Module, device_map: dict[str, str]) -> dict[str, str]:
    """Every name of the map is a module (or parameter) of ``model``, every parameter is placed; else one sentence."""
    names = {name for name, _ in model.named_modules()} | {name for name, _ in model.named_parameters()}
    unknown = sorted(n for n in device_map if n not in names)
    if unknown:
        top = ", ".join(sorted(n for n, _ in model.named_children()))
        raise UserError(f"--device-map names {', '.join(unknown)}, which the model does not have (its parts: {top}).")
    if "" not in device_map:
        unplaced = [n for n, _ in model.named_parameters() if not any(_covers(m, n) for m in device_map)]
        if unplaced:
            raise UserError(
                f"--device-map leaves {unplaced[0]} (and {len(unplaced) - 1} more) unplaced; "
                'add them, or "" for the rest.'
            )
    return device_map


def _covers(module: str, parameter: str) -> bool:
    return module == "" or parameter == module or parameter.startswith(module + ".")


def auto_device_map(model: nn.Module, *, gradients: bool) -> dict[str, str]:
    """accelerate's map over every GPU (then the CPU), leaving room on each for gradients and activations."""
    from accelerate import infer_auto_device_map
    from accelerate.utils import get_max_memory

    share = WEIGHT_SHARE[gradients]
    max_memory = {k: int(v * share) if k != "cpu" else v for k, v in get_max_memory().items() if k != "disk"}
    no_split = getattr(model, "_no_split_modules", None) or []
    device_map = infer_auto_device_map(model, max_memory=max_memory, no_split_module_classes=list(no_split))
    if "disk" in device_map.values():
        raise UserError("the model does not fit the GPUs and the CPU memory together; scoring cannot offload to disk.")
    return {name: str(torch.device(d if not isinstance(d, int) else f"cuda:{d}")) for name, d in device_map.items()}


def dispatch(model: nn.Module, device_map: dict[str, str]) -> nn.Module:
    """accelerate's dispatch with every part running where it sits (see the module docstring).

    With a CPU part, the CPU is accelerate's main device: it then keeps that part's weights and
    runs it instead of streaming them to a GPU.
    """
    from accelerate import dispatch_model

    devices = list(dict.fromkeys(device_map.values()))
    main = "cpu" if "cpu" in devices else devices[0]
    # hooks also where every part shares one device, so that a split map runs the same code everywhere
    return dispatch_model(model, device_map=device_map, main_device=main, force_hooks=len(device_map) > 1)


def model_device(model: nn.Module) -> torch.device:
    """Where inputs go: the device of the model's first weight (accelerate moves them on from there)."""
    first = next(model.parameters(), None)
    return first.device if first is not None else torch.device("cpu")


def model_dtype(model: nn.Module) -> torch.dtype:
    """The floating dtype of the model's first floating weight (what pixel values are cast to)."""
    for p in model.parameters():
        if p.is_floating_point():
            return p.dtype
    return torch.float32


def to_model(batch: dict[str, Any], model: nn.Module) -> dict[str, Any]:
    """``batch`` on ``model``'s input device, its floating tensors in the model's precision.

    On the CPU in float32 (the default) every tensor is returned as it is.
    """
    device, dtype = model_device(model), model_dtype(model)
    out = {}
    for key, value in batch.items():
        if torch.is_tensor(value):
            value = value.to(device=device, dtype=dtype if value.is_floating_point() else value.dtype)
        out[key] = value
    return out
