"""`ukmp compare`: every method at every ratio on one model, from one calibration pass.

The package, one idea per module: `config` (what decides a run), `layout` (where each piece goes
in OUT), `cache` (what a cached piece records, read back), `draw` (one calibration draw's run),
`image_eval` and `text_eval` (the two evaluations: image-text tasks, or perplexity on held-out
texts for a language model calibrated on text), `metrics` (which way each metric improves),
`report` (a draw's results.md, results.json and plot), `seeds` and `seeds_report` (several draws,
paired), `run` (the entry point: one draw or N).

The run folder is the record and the cache::

    OUT/scores/<method>.safetensors       unit scores (ratio-independent; re-planned for each ratio)
    OUT/artifacts/<method>-<pct>/         the pruned models (ukmp artifacts)
    OUT/recovered/<method>-<pct>/         recovery outputs (adapter, curve, merged/), when asked
    OUT/evals/<name>.json                 one `ukmp evaluate`-format result per model, every caption and answer kept
                                          (text calibration: OUT/evals/<name>--<held-out text>.json, a perplexity each)
    OUT/results.json, results.md, quality_vs_ratio.png
    OUT/examples.html, examples.md        the dense and every pruned model's captions and answers on --examples
                                          images, side by side (`ukmp.examples_page`; examples.json, examples/)

Anything already in OUT (scores, artifacts, evaluations, recoveries) is reused, so an interrupted
run continues where it stopped; ``--overwrite`` starts afresh. Each cached piece records the settings
that decided it (`ukmp.provenance`: the scores file's metadata, the artifact's manifest, the
evaluation's JSON, a recovery's compare_settings.json) and is reused only where this run asks for
the same; otherwise the run stops with one sentence naming the setting, rather than mixing results.
The dense model is loaded once and kept dense; each (method, ratio) prunes a copy. The baselines'
activation statistics and gradients come from one shared pass (``CalibrationPass``) declared up
front with the union of their needs; UKMP runs its own passes (token-selected gradients and
entropy), as the method prescribes.

UKMP variants are methods of their own: ``ukmp:q0.34`` is UKMP with the relative threshold q0.34,
``ukmp:1.0`` UKMP with T = 1.0 (no token selection), ``ukmp:paper`` UKMP with the paper's T = 0.4;
each gets its own scores, artifacts and rows.

Seeds: with ``seeds = N > 1`` the whole comparison runs N times with seeds seed, seed+1, ... (each
seed draws other calibration samples, prefix splits and random scores) into OUT/seed-<s>/, all from
one loaded model and one dense evaluation; OUT/results.md then gives every cell as mean [min-max]
and every ordering between UKMP and a baseline as holds / does not hold / within noise
(`ukmp.compare.seeds`).

Recovery: ``none`` compares the pruning alone; ``lpd`` is the paper's protocol (UKMP recovers with
LPD, the baselines with plain LoRA on the task loss); ``lora`` gives every method plain LoRA, which
isolates the pruning criterion from the recovery method.
"""
