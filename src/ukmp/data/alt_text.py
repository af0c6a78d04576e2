"""Alt-text-like captions for the shapes world's `alttext` split: the role CC595K plays for UKMP.

The paper calibrates BLIP-2 on CC595K: web images with alt-text and BLIP-generated captions, a
distribution the model was not trained to reproduce word for word and that differs from the
benchmarks it is evaluated on. The world's `train` captions are the opposite: the shipped model was
trained on them for thousands of steps and predicts almost every token with confidence near 1, so
UKMP's token selection finds almost nothing "poorly fitted" there. This split's captions are true of
their scene but phrased the way alt-text is:

- other word orders ("circle , red , large"; "top left : a red circle"),
- partial descriptions (one object of several, attributes left out),
- noise around the description (file-name digits, "photo", stray words the tokenizer does not know),
- counts in digits, groupings by colour,

and its scenes draw every colour-shape pair, including the ones that only `heldout` shows.
Everything is derived from (split, index), so the split regenerates bit for bit.
"""

from __future__ import annotations

import numpy as np

from ukmp.data.shapes_world import CELL_NAMES, SPLIT_SEEDS, Scene, ShapeObject

ALT_TEXT_SPLIT = "alttext"
# Words a web page puts around an image description; most are outside the world's vocabulary.
_NOISE_WORDS = ("stock", "photo", "image", "vector", "icon", "clipart", "graphic", "free", "download", "hd")


def _attributes(obj: ShapeObject, rng: np.random.Generator) -> list[str]:
    """The object's words in a random order, sometimes without its size or colour."""
    words = [obj.size, obj.colour, obj.shape]
    if rng.random() < 0.3:
        words.remove(obj.size if rng.random() < 0.7 else obj.colour)
    return [words[int(i)] for i in rng.permutation(len(words))]


def _file_number(rng: np.random.Generator) -> str:
    return " ".join(str(int(d)) for d in rng.integers(0, 10, size=int(rng.integers(3, 6))))


def _one(kind: str, objs: list[ShapeObject], rng: np.random.Generator) -> str:
    shuffled = [objs[int(i)] for i in rng.permutation(len(objs))]
    if kind == "reordered":
        return " , ".join(" ".join(_attributes(o, rng)) for o in shuffled)
    if kind == "partial":
        o = shuffled[0]
        return " ".join(_attributes(o, rng)) if rng.random() < 0.5 else f"a {o.colour} {o.shape}"
    if kind == "noisy":
        noise = [_NOISE_WORDS[int(i)] for i in rng.permutation(len(_NOISE_WORDS))[: int(rng.integers(1, 3))]]
        body = " and ".join(f"{o.colour} {o.shape}" for o in shuffled[: int(rng.integers(1, len(objs) + 1))])
        return f"{' '.join(noise)} {_file_number(rng)} : {body}"
    if kind == "cells":
        o = shuffled[0]
        return f"{CELL_NAMES[o.cell]} : {' '.join(_attributes(o, rng))}"
    if kind == "digits":
        parts = " , ".join(f"{o.colour} {o.shape}" for o in shuffled)
        return f"{len(objs)} object" + ("s" if len(objs) > 1 else "") + f" : {parts}"
    if kind == "colours":
        colours = sorted({o.colour for o in objs}, key=lambda c: int(rng.integers(1000)))
        return " and ".join(colours) + (" objects on grey" if len(objs) > 1 else " object on grey")
    raise ValueError(kind)


KINDS = ("reordered", "partial", "noisy", "cells", "digits", "colours")


def alt_text_captions(scene: Scene, n: int = 5) -> list[str]:
    """`n` distinct alt-text-like descriptions of `scene` (fewer if the scene allows fewer)."""
    rng = np.random.default_rng([SPLIT_SEEDS[scene.split], scene.index, 11])
    objs = list(scene.objects)
    out: list[str] = []
    for attempt in range(40):
        if len(out) >= n:
            break
        kind = KINDS[int(rng.integers(len(KINDS)))] if attempt >= len(KINDS) else KINDS[attempt]
        text = _one(kind, objs, rng)
        if text not in out:
            out.append(text)
    order = rng.permutation(len(out))  # which phrasing comes first (caption / blip_caption) varies
    return [out[int(i)] for i in order]
