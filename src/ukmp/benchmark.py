"""Is the pruned model faster? Size, FLOPs, latency, throughput and memory, side by side in one run.

``run_benchmark`` loads the dense model and every pruned artifact given, adds for each artifact
the *masked* reference (the dense model with the artifact's removed rows and columns zeroed: the
same function as the pruned model, at full size) and, with ``round_to > 1``, a *rounded* variant
(kept widths rounded up to a multiple, see ``round_plan``), then measures them all in one process:

- parameters per accounting bucket, and FLOPs per image of each operation and per component,
  counted by ``torch.utils.flop_counter.FlopCounterMode`` on a batch of one (FLOPs grow linearly
  with the batch: every image has the same shapes), so they are what the sliced model executes;
- wall-clock latency of three operations: ``encode`` (vision encoder + Q-Former + projection,
  ``get_image_features``), ``forward`` (one full teacher-forced forward with ``text_len`` prompt
  and decoder tokens) and ``generate`` (greedy captioning of exactly ``caption_tokens`` new tokens:
  ``min_new_tokens == max_new_tokens``, so every model decodes the same number of steps whatever
  its weights predict). Runs are *interleaved*: each repeat runs every model once, in an order
  rotated from one repeat to the next, so a neighbour process that slows the machine for a while
  slows every model alike. Each figure is the median over repeats with min, max and quartiles;
- throughput (images per second = batch / median latency) and peak memory of one forward.

Peak memory. On CUDA it is the caching allocator's ``max_memory_allocated`` during one forward
minus what was allocated before it (other resident models, inputs), plus this model's own weights.
On a CPU there is no allocator counter for torch tensors (``tracemalloc`` sees only Python
objects), so each model is rebuilt in a fresh subprocess (``ukmp.memory_probe``) and we read the
kernel's peak resident set size: the peak is reset (``/proc/self/clear_refs``) just before a
forward and read back (``VmHWM``) after it; the figure is that peak minus the process's resident
size before the model was built, i.e. weights + activations + allocator slack, without the Python
and torch runtime. Where the kernel refuses the reset (not Linux) the probe falls back to the
lifetime peak (``ru_maxrss``) and says so in ``memory_method``.

A standalone decoder-only language model (Llama, OPT) has no image: it is measured on ``forward``
(``text_len`` tokens) and ``generate`` (exactly ``caption_tokens`` new tokens greedily after those
``text_len`` prompt tokens); ``encode`` does not apply and is absent from its results.

Ratios are against the dense model: ``speedup`` = dense median / model median, ``ideal`` = dense
FLOPs / model FLOPs (what a perfectly efficient kernel would give), and ``of_ideal`` = speedup /
ideal. Timing figures depend on the machine and its load: the load average at start and end is
recorded with them.
"""

from __future__ import annotations

import copy
import datetime as _dt
import gc
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode
from tqdm.auto import tqdm

from ukmp.accounting import example_inputs, parameter_counts
from ukmp.adapters import find_adapter
from ukmp.artifact import is_pruned_artifact, read_manifest, state_dict_sha256
from ukmp.atomic import write_text_atomic
from ukmp.errors import UserError
from ukmp.evaluation.generation import generation_cache
from ukmp.evaluation.harness import write_results
from ukmp.groups import PrunableGroup, PruningPlan
from ukmp.loading import load_model, resolve_model_ref
from ukmp.method_scores import MethodScores
from ukmp.placement import DTYPES, resolve_device
from ukmp.surgery import apply_plan_as_masks, apply_plan_physically
from ukmp.version import __version__

BENCH_FORMAT = "ukmp-bench/1"
OPERATIONS = ("encode", "forward", "generate")
OPERATION_TITLES = {"encode": "image encoding", "forward": "forward", "generate": "caption generation"}
KINDS = ("dense", "pruned", "masked", "rounded")


