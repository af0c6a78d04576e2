"""Per-model figures and ratios against the dense model, with the machine they were measured on."""

from __future__ import annotations

import os
import platform
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from ukmp.benchmark.measurement import spread
from ukmp.benchmark.options import OPERATIONS, BenchOptions
from ukmp.benchmark.variants import Variant
from ukmp.version import __version__


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


def machine(options: BenchOptions) -> dict[str, Any]:
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


def load_average() -> list[float] | None:
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
