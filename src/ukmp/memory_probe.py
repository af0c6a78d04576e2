"""Peak CPU memory of one model's forward, measured in a fresh process (used by ``ukmp bench``).

``python -m ukmp.memory_probe SPEC.json`` builds the model described by the spec's ``recipe``
(see ``ukmp.benchmark.variants.build_from_recipe``), then for each batch size resets the kernel's peak
resident set size (writing ``5`` to ``/proc/self/clear_refs``), runs one forward and reads the new
peak (``VmHWM``). It prints one JSON line::

    {"method": ..., "runtime_mib": ..., "model_mib": ...,
     "batches": {"8": {"peak_mib": ..., "activations_mib": ...}, ...}}

``runtime_mib`` is the resident size before the model was built (Python, torch, transformers and
the model's code); ``model_mib`` what building the model and one warm-up forward added;
``peak_mib`` the forward's peak minus the runtime (weights + activations + allocator slack);
``activations_mib`` the peak minus the resident size just before the forward. A fresh process
per model keeps one model's freed-but-cached memory from hiding another's, and torch's CPU
tensors are invisible to ``tracemalloc``.
"""

from __future__ import annotations

import gc
import json
import sys
from pathlib import Path

from ukmp.peak_memory import lifetime_peak_rss_kib, reset_peak_rss, status_kib


def _own_memory(model) -> None:
    """Copy every parameter and buffer into fresh memory, in place (tied weights stay tied).

    A model loaded with ``from_pretrained`` may keep views into the memory-mapped weights file;
    then the whole mapping stays resident as long as one small tensor points into it, even after
    a plan sliced most weights away, and the probe would count the dense file for a pruned model.
    """
    import torch

    with torch.no_grad():
        for tensor in [*model.parameters(), *model.buffers()]:
            tensor.data = tensor.data.clone()


def _release_freed_memory() -> None:
    """Collect garbage and hand freed heap pages back to the kernel (glibc ``malloc_trim``).

    Building a model frees memory (file buffers, the dense weights a plan slices away) that the
    allocator would otherwise keep resident, and the resident size would count it as the model's.
    """
    gc.collect()
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass  # not glibc: the figure may then include some freed memory


def _rss_kib() -> int:
    rss = status_kib("VmRSS")
    if rss is not None:
        return rss
    return lifetime_peak_rss_kib()


def _import_model_code(ref: str) -> None:
    """Import every module the model needs by building it on the meta device (allocates nothing).

    transformers imports model code lazily; without this the runtime baseline would miss a few
    hundred MiB of imported code and count them as the model's memory.
    """
    import torch
    from transformers import AutoConfig

    from ukmp.artifact import model_class
    from ukmp.loading import resolve_model_ref

    config = AutoConfig.from_pretrained(resolve_model_ref(ref))
    with torch.device("meta"):
        model_class(config)._from_config(config)


def probe(spec: dict) -> dict:
    import torch

    from ukmp.benchmark.measurement import bench_inputs, placed
    from ukmp.benchmark.options import BenchOptions
    from ukmp.benchmark.variants import build_from_recipe
    from ukmp.placement import DTYPES

    torch.set_num_threads(int(spec.get("threads") or torch.get_num_threads()))
    _import_model_code(spec["recipe"]["load"])
    _release_freed_memory()
    runtime = _rss_kib()
    model = build_from_recipe(spec["recipe"], DTYPES[spec["dtype"]])
    _own_memory(model)
    options = BenchOptions(text_len=int(spec["text_len"]))
    with torch.inference_mode():  # one-time costs (kernel setup, lazy imports) must not count as a batch's peak
        forward, _ = bench_inputs(model, min(int(b) for b in spec["batch_sizes"]), options)
        model(**placed(forward, torch.device("cpu"), DTYPES[spec["dtype"]]))
        del forward
    _release_freed_memory()
    loaded = _rss_kib()
    exact = reset_peak_rss() and status_kib("VmHWM") is not None
    where = "in a fresh process per model, minus the RSS before loading"
    method = (
        f"peak RSS (VmHWM, reset before each forward) {where}" if exact else f"lifetime peak RSS (ru_maxrss) {where}"
    )
    batches = {}
    with torch.inference_mode():
        for batch in sorted(int(b) for b in spec["batch_sizes"]):
            forward, _ = bench_inputs(model, batch, options)
            forward = placed(forward, torch.device("cpu"), DTYPES[spec["dtype"]])
            _release_freed_memory()
            before = _rss_kib()
            if exact:
                reset_peak_rss()
            model(**forward)
            peak = status_kib("VmHWM") if exact else lifetime_peak_rss_kib()
            batches[str(batch)] = {
                "peak_mib": (peak - runtime) / 1024,
                "activations_mib": (peak - before) / 1024,
            }
            del forward
    return {
        "method": method,
        "runtime_mib": runtime / 1024,
        "model_mib": (loaded - runtime) / 1024,
        "batches": batches,
    }


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m ukmp.memory_probe SPEC.json", file=sys.stderr)
        return 2
    spec = json.loads(Path(args[0]).read_text())
    print(json.dumps(probe(spec)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
