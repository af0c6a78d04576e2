"""Loading a safetensors file into a model whose parameters sit on the meta device.

Why: rebuilding a pruned model by first materialising (and randomly initialising) its dense base
costs the dense model's memory and minutes of CPU before a single saved weight is read. Here the
model is built empty (``empty_model``: parameters on the meta device, small buffers real), sliced
structurally, and each saved tensor then becomes the parameter itself.

Each tensor is read from the file straight into fresh memory of its own (``os.preadv`` at the
offset the file's header gives; safetensors validates the file and gives each tensor's dtype and
shape). Not through a memory mapping: its pages would stay resident beside the parameters and
double the peak; and not into safetensors' own read buffers: those sit at unaligned addresses,
CPU matmul kernels may round differently there, and a reloaded model must give bit-identical
outputs. The peak is so one copy of the weights.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import torch
from accelerate import init_empty_weights
from safetensors import safe_open
from torch import nn

from ukmp.errors import UserError


@contextlib.contextmanager
def empty_model() -> Iterator[None]:
    """Inside this block new parameters are created on the meta device (no memory, no init)."""
    with init_empty_weights(include_buffers=False):
        yield


def _open(file: Path, backend: str = "mmap"):
    try:
        return safe_open(str(file), framework="pt", backend=backend)
    except Exception as exc:  # safetensors raises its own error type for bad headers / short files
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(f"{file} is truncated or corrupt ({reason}); re-create the artifact.") from None


def tensor_names(file: Path) -> set[str]:
    """The names of the tensors in ``file``, read from its header (which safetensors validates)."""
    with _open(file) as handle:
        return set(handle.keys())


def _data_offsets(file: Path) -> dict[str, tuple[int, int]]:
    """Absolute [start, end) byte range of each tensor: an 8-byte header length, the JSON header, the data."""
    with open(file, "rb") as handle:
        length = int.from_bytes(handle.read(8), "little")
        header = json.loads(handle.read(length))
    return {
        name: (8 + length + entry["data_offsets"][0], 8 + length + entry["data_offsets"][1])
        for name, entry in header.items()
        if name != "__metadata__"
    }


def read_tensors(file: Path, names: list[str]) -> Iterator[tuple[str, torch.Tensor]]:
    """Yield ``(name, tensor)`` for ``names`` in order, each read into aligned memory of its own."""
    offsets = _data_offsets(file)
    with _open(file) as handle, open(file, "rb", buffering=0) as raw:
        for name in names:
            described = handle.get_tensor(name)  # a view of the mapping; its data is never touched
            tensor = torch.empty(described.shape, dtype=described.dtype)
            start, end = offsets[name]
            if end - start != tensor.nbytes:
                raise UserError(f"{file} is corrupt ({name}'s byte range does not fit its shape); re-create it.")
            buffer = memoryview(tensor.reshape(-1).view(torch.uint8).numpy())
            done = 0
            while done < len(buffer):
                got = os.preadv(raw.fileno(), [buffer[done:]], start + done)
                if got <= 0:
                    raise UserError(f"{file} is truncated; re-create the artifact.")
                done += got
            yield name, tensor


def _set_tensor(model: nn.Module, name: str, value: torch.Tensor | nn.Parameter) -> None:
    module_name, _, leaf = name.rpartition(".")
    module = model.get_submodule(module_name) if module_name else model
    if leaf in module._parameters:
        module._parameters[leaf] = value
    else:
        module._buffers[leaf] = value


@torch.no_grad()
def load_into_empty(model: nn.Module, file: Path, root: Path, *, manifest_name: str, weights_name: str) -> None:
    """Make every parameter and persistent buffer of ``model`` the file's tensor of that name.

    Tied tensors (one object under several names) receive one tensor, set under every name, so
    they stay tied. Strict: a tensor the model lacks, a missing tensor or a shape mismatch is a
    user-facing error naming the file.
    """
    state = model.state_dict(keep_vars=True)
    aliases: dict[int, list[str]] = {}
    for name, tensor in state.items():
        aliases.setdefault(id(tensor), []).append(name)
    saved = tensor_names(file)
    unexpected = sorted(saved - set(state))
    if unexpected:
        raise UserError(
            f"{manifest_name} in {root} does not match {weights_name}: the weights contain {unexpected[0]}, "
            "which the manifest's model does not have."
        )
    first_of: dict[str, list[str]] = {}
    for names in aliases.values():
        present = [n for n in names if n in saved]
        if not present:
            raise UserError(f"{weights_name} in {root} lacks the tensor {names[0]}; re-create the artifact.")
        first_of[present[0]] = names
    for name, tensor in read_tensors(file, list(first_of)):
        names = first_of[name]
        target = state[names[0]]
        if tensor.shape != target.shape:
            raise UserError(
                f"{manifest_name} in {root} does not match {weights_name}: {name} has shape "
                f"{list(tensor.shape)} in the weights but {list(target.shape)} in the manifest's model."
            )
        value = nn.Parameter(tensor, requires_grad=target.requires_grad) if isinstance(target, nn.Parameter) else tensor
        for alias in names:
            _set_tensor(model, alias, value)
