"""How much shape and position a shapes-world model's image features carry: linear probes.

    python3 scripts/probe_visual_features.py [--model shapes-blip2-t5] [--images 6000]

Why: the shipped model answers colour, count and existence questions well but shape and relative
position questions near chance. A linear probe on its frozen features tells where that knowledge is
lost: if the vision tower's output already cannot tell a circle from a square, the recipe must
teach the vision tower better (a Q-Former or language-model change would not help); if the vision
output can but the Q-Former's projected queries cannot, the bottleneck is the Q-Former.

Probes (multinomial logistic regression, trained on frozen features of train-split scenes, scored
on held-out scenes of the same split):
- shape of the only object, on one-object scenes (6 classes, chance 16.7%);
- grid cell of the only object, on one-object scenes (4 classes, chance 25%).

Each on three features: the mean of the vision tower's output tokens, all its output tokens
concatenated, and the Q-Former's projected query outputs concatenated (what the language model sees).

A third probe asks whether a vision token's *content* says where it is (the grid cell of its patch,
from one token at a time): the Q-Former pools tokens by attention, so position survives into its
output only through the tokens' content. It is scored on the patch embeddings too (before the
position embeddings are added), which is the floor a position-blind model sits at.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from ukmp.data.shapes_world import SHAPES, make_scene, render
from ukmp.evaluation.model_loading import load_model_and_processor
from ukmp.zoo.train_shapes import images_to_pixels

HELD_OUT = 400


def one_object_scenes(n_images: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pixels, shape labels and cell labels of the one-object scenes among the first `n_images`."""
    images, shapes, cells = [], [], []
    for index in range(n_images):
        scene = make_scene("train", index)
        if len(scene.objects) == 1:
            images.append(torch.from_numpy(np.array(render(scene))).permute(2, 0, 1))
            shapes.append(SHAPES.index(scene.objects[0].shape))
            cells.append(scene.objects[0].cell)
    return images_to_pixels(torch.stack(images)), torch.tensor(shapes), torch.tensor(cells)


@torch.no_grad()
def image_outputs(model, pixels: torch.Tensor, batch: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """(vision tower output tokens, projected Q-Former queries) from one pass per batch.

    `get_image_features` returns both: the vision output as `last_hidden_state`, the queries as
    `pooler_output`, so the vision tower runs once.
    """
    vision, queries = [], []
    for start in range(0, len(pixels), batch):
        out = model.get_image_features(pixel_values=pixels[start : start + batch], return_dict=True)
        vision.append(out.last_hidden_state)
        queries.append(out.pooler_output)
    return torch.cat(vision), torch.cat(queries)


@torch.no_grad()
def token_cells(model, pixels: torch.Tensor, vision: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Per-token features (vision output, patch embedding) of every patch, and each patch's grid cell.

    `vision` is the vision tower's output for `pixels` (CLS token first), already computed.
    """
    vision = vision[:, 1:]
    patches = model.vision_model.embeddings.patch_embedding(pixels).flatten(2).transpose(1, 2)
    side = int(round(vision.shape[1] ** 0.5))
    index = torch.arange(side * side)
    half = side // 2
    cell = (index // side // half) * 2 + (index % side) // half
    feats = {
        "vision output token": vision.reshape(-1, vision.shape[-1]),
        "patch embedding": patches.reshape(-1, patches.shape[-1]),
    }
    return feats, cell.repeat(len(pixels))


def probe_accuracy(
    x: torch.Tensor, y: torch.Tensor, n_classes: int, steps: int = 300, held_out: int = HELD_OUT
) -> float:
    """Held-out accuracy of a ridge-regularised softmax classifier on standardised features."""
    train = len(y) - held_out
    mean, std = x[:train].mean(0), x[:train].std(0) + 1e-5
    x = (x - mean) / std
    torch.manual_seed(0)
    weight = torch.zeros(x.shape[1], n_classes, requires_grad=True)
    bias = torch.zeros(n_classes, requires_grad=True)
    optimizer = torch.optim.Adam([weight, bias], lr=1e-2)
    for _ in range(steps):
        logits = x[:train] @ weight + bias
        loss = torch.nn.functional.cross_entropy(logits, y[:train]) + 1e-3 * weight.pow(2).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        return float(((x[train:] @ weight + bias).argmax(-1) == y[train:]).float().mean()) * 100


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="shapes-blip2-t5", help="model folder or zoo name")
    parser.add_argument("--images", type=int, default=6000, help="train-split scenes to draw one-object ones from")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model, _, _ = load_model_and_processor(args.model, device="cpu")
    model = model.float().eval()
    pixels, shapes, cells = one_object_scenes(args.images)
    if len(shapes) <= HELD_OUT + 100:
        raise SystemExit(f"only {len(shapes)} one-object scenes; raise --images")
    vision, queries = image_outputs(model, pixels)
    pooled = {"vision mean": vision.mean(1), "vision tokens": vision.flatten(1), "Q-Former queries": queries.flatten(1)}
    table = {}
    for name, x in pooled.items():
        table[name] = {
            "shape %": round(probe_accuracy(x, shapes, len(SHAPES)), 1),
            "cell %": round(probe_accuracy(x, cells, 4), 1),
            "dims": x.shape[1],
        }
    print(f"{len(shapes)} one-object scenes, last {HELD_OUT} held out; chance: shape 16.7%, cell 25%")
    print("| features | dims | shape % | cell % |\n|---|---|---|---|")
    for name, row in table.items():
        print(f"| {name} | {row['dims']} | {row['shape %']} | {row['cell %']} |")
    feats, cells_of_tokens = token_cells(model, pixels[:300], vision[:300])
    per_image = len(cells_of_tokens) // 300
    print("\nthe grid cell of a token's patch, from that token alone (chance 25%):")
    for name, x in feats.items():
        accuracy = probe_accuracy(x, cells_of_tokens, 4, held_out=50 * per_image)
        table[f"{name} -> its cell"] = {"cell %": round(accuracy, 1), "dims": x.shape[1]}
        print(f"| {name} | {x.shape[1]} | {accuracy:.1f} |")
    print(json.dumps(table))


if __name__ == "__main__":
    main()
