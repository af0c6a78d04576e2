"""The pruned-model artifact: save, load, and the one loading entry point commands use.

An artifact is a directory::

    config.json          the BASE (dense) config, exactly as save_pretrained writes it
    model.safetensors    the sliced weights (no pickle)
    pruning.json         the manifest: format version, base model + checksum, method, options,
                         seed, target/achieved ratio, kept units per group, parameter counts
    (processor files)    when a processor/tokenizer was given

Per-layer widths (heads kept in layer 3 vs layer 7) cannot be expressed in a transformers config,
so ``from_pretrained`` on this directory cannot work; ``load_pruned`` rebuilds the dense
architecture from ``config.json``, applies the manifest's plan structurally and then loads the
weights strictly. ``ukmp.loading.load_model`` is the general loader (artifact, dense folder, hub id, GGUF).

Writes are atomic: everything goes to a temporary directory next to the target, which is renamed
into place only when complete, so a crash never leaves a half artifact.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_model
from torch import nn

from ukmp.accounting import parameter_counts
from ukmp.adapters import find_adapter
from ukmp.atomic import atomic_folder
from ukmp.checksums import file_sha256
from ukmp.errors import UserError
from ukmp.groups import PruningPlan
from ukmp.output_guard import check_output
from ukmp.surgery import apply_plan_physically
from ukmp.version import __version__
from ukmp.weight_loading import empty_model, load_into_empty, tensor_names

FORMAT_VERSION = 1
MANIFEST = "pruning.json"
WEIGHTS = "model.safetensors"
CONFIG = "config.json"
CHECKSUM_METHOD = "sha256 over the sorted state dict: name, dtype, shape, raw bytes of each tensor"


# ----------------------------------------------------------------------------------------- checksums


def state_dict_sha256(model_or_state: nn.Module | Mapping[str, torch.Tensor], *, as_float32: bool = False) -> str:
    """A checksum of weights that does not depend on file layout (shards, formats, tying order).

    Compute it on the dense model *before* pruning and pass it to ``save_pruned`` so a manifest
    can later be checked against the base model it claims to come from. Manifests record it of
    the float32 model (how recovery loads the teacher); ``as_float32`` gives that value from a
    model kept in a smaller dtype, converting one tensor at a time instead of the whole model.
    """
    state = model_or_state.state_dict() if isinstance(model_or_state, nn.Module) else model_or_state
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous()
        upcast = as_float32 and tensor.is_floating_point()
        dtype = torch.float32 if upcast else tensor.dtype
        digest.update(f"{name}|{str(dtype).removeprefix('torch.')}|{list(tensor.shape)}|".encode())
        flat = tensor.reshape(-1)
        step = _HASH_CHUNK if upcast else max(flat.numel(), 1)
        for start in range(0, flat.numel(), step):  # upcast a slice at a time: the bytes are the same
            part = flat[start : start + step]
            digest.update(memoryview((part.float() if upcast else part).view(torch.uint8).numpy()))
    return digest.hexdigest()


_HASH_CHUNK = 4 * 2**20  # elements upcast at once by state_dict_sha256(as_float32=True)


ARTIFACT_CHECKSUM_COVERS = "sha256 of the weights file's sha256, then the plan (groups, added_biases) as sorted JSON"


def artifact_sha256(weights_sha256: str, groups: Mapping[str, Any], added_biases: list[str]) -> str:
    """One checksum over the weights and the plan that says which rows they are: an edited plan fails it."""
    plan = json.dumps({"groups": groups, "added_biases": sorted(added_biases)}, sort_keys=True)
    return hashlib.sha256(f"{weights_sha256}\n{plan}".encode()).hexdigest()


# ------------------------------------------------------------------------------------- atomic writes


@contextlib.contextmanager
def atomic_directory(
    out_dir: str | os.PathLike, *, overwrite: bool = False, markers: Sequence[str] = (MANIFEST,)
) -> Iterator[Path]:
    """Yield a temporary directory that replaces ``out_dir`` only if the block completes.

    Temporaries left by a killed run (their process is gone) are removed first.
    """
    out = Path(out_dir)
    check_output_dir(out, overwrite=overwrite, markers=markers)
    with atomic_folder(out) as tmp:
        yield tmp


def check_output_dir(
    out: Path,
    *,
    overwrite: bool,
    inputs: Iterable[str | os.PathLike | None] = (),
    markers: Sequence[str] = (MANIFEST,),
) -> None:
    """Refuse an output that exists (unless overwriting what ukmp wrote), is an input, or cannot be written."""
    check_output(out, overwrite=overwrite, markers=markers, inputs=inputs)


# -------------------------------------------------------------------------------------------- save


def main_dtype(model: nn.Module) -> str:
    """The dtype holding most of the model's parameters, as a name ('bfloat16')."""
    sizes: dict[torch.dtype, int] = {}
    for p in model.parameters():
        sizes[p.dtype] = sizes.get(p.dtype, 0) + p.numel()
    return str(max(sizes, key=sizes.get)).removeprefix("torch.") if sizes else "float32"


