"""LLaVA CC595K metadata: image-caption pairs for calibration and recovery (docs/method-notes.md).

Each record of `metadata.json` (LLaVA-CC3M-Pretrain-595K) is `{id, image, caption, blip_caption,
url}`. UKMP calibrates on the BLIP-generated caption and falls back to the raw CC3M caption where
`blip_caption` is missing or empty; the shapes world's `cc595k_<split>.json` has the same fields.
"""

from __future__ import annotations

from pathlib import Path

from ukmp.data.reading import RecordCollector, check_on_error, layout_error, read_json
from ukmp.data.records import Records, TextPair


def load_cc595k(path: str | Path, image_root: str | Path, *, on_error: str = "stop") -> Records[TextPair]:
    """(image, caption) pairs, the caption being `blip_caption` or else `caption`."""
    check_on_error(on_error)
    data = read_json(path)
    if not isinstance(data, list):
        raise layout_error(path, "LLaVA CC595K metadata", "the top level is not a list of records")
    out: RecordCollector[TextPair] = RecordCollector(path, on_error)
    root = Path(image_root)
    for index, item in enumerate(data):
        if not isinstance(item, dict):
            out.bad(index, "is not a JSON object")
            continue
        image = item.get("image")
        caption = item.get("blip_caption") or item.get("caption")
        if not isinstance(image, str) or not image:
            out.bad(index, "has no 'image' path")
            continue
        if not isinstance(caption, str) or not caption.strip():
            out.bad(index, "has neither a 'blip_caption' nor a 'caption'")
            continue
        image_path = root / image
        if out.image_exists(image_path, index):
            out.add(TextPair(image_path, caption))
    return out.finish()
