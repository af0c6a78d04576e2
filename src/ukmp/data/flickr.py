"""Flickr30K retrieval: the Karpathy `dataset_flickr30k.json` layout, 1K-image test split.

Flickr30K images carry no `filepath`, so image paths are `image_root / filename` (point
`image_root` at `flickr30k-images/`). Each image has 5 captions; retrieval ranks all of them
against all images (see `ukmp.evaluation.retrieval`).
"""

from __future__ import annotations

from pathlib import Path

from ukmp.data.captions import load_karpathy_captions
from ukmp.data.records import CaptionRecord, Records


def load_flickr30k_retrieval(
    path: str | Path, image_root: str | Path, *, split: str = "test", on_error: str = "stop"
) -> Records[CaptionRecord]:
    """The images of `split` (default the 1K Karpathy test split) with their captions."""
    return load_karpathy_captions(path, image_root, split=split, on_error=on_error)