def cast_to_saved_dtype(model: nn.Module, dtype: str, base_dtypes: dict[str, torch.dtype]) -> None:
    """One cast after slicing: to ``dtype``, or with "auto" each parameter back to the base's dtype.

    A bf16 checkpoint so gives a bf16 artifact of half the float32 size. A parameter the base did
    not have (a bias FLAP's compensation created) takes the dtype of its module's weight; one whose
    name the base does not know at all (a tied weight saved under its other name) the base's
    most common dtype.
    """
    if dtype != "auto":
        model.to(getattr(torch, dtype))
        return
    counts: dict[torch.dtype, int] = {}
    for value in base_dtypes.values():
        counts[value] = counts.get(value, 0) + 1
    fallback = max(counts, key=counts.get) if counts else torch.float32
    for name, param in model.named_parameters():
        owner = name.rsplit(".", 1)[0]
        target = base_dtypes.get(name) or base_dtypes.get(f"{owner}.weight") or fallback
        if param.dtype != target:
            param.data = param.data.to(target)


def weight_dtypes(path: str | os.PathLike) -> dict[str, torch.dtype]:
    """Each tensor's dtype in a safetensors file, read from its header (no weights are loaded)."""
    names = {"F64": torch.float64, "F32": torch.float32, "BF16": torch.bfloat16, "F16": torch.float16}
    with safe_open(str(path), "pt") as fh:
        return {k: names.get(fh.get_slice(k).get_dtype(), torch.float32) for k in fh.keys()}


def save_pruned(
    model: nn.Module,
    plan: PruningPlan | None,
    out_dir: str | os.PathLike,
    *,
    processor: Any = None,
    base_model_ref: str | None = None,
    base_checksum: str | None = None,
    method: str | None = None,
    options: Mapping[str, Any] | None = None,
    seed: int | None = None,
    target_ratio: float | None = None,
    ratio_basis: str = "all",
    overwrite: bool = False,
    extra: Mapping[str, Any] | None = None,
    extra_files: Mapping[str, Callable[[Path], None]] | None = None,
    recovery: Mapping[str, Any] | None = None,
    base_source: Mapping[str, Any] | None = None,
    base_revision: str | None = None,
) -> Path:
    """Write the sliced ``model`` and its manifest to ``out_dir`` atomically; returns the path.

    ``model`` must be the output of ``apply_plan_physically`` (``plan`` defaults to the plan it
    carries). ``base_checksum`` is ``state_dict_sha256`` of the dense model before pruning.
    Parameter counts before pruning are reconstructed exactly from the group costs.
    ``extra_files`` maps a file name to a writer called with its path inside the temporary folder,
    so files that belong to the artifact (the scores a plan came from) appear atomically with it.
    ``recovery`` fills the manifest's ``recovery`` entry when the weights were retrained after
    pruning (``ukmp recover --merge``: the adapter folded in, and how it was trained).
    ``base_source`` describes where the base weights came from when that matters for trusting
    them (a quantised GGUF file: ``ukmp.gguf_models.gguf_origin``); it defaults to the model's
    ``ukmp_source`` attribute, set by the GGUF loader, and lands in ``base_model.source``.
    """
    carried = getattr(model, "ukmp_plan", None)
    if carried is None:
        raise ValueError("save_pruned expects a model sliced by apply_plan_physically")
    plan = plan or carried
    if plan.to_dict() != carried.to_dict():
        raise ValueError("the plan given to save_pruned differs from the one applied to the model")

    groups = find_adapter(model).all_groups(model)
    after = parameter_counts(model)
    removed: dict[str, int] = {}
    for group in groups:
        if group.name in plan.kept:
            n = (group.num_units - len(plan.kept[group.name])) * group.params_per_unit
            removed[group.component] = removed.get(group.component, 0) + n
    # FLAP's compensation can give a consumer a bias it did not have: not part of the base count
    added_biases = sorted(getattr(model, "ukmp_added_biases", None) or [])
    added_params: dict[str, int] = {}
    for name in added_biases:
        bucket = find_adapter(model).param_component(f"{name}.bias")
        added_params[bucket] = added_params.get(bucket, 0) + model.get_submodule(name).bias.numel()
    before = {k: v + removed.get(k, 0) - added_params.get(k, 0) for k, v in after.items() if k != "total"}
    before["total"] = sum(before.values())
    removed_total = before["total"] - after["total"]
    prunable = sum(g.total_params for g in groups if g.name in plan.kept)
    achieved = {
        "all": removed_total / before["total"],
        "prunable": removed_total / prunable if prunable else 0.0,
    }

    source = base_source if base_source is not None else getattr(model, "ukmp_source", None)
    if not getattr(model.config, "architectures", None):
        model.config.architectures = [type(model).__name__]  # what save_pretrained would record
    with atomic_directory(out_dir, overwrite=overwrite) as tmp:
        model.config.save_pretrained(tmp)
        if processor is not None:
            processor.save_pretrained(tmp)
        save_model(model, str(tmp / WEIGHTS), metadata={"format": "pt", "producer": "ukmp"})
        weights_sha = file_sha256(tmp / WEIGHTS)
        manifest = {
            "format_version": FORMAT_VERSION,
            "ukmp_version": __version__,
            "created_utc": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            "architecture": type(model).__name__,
            "attn_implementation": getattr(model.config, "_attn_implementation", None),
            "dtype": main_dtype(model),
            "base_model": {
                "reference": base_model_ref,
                "revision": base_revision,
                "sha256": base_checksum,
                "checksum_method": CHECKSUM_METHOD,
                "source": dict(source) if source is not None else None,
            },
            "method": {"name": method, "options": dict(options or {})},
            "seed": seed,
            "target_ratio": target_ratio,
            "ratio_basis": ratio_basis,
            "achieved_ratio": achieved.get(ratio_basis),
            "achieved_ratio_of_all": achieved["all"],
            "achieved_ratio_of_prunable": achieved["prunable"],
            "parameters": {"before": before, "after": after},
            "groups": plan.to_dict(),
            "added_biases": added_biases,
            "weights": {"file": WEIGHTS, "sha256": weights_sha},
            "checksum": {
                "sha256": artifact_sha256(weights_sha, plan.to_dict(), added_biases),
                "covers": ARTIFACT_CHECKSUM_COVERS,
            },
            "recovery": dict(recovery) if recovery is not None else None,
            "extra": dict(extra or {}),
        }
        (tmp / MANIFEST).write_text(_dump_json(manifest))
        for name, writer in (extra_files or {}).items():
            writer(tmp / name)
        for file in tmp.iterdir():
            os.chmod(file, 0o644)
    return Path(out_dir)