@dataclass
class BenchOptions:
    """What to measure and how often; ``validate`` turns bad values into one-sentence errors."""

    batch_sizes: tuple[int, ...] = (1, 8, 32)
    repeats: int = 5
    warmup: int = 1
    round_to: int = 1
    dtype: str = "float32"
    device: str = "cpu"
    text_len: int = 16
    caption_tokens: int = 20
    masked: bool = True
    memory: bool = True
    threads: int | None = None

    def validate(self) -> None:
        if not self.batch_sizes or any(b <= 0 for b in self.batch_sizes):
            raise UserError(f"--batch-sizes must be positive integers, got {list(self.batch_sizes)}.")
        if self.repeats < 1:
            raise UserError(f"--repeats must be at least 1, got {self.repeats}.")
        if self.warmup < 0:
            raise UserError(f"--warmup must be 0 or more, got {self.warmup}.")
        if self.round_to < 1:
            raise UserError(f"--round-to must be a positive multiple (1 = no rounding), got {self.round_to}.")
        if self.dtype not in DTYPES:
            raise UserError(f"unknown --dtype {self.dtype!r}; choose one of {', '.join(DTYPES)}.")
        if self.text_len < 1 or self.caption_tokens < 1:
            raise UserError("--text-len and --caption-tokens must be at least 1.")
        if self.threads is not None and self.threads < 1:
            raise UserError(f"--threads must be at least 1, got {self.threads}.")
        resolve_device(self.device)  # one sentence for a device this machine does not have


@dataclass
class Variant:
    """One model of the comparison, and how to rebuild it in a fresh process (``recipe``)."""

    name: str
    kind: str
    source: str
    recipe: dict[str, Any]
    derived_from: str | None = None
    manifest: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    model: nn.Module | None = field(default=None, repr=False)


# ----------------------------------------------------------------------------------------- round-to


def rounded_count(kept: int, num_units: int, unit_size: int, multiple: int) -> int:
    """The smallest count >= ``kept`` whose width (count x ``unit_size``) is a multiple of ``multiple``.

    Kernels care about matrix dimensions, so a head count is rounded so that heads x head_dim is a
    multiple (with 64-wide heads every count already is); a channel count (unit size 1) is rounded
    itself. Never more than ``num_units``: the dense width is always allowed.
    """
    count = kept
    while count < num_units and (count * unit_size) % multiple:
        count += 1
    return count


def round_plan(
    plan: PruningPlan,
    groups: Sequence[PrunableGroup],
    multiple: int,
    scores: Mapping[str, torch.Tensor] | None = None,
) -> tuple[PruningPlan, dict[str, Any]]:
    """``plan`` with every group's kept units rounded up (``rounded_count``); plus what changed.

    The extra units are the removed ones with the highest saved score (the next ones the method
    would have kept) when ``scores`` has the group, else the removed ones with the lowest index.
    Pure: reads only group sizes and scores.
    """
    by_name = {g.name: g for g in groups}
    out = PruningPlan()
    extra_units = extra_params = changed = 0
    by_score = 0
    for name in sorted(plan.kept):
        group = by_name[name]
        kept = sorted(plan.kept[name])
        target = rounded_count(len(kept), group.num_units, group.unit_size, multiple)
        if target > len(kept):
            kept_set = set(kept)
            removed = [u for u in range(group.num_units) if u not in kept_set]
            score = scores.get(name) if scores is not None else None
            if score is not None and score.numel() == group.num_units:
                values = score.reshape(-1).double()
                removed.sort(key=lambda u: (-float(values[u]), u))
                by_score += 1
            added = removed[: target - len(kept)]
            kept = sorted(kept + added)
            extra_units += len(added)
            extra_params += len(added) * group.params_per_unit
            changed += 1
        out.kept[name] = kept
        out.num_units[name] = plan.num_units.get(name, group.num_units)
    info = {
        "multiple": multiple,
        "groups_changed": changed,
        "extra_units": extra_units,
        "extra_parameters": extra_params,
        "unit_choice": "saved scores" if by_score else "lowest index",
    }
    return out, info


def load_saved_scores(artifact: Path) -> dict[str, torch.Tensor] | None:
    """The artifact's ``scores.safetensors`` (written by ``ukmp prune``), or None."""
    file = artifact / "scores.safetensors"
    if not file.is_file():
        return None
    return MethodScores.load(file).scores


# -------------------------------------------------------------------------------------- the models


def check_supported(model: nn.Module, ref: str) -> None:
    if not find_adapter(model).inputs.end_to_end:
        raise UserError(
            "ukmp bench measures vision-language models that write text and decoder-only language models; "
            f"{ref} is {type(model).__name__}."
        )


