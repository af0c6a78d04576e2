"""`ukmp data shapes`: write a split of the synthetic shapes world in the real benchmarks' formats.

The written folder is directly usable as `--data DIR` (it carries its own `ukmp_data.json` index),
and splits accumulate: writing `val` and then `heldout` into the same folder keeps both.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

SPLITS = ("train", "val", "test", "heldout", "alttext")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("data", help="generate or inspect datasets", description=__doc__.splitlines()[0])
    data_sub = parser.add_subparsers(dest="data_command", metavar="DATA_COMMAND")
    shapes = data_sub.add_parser(
        "shapes",
        help="write a split of the synthetic shapes world (images, captions, VQA, CC595K-style pairs)",
        description="Write one split of the deterministic shapes world: images/<split>/*.png, "
        "captions_<split>.json (Karpathy), vqa_<split>_{questions,annotations}.json (VQAv2), "
        "cc595k_<split>.json (LLaVA CC595K) and the ukmp_data.json index.",
    )
    shapes.add_argument(
        "--split",
        required=True,
        choices=SPLITS,
        help="which split (heldout: unseen colour-shape pairs; alttext: alt-text-style captions for calibration)",
    )
    shapes.add_argument("--n", type=int, required=True, help="number of images")
    shapes.add_argument("--out", required=True, type=Path, help="output folder (created if missing)")
    shapes.add_argument("--overwrite", action="store_true", help="replace the split if it already exists there")
    shapes.set_defaults(func=run_shapes)
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])


def run_shapes(args: argparse.Namespace) -> int:
    from ukmp.data.world_writer import INDEX_NAME, write_split

    out = write_split(args.split, args.n, args.out, overwrite=args.overwrite)
    split = args.split
    captions = json.loads((out / f"captions_{split}.json").read_text())["images"]
    questions = json.loads((out / f"vqa_{split}_questions.json").read_text())["questions"]
    n_captions = sum(len(image["sentences"]) for image in captions)
    print(f"wrote the shapes world's {split!r} split to {out}:")
    rows = [
        (f"{len(captions)} images", f"images/{split}/"),
        (f"{n_captions} captions", f"captions_{split}.json (Karpathy layout)"),
        (f"{len(questions)} questions", f"vqa_{split}_questions.json + vqa_{split}_annotations.json (VQAv2)"),
        (f"{len(captions)} pairs", f"cc595k_{split}.json (LLaVA CC595K metadata)"),
        ("index", f"{INDEX_NAME} (use: --data {out} --split {split})"),
    ]
    for what, where in rows:
        print(f"  {what:<16} {where}")
    return 0