def save_retrained(
    model: nn.Module,
    manifest: Mapping[str, Any],
    out_dir: str | os.PathLike,
    *,
    processor: Any,
    recovery: Mapping[str, Any],
    overwrite: bool = False,
    extra_files: Mapping[str, Callable[[Path], None]] | None = None,
) -> Path:
    """Save a pruned model whose weights were trained after pruning, as an artifact like the one it came from.

    Base, method, options, seed and ratio are the source manifest's; ``recovery`` records how the
    weights were retrained (``ukmp recover --merge``, or the full fine-tuning of `ukmp.zoo.fine_tune`).
    """
    base = manifest.get("base_model") or {}
    method = manifest.get("method") or {}
    return save_pruned(
        model,
        None,
        out_dir,
        processor=processor,
        base_model_ref=base.get("reference"),
        base_checksum=base.get("sha256"),
        method=method.get("name"),
        options=method.get("options"),
        seed=manifest.get("seed"),
        target_ratio=manifest.get("target_ratio"),
        ratio_basis=manifest.get("ratio_basis", "all"),
        overwrite=overwrite,
        extra=manifest.get("extra"),
        extra_files=extra_files,
        recovery=recovery,
    )


def _dump_json(data: Any) -> str:
    """Indented JSON with every list of numbers on one line (kept-unit lists stay readable)."""
    text = json.dumps(data, indent=1)
    text = re.sub(r"\[\s*([-\d.eE,\s]*?)\s*\]", lambda m: "[" + re.sub(r"\s+", " ", m.group(1)) + "]", text)
    return text + "\n"


# -------------------------------------------------------------------------------------------- load


def read_manifest(path: str | os.PathLike) -> dict[str, Any]:
    """The parsed ``pruning.json`` of an artifact, with a one-sentence error for every problem."""
    root = Path(path)
    if not root.exists():
        raise UserError(f"{root} does not exist.")
    file = root / MANIFEST
    if not file.is_file():
        raise UserError(f"{root} has no {MANIFEST}, so it is not a ukmp pruned model.")
    try:
        manifest = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{file} is not valid JSON ({exc.msg if hasattr(exc, 'msg') else exc}).") from None
    if not isinstance(manifest, dict):
        raise UserError(f"{file} is not a ukmp manifest (expected a JSON object).")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise UserError(
            f"{file} has format version {version!r}, but ukmp {__version__} reads version "
            f"{FORMAT_VERSION}; use the ukmp version that wrote it or re-create the artifact."
        )
    return manifest