def _unique(name: str, taken: set[str]) -> str:
    out, i = name, 2
    while out in taken:
        out, i = f"{name}-{i}", i + 1
    taken.add(out)
    return out


def _label(ref: str) -> str:
    path = Path(ref)
    return path.name if path.name else ref


def build_from_recipe(recipe: Mapping[str, Any], dtype: torch.dtype = torch.float32) -> nn.Module:
    """A model from ``{"load": ref}`` plus, optionally, ``{"plan": dict, "apply": "masks"|"physical"}``, in ``dtype``.

    Cast right after loading, so a bf16 checkpoint measured in bf16 never exists in float32.
    """

    model = load_model(recipe["load"]).to(dtype)
    if "plan" in recipe:
        plan = PruningPlan.from_dict(recipe["plan"])
        apply = apply_plan_as_masks if recipe["apply"] == "masks" else apply_plan_physically
        apply(model, plan)
    return model.eval().requires_grad_(False)


def load_variants(model_ref: str, pruned_refs: Sequence[str], options: BenchOptions) -> list[Variant]:
    """Dense, then per artifact: pruned, masked reference, rounded variant (in the bench's dtype, on the CPU)."""

    ref = resolve_model_ref(model_ref)
    if Path(ref).is_dir() and is_pruned_artifact(ref):
        raise UserError(f"{model_ref} is a pruned artifact; give the dense model first, then the pruned ones.")
    for pruned in pruned_refs:
        if not is_pruned_artifact(pruned):
            raise UserError(
                f"{pruned} is not a ukmp pruned artifact (it has no pruning.json); pass `ukmp prune` outputs."
            )
    dtype = DTYPES[options.dtype]
    dense = load_model(ref)
    check_supported(dense, model_ref)
    # the base checksum names the weights as loaded: taken before the cast to the bench's dtype
    checksum = state_dict_sha256(dense, as_float32=True) if pruned_refs else None
    dense = dense.to(dtype).eval().requires_grad_(False)
    groups = find_adapter(dense).all_groups(dense)
    taken: set[str] = set()
    dense_name = _unique(_label(model_ref), taken)
    variants = [Variant(dense_name, "dense", model_ref, {"load": ref}, model=dense)]
    for pruned in pruned_refs:
        manifest = read_manifest(pruned)
        expected = (manifest.get("base_model") or {}).get("sha256")
        if expected:
            if checksum != expected:
                raise UserError(
                    f"{pruned} was not pruned from {model_ref} (the base checksum in its pruning.json differs); "
                    "pass the dense model it was pruned from as MODEL."
                )
        name = _unique(_label(pruned), taken)
        model = load_model(pruned).to(dtype).eval().requires_grad_(False)
        plan = PruningPlan.from_dict(manifest["groups"])
        pruned_variant = Variant(name, "pruned", pruned, {"load": str(pruned)}, manifest=manifest, model=model)
        variants.append(pruned_variant)
        if options.masked:
            masked = apply_plan_as_masks(copy.deepcopy(dense), plan)
            recipe = {"load": ref, "plan": plan.to_dict(), "apply": "masks"}
            variants.append(Variant(_unique(f"{name} masked", taken), "masked", pruned, recipe, name, model=masked))
        if options.round_to > 1:
            rounded_plan, info = round_plan(plan, groups, options.round_to, load_saved_scores(Path(pruned)))
            if info["groups_changed"] == 0:
                pruned_variant.extra["round_to_unchanged"] = options.round_to
                continue
            rounded = apply_plan_physically(copy.deepcopy(dense), rounded_plan)
            recipe = {"load": ref, "plan": rounded_plan.to_dict(), "apply": "physical"}
            variants.append(
                Variant(
                    _unique(f"{name} round-to-{options.round_to}", taken),
                    "rounded",
                    pruned,
                    recipe,
                    name,
                    extra={"round_to": info},
                    model=rounded,
                )
            )
    return variants


# ------------------------------------------------------------------------------------ inputs & ops


