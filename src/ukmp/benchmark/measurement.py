"""Inputs, FLOPs and interleaved wall-clock timing of every variant's operations."""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode
from tqdm.auto import tqdm

from ukmp.accounting import example_inputs, parameter_counts
from ukmp.adapters import find_adapter
from ukmp.benchmark.options import BenchOptions
from ukmp.benchmark.variants import Variant
from ukmp.evaluation.generation import generation_cache
from ukmp.placement import DTYPES


def bench_inputs(model: nn.Module, batch: int, options: BenchOptions) -> tuple[dict, dict]:
    """(forward inputs, generation inputs): synthetic, deterministic, identical for every model.

    What generation continues is the adapter's (``ModelInputs.bench_generate_inputs``): BLIP-2 gets
    the image and only its query-token placeholders (an empty caption prompt, ukmp's caption
    default); a model whose image is part of its prompt, or a language model, the forward's input.
    """
    forward = example_inputs(model, batch=batch, text_len=options.text_len)
    return forward, find_adapter(model).inputs.bench_generate_inputs(model, forward)


def placed(inputs: Mapping[str, torch.Tensor], device: torch.device, dtype: torch.dtype) -> dict[str, torch.Tensor]:
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


def measure_static(variants: Sequence[Variant], options: BenchOptions, progress: bool = True) -> None:
    """Parameters per bucket and FLOPs per image of each operation (batch 1), into ``variant.extra``."""
    device, dtype = torch.device(options.device), DTYPES[options.dtype]
    forward, generate = bench_inputs(variants[0].model, 1, options)
    forward, generate = placed(forward, device, dtype), placed(generate, device, dtype)
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
        forward, generate = placed(forward, device, dtype), placed(generate, device, dtype)
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
