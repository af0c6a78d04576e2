"""Captioning datasets: COCO in the Karpathy layout, and NoCaps val.

The Karpathy file (`dataset_coco.json`, also `dataset_flickr30k.json`) lists images, each with its
`filepath` (COCO only), `filename`, `split` and `sentences[].raw`; the shapes world writes the same
layout, which is why one loader serves both. NoCaps val (`nocaps_val_4500_captions.json`) is in the
COCO-annotations layout instead: `images[{id, file_name}]` plus `annotations[{image_id, caption}]`.
"""

from __future__ import annotations

from pathlib import Path

from ukmp.data.reading import RecordCollector, check_on_error, layout_error, need, read_json, reason
from ukmp.data.records import CaptionRecord, Records


def load_karpathy_captions(
    path: str | Path, image_root: str | Path, *, split: str | None = None, on_error: str = "stop"
) -> Records[CaptionRecord]:
    """Images with their reference captions from a Karpathy-layout file.

    `split` keeps only images whose `split` field matches (`"test"` for the Karpathy COCO test set,
    `"val"` / `"test"` / ... for a shapes-world file); None keeps all. The image path is
    `image_root / filepath / filename`, `filepath` being optional (Flickr30K has none).
    """
    check_on_error(on_error)
    data = read_json(path)
    out: RecordCollector[CaptionRecord] = RecordCollector(path, on_error)
    images = data.get("images") if isinstance(data, dict) else None
    if not isinstance(images, list):
        raise layout_error(path, "Karpathy-layout caption", "no top-level 'images' list")
    root = Path(image_root)
    for index, item in enumerate(images):
        try:
            if split is not None and need(item, "split") != split:
                continue
            filename = need(item, "filename")
            filepath = item.get("filepath", "")
            if not isinstance(filepath, str):
                raise TypeError("has a 'filepath' field that is not a str")
            sentences = need(item, "sentences", list)
            refs = tuple(need(s, "raw") for s in sentences)
            if not refs:
                raise ValueError("has no reference sentences")
            image_id = item.get("cocoid", item.get("imgid", index))
        except (KeyError, TypeError, ValueError) as exc:
            out.bad(index, reason(exc))
            continue
        image_path = root / filepath / filename
        if out.image_exists(image_path, index):
            out.add(CaptionRecord(image_path, image_id, refs))
    return out.finish()


def load_nocaps(path: str | Path, image_root: str | Path, *, on_error: str = "stop") -> Records[CaptionRecord]:
    """NoCaps val images with their (10) reference captions; images without any caption are errors."""
    check_on_error(on_error)
    data = read_json(path)
    out: RecordCollector[CaptionRecord] = RecordCollector(path, on_error)
    for key in ("images", "annotations"):
        if not isinstance(data, dict) or not isinstance(data.get(key), list):
            raise layout_error(path, "NoCaps caption", f"no top-level {key!r} list")

    refs: dict[int | str, list[str]] = {}
    for index, ann in enumerate(data["annotations"]):
        try:
            refs.setdefault(need(ann, "image_id", (int, str)), []).append(need(ann, "caption"))
        except (KeyError, TypeError) as exc:
            out.bad(f"annotations[{index}]", reason(exc))

    root = Path(image_root)
    for index, item in enumerate(data["images"]):
        try:
            image_id = need(item, "id", (int, str))
            file_name = need(item, "file_name")
            captions = refs.get(image_id)
            if not captions:
                raise ValueError("has no caption in 'annotations'")
        except (KeyError, TypeError, ValueError) as exc:
            out.bad(f"images[{index}]", reason(exc))
            continue
        image_path = root / file_name
        if out.image_exists(image_path, f"images[{index}]"):
            out.add(CaptionRecord(image_path, image_id, tuple(captions)))
    return out.finish()
