"""Perplexity over calibration draws: one `bench/smollm2.py` run per draw, summarised with spreads.

    python3 scripts/lm_seeds_summary.py results/smollm2-seeds --reference ukmp

Reads FOLDER/seed-<s>/results.json (one `bench/smollm2.py --seed s` run each: a `ukmp compare`
results.json, or the bench's own format from before it ran `ukmp compare`) and writes
FOLDER/README.md: every model's perplexity per held-out set as mean [min-max] with each draw's value,
and, for every other method at the same ratio, whether the reference method's perplexity is lower,
paired by draw over the draws both have (holds / does not hold / within noise, 95% t-interval).
Lower perplexity is better, so "reference < method" holds when the interval of (method - reference)
lies above zero.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ukmp.atomic import write_text_atomic
from ukmp.seed_stats import paired_ordering, spread


def load_draws(folder: Path, extra: list[str]) -> dict[int, dict]:
    """{seed: that draw's results.json}, in seed order; ``extra`` adds SEED=PATH runs kept elsewhere."""
    paths = {int(p.parent.name.split("-")[1]): p for p in folder.glob("seed-*/results.json")}
    for item in extra:
        seed, _, path = item.partition("=")
        paths[int(seed)] = Path(path)
    return {seed: json.loads(paths[seed].read_text()) for seed in sorted(paths)}


def draw_perplexities(run: dict) -> dict[str, dict[str, float]]:
    """{model key: {held-out set: perplexity}} of one draw, the dense model under 'dense'."""
    if "models" in run:  # the bench's format before it ran `ukmp compare`
        return {key: model["perplexity"] for key, model in run["models"].items()}
    prefix = "perplexity ("
    models = {"dense": run["dense"]["metrics"], **{row["name"]: row["metrics"] for row in run["rows"]}}
    return {
        key: {name[len(prefix) : -1]: value for name, value in metrics.items() if name.startswith(prefix)}
        for key, metrics in models.items()
    }


def perplexities(draws: dict[int, dict]) -> dict[str, dict[str, dict[int, float]]]:
    """{model key: {held-out set: {seed: perplexity}}} (the dense model under the key 'dense')."""
    table: dict[str, dict[str, dict[int, float]]] = {}
    for seed, run in draws.items():
        for key, per_set in draw_perplexities(run).items():
            for corpus, value in per_set.items():
                table.setdefault(key, {}).setdefault(corpus, {})[seed] = value
    return table


def report(folder: Path, reference: str, draws: dict[int, dict], extra: list[str]) -> str:
    table = perplexities(draws)
    corpora = sorted({c for per in table.values() for c in per})
    seeds = list(draws)
    title = next((run["title"] for run in draws.values() if "title" in run), folder.name)  # older runs have none
    lines = [
        f"# Perplexity over {len(seeds)} calibration draws: {title}",
        "",
        f"`python3 scripts/lm_seeds_summary.py {folder.as_posix()} --reference {reference}"
        + "".join(f" --draw {item}" for item in extra)
        + "` over one "
        "`bench/smollm2.py --seed S` run per draw (each `seed-S/results.md` names its command and wall time).",
        "",
        f"Draws {', '.join(map(str, seeds))}. Cells: mean [min–max] over the draws a model has, then each draw.",
        "",
        "| model | " + " | ".join(corpora) + " |",
        "|---|" + "---|" * len(corpora),
    ]
    for key, per in table.items():
        cells = []
        for corpus in corpora:
            values = per.get(corpus, {})
            each = ", ".join(f"{values[s]:.1f}" if s in values else "–" for s in seeds)
            cells.append(f"{spread(list(values.values())).text(1)} ({each})" if values else "–")
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"Paired by draw: is `{reference}`'s perplexity lower? (difference = method − {reference}; 95% t-interval)",
        "",
        "| ratio | method | draws | " + " | ".join(corpora) + " |",
        "|---|---|---|" + "---|" * len(corpora),
    ]
    for key, per in table.items():
        method, _, tag = key.rpartition("-")
        ours = f"{reference}-{tag}"
        if key == "dense" or method == reference or ours not in table:
            continue
        cells, common = [], []
        for corpus in corpora:
            theirs, mine = per.get(corpus, {}), table[ours].get(corpus, {})
            common = [s for s in seeds if s in theirs and s in mine]
            verdict, diff = paired_ordering([theirs[s] for s in common], [mine[s] for s in common])
            cells.append(f"{verdict}: {diff.mean:+.1f} [{diff.min:+.1f}–{diff.max:+.1f}] ±{diff.ci95:.1f}")
        lines.append(f"| {int(tag)}% | {method} | {len(common)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="a folder of seed-<s>/results.json runs")
    parser.add_argument("--reference", default="ukmp", help="the method every other is paired against")
    parser.add_argument("--draw", action="append", default=[], help="SEED=PATH: a draw's results.json kept elsewhere")
    args = parser.parse_args()
    draws = load_draws(args.folder, args.draw)
    if not draws:
        print(f"error: {args.folder} holds no seed-<s>/results.json; run bench/smollm2.py --seed S --out it/seed-S.")
        return 2
    text = report(args.folder, args.reference, draws, args.draw)
    write_text_atomic(args.folder / "README.md", text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
