"""Loading a safetensors file into a model whose parameters sit on the meta device.

Why: rebuilding a pruned model by first materialising (and randomly initialising) its dense base
costs the dense model's memory and minutes of CPU before a single saved weight is read. Here the
model is built empty (``empty_model``: parameters on the meta device, small buffers real), sliced
structurally, and each saved tensor then becomes the parameter itself.

The file is memory-mapped by safetensors and read in chunks of about ``CHUNK_BYTES``; the mapping
is reopened per chunk so the file pages already copied are released, and peak memory stays close
to one copy of the weights. Each tensor is copied once into fresh (aligned) memory rather than kept
as a view of the mapping: CPU matmul kernels may round differently on unaligned memory, and a
reloaded model must give bit-identical outputs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import torch
from accelerate import init_empty_weights
from safetensors import safe_open
from torch import nn

from ukmp.errors import UserError

CHUNK_BYTES = 64 * 2**20


@contextlib.contextmanager
def empty_model() -> Iterator[None]:
    """Inside this block new parameters are created on the meta device (no memory, no init)."""
    with init_empty_weights(include_buffers=False):
        yield


def _open(file: Path):
    try:
        return safe_open(str(file), framework="pt")
    except Exception as exc:  # safetensors raises its own error type for bad headers / short files
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(f"{file} is truncated or corrupt ({reason}); re-create the artifact.") from None


def tensor_sizes(file: Path) -> dict[str, int]:
    """Byte size of every tensor in ``file``, read from the header (no tensor data is touched)."""
    with _open(file) as handle:
        return {name: handle.get_tensor(name).nbytes for name in handle.keys()}


def read_in_chunks(file: Path, names: list[str], chunk_bytes: int = CHUNK_BYTES) -> Iterator[tuple[str, torch.Tensor]]:
    """Yield ``(name, tensor)`` for ``names`` in order, each an owned copy of the file's bytes."""
    sizes = tensor_sizes(file)
    start = 0
    while start < len(names):
        end, total = start, 0
        while end < len(names) and (end == start or total + sizes[names[end]] <= chunk_bytes):
            total += sizes[names[end]]
            end += 1
        with _open(file) as handle:
            for name in names[start:end]:
                yield name, handle.get_tensor(name).clone()
        start = end


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
    sizes = tensor_sizes(file)
    unexpected = sorted(set(sizes) - set(state))
    if unexpected:
        raise UserError(
            f"{manifest_name} in {root} does not match {weights_name}: the weights contain {unexpected[0]}, "
            "which the manifest's model does not have."
        )
    first_of: dict[str, list[str]] = {}
    for names in aliases.values():
        present = [n for n in names if n in sizes]
        if not present:
            raise UserError(f"{weights_name} in {root} lacks the tensor {names[0]}; re-create the artifact.")
        first_of[present[0]] = names
    for name, tensor in read_in_chunks(file, list(first_of)):
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
