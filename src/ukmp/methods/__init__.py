"""Pruning methods, one module each, and the machinery they share.

A method's module holds its scores, its options and its ``Scorer`` subclass (`flap.py`,
`llm_pruner.py`, `wanda_sp.py`, ...); where the formula alone is long it has a sibling module
named after it (`ukmi.py`, UKMP's importance, beside `ukmp.py`, its scorer). `base.py` defines the
interface, `registry.py` finds methods by name. The rest is shared: one calibration pass for every
baseline (`calibration_pass.py`), activation statistics, per-unit sums, entropy, token selection,
the logit/label alignment (`targets.py`), the member weights' gradients, UKMP's presets and
LLM-Pruner's end-layer rule (`end_layers.py`).
"""
