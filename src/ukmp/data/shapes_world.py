"""The shapes world: a deterministic, procedurally generated image-text world.

Every claim `ukmp` makes about quality needs a model that really knows something, and the tests
cannot download images. This module draws small RGB scenes of coloured shapes on a 2x2 grid and
describes them with captions and VQA questions whose answers are exact. Because everything is
derived from a scene description, the world can be regenerated bit for bit from (split, index).

Design choices that matter for learnability (objects against the patches of the shipped ViT):
- 64 px images, a 2x2 grid of 32 px cells, one object per cell at most (occlusion-free by design);
- the shipped ViT uses 32 px patches, so each patch shows exactly one cell and a whole object;
  with 8 px patches an object's shape is spread over 4-16 mostly uniform patches and a model
  trained on a CPU budget never learned to tell the shapes apart;
- large objects fill ~85% of their cell (27 px), small ones ~50% (16 px);
- a plain grey background with mild per-image brightness jitter and a one-pixel position jitter.

The `heldout` split uses colour-shape pairs that never occur in train/val/test, to measure
compositional generalisation. The `alttext` split draws every pair and is described in alt-text
style (`ukmp.data.alt_text`): calibration data the model has not memorised, as CC595K is for BLIP-2.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

IMAGE_SIZE = 64
GRID = 2
CELL = IMAGE_SIZE // GRID

SHAPES = ("circle", "square", "triangle", "diamond", "cross", "ring")
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 170, 40),
    "blue": (30, 70, 225),
    "yellow": (240, 220, 30),
    "purple": (140, 40, 185),
    "orange": (250, 140, 20),
    "white": (250, 250, 250),
    "black": (15, 15, 15),
}
SIZES = ("small", "large")
CELL_NAMES = ("top left", "top right", "bottom left", "bottom right")

# Colour-shape pairs that only the `heldout` split contains: one per shape, no colour twice.
HELDOUT_PAIRS = frozenset(
    {
        ("red", "triangle"),
        ("blue", "circle"),
        ("green", "square"),
        ("yellow", "diamond"),
        ("purple", "cross"),
        ("orange", "ring"),
    }
)

SPLIT_SEEDS = {"train": 1, "val": 2, "test": 3, "heldout": 4, "alttext": 5}
# Splits whose scenes may use every colour-shape pair (the others never show HELDOUT_PAIRS).
OPEN_PAIR_SPLITS = ("heldout", "alttext")
NUMBER_WORDS = ("zero", "one", "two", "three", "four")
QUESTION_TYPES = ("color", "shape", "count", "exist", "position", "size")


@dataclass(frozen=True)
class ShapeObject:
    """One object of a scene: what it is and which grid cell it occupies."""

    shape: str
    colour: str
    size: str
    cell: int  # 0..3, row-major over the 2x2 grid

    @property
    def row(self) -> int:
        return self.cell // GRID

    @property
    def col(self) -> int:
        return self.cell % GRID

    def phrase(self, with_size: bool = True) -> str:
        return f"{self.size} {self.colour} {self.shape}" if with_size else f"{self.colour} {self.shape}"


@dataclass(frozen=True)
class Scene:
    """A whole image: its objects plus the small rendering jitters."""

    split: str
    index: int
    objects: tuple[ShapeObject, ...]
    background: int
    offsets: tuple[tuple[int, int], ...]

    @property
    def image_id(self) -> int:
        return SPLIT_SEEDS[self.split] * 10_000_000 + self.index


def _rng(split: str, index: int, stream: int) -> np.random.Generator:
    if split not in SPLIT_SEEDS:
        raise ValueError(f"unknown split {split!r}; choose one of {sorted(SPLIT_SEEDS)}")
    return np.random.default_rng([SPLIT_SEEDS[split], index, stream])


def _allowed(colour: str, shape: str, split: str) -> bool:
    return split in OPEN_PAIR_SPLITS or (colour, shape) not in HELDOUT_PAIRS


def make_scene(split: str, index: int) -> Scene:
    """Draw the scene description of image `index` of `split`, deterministically."""
    rng = _rng(split, index, 0)
    n_objects = int(rng.integers(1, GRID * GRID + 1))
    cells = rng.permutation(GRID * GRID)[:n_objects]
    objects: list[ShapeObject] = []
    used: set[tuple[str, str, str]] = set()
    for cell in sorted(int(c) for c in cells):
        while True:
            shape = SHAPES[int(rng.integers(len(SHAPES)))]
            colour = list(COLOURS)[int(rng.integers(len(COLOURS)))]
            size = SIZES[int(rng.integers(len(SIZES)))]
            # no two identical (size, colour, shape) objects, so every phrase names one object
            if _allowed(colour, shape, split) and (size, colour, shape) not in used:
                break
        used.add((size, colour, shape))
        objects.append(ShapeObject(shape, colour, size, cell))
    if split == "heldout" and not any((o.colour, o.shape) in HELDOUT_PAIRS for o in objects):
        pairs = sorted(HELDOUT_PAIRS)
        colour, shape = pairs[int(rng.integers(len(pairs)))]
        k = int(rng.integers(len(objects)))
        old = objects[k]
        objects[k] = ShapeObject(shape, colour, old.size, old.cell)
        if len({(o.size, o.colour, o.shape) for o in objects}) < len(objects):
            objects[k] = ShapeObject(shape, colour, "large" if old.size == "small" else "small", old.cell)
    background = int(rng.integers(110, 150))
    offsets = tuple((int(rng.integers(-1, 2)), int(rng.integers(-1, 2))) for _ in objects)
    return Scene(split, index, tuple(objects), background, offsets)


def _polygon(shape: str, cx: float, cy: float, r: float) -> list[tuple[float, float]]:
    if shape == "triangle":
        return [(cx + r * math.cos(a), cy + r * math.sin(a)) for a in (-math.pi / 2, math.pi / 6, 5 * math.pi / 6)]
    if shape == "diamond":
        return [(cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy)]
    if shape == "cross":
        t = r / 2.8
        return [
            (cx - t, cy - r),
            (cx + t, cy - r),
            (cx + t, cy - t),
            (cx + r, cy - t),
            (cx + r, cy + t),
            (cx + t, cy + t),
            (cx + t, cy + r),
            (cx - t, cy + r),
            (cx - t, cy + t),
            (cx - r, cy + t),
            (cx - r, cy - t),
            (cx - t, cy - t),
        ]
    raise ValueError(shape)


def render(scene: Scene) -> Image.Image:
    """Render a scene to a 64x64 RGB image."""
    bg = (scene.background,) * 3
    image = Image.new("RGB", (IMAGE_SIZE, IMAGE_SIZE), bg)
    draw = ImageDraw.Draw(image)
    for obj, (dx, dy) in zip(scene.objects, scene.offsets):
        r = (0.43 if obj.size == "large" else 0.25) * CELL
        cx = obj.col * CELL + CELL / 2 + dx
        cy = obj.row * CELL + CELL / 2 + dy
        fill = COLOURS[obj.colour]
        box = (cx - r, cy - r, cx + r, cy + r)
        if obj.shape == "circle":
            draw.ellipse(box, fill=fill)
        elif obj.shape == "square":
            s = r * 0.85
            draw.rectangle((cx - s, cy - s, cx + s, cy + s), fill=fill)
        elif obj.shape == "ring":
            draw.ellipse(box, fill=fill)
            h = r * 0.5
            draw.ellipse((cx - h, cy - h, cx + h, cy + h), fill=bg)
        else:
            draw.polygon(_polygon(obj.shape, cx, cy, r), fill=fill)
    return image


def _plural(shape: str) -> str:
    return shape + "es" if shape.endswith("s") else shape + "s"


def _relation(a: ShapeObject, b: ShapeObject) -> str:
    """Spatial relation of a with respect to b, preferring left/right when the columns differ."""
    if a.col != b.col:
        return "to the left of" if a.col < b.col else "to the right of"
    return "above" if a.row < b.row else "below"


def _article(phrase: str) -> str:
    return "an" if phrase[0] in "aeiou" else "a"


def captions(scene: Scene, n: int = 5) -> list[str]:
    """Several captions with varied phrasing, all true of the scene."""
    rng = _rng(scene.split, scene.index, 1)
    objs = list(scene.objects)
    out: list[str] = []
    templates = ["list", "relation", "count", "scene", "grouped", "where"]
    order = rng.permutation(len(templates))
    attempts = 0
    while len(out) < n and attempts < 40:
        kind = (
            templates[int(order[attempts % len(templates)])]
            if attempts < len(templates)
            else templates[int(rng.integers(len(templates)))]
        )
        attempts += 1
        shuffled = [objs[i] for i in rng.permutation(len(objs))]
        text = ""
        if kind == "list":
            parts = [f"{_article(o.phrase())} {o.phrase()}" for o in shuffled]
            text = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
        elif kind == "relation" and len(objs) >= 2:
            a, b = shuffled[0], shuffled[1]
            text = f"{_article(a.phrase())} {a.phrase()} {_relation(a, b)} {_article(b.phrase())} {b.phrase()}"
        elif kind == "count":
            text = f"{NUMBER_WORDS[len(objs)]} object" + ("s" if len(objs) > 1 else "") + " on a grey background"
            text += ": " + " and ".join(o.phrase(with_size=False) for o in shuffled)
        elif kind == "scene":
            text = "a picture of " + " and ".join(f"{_article(o.phrase())} {o.phrase()}" for o in shuffled)
        elif kind == "grouped":
            by_shape: dict[str, list[ShapeObject]] = {}
            for o in shuffled:
                by_shape.setdefault(o.shape, []).append(o)
            parts = []
            for shape, group in by_shape.items():
                if len(group) == 1:
                    parts.append(f"one {group[0].colour} {shape}")
                elif len({g.colour for g in group}) == 1:
                    parts.append(f"{NUMBER_WORDS[len(group)]} {group[0].colour} {_plural(shape)}")
                else:
                    cols = " and ".join(f"one {g.colour}" for g in group)
                    parts.append(f"{NUMBER_WORDS[len(group)]} {_plural(shape)}, {cols}")
            text = "; ".join(parts)
        elif kind == "where":
            o = shuffled[0]
            text = f"{_article(o.phrase())} {o.phrase()} in the {CELL_NAMES[o.cell]}"
            if len(objs) > 1:
                text += f" and {NUMBER_WORDS[len(objs) - 1]} other object" + ("s" if len(objs) > 2 else "")
        if text and text not in out:
            out.append(text)
    return out


@dataclass(frozen=True)
class Question:
    """One VQA question with its exact answer and its question type."""

    question: str
    answer: str
    qtype: str


def questions(scene: Scene) -> list[Question]:
    """One question of each type that the scene supports (colour, shape, count, exist, position, size)."""
    rng = _rng(scene.split, scene.index, 2)
    objs = list(scene.objects)
    out: list[Question] = []

    def pick(items: list) -> object:
        return items[int(rng.integers(len(items)))]

    shape_counts = {s: sum(o.shape == s for o in objs) for s in SHAPES}
    colour_counts = {c: sum(o.colour == c for o in objs) for c in COLOURS}

    unique_shapes = [o for o in objs if shape_counts[o.shape] == 1]
    if unique_shapes:
        o = pick(unique_shapes)
        out.append(Question(f"what color is the {o.shape}?", o.colour, "color"))
    unique_colours = [o for o in objs if colour_counts[o.colour] == 1]
    if unique_colours:
        o = pick(unique_colours)
        out.append(Question(f"what shape is the {o.colour} object?", o.shape, "shape"))

    if rng.random() < 0.5:
        out.append(Question("how many objects are there?", str(len(objs)), "count"))
    else:
        shape = pick(list(SHAPES))
        out.append(Question(f"how many {_plural(shape)} are there?", str(shape_counts[shape]), "count"))

    present = {(o.colour, o.shape) for o in objs}
    if rng.random() < 0.5:
        o = pick(objs)
        out.append(Question(f"is there a {o.colour} {o.shape}?", "yes", "exist"))
    else:
        absent = [(c, s) for c in COLOURS for s in SHAPES if (c, s) not in present and _allowed(c, s, scene.split)]
        c, s = pick(absent)
        out.append(Question(f"is there a {c} {s}?", "no", "exist"))

    if len(objs) >= 2:
        idx = rng.permutation(len(objs))[:2]
        a, b = objs[int(idx[0])], objs[int(idx[1])]
        if a.col != b.col:
            answer = "left" if a.col < b.col else "right"
            q = f"is the {a.phrase(False)} left or right of the {b.phrase(False)}?"
        else:
            answer = "above" if a.row < b.row else "below"
            q = f"is the {a.phrase(False)} above or below the {b.phrase(False)}?"
        # a colour+shape phrase must name one object for the question to be well posed
        if (
            sum((x.colour, x.shape) == (a.colour, a.shape) for x in objs) == 1
            and sum((x.colour, x.shape) == (b.colour, b.shape) for x in objs) == 1
        ):
            out.append(Question(q, answer, "position"))

    named = [o for o in objs if sum((x.colour, x.shape) == (o.colour, o.shape) for x in objs) == 1]
    if named:
        o = pick(named)
        out.append(Question(f"is the {o.colour} {o.shape} small or large?", o.size, "size"))
    return out