def _check_weights_file(file: Path, expected_sha: str | None) -> None:
    if not file.is_file():
        raise UserError(f"{file} is missing; the artifact is incomplete, re-create it with ukmp prune.")
    tensor_names(file)  # a truncated or corrupt header fails here, before any model is built
    if expected_sha and file_sha256(file) != expected_sha:
        raise UserError(
            f"{file} does not match the checksum in {MANIFEST} (corrupted or modified); re-create the artifact."
        )


def _check_plan_checksum(manifest: Mapping[str, Any], weights_sha: str | None, root: Path) -> None:
    """The manifest's plan is the one saved with these weights (artifacts written before this check have none)."""
    expected = (manifest.get("checksum") or {}).get("sha256")
    if not expected or not weights_sha:
        return
    try:
        actual = artifact_sha256(weights_sha, manifest["groups"], list(manifest.get("added_biases") or []))
    except (KeyError, TypeError):
        actual = None
    if actual != expected:
        raise UserError(
            f"the plan in {root / MANIFEST} does not match the checksum saved with the weights (the kept units "
            "were edited); restore the file or re-create the artifact."
        )


def _add_biases(model: nn.Module, names: list[str], root: Path) -> None:
    """Give the Linears a bias that pruning added (FLAP's compensation), so the weights load strictly."""
    for name in names:
        try:
            module = model.get_submodule(name)
        except AttributeError:
            raise UserError(f"{MANIFEST} in {root} adds a bias to {name}, which the model does not have.") from None
        if isinstance(module, nn.Linear) and module.bias is None:
            weight = module.weight
            module.bias = nn.Parameter(torch.zeros(module.out_features, dtype=weight.dtype, device=weight.device))
    model.ukmp_added_biases = sorted(names)


def model_class(config: Any, fallback: str | None = None) -> type:
    import transformers

    for name in [*(getattr(config, "architectures", None) or []), *([fallback] if fallback else [])]:
        cls = getattr(transformers, name, None)
        if cls is not None:
            return cls
    raise UserError(
        f"config.json names no transformers architecture this version knows ({config.architectures}); "
        "upgrade transformers."
    )


def load_pruned(path: str | os.PathLike, *, device: str | torch.device | None = None) -> nn.Module:
    """Rebuild a pruned model in a fresh process, bit-identical to the one saved; eval mode.

    The dense architecture is built on the meta device (no memory, no random init), sliced by the
    manifest's plan, and the saved tensors become its parameters: peak memory is about one copy of
    the pruned weights, never the dense model's.
    """
    from transformers import AutoConfig

    root = Path(path)
    manifest = read_manifest(root)
    if not (root / CONFIG).is_file():
        raise UserError(f"{root} has no {CONFIG}; the artifact is incomplete, re-create it with ukmp prune.")
    weights_sha = (manifest.get("weights") or {}).get("sha256")
    _check_weights_file(root / WEIGHTS, weights_sha)
    _check_plan_checksum(manifest, weights_sha, root)
    config = AutoConfig.from_pretrained(str(root))
    kwargs: dict[str, Any] = {}
    if manifest.get("attn_implementation"):
        kwargs["attn_implementation"] = manifest["attn_implementation"]
    with empty_model():
        model = model_class(config, manifest.get("architecture"))._from_config(config, **kwargs)
    model.tie_weights()  # transformers skips tying on the meta device; the saved model was tied
    try:
        plan = PruningPlan.from_dict(manifest["groups"])
    except (KeyError, TypeError, ValueError, AttributeError):
        raise UserError(f"{root / MANIFEST} has no valid 'groups' entry; re-create the artifact.") from None
    try:
        apply_plan_physically(model, plan)
    except UserError as exc:
        raise UserError(f"{MANIFEST} in {root} does not match its {CONFIG}: {exc}") from None
    _add_biases(model, manifest.get("added_biases") or [], root)
    load_into_empty(model, root / WEIGHTS, root, manifest_name=MANIFEST, weights_name=WEIGHTS)
    model.ukmp_manifest = manifest
    if device is not None:
        model.to(device)
    return model.eval()


def is_pruned_artifact(path: str | os.PathLike) -> bool:
    return (Path(path) / MANIFEST).is_file()
