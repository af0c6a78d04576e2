"""`--data DIR`: find a task's records through the folder's `ukmp_data.json` index.

A data folder holds `ukmp_data.json`:

    {"format": "ukmp-data-index/1", "name": "...",
     "splits": {"val": {
        "captions":    {"format": "karpathy" | "nocaps" | "jsonl", "file": ..., "image_root": ...,
                        "split": ...},
        "vqa":         {"format": "vqav2" | "okvqa" | "jsonl", "questions": ..., "annotations": ... (optional),
                        "image_root": ..., "image_pattern": "COCO_val2014_{image_id:012d}.jpg"},
        "gqa":         {"format": "gqa" | "jsonl", "file": ..., "image_root": ...},
        "retrieval":   {"format": "karpathy" | "flickr30k" | "jsonl", "file": ..., "image_root": ...,
                        "split": ...},
        "calibration": {"format": "cc595k" | "jsonl", "file": ..., "image_root": ...}}}}

Paths are relative to the folder. The shapes world writes this index itself; for a real dataset
you write a few lines of it once (the format of each entry is the dataset's own, so no conversion).
`--data shapes` means the built-in world, generated on first use into a cache folder.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ukmp.data.captions import load_karpathy_captions, load_nocaps
from ukmp.data.cc595k import load_cc595k
from ukmp.data.jsonl import load_jsonl_captions, load_jsonl_pairs, load_jsonl_vqa
from ukmp.data.reading import check_on_error, read_json
from ukmp.data.records import Records
from ukmp.data.vqa import COCO_VAL2014_PATTERN, load_gqa, load_vqav2
from ukmp.errors import UserError

INDEX_NAME = "ukmp_data.json"
SHAPES = "shapes"
DEFAULT_SHAPES_IMAGES = 500
# The built-in world calibrates on its alt-text split (the CC595K role: captions the model was not
# trained on); a user's own data folder on its train split.
SHAPES_CALIB_SPLIT = "alttext"

# Task name on the command line -> key of its entry in a split of the index.
TASK_KEYS = {
    "caption": "captions",
    "vqa": "vqa",
    "gqa": "gqa",
    "retrieval": "retrieval",
    "calibration": "calibration",
}


def cache_dir() -> Path:
    """Where generated data lives: $UKMP_CACHE, else ~/.cache/ukmp."""
    return Path(os.environ.get("UKMP_CACHE") or Path.home() / ".cache" / "ukmp")


def portable_path(path: str | Path) -> str:
    """`path` for a results file: under the data cache it is written as `$UKMP_CACHE/...`, so results
    of generated data read the same on every machine (and name no home folder); other paths as given."""
    try:
        return str(Path("$UKMP_CACHE") / Path(path).resolve().relative_to(cache_dir().resolve()))
    except ValueError:
        return str(path)


def local_path(portable: str) -> Path:
    """A path as `portable_path` wrote it, on this machine: `$UKMP_CACHE/...` under this machine's cache."""
    prefix = "$UKMP_CACHE"
    if portable == prefix or portable.startswith(prefix + "/"):
        return cache_dir() / portable[len(prefix) :].lstrip("/")
    return Path(portable).expanduser()


def is_builtin_world(arg: str | Path | None) -> bool:
    """`shapes` names the built-in world unless a folder of that name exists here."""
    return str(arg) == SHAPES and not Path(SHAPES).exists()


def is_world_cache(path: str | Path) -> bool:
    """Whether `path` is the built-in world's cache folder, which runs of every size share."""
    try:
        return Path(path).resolve() == (cache_dir() / SHAPES).resolve()
    except OSError:
        return False


def default_calib_split(calib: str | Path | None) -> str:
    """The calibration split used when none is given: `alttext` for the built-in world, else `train`."""
    return SHAPES_CALIB_SPLIT if is_builtin_world(calib) else "train"


