"""``run_benchmark``: load, measure and summarise in one process (see `ukmp.benchmark`)."""

from __future__ import annotations

import datetime as _dt
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

import torch

from ukmp.benchmark.measurement import measure_static, time_variants
from ukmp.benchmark.memory import cpu_memory, cuda_memory
from ukmp.benchmark.options import BENCH_FORMAT, BenchOptions
from ukmp.benchmark.summary import load_average, machine, summarize
from ukmp.benchmark.variants import load_variants
from ukmp.placement import DTYPES


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
    load_start = load_average()
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
    load_end = load_average()
    return {
        "format": BENCH_FORMAT,
        "created_utc": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "command": list(command) if command is not None else None,
        "environment": {**machine(options), "loadavg_start": load_start, "loadavg_end": load_end},
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
