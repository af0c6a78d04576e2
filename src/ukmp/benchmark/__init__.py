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

One idea per module: ``options`` (what to measure), ``variants`` (the models and their recipes),
``measurement`` (inputs, FLOPs, interleaved timing), ``memory`` (peak memory of one forward),
``summary`` (figures and ratios), ``run`` (``run_benchmark``: all of it in one process), ``files``
(``bench.json`` / ``bench.md``) and ``markdown`` (the tables).
"""
