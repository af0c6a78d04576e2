"""Which normaliser scope `--norm-scope auto` chose in a compare run, per draw and ratio, with both losses.

    python3 scripts/scope_choices.py runs/compare-5-auto --out results/default-scope-auto/shipped/choices.md

Reads RUN/seed-<s>/artifacts/<method>-<ratio>/pruning.json (or RUN/artifacts/... for a one-draw run),
where UKMP's default records the calibration loss of the plan with one mean per modality and of the
plan with one mean per kind of unit, and writes one Markdown table: a reader sees at which ratios the
choice mattered without opening every manifest.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ukmp.atomic import write_text_atomic


def choices(run: Path, method: str) -> list[tuple[str, str, dict]]:
    """(draw, artifact name, its norm_scope_choice) for every artifact of ``method`` that recorded one."""
    found = []
    for manifest in sorted(run.glob(f"**/artifacts/{method}-*/pruning.json")):
        choice = json.loads(manifest.read_text())["method"]["options"].get("norm_scope_choice")
        if choice is not None:
            draw = manifest.parents[2].name if manifest.parents[2] != run else "-"
            found.append((draw, manifest.parent.name, choice))
    return found


def table(rows: list[tuple[str, str, dict]]) -> str:
    lines = [
        "| draw | artifact | one mean per modality | one mean per kind | chosen | margin (nats) |",
        "|---|---|---|---|---|---|",
    ]
    for draw, name, choice in rows:
        losses = choice["losses"]
        margin = abs(losses["modality"] - losses["kind"])
        lines.append(
            f"| {draw} | {name} | {losses['modality']:.4f} | {losses['kind']:.4f} | {choice['chosen']} | {margin:.4f} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="a `ukmp compare` run folder")
    parser.add_argument("--method", default="ukmp", help="artifact prefix (default: ukmp)")
    parser.add_argument("--out", type=Path, default=None, help="write the table here (default: print it)")
    args = parser.parse_args()
    rows = choices(args.run, args.method)
    if not rows:
        print(f"error: no {args.method}-* artifact under {args.run} recorded a scope choice (--norm-scope auto).")
        return 2
    samples = {row[2]["samples"] for row in rows}
    text = (
        f"# `--norm-scope auto` choices in `{args.run.as_posix()}`\n\n"
        f"`python3 scripts/scope_choices.py {args.run.as_posix()} --method {args.method}`\n\n"
        f"Mean next-token loss of each masked plan on {', '.join(map(str, sorted(samples)))} calibration samples; "
        "the lower one is kept (ties: one mean per modality).\n\n" + table(rows) + "\n"
    )
    if args.out is None:
        print(text)
    else:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(args.out, text)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
