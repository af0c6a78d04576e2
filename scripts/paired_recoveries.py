"""Two recovered methods paired by calibration draw, from two `recovery_answers.py` results folders.

    python3 scripts/paired_recoveries.py results/recovery-lpd-vs-lora:teacher results/recovery-upop:teacher

Each argument is FOLDER:VARIANT (a variant of that folder's summary.json). The folders must hold the
same draws (the same `ukmp compare --seeds` run), so each draw's difference compares two methods
pruned from the same calibration sample; prints each metric's paired ordering (95% t-interval).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ukmp.seed_stats import paired_ordering

METRICS = ("vqa_accuracy", "CIDEr")


def figures(spec: str) -> tuple[list[int], list[dict]]:
    folder, _, variant = spec.rpartition(":")
    summary = json.loads((Path(folder) / "summary.json").read_text())
    return summary["seeds"], summary["figures"][variant]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("first", help="FOLDER:VARIANT, the method tested for being ahead")
    parser.add_argument("second", help="FOLDER:VARIANT, the method it is paired with")
    args = parser.parse_args()
    (seeds_a, a), (seeds_b, b) = figures(args.first), figures(args.second)
    if seeds_a != seeds_b:
        raise SystemExit(f"the two folders hold different draws ({seeds_a} and {seeds_b}); pair the same draws.")
    for metric in METRICS:
        first, second = [r[metric] for r in a], [r[metric] for r in b]
        verdict, diff = paired_ordering(first, second)
        per_draw = ", ".join(f"{x - y:+.2f}" for x, y in zip(first, second))
        print(f"{args.first} > {args.second} on {metric}: {verdict} ({diff.mean:+.2f} ±{diff.ci95:.2f}; {per_draw})")


if __name__ == "__main__":
    main()
