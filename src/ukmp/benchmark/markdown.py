"""The benchmark's tables in Markdown, for `bench.md` and `ukmp report`."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from ukmp.components import forward_order


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
    buckets = [c for c in forward_order() if any(c in m["parameters"] for m in models)]
    comps = [c for c in forward_order() if any(m["flops_per_image"]["forward"].get(c) for m in models)]
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
