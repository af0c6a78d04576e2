"""Full fine-tuning of a pruned shipped model on the recipe it was trained with: recovery's ceiling.

LPD and plain LoRA train a few million adapter weights on inputs alone. How far could any recovery
go on the pruned architecture? This trains *every* weight of a pruned `shapes-blip2-t5` artifact on
the shipped model's own stage-3 mix (captions, VQA with more relative-position questions, and the
grounding losses from the scene annotations, at the stage's learning rate and cosine schedule,
compressed to `steps`), with labels. Recovery figures are then reported as a fraction of the way
from "no recovery" to this ceiling. It reads labels and the world's annotations, so it is a
measurement, not a recovery a user without them could run.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import torch

from ukmp.artifact import load_pruned, read_manifest, save_retrained
from ukmp.data.world_tokenizer import as_transformers_tokenizer, train_word_tokenizer
from ukmp.errors import UserError
from ukmp.zoo.train_shapes import TrainConfig, WorldExamples, _stage_three, build_processor, world_vocabulary_texts

METHOD = "full-fine-tune"


def fine_tune_pruned(
    pruned: str | Path,
    out: str | Path,
    *,
    steps: int,
    lr: float | None = None,
    train_images: int | None = None,
    batch_size: int | None = None,
    seed: int = 0,
    threads: int = 2,
    progress: bool = True,
    overwrite: bool = False,
) -> Path:
    """Train all weights of the pruned artifact `pruned` for `steps` stage-3 steps; save to `out`.

    Unset options take the shipped recipe's stage-3 values (`TrainConfig`). The result is an
    ordinary pruned artifact (same plan, same base) whose manifest's ``recovery`` entry records
    the run, so every ukmp command reads it.
    """
    if steps < 1:
        raise UserError(f"steps must be at least 1, got {steps}.")
    out = Path(out)
    if out.exists() and not overwrite:
        raise UserError(f"{out} already exists; pass overwrite to replace it.")
    manifest = read_manifest(pruned)
    defaults = TrainConfig()
    cfg = replace(
        defaults,
        grounding_steps=steps,
        grounding_lr=defaults.grounding_lr if lr is None else lr,
        train_images=train_images or defaults.train_images,
        batch_size=batch_size or defaults.batch_size,
        seed=seed,
        threads=threads,
    )
    torch.set_num_threads(threads)
    model = load_pruned(pruned).float()
    tokenizer = train_word_tokenizer(world_vocabulary_texts())
    processor = build_processor(as_transformers_tokenizer(tokenizer))
    if model.config.text_config.vocab_size != tokenizer.get_vocab_size():
        raise UserError(f"{pruned} is not a pruned shapes-blip2-t5: its vocabulary differs from the world's.")
    data = WorldExamples(cfg.train_images)
    started = time.time()
    log = _stage_three(model, tokenizer, data, cfg, None, progress)
    seconds = time.time() - started
    model.eval()
    recovery = {
        "method": METHOD,
        "steps": steps,
        "lr": cfg.grounding_lr,
        "batch_size": cfg.batch_size,
        "train_images": cfg.train_images,
        "seed": seed,
        "seconds": round(seconds, 1),
        "final_loss": sum(r["loss"] for r in log[-20:]) / min(20, len(log)),
        "pruned_model": str(pruned),
    }
    return save_retrained(model, manifest, out, processor=processor, recovery=recovery, overwrite=overwrite)
