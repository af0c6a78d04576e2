"""`ukmp inspect`: the prunable structure of a model, per component and layer.

For every component and layer: each group, its units (heads, key/value groups or channels) and
their parameters. For a pruned artifact the same table shows kept/original units and
parameters, and the manifest's method, ratio and base model.
"""

from __future__ import annotations

import argparse

from ukmp.groups import PrunableGroup


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "inspect",
        help="show groups, units and parameters per component and layer",
        description=__doc__.splitlines()[0],
    )
    parser.add_argument("model", metavar="MODEL", help="model directory, pruned artifact, hub id or zoo name")
    parser.add_argument("--gguf-file", default=None, help="the GGUF file inside the MODEL folder to load")
    parser.add_argument("--flops", action="store_true", help="also measure FLOPs of one forward on a synthetic input")
    parser.set_defaults(func=run)


def _unit_word(group: PrunableGroup) -> str:
    if group.kind == "mlp":
        return "channels"
    return "kv-groups" if group.queries_per_unit > 1 else "heads"


def run(args: argparse.Namespace) -> int:
    from ukmp.accounting import example_inputs, forward_flops, parameter_counts
    from ukmp.adapters import find_adapter
    from ukmp.loading import load_model

    model = load_model(args.model, gguf_file=args.gguf_file)
    adapter = find_adapter(model)
    manifest = getattr(model, "ukmp_manifest", None)
    plan = getattr(model, "ukmp_plan", None)
    groups = adapter.all_groups(model)
    counts = parameter_counts(model, adapter)

    print(f"{args.model}: {adapter.architecture}")
    source = getattr(model, "ukmp_source", None) or ((manifest or {}).get("base_model") or {}).get("source")
    if source:
        print(
            f"weights dequantised from {source.get('format')} file {source.get('file')} "
            f"(quantisation {source.get('quantization')}, sha256 {str(source.get('sha256'))[:12]}...)"
        )
    if manifest is not None:
        method = manifest.get("method") or {}
        base = manifest.get("base_model") or {}
        print(
            f"pruned artifact: method {method.get('name')}, target {manifest.get('target_ratio')} of "
            f"{manifest.get('ratio_basis')} parameters, achieved {manifest.get('achieved_ratio'):.4f}, "
            f"seed {manifest.get('seed')}, base {base.get('reference')}"
        )
    before = (manifest or {}).get("parameters", {}).get("before", {})
    print("parameters per component" + (" (kept / original)" if before else ""))
    for key, value in counts.items():
        original = f" / {before[key]:,}" if key in before else ""
        print(f"  {key:<14} {value:>14,}{original}")

    default = set(adapter.default_components)
    for component in adapter.available_components:
        members = [g for g in groups if g.component == component]
        if not members:
            continue
        note = "" if component in default else " (opt-in: not pruned unless requested)"
        print(f"\n{component}{note}")
        print(f"  {'layer':>5}  {'group':<11} {'units kept/orig':>22}  {'params kept/orig':>25}")
        for group in members:
            kept = len(plan.kept.get(group.name, range(group.num_units))) if plan else group.num_units
            units = f"{kept}/{group.num_units} {_unit_word(group)}"
            params = f"{kept * group.params_per_unit:,}/{group.total_params:,}"
            label = group.name.split(".")[-1]
            print(f"  {group.layer:>5}  {label:<11} {units:>22}  {params:>25}")
    if args.flops:
        flops = forward_flops(model, example_inputs(model))
        print(f"\nFLOPs per forward (synthetic input, batch 1): {flops:,}")
    return 0