def resolve_data_dir(
    arg: str | Path, split: str, n_default: int = DEFAULT_SHAPES_IMAGES, *, flag: str = "--data"
) -> Path:
    """The data folder meant by `--data`; `shapes` generates the world's split into the cache if missing.

    Generation happens once (a 500-image split takes seconds) and later runs reuse the files, so
    `ukmp evaluate shapes-blip2-t5 --data shapes` works with no separate data step. A cached split
    smaller than `n_default` is regenerated at the larger size (a caller needing 2000 calibration
    images must not silently get 500); a larger one is reused as it is (use a limit to read less).
    """
    if is_builtin_world(arg):
        from ukmp.data.world_writer import write_split

        root = cache_dir() / SHAPES
        index_path = root / INDEX_NAME
        splits = read_json(index_path).get("splits", {}) if index_path.is_file() else {}
        if splits.get(split, {}).get("num_images", 0) < n_default:
            print(f"generating the shapes world's {split!r} split ({n_default} images) into {root}")
            write_split(split, n_default, root, overwrite=True)
        return root
    root = Path(arg)
    accepted = f"a folder holding {INDEX_NAME} (e.g. one written by `ukmp data shapes`), or `{flag} shapes`"
    if root.is_file():
        raise UserError(
            f"{flag} {root} is a file; give {accepted} (a language model also takes a .txt or .jsonl file)."
        )
    if not root.exists():
        raise UserError(f"{flag} {root} does not exist; give {accepted}.")
    read_split(root, split)  # fail now, with a clear sentence, rather than at the first task
    return root


def read_index(data_dir: str | Path) -> dict[str, Any]:
    """The parsed index of a data folder."""
    path = Path(data_dir) / INDEX_NAME
    if not path.is_file():
        raise UserError(
            f"{data_dir} has no {INDEX_NAME}; write one (see `ukmp.data.index`) or create the folder with "
            f"`ukmp data shapes`."
        )
    index = read_json(path)
    if not isinstance(index, dict) or not isinstance(index.get("splits"), dict):
        raise UserError(f"{path} has no 'splits' object; see `ukmp.data.index` for its layout.")
    return index


def read_split(data_dir: str | Path, split: str) -> dict[str, Any]:
    """The index entry of one split (task key -> file description)."""
    splits = read_index(data_dir)["splits"]
    if split not in splits:
        have = ", ".join(sorted(splits)) or "none"
        raise UserError(f"{data_dir} has no {split!r} split (it has: {have}); pass one of those with --split.")
    return splits[split]


def available_tasks(data_dir: str | Path, split: str) -> list[str]:
    """The task names the split provides, in `TASK_KEYS` order."""
    entry = read_split(data_dir, split)
    return [task for task, key in TASK_KEYS.items() if key in entry]


def load_task(data_dir: str | Path, split: str, task: str, *, on_error: str = "stop") -> Records:
    """The records of `task` (caption, vqa, gqa, retrieval, calibration) in `split` of a data folder."""
    check_on_error(on_error)
    if task not in TASK_KEYS:
        raise UserError(f"unknown task {task!r}; choose one of {', '.join(TASK_KEYS)}.")
    root = Path(data_dir)
    entry = read_split(root, split).get(TASK_KEYS[task])
    if not isinstance(entry, dict):
        raise UserError(
            f"the {split!r} split of {root} has no {task} data; add a {TASK_KEYS[task]!r} entry to its "
            f"{INDEX_NAME} or choose another --task."
        )
    fmt = entry.get("format")

    def path(key: str) -> Path:
        if not isinstance(entry.get(key), str):
            raise UserError(f"the {task} entry of split {split!r} in {root / INDEX_NAME} has no {key!r} file name.")
        return root / entry[key]

    image_root = root / entry.get("image_root", ".")
    jsonl_root = root / entry["image_root"] if "image_root" in entry else None
    kw = {"on_error": on_error}
    if task in ("caption", "retrieval") and fmt in ("karpathy", "flickr30k"):
        return load_karpathy_captions(path("file"), image_root, split=entry.get("split"), **kw)
    if task == "caption" and fmt == "nocaps":
        return load_nocaps(path("file"), image_root, **kw)
    if task in ("caption", "retrieval") and fmt == "jsonl":
        return load_jsonl_captions(path("file"), jsonl_root, **kw)
    if task in ("vqa", "gqa") and fmt in ("vqav2", "okvqa"):
        pattern = entry.get("image_pattern", COCO_VAL2014_PATTERN)
        answers = path("annotations") if "annotations" in entry else None  # questions alone: label-free uses
        return load_vqav2(path("questions"), answers, image_root, image_pattern=pattern, **kw)
    if task in ("vqa", "gqa") and fmt == "gqa":
        return load_gqa(path("file"), image_root, **kw)
    if task in ("vqa", "gqa") and fmt == "jsonl":
        return load_jsonl_vqa(path("file"), jsonl_root, **kw)
    if task == "calibration" and fmt == "cc595k":
        return load_cc595k(path("file"), image_root, **kw)
    if task == "calibration" and fmt == "jsonl":
        return load_jsonl_pairs(path("file"), jsonl_root, **kw)
    raise UserError(
        f"the {task} entry of split {split!r} in {root / INDEX_NAME} has format {fmt!r}, which ukmp "
        f"cannot read for {task}; see `ukmp.data.index` for the supported formats."
    )
