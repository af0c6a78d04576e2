"""Stage 1 of the shipped recipe: pretrain the image encoder on the world's scene annotations.

BLIP-2 never trains its ViT from scratch through the language model: it starts from a pretrained
image encoder (EVA-CLIP) and only then trains the Q-Former and the LM. The shipped model has no
pretrained encoder to start from, and a ViT that learns only through the LM's loss learns the
shapes far too slowly for a CPU budget: after 800 steps it still answered shape questions at
chance (20.6%, 6 shapes). So the recipe first pretrains the ViT, as a classifier of what each patch
shows, which takes about two minutes, and then runs BLIP-2's stage 2 on the whole model.

The shipped ViT's patch grid is the world's 2x2 grid (32 px patches on 64 px images), so patch
token k sees exactly grid cell k. One linear head, shared by the four tokens, predicts from each
token the shape, colour and size of the object in its cell (each with an extra "empty" class) and
the cell's row and column. Sharing the head makes the attribute features the same wherever the
object is; the row/column targets keep each token's position readable, which the Q-Former needs
for the relative-position questions. The head is thrown away after this stage.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from tqdm import tqdm

from ukmp.data.shapes_world import COLOURS, GRID, SHAPES, SIZES, Scene
from ukmp.zoo.schedules import ramped_cosine

ATTRIBUTES = (("shape", len(SHAPES) + 1), ("colour", len(COLOURS) + 1), ("size", len(SIZES) + 1))


def cell_labels(scene: Scene) -> np.ndarray:
    """GRID*GRID x 3 class ids (shape, colour, size) per cell; 0 means an empty cell."""
    labels = np.zeros((GRID * GRID, len(ATTRIBUTES)), dtype=np.int64)
    colours = list(COLOURS)
    for obj in scene.objects:
        labels[obj.cell] = (SHAPES.index(obj.shape) + 1, colours.index(obj.colour) + 1, SIZES.index(obj.size) + 1)
    return labels


class PatchAttributeHead(torch.nn.Module):
    """One linear map from a patch token to its cell's attributes and its row and column."""

    def __init__(self, hidden_size: int) -> None:
        super().__init__()
        self.sizes = [n for _, n in ATTRIBUTES] + [GRID, GRID]
        self.linear = torch.nn.Linear(hidden_size, sum(self.sizes))

    def loss(self, tokens: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, list[float]]:
        """Summed cross-entropy over attributes and position; accuracies on occupied cells."""
        cells = torch.arange(tokens.shape[1], device=tokens.device).expand(tokens.shape[0], -1)
        targets = [labels[..., k] for k in range(len(ATTRIBUTES))] + [cells // GRID, cells % GRID]
        logits = self.linear(tokens).split(self.sizes, dim=-1)
        loss = sum(
            torch.nn.functional.cross_entropy(lg.reshape(-1, lg.shape[-1]), t.reshape(-1))
            for lg, t in zip(logits, targets)
        )
        occupied = labels[..., 0] > 0
        accuracies = [
            float((lg.argmax(-1) == t)[occupied].float().mean()) if occupied.any() else float("nan")
            for lg, t in zip(logits[: len(ATTRIBUTES)], targets)
        ]
        return loss, accuracies


def patch_tokens(vision_model, pixel_values: torch.Tensor) -> torch.Tensor:
    """The ViT's last hidden states without the class token: one row per patch, row-major."""
    tokens = vision_model(pixel_values=pixel_values).last_hidden_state[:, 1:]
    if tokens.shape[1] != GRID * GRID:
        raise ValueError(
            f"vision pretraining needs one patch per grid cell ({GRID * GRID} patches), got {tokens.shape[1]}: "
            "set the ViT's patch size to the world's cell size"
        )
    return tokens


def pretrain_vision(
    vision_model,
    images: torch.Tensor,
    labels: torch.Tensor,
    to_pixels: Callable[[torch.Tensor], torch.Tensor],
    *,
    steps: int,
    lr: float,
    batch_size: int,
    warmup_steps: int,
    weight_decay: float,
    grad_clip: float,
    rng: np.random.Generator,
    stop_after: int | None = None,
    progress: bool = True,
    tokens: Callable[[torch.nn.Module, torch.Tensor], torch.Tensor] = patch_tokens,
) -> list[dict]:
    """Train `vision_model` in place on (uint8 images, cell labels); return the per-step log.

    `stop_after` ends the run early without changing its schedule, so a replay of the first steps
    follows the same learning rates as the full run. `tokens` gives one token per grid cell from the
    tower's output (the shipped ViT's patch tokens; a tower with finer patches pools them per cell).
    """
    device = next(vision_model.parameters()).device  # the head and the labels follow the tower (a GPU, say)
    head = PatchAttributeHead(vision_model.config.hidden_size).to(device)
    params = list(vision_model.parameters()) + list(head.parameters())
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, betas=(0.9, 0.98))
    vision_model.train()
    log: list[dict] = []
    run = steps if stop_after is None else min(steps, stop_after)
    for step in tqdm(range(run), desc="stage 1: pretrain ViT", unit="step", disable=not progress):
        rate = ramped_cosine(step, steps, lr, warmup_steps, min_ratio=0.05)
        for group in optimizer.param_groups:
            group["lr"] = rate
        idx = torch.from_numpy(rng.integers(0, len(images), size=batch_size))
        loss, accuracies = head.loss(tokens(vision_model, to_pixels(images[idx])), labels[idx].to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, grad_clip)
        optimizer.step()
        entry = {"stage": "vision", "step": step, "loss": float(loss.detach()), "lr": rate}
        entry.update({f"{name}_acc": acc for (name, _), acc in zip(ATTRIBUTES, accuracies)})
        log.append(entry)
    return log
