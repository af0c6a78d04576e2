"""The Markdown tables of bench/smollm2.py: perplexity per method and ratio, and what scoring cost."""

from __future__ import annotations

from typing import Any

EVAL_TITLES = {"fortunes-eval": "fortunes (in-domain)", "wordnet-eval": "WordNet (out-of-domain)"}


def _ppl(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _rel(value: float | None, dense: float | None) -> str:
    return "" if value is None or not dense else f" ({value / dense:.2f}x)"


def _order(name: str, entry: dict[str, Any], methods: list[str]) -> tuple:
    method = entry["method"]
    return (
        0 if method == "dense" else 1,
        entry["target_ratio"],
        entry.get("recovered", False),
        methods.index(method) if method in methods else len(methods),
        name,
    )


def markdown(results: dict[str, Any]) -> str:
    """results.md: settings, the perplexity table (ratios to dense in brackets), the scoring cost."""
    models = results["models"]
    methods = list(dict.fromkeys(e["method"] for e in models.values() if e["method"] != "dense"))
    dense = models.get("dense", {}).get("perplexity", {})
    s = results["settings"]
    tokens = results.get("eval_tokens", {})
    source = results.get("base_source") or {}
    lines = [
        f"# {results.get('title', 'SmolLM2-135M-Instruct (Q4_1 GGUF, dequantised)')}: perplexity after structured "
        "pruning",
        "",
        f"Base weights: `{source.get('file')}` ({source.get('quantization')}, sha256 {source.get('sha256')}), "
        f"dequantised to float32; {results.get('dense_parameters', 0):,} parameters. Ratios are fractions of "
        + (
            "the prunable parameters (attention and MLP; embeddings and LM head are never pruned)."
            if s.get("of") == "prunable"
            else "all parameters (embeddings and LM head included, never pruned)."
        ),
        "",
        f"Calibration: {s['calibration']['windows']} prefix-LM windows of {s['calibration']['seq_len']} tokens "
        "per pass from the fortunes pool. Evaluation: perplexity over the first "
        f"{s['evaluation']['windows']} non-overlapping {s['evaluation']['seq_len']}-token windows of each held-out "
        f"set ({', '.join(f'{k}: {v} predicted tokens' for k, v in tokens.items())}). Short recovery at "
        f"{s['recovery']['ratio']:g}: {s['recovery']['samples']} windows, batch {s['recovery']['batch_size']}, "
        f"lr {s['recovery']['lr']:g}.",
        "",
        "| model | ratio (achieved) | parameters | " + " | ".join(f"PPL {t}" for t in EVAL_TITLES.values()) + " |",
        "|---|---|---:|" + "---:|" * len(EVAL_TITLES),
    ]
    for _name, entry in sorted(models.items(), key=lambda kv: _order(kv[0], kv[1], methods)):
        ppl = entry.get("perplexity", {})
        label = entry["method"] + (f" ({entry['schedule']})" if entry.get("schedule") else "")
        if entry.get("recovered"):
            label += " + " + entry["recovery"]["kind"]
        ratio = "0" if entry["method"] == "dense" else f"{entry['target_ratio']:g} ({entry['achieved_ratio']:.3f})"
        cells = [_ppl(ppl.get(k)) + _rel(ppl.get(k), dense.get(k)) for k in EVAL_TITLES]
        lines.append(f"| {label} | {ratio} | {entry['parameters']:,} | " + " | ".join(cells) + " |")
    floor = s.get("load_floor_mb")  # known only when the run includes `random`, which allocates next to nothing
    lines += [
        "",
        "Scoring cost (once per method; the other ratios re-plan from the saved scores). Peak memory is the "
        "scoring process's peak RSS, which includes loading the model"
        + (f": a process that only loads it peaks at {floor} MiB." if floor is not None else "."),
        "",
        "| method | scoring seconds | peak memory (MiB) |",
        "|---|---:|---:|",
    ]
    seen = set()
    for entry in models.values():
        method = entry["method"]
        if method == "dense" or method in seen or "scoring" not in entry:
            continue
        seen.add(method)
        cost = entry["scoring"]
        lines.append(f"| {method} | {cost['seconds']:.1f} | {cost['peak_memory_mb']:.0f} |")
    recovered = [e for e in models.values() if e.get("recovered")]
    if recovered:
        lines += ["", "| recovery | seconds |", "|---|---:|"]
        lines += [f"| {e['method']}: {e['recovery']['kind']} | {e['recovery']['seconds']} |" for e in recovered]
    lines += ["", f"Run: `{results['command']}` in {results['seconds'] / 60:.1f} min; every step as a command in "
              "commands.md.", ""]  # fmt: skip
    return "\n".join(lines)
