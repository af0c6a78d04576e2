"""`ukmp report`: a Markdown report with figures of what pruning did, how good and how fast.

RUN_DIR holds pruned models (subfolders with pruning.json), evaluation results (`ukmp evaluate`
JSON whose "model" field names a subfolder or the dense base model) and optionally bench.json
(`ukmp bench --out`); `ukmp demo`'s output folder is one, and so is `ukmp compare`'s
(artifacts/ and evals/ inside it are read too). The report (report.md and figures/*.png, with
examples.html and examples.md when the run kept examples: a compare run's examples.json, or
`ukmp evaluate --task perplexity --examples N` results) goes to RUN_DIR/report unless --out says
otherwise; a previous report there is replaced.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report",
        help="Markdown report with kept-per-layer heatmaps, quality vs ratio and the benchmark",
        description=__doc__.splitlines()[0],
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", type=Path, help="folder with artifacts and results")
    parser.add_argument("--out", type=Path, default=None, help="report folder (default: RUN_DIR/report)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ukmp.reporting import write_report

    out = write_report(args.run_dir, args.out)
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    print(f"wrote {out.resolve()}: {', '.join(files)}")
    return 0
