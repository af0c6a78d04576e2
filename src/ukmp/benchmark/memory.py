"""Peak memory of one forward: the CUDA allocator's counter, or a fresh process's kernel peak on a CPU."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from ukmp.benchmark.measurement import bench_inputs, placed
from ukmp.benchmark.options import BenchOptions
from ukmp.benchmark.variants import Variant
from ukmp.placement import DTYPES


@torch.inference_mode()
def cuda_memory(variants: Sequence[Variant], options: BenchOptions) -> dict[str, dict[int, float]]:
    """MiB: this model's weights + the allocator peak of one forward above what was allocated before."""
    device, dtype = torch.device(options.device), DTYPES[options.dtype]
    out: dict[str, dict[int, float]] = {v.name: {} for v in variants}
    for batch in options.batch_sizes:
        forward, _ = bench_inputs(variants[0].model, batch, options)
        forward = placed(forward, device, dtype)
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
