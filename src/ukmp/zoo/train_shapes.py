"""Train the shipped `shapes-blip2-t5` model from scratch, deterministically, on a CPU.

The recipe has three stages. Stage 1 pretrains the ViT on the world's scene annotations
(`vision_pretraining`), standing in for the pretrained image encoder BLIP-2 starts from. Stage 2
follows BLIP-2 stage 2 on the whole model: every example is an image plus a text pair
(encoder input, decoder target), mixing
- VQA, with the paper's prompt "Question: {q} Short answer:" and the answer as target, and
- captioning in prefix-LM form (docs/method-notes.md: the first k words go to the encoder, the rest is the
  target), where half of the captions use k = 0 so the model also captions from the image alone.
Stage 3 (`grounding`) continues on the same mix with more relative-position questions and adds
losses from the scene annotations that teach the model where the objects are.

Everything random (the world, the example mix, initialisation) is seeded, and the number of
threads is fixed, so the same command gives the same weights on the same machine.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ukmp.atomic import replace_folder
from ukmp.data.shapes_world import (
    CELL_NAMES,
    COLOURS,
    GRID,
    NUMBER_WORDS,
    SHAPES,
    SIZES,
    captions,
    make_scene,
    questions,
    render,
)
from ukmp.data.world_tokenizer import IMAGE_ID, PAD_ID, as_transformers_tokenizer, train_word_tokenizer
from ukmp.errors import UserError
from ukmp.zoo.grounding import GroundingLosses
from ukmp.zoo.schedules import ramped_cosine, warmup_then_cosine
from ukmp.zoo.shapes_config import NUM_QUERY_TOKENS, shapes_blip2_t5_config
from ukmp.zoo.vision_pretraining import ATTRIBUTES, cell_labels, pretrain_vision

VQA_PROMPT = "Question: {} Short answer:"
POSITION_ANSWERS = frozenset({"left", "right", "above", "below"})
IMAGE_MEAN = [0.5, 0.5, 0.5]
IMAGE_STD = [0.5, 0.5, 0.5]


@dataclass
class TrainConfig:
    """Everything that determines the shipped weights."""

    steps: int = 4000
    batch_size: int = 48
    vision_pretrain_steps: int = 1200
    vision_pretrain_lr: float = 1e-3
    vision_pretrain_batch: int = 64
    vision_pretrain_warmup: int = 50
    lr: float = 5e-4
    min_lr_ratio: float = 0.05
    warmup_steps: int = 100
    weight_decay: float = 0.05
    grad_clip: float = 1.0
    train_images: int = 20000
    vqa_fraction: float = 0.6
    seed: int = 0
    threads: int = 2
    vision_layers: int = 6
    lm_layers: int = 3
    save_dtype: str = "float16"
    grounding_steps: int = 3000
    grounding_lr: float = 3e-4
    grounding_warmup: int = 50
    grounding_position_fraction: float = 0.3
    grounding_weight: float = 1.0
    extra: dict = field(default_factory=dict)


def world_vocabulary_texts(n_scenes: int = 2000) -> list[str]:
    """Texts that cover every word the world (all splits) and the prompts can produce."""
    texts = [
        VQA_PROMPT,
        "a photo of",
        " ".join(SHAPES),
        " ".join(s + "s" for s in SHAPES),
        " ".join(COLOURS),
        " ".join(SIZES),
        " ".join(CELL_NAMES),
        " ".join(NUMBER_WORDS),
        "0 1 2 3 4 5 6 7 8 9 yes no",
    ]
    for split in ("train", "heldout"):
        for index in range(n_scenes):
            scene = make_scene(split, index)
            texts += captions(scene)
            texts += [f"{q.question} {q.answer}" for q in questions(scene)]
    return texts


def build_processor(tokenizer_fast):
    """A standard `Blip2Processor` (BlipImageProcessor at 64 px + the world tokenizer)."""
    from transformers import Blip2Processor, BlipImageProcessor

    image_processor = BlipImageProcessor(
        size={"height": 64, "width": 64}, image_mean=IMAGE_MEAN, image_std=IMAGE_STD, do_convert_rgb=True
    )
    return Blip2Processor(image_processor, tokenizer_fast, num_query_tokens=NUM_QUERY_TOKENS)


def images_to_pixels(images: torch.Tensor) -> torch.Tensor:
    """uint8 N x 3 x 64 x 64 -> normalised float pixels, identical to the processor's output."""
    mean = torch.tensor(IMAGE_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGE_STD).view(1, 3, 1, 1)
    return (images.float() / 255.0 - mean) / std