def bench_inputs(model: nn.Module, batch: int, options: BenchOptions) -> tuple[dict, dict]:
    """(forward inputs, generation inputs): synthetic, deterministic, identical for every model.

    What generation continues is the adapter's (``ModelInputs.bench_generate_inputs``): BLIP-2 gets
    the image and only its query-token placeholders (an empty caption prompt, ukmp's caption
    default); a model whose image is part of its prompt, or a language model, the forward's input.
    """
    forward = example_inputs(model, batch=batch, text_len=options.text_len)
    return forward, find_adapter(model).inputs.bench_generate_inputs(model, forward)


def _to(inputs: Mapping[str, torch.Tensor], device: torch.device, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    return {k: v.to(device=device, dtype=dtype if v.is_floating_point() else v.dtype) for k, v in inputs.items()}


def operations(model: nn.Module, forward: Mapping, generate: Mapping, caption_tokens: int) -> dict[str, Callable]:
    """The measured operations as zero-argument callables (``encode`` only where the adapter has an image step)."""

    inputs = find_adapter(model).inputs
    image_step = inputs.encode_inputs(forward)

    def encode():
        return model.get_image_features(**image_step, return_dict=True).pooler_output

    def full_forward():
        return model(**forward).logits

    def caption():
        return model.generate(
            **generate,
            max_new_tokens=caption_tokens,
            min_new_tokens=caption_tokens,
            do_sample=False,
            num_beams=1,
            **generation_cache(model),
        )

    if image_step is None:
        return {"forward": full_forward, "generate": caption}
    return {"encode": encode, "forward": full_forward, "generate": caption}


def component_paths(model: nn.Module) -> dict[str, str]:
    """Component -> module path whose FLOPs (children included) count for it (from the adapter)."""
    return find_adapter(model).component_paths()


def count_flops(model: nn.Module, fn: Callable[[], Any]) -> dict[str, int]:
    """FLOPs of ``fn()`` in total and per component (module tracker names are ``Class.path``)."""
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        fn()
    per_module = counter.get_flop_counts()
    root = type(model).__name__
    out = {"total": int(counter.get_total_flops())}
    for component, path in component_paths(model).items():
        out[component] = int(sum(per_module.get(f"{root}.{path}", {}).values()))
    out["other"] = out["total"] - sum(v for k, v in out.items() if k != "total")
    return out


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def spread(values: Sequence[float]) -> dict[str, Any]:
    """Median, min, max, quartiles of ``values`` (seconds), plus the raw runs."""
    data = sorted(values)
    if len(data) >= 2:
        q1, _, q3 = statistics.quantiles(data, n=4, method="inclusive")
    else:
        q1 = q3 = data[0]
    return {
        "median_s": statistics.median(data),
        "min_s": data[0],
        "max_s": data[-1],
        "q1_s": q1,
        "q3_s": q3,
        "runs_s": list(values),
    }


# -------------------------------------------------------------------------------------- measuring


def measure_static(variants: Sequence[Variant], options: BenchOptions, progress: bool = True) -> None:
    """Parameters per bucket and FLOPs per image of each operation (batch 1), into ``variant.extra``."""
    device, dtype = torch.device(options.device), DTYPES[options.dtype]
    forward, generate = bench_inputs(variants[0].model, 1, options)
    forward, generate = _to(forward, device, dtype), _to(generate, device, dtype)
    for variant in tqdm(variants, desc="parameters and FLOPs", unit="model", disable=not progress):
        model = variant.model
        variant.extra["parameters"] = parameter_counts(model, find_adapter(model))
        variant.extra["nonzero_parameters"] = int(sum(int(torch.count_nonzero(p)) for p in model.parameters()))
        ops = operations(model, forward, generate, options.caption_tokens)
        variant.extra["flops_per_image"] = {op: count_flops(model, fn) for op, fn in ops.items()}


def time_variants(
    variants: Sequence[Variant], options: BenchOptions, progress: bool = True
) -> dict[str, dict[int, dict[str, list[float]]]]:
    """name -> batch -> operation -> seconds of each repeat, measured interleaved."""
    device, dtype = torch.device(options.device), DTYPES[options.dtype]
    times: dict[str, dict[int, dict[str, list[float]]]] = {v.name: {} for v in variants}
    total = len(options.batch_sizes) * (options.warmup + options.repeats) * len(variants)
    bar = tqdm(total=total, desc="timing", unit="model-run", disable=not progress)
    for batch in options.batch_sizes:
        forward, generate = bench_inputs(variants[0].model, batch, options)
        forward, generate = _to(forward, device, dtype), _to(generate, device, dtype)
        ops = {v.name: operations(v.model, forward, generate, options.caption_tokens) for v in variants}
        for v in variants:
            times[v.name][batch] = {op: [] for op in ops[v.name]}
        gc.collect()
        for rep in range(options.warmup + options.repeats):
            shift = rep % len(variants)
            for v in list(variants[shift:]) + list(variants[:shift]):
                for op in ops[v.name]:
                    _sync(device)
                    start = time.perf_counter()
                    out = ops[v.name][op]()
                    _sync(device)
                    elapsed = time.perf_counter() - start
                    if rep >= options.warmup:
                        times[v.name][batch][op].append(elapsed)
                    if rep == 0 and op == "generate":
                        v.extra.setdefault("generated_tokens", {})[batch] = _new_tokens(v.model, out, generate)
                    del out
                bar.update(1)
            bar.set_postfix(batch=batch)
    bar.close()
    return times


def _new_tokens(model: nn.Module, output: torch.Tensor, inputs: Mapping[str, torch.Tensor]) -> int:
    """Tokens generated per sequence (the adapter knows whether the output starts with a decoder start token)."""
    return find_adapter(model).inputs.new_tokens(output, inputs)


@torch.inference_mode()
def cuda_memory(variants: Sequence[Variant], options: BenchOptions) -> dict[str, dict[int, float]]:
    """MiB: this model's weights + the allocator peak of one forward above what was allocated before."""
    device, dtype = torch.device(options.device), DTYPES[options.dtype]
    out: dict[str, dict[int, float]] = {v.name: {} for v in variants}
    for batch in options.batch_sizes:
        forward, _ = bench_inputs(variants[0].model, batch, options)
        forward = _to(forward, device, dtype)
        for v in variants:
            weights = sum(t.numel() * t.element_size() for t in [*v.model.parameters(), *v.model.buffers()])
            gc.collect()
            torch.cuda.empty_cache()
            torch.cuda.synchronize(device)
            before = torch.cuda.memory_allocated(device)
            torch.cuda.reset_peak_memory_stats(device)
            v.model(**forward)
            torch.cuda.synchronize(device)
            peak = torch.cuda.max_memory_allocated(device) - before
            out[v.name][batch] = (weights + peak) / 2**20
    return out


def cpu_memory(
    variants: Sequence[Variant], options: BenchOptions, progress: bool = True
) -> tuple[dict[str, dict[int, float | None]], dict[str, Any]]:
    """Peak RSS of one forward per model and batch, each model in its own subprocess (see module doc)."""
    out: dict[str, dict[int, float | None]] = {}
    details: dict[str, Any] = {}
    threads = options.threads or torch.get_num_threads()
    with tempfile.TemporaryDirectory(prefix="ukmp-bench-memory-") as tmp:
        for i, v in enumerate(
            tqdm(variants, desc="peak memory (subprocess per model)", unit="model", disable=not progress)
        ):
            spec = {
                "recipe": v.recipe,
                "dtype": options.dtype,
                "batch_sizes": list(options.batch_sizes),
                "text_len": options.text_len,
                "threads": threads,
            }
            spec_file = Path(tmp) / f"spec-{i}.json"
            spec_file.write_text(json.dumps(spec))
            proc = subprocess.run(
                [sys.executable, "-m", "ukmp.memory_probe", str(spec_file)],
                capture_output=True,
                text=True,
                env={**os.environ, "TQDM_DISABLE": "1"},
            )
            lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
            if proc.returncode != 0 or not lines:
                reason = (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
                print(f"warning: peak memory of {v.name} could not be measured ({reason})", file=sys.stderr)
                out[v.name] = {b: None for b in options.batch_sizes}
                details[v.name] = {"error": reason}
                continue
            result = json.loads(lines[-1])
            out[v.name] = {int(b): r["peak_mib"] for b, r in result["batches"].items()}
            details[v.name] = result
    return out, details


# ------------------------------------------------------------------------------------------ results


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


def _environment(options: BenchOptions) -> dict[str, Any]:
    import transformers

    device = torch.device(options.device)
    env: dict[str, Any] = {
        "device": str(device),
        "dtype": options.dtype,
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "cpu": _cpu_name(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": {"ukmp": __version__, "torch": torch.__version__, "transformers": transformers.__version__},
    }
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
    return env


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def summarize(
    variants: Sequence[Variant],
    times: Mapping[str, Mapping[int, Mapping[str, list[float]]]],
    memory: Mapping[str, Mapping[int, float | None]] | None,
    options: BenchOptions,
) -> list[dict[str, Any]]:
    """One JSON-able entry per model, with ratios to the dense model (and rounded vs unrounded)."""
    dense = variants[0]
    by_name = {v.name: v for v in variants}
    entries = []
    for v in variants:
        flops = v.extra["flops_per_image"]
        measured = [op for op in OPERATIONS if op in flops]  # a language model has no encode
        params = v.extra["parameters"]
        entry: dict[str, Any] = {
            "name": v.name,
            "kind": v.kind,
            "source": v.source,
            "derived_from": v.derived_from,
            "parameters": params,
            "nonzero_parameters": v.extra["nonzero_parameters"],
            "parameter_ratio": params["total"] / dense.extra["parameters"]["total"],
            "flops_per_image": flops,
            "ideal_speedup": {
                op: _ratio(dense.extra["flops_per_image"][op]["total"], flops[op]["total"]) for op in measured
            },
            "generated_tokens": v.extra.get("generated_tokens", {}),
            "batches": {},
        }
        if v.manifest is not None:
            entry["method"] = (v.manifest.get("method") or {}).get("name")
            entry["target_ratio"] = v.manifest.get("target_ratio")
            entry["achieved_ratio_of_all"] = v.manifest.get("achieved_ratio_of_all")
        if "round_to" in v.extra:
            base = by_name[v.derived_from]
            info = dict(v.extra["round_to"])
            info["extra_parameters_measured"] = params["total"] - base.extra["parameters"]["total"]
            info["achieved_ratio_of_all"] = 1 - params["total"] / dense.extra["parameters"]["total"]
            entry["round_to"] = info
        if "round_to_unchanged" in v.extra:
            entry["round_to_unchanged"] = v.extra["round_to_unchanged"]
        for batch in options.batch_sizes:
            stats = {op: spread(times[v.name][batch][op]) for op in measured}
            result: dict[str, Any] = dict(stats)
            result["throughput_images_per_s"] = {op: batch / stats[op]["median_s"] for op in measured}
            dense_stats = times[dense.name][batch]
            speedup = {op: statistics.median(dense_stats[op]) / stats[op]["median_s"] for op in measured}
            result["speedup"] = speedup
            result["of_ideal"] = {op: _ratio(speedup[op], entry["ideal_speedup"][op]) for op in measured}
            mem = memory.get(v.name, {}).get(batch) if memory is not None else None
            result["peak_memory_mib"] = mem
            dense_mem = memory.get(dense.name, {}).get(batch) if memory is not None else None
            result["memory_ratio"] = _ratio(mem, dense_mem)
            if v.kind == "rounded":
                base_times = times[v.derived_from][batch]
                result["speedup_vs_unrounded"] = {
                    op: statistics.median(base_times[op]) / stats[op]["median_s"] for op in measured
                }
            entry["batches"][str(batch)] = result
        entries.append(entry)
    return entries


def run_benchmark(
    model_ref: str,
    pruned_refs: Sequence[str] = (),
    options: BenchOptions | None = None,
    *,
    progress: bool = True,
    command: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Load, measure and summarise; returns the ``bench.json`` content (see the module doc)."""
    options = options or BenchOptions()
    options.validate()
    if options.threads is not None:
        torch.set_num_threads(options.threads)
    started = time.perf_counter()
    load_start = _loadavg()
    variants = load_variants(model_ref, pruned_refs, options)
    device, dtype = torch.device(options.device), DTYPES[options.dtype]
    for v in variants:
        v.model.to(device=device, dtype=dtype)
    measure_static(variants, options, progress)
    with torch.inference_mode():
        times = time_variants(variants, options, progress)
    memory_details: dict[str, Any] = {}
    memory: Mapping[str, Mapping[int, float | None]] | None = None
    memory_method = "not measured (--no-memory)"
    if options.memory:
        if device.type == "cuda":
            memory = cuda_memory(variants, options)
            memory_method = "cuda max_memory_allocated during one forward above the memory allocated before, + weights"
        else:
            memory, memory_details = cpu_memory(variants, options, progress)
            methods = {d.get("method") for d in memory_details.values() if "method" in d}
            memory_method = " / ".join(sorted(methods)) or "failed"
    load_end = _loadavg()
    return {
        "format": BENCH_FORMAT,
        "created_utc": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "command": list(command) if command is not None else None,
        "environment": {**_environment(options), "loadavg_start": load_start, "loadavg_end": load_end},
        "settings": {
            **{k: v for k, v in asdict(options).items() if k != "batch_sizes"},
            "batch_sizes": list(options.batch_sizes),
            "flops": "FlopCounterMode, batch 1 (per image)",
            "memory_method": memory_method,
            "timing": "wall clock, models interleaved within each repeat (rotated order), after warmup",
        },
        "reference": variants[0].name,
        "models": summarize(variants, times, memory, options),
        "memory_details": memory_details,
        "seconds": round(time.perf_counter() - started, 1),
    }


# -------------------------------------------------------------------------------------------- files


def read_bench(path: str | Path) -> dict[str, Any]:
    """A ``bench.json``, with a one-sentence error when it is not one."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise UserError(f"cannot read benchmark results {path} ({exc}).") from None
    if not isinstance(data, dict) or data.get("format") != BENCH_FORMAT:
        raise UserError(f"{path} is not a `ukmp bench` results file (format {BENCH_FORMAT}).")
    return data


def write_bench(results: Mapping[str, Any], path: str | Path) -> tuple[Path, Path]:
    """``path`` (JSON) and the same name with ``.md`` (the tables), each written atomically."""
    path = Path(path)
    json_path = write_results(dict(results), path)
    md_path = path.with_suffix(".md")
    write_text_atomic(md_path, bench_markdown(results))
    return json_path, md_path


# ----------------------------------------------------------------------------------------- markdown


def _ms(stats: Mapping[str, float] | None) -> str:
    if stats is None:
        return "–"  # not applicable (image encoding of a language model)
    return f"{stats['median_s'] * 1e3:,.1f} [{stats['min_s'] * 1e3:,.1f}–{stats['max_s'] * 1e3:,.1f}]"


def _x(value: float | None, digits: int = 2) -> str:
    return "–" if value is None or math.isnan(value) else f"{value:.{digits}f}×"


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"


def _mib(value: float | None) -> str:
    return "–" if value is None else f"{value:,.0f}"


def _m(n: int | float) -> str:
    return _sig(n / 1e6)


def _g(n: int | float) -> str:
    return _sig(n / 1e9)


def _sig(x: float) -> str:
    """Four significant digits without exponents (0.0123, 1.234, 450.1, 7000)."""
    if x == 0:
        return "0"
    digits = max(0, 3 - math.floor(math.log10(abs(x))))
    return f"{x:,.{digits}f}"


COMPONENT_ORDER = ("vision", "qformer", "projection", "lm_encoder", "lm_decoder", "lm", "lm_embeddings", "lm_head")


def bench_markdown(results: Mapping[str, Any], *, heading_level: int = 2) -> str:
    """The tables of a benchmark: models, per-component size and FLOPs, latency per batch, round-to."""
    h = "#" * heading_level
    env, settings, models = results["environment"], results["settings"], results["models"]
    dense = models[0]
    where = env.get("gpu") or env.get("cpu", "")
    lines = [
        f"{h} Benchmark: {dense['name']} vs {len(models) - 1} other model(s)",
        "",
        f"Device {env['device']} ({where}), {env['dtype']}, {env['threads']} threads, torch "
        f"{env['versions']['torch']}, transformers {env['versions']['transformers']}; load average "
        f"{_load(env.get('loadavg_start'))} at start, {_load(env.get('loadavg_end'))} at end. "
        f"{settings['repeats']} timed repeats after {settings['warmup']} warm-up, models interleaved; "
        f"times are medians in ms with [min–max]. Forward: {settings['text_len']} prompt and decoder tokens; "
        f"caption: {settings['caption_tokens']} new tokens, greedy. FLOPs counted per image. "
        f"Peak memory: {settings['memory_method']}.",
        "",
        "| model | kind | parameters (M) | of dense | non-zero (M) | forward GFLOPs/image | ideal speedup (FLOPs) |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for m in models:
        lines.append(
            f"| {m['name']} | {m['kind']} | {_m(m['parameters']['total'])} | {m['parameter_ratio']:.3f} | "
            f"{_m(m['nonzero_parameters'])} | {_g(m['flops_per_image']['forward']['total'])} | "
            f"{_x(m['ideal_speedup']['forward'])} |"
        )
    buckets = [c for c in COMPONENT_ORDER if any(c in m["parameters"] for m in models)]
    comps = [c for c in COMPONENT_ORDER if any(m["flops_per_image"]["forward"].get(c) for m in models)]
    lines += [
        "",
        f"{h}# Parameters (M) per component",
        "",
        "| model | " + " | ".join(buckets) + " |",
        "|---|" + "---:|" * len(buckets),
    ]
    for m in models:
        lines.append(f"| {m['name']} | " + " | ".join(_m(m["parameters"].get(c, 0)) for c in buckets) + " |")
    lines += [
        "",
        f"{h}# Forward GFLOPs per image per component",
        "",
        "| model | " + " | ".join(comps) + " |",
        "|---|" + "---:|" * len(comps),
    ]
    for m in models:
        f = m["flops_per_image"]["forward"]
        lines.append(f"| {m['name']} | " + " | ".join(_g(f.get(c, 0)) for c in comps) + " |")
    for batch in settings["batch_sizes"]:
        b = str(batch)
        lines += [
            "",
            f"{h}# Batch {batch}",
            "",
            "| model | image encoding ms | forward ms | caption ms | captions/s | peak MiB | "
            "forward speedup | ideal | of ideal | encode speedup (ideal) | caption speedup (ideal) |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for m in models:
            r = m["batches"][b]
            lines.append(
                f"| {m['name']} | {_ms(r.get('encode'))} | {_ms(r['forward'])} | {_ms(r['generate'])} | "
                f"{r['throughput_images_per_s']['generate']:,.2f} | {_mib(r['peak_memory_mib'])} | "
                f"{_x(r['speedup']['forward'])} | {_x(m['ideal_speedup']['forward'])} | "
                f"{_pct(r['of_ideal']['forward'])} | "
                f"{_x(r['speedup'].get('encode'))} ({_x(m['ideal_speedup'].get('encode'))}) | "
                f"{_x(r['speedup']['generate'])} ({_x(m['ideal_speedup']['generate'])}) |"
            )
    rounded = [m for m in models if m["kind"] == "rounded"]
    unchanged = [m for m in models if m.get("round_to_unchanged")]
    if rounded or unchanged:
        k = settings["round_to"]
        lines += [
            "",
            f"{h}# Round-to {k}: kept widths rounded up to a multiple of {k}",
            "",
            "Extra parameters are the cost; the speed gain is the rounded model's forward speedup over the "
            "unrounded pruned model (> 1 = faster).",
            "",
            "| rounded model | extra units | extra parameters | achieved ratio | units chosen by | "
            + " | ".join(f"forward gain b{b}" for b in settings["batch_sizes"])
            + " |",
            "|---|---:|---:|---:|---|" + "---:|" * len(settings["batch_sizes"]),
        ]
        for m in rounded:
            info = m["round_to"]
            base = next(x for x in models if x["name"] == m["derived_from"])
            gains = " | ".join(
                _x(m["batches"][str(b)]["speedup_vs_unrounded"]["forward"], 3) for b in settings["batch_sizes"]
            )
            before = base.get("achieved_ratio_of_all")
            lines.append(
                f"| {m['name']} | {info['extra_units']:,} | {info['extra_parameters_measured']:,} | "
                f"{_num(before)} → {info['achieved_ratio_of_all']:.4f} | {info['unit_choice']} | {gains} |"
            )
        for m in unchanged:
            lines.append(
                f"| {m['name']} (already a multiple of {k}: nothing to round) | 0 | 0 | – | – |"
                + " – |" * len(settings["batch_sizes"])
            )
    lines.append("")
    return "\n".join(lines)


def _num(value: float | None) -> str:
    return "–" if value is None else f"{value:.4f}"


def _load(values: Iterable[float] | None) -> str:
    return "n/a" if not values else " / ".join(f"{v:.2f}" for v in values)
