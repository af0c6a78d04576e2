"""One method's VQA over the same calibration draws in several `ukmp compare --seeds` runs, paired by draw.

    python3 scripts/paired_runs.py --method ukmp --ratio 0.5 \
        --run "no search=results/question-noise/compare.json" \
        --run "labelled judge=results/question-noise/plan-search/compare.json" \
        --run "teacher judge=runs/judge-teacher/results.json" --out results/label-free-judge/shipped-50.md

Each file is a compare run's seed summary (`results.json` of a `--seeds` run, format
`ukmp-compare-seeds/1`). Rows: each run's per-draw values, mean [min-max] and span; then every
pair's ordering over the draws both have (95% t-interval of the mean difference).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ukmp.atomic import write_text_atomic
from ukmp.seed_stats import paired_ordering, spread

METRIC = "VQA accuracy (%)"


def per_draw(file: Path, method: str, ratio: float) -> dict[int, float]:
    """{seed: VQA} of `method` at `ratio` before recovery in one seed summary."""
    data = json.loads(file.read_text())
    for cell in data["cells"]:
        if cell["method"] == method and abs(cell["target_ratio"] - ratio) < 1e-9 and not cell.get("recovery"):
            return dict(zip(cell["seeds"], cell["metrics"][METRIC], strict=True))
    raise SystemExit(f"{file} has no {method} cell at {ratio:g} without recovery.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", default="ukmp")
    parser.add_argument("--ratio", type=float, default=0.5)
    parser.add_argument("--run", action="append", required=True, help="NAME=FILE (a compare seed summary)")
    parser.add_argument("--title", default=None)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    runs = {name: per_draw(Path(file), args.method, args.ratio) for name, file in (r.split("=", 1) for r in args.run)}
    title = args.title or f"{args.method} at {args.ratio:.0%} removed: VQA % over the same draws"
    lines = [f"# {title}", "", "| run | per draw (seed: VQA) | mean [min–max] | span |", "|---|---|---|---|"]
    for name, values in runs.items():
        s = spread(list(values.values()))
        draws = ", ".join(f"{seed}: {v:.1f}" for seed, v in sorted(values.items()))
        lines.append(f"| {name} | {draws} | {s.text(1)} | {s.max - s.min:.1f} |")
    lines += ["", "Paired by draw (95% t-interval of the mean difference):", ""]
    names = list(runs)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            common = sorted(set(runs[a]) & set(runs[b]))
            verdict, diff = paired_ordering([runs[b][s] for s in common], [runs[a][s] for s in common])
            lines.append(f"- {b} > {a}: **{verdict}** ({diff.mean:+.2f} ±{diff.ci95:.2f}, {len(common)} draws)")
    lines += ["", "Sources:", "", *[f"- {r}" for r in args.run]]
    write_text_atomic(args.out, "\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