def _prefix_split(text: str, rng: np.random.Generator) -> tuple[str, str]:
    words = text.split()
    if rng.random() < 0.5 or len(words) < 2:
        return "", text
    k = int(rng.integers(1, len(words) // 2 + 1))
    return " ".join(words[:k]), " ".join(words[k:])


class WorldExamples:
    """The training set held in memory: images as uint8 plus their texts."""

    def __init__(self, n_images: int) -> None:
        self.images = torch.empty(n_images, 3, 64, 64, dtype=torch.uint8)
        self.captions: list[list[str]] = []
        self.questions: list[list[tuple[str, str]]] = []
        self.cell_labels = torch.empty(n_images, GRID * GRID, len(ATTRIBUTES), dtype=torch.long)
        for index in tqdm(range(n_images), desc="world/train", unit="img"):
            scene = make_scene("train", index)
            self.images[index] = torch.from_numpy(np.array(render(scene))).permute(2, 0, 1)
            self.cell_labels[index] = torch.from_numpy(cell_labels(scene))
            self.captions.append(captions(scene))
            self.questions.append([(q.question, q.answer) for q in questions(scene)])

    def sample(
        self, rng: np.random.Generator, batch: int, vqa_fraction: float, position_fraction: float = 0.0
    ) -> tuple[torch.Tensor, list, list, np.ndarray]:
        """(pixels, encoder texts, targets, image indices) for one batch.

        A share `position_fraction` of the examples is a relative-position question where the image
        has one; the rest splits between VQA and captions by `vqa_fraction`. With no position share
        the random draws are the same as before that option existed, so stage 2 replays exactly.
        """
        idx = rng.integers(0, len(self.captions), size=batch)
        inputs, targets = [], []
        for i in idx:
            draw = rng.random()
            positional = [qa for qa in self.questions[i] if qa[1] in POSITION_ANSWERS] if position_fraction else []
            if positional and draw < position_fraction:
                q, a = positional[int(rng.integers(len(positional)))]
                inputs.append(VQA_PROMPT.format(q))
                targets.append(a)
            elif draw < position_fraction + (1 - position_fraction) * vqa_fraction:
                q, a = self.questions[i][int(rng.integers(len(self.questions[i])))]
                inputs.append(VQA_PROMPT.format(q))
                targets.append(a)
            else:
                cap = self.captions[i][int(rng.integers(len(self.captions[i])))]
                src, tgt = _prefix_split(cap, rng)
                inputs.append(src)
                targets.append(tgt)
        return images_to_pixels(self.images[torch.from_numpy(idx)]), inputs, targets, idx


def encode_batch(tokenizer, inputs: list[str], targets: list[str]) -> dict[str, torch.Tensor]:
    """Encoder ids = image placeholders + input text; labels = target text with -100 padding."""
    enc = [[IMAGE_ID] * NUM_QUERY_TOKENS + e.ids for e in tokenizer.encode_batch(inputs)]
    dec = [e.ids for e in tokenizer.encode_batch(targets)]
    n_in, n_out = max(map(len, enc)), max(map(len, dec))
    input_ids = torch.full((len(enc), n_in), PAD_ID)
    attention = torch.zeros((len(enc), n_in), dtype=torch.long)
    labels = torch.full((len(dec), n_out), -100)
    for r, (e, d) in enumerate(zip(enc, dec)):
        input_ids[r, : len(e)] = torch.tensor(e)
        attention[r, : len(e)] = 1
        labels[r, : len(d)] = torch.tensor(d)
    return {"input_ids": input_ids, "attention_mask": attention, "labels": labels}


def _lr_at(step: int, cfg: TrainConfig) -> float:
    return warmup_then_cosine(step, cfg.steps, cfg.lr, cfg.warmup_steps, cfg.min_lr_ratio)


def build_model(config):
    """A freshly initialised `Blip2ForConditionalGeneration`, with two fixes for training from scratch.

    T5's default init draws the untied lm_head with std 1, which starts the loss near 100 on a
    256-wide model; it is drawn like a tied head (d_model ** -0.5) instead, so training starts at
    ~ln(vocab). transformers initialises the Q-Former's query tokens to zeros (right for loading
    pretrained weights): trained from scratch, every query then stays identical forever and the
    Q-Former passes one pooled vector. BLIP-2 draws them from N(0, 0.02), which breaks the symmetry.
    """
    from transformers import Blip2ForConditionalGeneration

    model = Blip2ForConditionalGeneration(config)
    with torch.no_grad():
        model.language_model.lm_head.weight.normal_(0.0, config.text_config.d_model**-0.5)
        model.query_tokens.normal_(0.0, config.qformer_config.initializer_range)
    return model


def _train(cfg: TrainConfig, stop_after: int | None = None, progress: bool = True, stage2_dir: Path | None = None):
    """Run the three stages; return (model, processor, per-step log, seconds).

    `stop_after` ends the run after that many steps of the stages together. With `stage2_dir`,
    stages 1 and 2 are not run: stage 3 starts from that model, written earlier by this recipe
    (its steps and seconds come from its training log).
    """
    torch.set_num_threads(cfg.threads)
    started = time.time()
    if stage2_dir is None:
        model, log, earlier_seconds = None, [], 0.0
    else:
        model, log, earlier_seconds = _load_stage_two(stage2_dir, cfg)
    tokenizer = train_word_tokenizer(world_vocabulary_texts())
    processor = build_processor(as_transformers_tokenizer(tokenizer))
    data = WorldExamples(cfg.train_images)
    if model is None:
        model, log = _stages_one_and_two(cfg, tokenizer, data, stop_after, progress)
    if cfg.grounding_steps and (stop_after is None or len(log) < stop_after):
        _round_to(model, cfg.save_dtype)
        remaining = None if stop_after is None else stop_after - len(log)
        log += _stage_three(model, tokenizer, data, cfg, remaining, progress)
    return model, processor, log, earlier_seconds + time.time() - started


def _stages_one_and_two(cfg: TrainConfig, tokenizer, data: WorldExamples, stop_after: int | None, progress: bool):
    """Stage 1 (ViT pretraining) and stage 2 (BLIP-2 stage 2 on captions + VQA) from a fresh model."""
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    config = shapes_blip2_t5_config(
        tokenizer.get_vocab_size(), vision_layers=cfg.vision_layers, lm_layers=cfg.lm_layers
    )
    model = build_model(config)
    log = pretrain_vision(
        model.vision_model,
        data.images,
        data.cell_labels,
        images_to_pixels,
        steps=cfg.vision_pretrain_steps,
        lr=cfg.vision_pretrain_lr,
        batch_size=cfg.vision_pretrain_batch,
        warmup_steps=min(cfg.vision_pretrain_warmup, max(1, cfg.vision_pretrain_steps)),
        weight_decay=cfg.weight_decay,
        grad_clip=cfg.grad_clip,
        rng=rng,
        stop_after=stop_after,
        progress=progress,
    )
    model.train()

    decay = [p for p in model.parameters() if p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.ndim < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.lr,
        betas=(0.9, 0.98),
    )
    steps = cfg.steps if stop_after is None else min(cfg.steps, max(0, stop_after - len(log)))
    bar = tqdm(range(steps), desc="stage 2: train shapes-blip2-t5", unit="step", disable=not progress)
    for step in bar:
        pixels, inputs, targets, _ = data.sample(rng, cfg.batch_size, cfg.vqa_fraction)
        batch = encode_batch(tokenizer, inputs, targets)
        for group in optimizer.param_groups:
            group["lr"] = _lr_at(step, cfg)
        loss = model(pixel_values=pixels, **batch).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        value = float(loss.detach())
        log.append({"stage": "blip2", "step": step, "loss": value, "lr": _lr_at(step, cfg)})
        bar.set_postfix(loss=f"{value:.3f}")
    return model, log


def _round_to(model, dtype_name: str) -> None:
    """Round the weights through the save dtype, as if stage 2 had been saved and loaded again.

    Stage 3 then starts from exactly what a saved stage-2 model holds, so it can be run again
    from such a model (`--from-stage2`) with the same result as the run that never stopped.
    """
    dtype = getattr(torch, dtype_name)
    with torch.no_grad():
        for tensor in list(model.parameters()) + list(model.buffers()):
            if tensor.is_floating_point():
                tensor.copy_(tensor.to(dtype).to(tensor.dtype))


def _stage_three(model, tokenizer, data: WorldExamples, cfg: TrainConfig, stop_after: int | None, progress: bool):
    """Stage 3: the stage-2 mix with more relative-position questions, plus the grounding losses."""
    torch.manual_seed(cfg.seed + 3)
    rng = np.random.default_rng(cfg.seed + 3)
    heads = GroundingLosses(model, tokenizer)
    params = list(model.parameters()) + list(heads.parameters())
    optimizer = torch.optim.AdamW(params, lr=cfg.grounding_lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.98))
    model.train()
    log: list[dict] = []
    steps = cfg.grounding_steps if stop_after is None else min(cfg.grounding_steps, max(0, stop_after))
    bar = tqdm(range(steps), desc="stage 3: grounding", unit="step", disable=not progress)
    for step in bar:
        pixels, inputs, targets, idx = data.sample(
            rng, cfg.batch_size, cfg.vqa_fraction, cfg.grounding_position_fraction
        )
        batch = encode_batch(tokenizer, inputs, targets)
        rate = ramped_cosine(step, cfg.grounding_steps, cfg.grounding_lr, cfg.grounding_warmup, cfg.min_lr_ratio)
        for group in optimizer.param_groups:
            group["lr"] = rate
        lm_loss = model(pixel_values=pixels, **batch).loss
        labels = data.cell_labels[torch.from_numpy(idx)]
        grounding_loss, accuracies = heads.loss(batch["input_ids"], batch["attention_mask"], labels)
        optimizer.zero_grad(set_to_none=True)
        (lm_loss + cfg.grounding_weight * grounding_loss).backward()
        torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        optimizer.step()
        value = float(lm_loss.detach())
        entry = {"stage": "grounding", "step": step, "loss": value, "grounding_loss": float(grounding_loss.detach())}
        log.append(entry | {"lr": rate} | accuracies)
        bar.set_postfix(loss=f"{value:.3f}", grounding=f"{entry['grounding_loss']:.3f}")
    heads.remove_hooks()
    return log


STAGE_THREE_FIELDS = frozenset(f for f in TrainConfig.__dataclass_fields__ if f.startswith("grounding_"))


def _training_record(model_dir: str | Path, purpose: str) -> dict:
    """The `training.json` that `ukmp zoo train` wrote into `model_dir`; `purpose` names what needs it."""
    record_file = Path(model_dir) / "training.json"
    if not record_file.is_file():
        raise UserError(f"{model_dir} has no training.json; {purpose} needs a model written by `ukmp zoo train`.")
    return json.loads(record_file.read_text())


def _load_stage_two(model_dir: Path, cfg: TrainConfig):
    """A model written by this recipe with stage 3 switched off, checked against `cfg`: (model, log, seconds)."""
    from transformers import Blip2ForConditionalGeneration

    record = _training_record(model_dir, "--from-stage2")
    if any(r.get("stage") == "grounding" for r in record["log"]):
        raise UserError(f"{model_dir} has already been through stage 3; give the stage-2 model instead.")
    mine = {k: v for k, v in asdict(cfg).items() if k not in STAGE_THREE_FIELDS}
    theirs = {k: v for k, v in record["config"].items() if k not in STAGE_THREE_FIELDS}
    differing = sorted(k for k in mine if theirs.get(k, mine[k]) != mine[k])
    if differing:
        raise UserError(
            f"{model_dir} was trained with other settings ({', '.join(differing)}), so it is not this recipe's stage 2."
        )
    model = Blip2ForConditionalGeneration.from_pretrained(model_dir, dtype=torch.float32)
    for sub_config in (model.config.vision_config, model.config.qformer_config, model.config.text_config):
        sub_config.dtype = None  # loading in float32 marks them so; a fresh model's sub-configs carry no dtype
    return model, list(record["log"]), float(record["train_seconds"])


def train_shapes_model(
    out_dir: str | Path, cfg: TrainConfig, *, overwrite: bool = False, stage2_dir: str | Path | None = None
) -> Path:
    """Train the model and write a complete, `from_pretrained`-loadable model folder to `out_dir`.

    `stage2_dir` starts at stage 3 from a model this recipe wrote with `grounding_steps=0`.
    """
    out = Path(out_dir)
    if out.exists() and not overwrite:
        raise UserError(f"{out} already exists; pass --overwrite to replace it.")
    model, processor, log, elapsed = _train(cfg, stage2_dir=None if stage2_dir is None else Path(stage2_dir))
    model.eval()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        model.to(getattr(torch, cfg.save_dtype)).save_pretrained(tmp)
        processor.save_pretrained(tmp)
        (tmp / "training.json").write_text(
            json.dumps(
                {
                    "config": asdict(cfg),
                    "train_seconds": elapsed,
                    "resumed_from_stage2": stage2_dir is not None,
                    "log": log,
                },
                indent=1,
            )
        )
        _plot_loss(log, tmp / "loss_curve.png")
        os.chmod(tmp, 0o755)  # mkdtemp makes the folder private; a shipped model must be readable
        for file in tmp.iterdir():
            os.chmod(file, 0o644)
        replace_folder(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def replay_first_steps(model_dir: str | Path, steps: int | None = None) -> tuple[list[float], list[float]]:
    """Retrain the first `steps` steps of a trained model's recipe: (recorded losses, replayed losses).

    Steps count through the stages in order; the default, None, replays all of stage 1 and the
    first 20 steps of stage 2, so both of their data paths are checked (stage 3: `replay_stage_three`).

    Training is deterministic for a fixed seed and thread count, so equal losses step by step show
    that the documented command reproduces the run, at a fraction of its cost (the learning-rate
    schedule depends only on the step and the recipe, so a prefix of the run is a prefix of the log).
    """
    record = _training_record(model_dir, "replaying")
    cfg = _recorded_config(record)
    if steps is None:
        steps = sum(r.get("stage") == "vision" for r in record["log"]) + 20
    recorded = [r["loss"] for r in record["log"][:steps]]
    _, _, log, _ = _train(cfg, stop_after=len(recorded))
    return recorded, [r["loss"] for r in log]


def replay_stage_three(model_dir: str | Path, stage2_dir: str | Path, steps: int) -> tuple[list[float], list[float]]:
    """Rerun the first `steps` steps of stage 3 from a stage-2 model: (recorded losses, replayed losses).

    The shipped weights' stage 2 is not shipped, so this check needs the stage-2 model from
    `ukmp zoo train ... --stage2-only` (46 minutes on 2 cores).
    """
    record = _training_record(model_dir, "replaying")
    cfg = _recorded_config(record)
    recorded = [r["loss"] for r in record["log"] if r.get("stage") == "grounding"][:steps]
    if not recorded:
        raise UserError(f"{model_dir} has no stage-3 steps in its training log.")
    earlier = len(_training_record(stage2_dir, "--stage2")["log"])  # stop_after counts stages 1-2 too
    _, _, log, _ = _train(cfg, stop_after=earlier + len(recorded), stage2_dir=Path(stage2_dir))
    return recorded, [r["loss"] for r in log if r.get("stage") == "grounding"]


def _recorded_config(record: dict) -> TrainConfig:
    """The recipe a training log was written with (fields it predates keep their defaults)."""
    known = {f.name for f in TrainConfig.__dataclass_fields__.values()}
    return TrainConfig(**{k: v for k, v in record["config"].items() if k in known})


def _plot_loss(log: list[dict], path: Path) -> None:
    """One panel per stage: the ViT's pretraining loss, then the whole model's loss."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stages = [
        ("stage 1: ViT pretraining", [r for r in log if r.get("stage") == "vision"]),
        ("stage 2: BLIP-2 on captions + VQA", [r for r in log if r.get("stage", "blip2") == "blip2"]),
        ("stage 3: grounding (LM loss)", [r for r in log if r.get("stage") == "grounding"]),
    ]
    stages = [(title, rows) for title, rows in stages if rows]
    fig, axes = plt.subplots(1, len(stages), figsize=(5.5 * len(stages), 3.5), squeeze=False)
    window = 25
    for ax, (title, rows) in zip(axes[0], stages):
        steps = [r["step"] for r in rows]
        losses = np.array([r["loss"] for r in rows])
        smooth = np.convolve(losses, np.ones(window) / window, mode="valid") if len(losses) > window else losses
        ax.plot(steps, losses, alpha=0.3, label="loss")
        ax.plot(steps[len(steps) - len(smooth) :], smooth, label=f"mean of {window}")
        ax.set_xlabel("step")
        ax.set_ylabel("cross-entropy")
        ax.set_yscale("log")
        ax.set_title(title)
        ax.legend()
    fig.suptitle("shapes-blip2-t5 training loss")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
