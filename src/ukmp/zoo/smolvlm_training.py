"""The training recipe of `shapes-smolvlm`: the LM keeps its English, the vision side learns the world.

Three stages, each deterministic for a seed and a thread count, and resumable (`smolvlm_checkpoint`):

1. ``vision``: the tower is pretrained alone as the shipped ViT is (`vision_pretraining`: a shared head
   predicts each grid cell's shape, colour and size and its row and column), on the mean of the four
   16-pixel patches that cover each cell. A tower learning the world only through the LM's loss learns
   far too slowly for a CPU budget; this takes minutes. The head is dropped afterwards.
2. ``align``: the connector (and, by default, the tower) learns to write image tokens the frozen LM
   reads, on captions only, as LLaVA's and SmolVLM's first stages do. The LM is untouched.
3. ``instruct``: captions and VQA, with LoRA on the LM's attention projections, the connector and the
   tower trained together. The LM's own weights stay frozen: only the low-rank delta is learnt, so it
   keeps what it knows and the shipped delta is small.

`device` and `dtype` choose where it runs (a GPU when present; a dtype other than float32 runs the
forward under autocast and keeps float32 master weights).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from ukmp.errors import UserError
from ukmp.zoo.lora import DEFAULT_TARGETS, attach_lora
from ukmp.zoo.schedules import warmup_then_cosine
from ukmp.zoo.smolvlm import TRAINED_PREFIXES, assemble_smolvlm, trained_parameters
from ukmp.zoo.smolvlm_checkpoint import RunState, load_state, save_state
from ukmp.zoo.smolvlm_data import encode_examples, sample_examples
from ukmp.zoo.smolvlm_image_scale import (
    ImageTokenTap,
    loudness_penalty,
    mean_token_norm,
    set_connector_scale,
    word_norm,
)
from ukmp.zoo.smolvlm_text import TextModel, smollm2_text_model

STAGES = ("vision", "align", "instruct")
CHECKPOINT_DIR = "checkpoint"


@dataclass
class SmolVLMTrainConfig:
    """Everything that determines the trained weights."""

    vision_steps: int = 300
    vision_lr: float = 1e-3
    vision_batch: int = 64
    vision_warmup: int = 50
    align_steps: int = 300
    align_lr: float = 1e-3
    align_trains_vision: bool = True
    #: whether the instruct stage trains the tower too (the LM's loss erodes what stage 1 taught it)
    instruct_trains_vision: bool = True
    instruct_steps: int = 600
    instruct_lr: float = 3e-4
    batch_size: int = 8
    warmup_steps: int = 20
    min_lr_ratio: float = 0.05
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    vqa_fraction: float = 0.6
    train_images: int = 20000
    vision_layers: int = 4
    lora_rank: int = 8
    lora_alpha: float = 16.0
    lora_targets: tuple[str, ...] = DEFAULT_TARGETS
    seed: int = 0
    threads: int = 2
    checkpoint_every: int = 25
    save_dtype: str = "float16"
    #: image tokens' mean norm, in LM word-embedding norms, set when alignment starts (None: the init's)
    image_scale: float | None = None
    #: image tokens louder than this many word-embedding norms are penalised in the LM stages (None: never)
    image_cap: float | None = None
    image_cap_weight: float = 1.0
    extra: dict = field(default_factory=dict)

    def recipe(self) -> dict:
        """The fields that change the weights (not how often a checkpoint is written).

        Fields added after the first runs are left out while they keep the behaviour those runs had,
        so an earlier run's checkpoint still continues and its record still reads the same.
        """
        fields = asdict(self)
        fields.pop("checkpoint_every")
        fields["lora_targets"] = list(fields["lora_targets"])
        for name, legacy in LEGACY_DEFAULTS.items():
            if fields[name] == legacy:
                fields.pop(name)
        return fields


#: the behaviour of runs recorded before these fields existed
LEGACY_DEFAULTS = {"image_scale": None, "image_cap": None, "image_cap_weight": 1.0, "instruct_trains_vision": True}


def build_trainable_model(text: TextModel, cfg: SmolVLMTrainConfig):
    """The assembled model with LoRA attached (its B matrices zero, so it computes the assembled model)."""
    model, processor = assemble_smolvlm(text, vision_layers=cfg.vision_layers, seed=cfg.seed)
    attach_lora(
        model.model.text_model, rank=cfg.lora_rank, alpha=cfg.lora_alpha, seed=cfg.seed, targets=cfg.lora_targets
    )
    for param in model.parameters():
        param.requires_grad_(False)
    return model, processor


def stage_parameters(model: nn.Module, stage: str, cfg: SmolVLMTrainConfig) -> dict[str, nn.Parameter]:
    """The parameters a stage trains, by name, in the model's order."""
    trained = trained_parameters(model)
    if stage == "vision":
        return {n: p for n, p in trained.items() if n.startswith(TRAINED_PREFIXES[0])}
    if stage == "align":
        prefixes = TRAINED_PREFIXES if cfg.align_trains_vision else TRAINED_PREFIXES[1:]
        return {n: p for n, p in trained.items() if n.startswith(prefixes)}
    if not cfg.instruct_trains_vision:
        return {n: p for n, p in trained.items() if not n.startswith(TRAINED_PREFIXES[0])}
    return dict(trained)


def cell_tokens(vision_model: nn.Module, pixel_values: torch.Tensor) -> torch.Tensor:
    """One token per grid cell: the mean of the 2 x 2 patches covering it (row-major cells)."""
    patches = vision_model(pixel_values=pixel_values).last_hidden_state
    batch, count, width = patches.shape
    side = int(count**0.5)
    grid = patches.view(batch, 2, side // 2, 2, side // 2, width)
    return grid.mean(dim=(2, 4)).reshape(batch, 4, width)


def _optimizer(params: dict[str, nn.Parameter], lr: float, cfg: SmolVLMTrainConfig) -> torch.optim.Optimizer:
    decay = [p for p in params.values() if p.ndim >= 2]
    no_decay = [p for p in params.values() if p.ndim < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.98))


class Run:
    """One training run: the model, the data, the checkpoint folder and the state they move through."""

    def __init__(self, cfg, text: TextModel, checkpoint_dir: Path, device: str, dtype: torch.dtype, progress: bool):
        from ukmp.zoo.train_shapes import WorldExamples

        self.cfg, self.device, self.dtype, self.progress = cfg, torch.device(device), dtype, progress
        self.checkpoint_dir = checkpoint_dir
        recipe = {"config": cfg.recipe(), "origin": text.origin}
        state = load_state(checkpoint_dir)
        if state is not None and state.recipe != recipe:
            raise UserError(
                f"{checkpoint_dir} holds a checkpoint of another recipe or language model; "
                "give a new --out or the same settings."
            )
        self.state = state or RunState(recipe=recipe)
        self.model, self.processor = build_trainable_model(text, cfg)
        if self.state.trained:
            self._load_trained(self.state.trained)
        self.model.to(self.device)
        self.data = WorldExamples(cfg.train_images) if cfg.train_images else None
        self.word_norm = word_norm(self.model)
        self.tap = ImageTokenTap(self.model)

    def _load_trained(self, tensors: dict[str, torch.Tensor]) -> None:
        params = trained_parameters(self.model)
        with torch.no_grad():
            for name, tensor in tensors.items():
                params[name].copy_(tensor)

    def _checkpoint(self, stage: int, step: int, optimizer, rng: np.random.Generator | None, started: float) -> None:
        state = self.state
        state.stage, state.step = stage, step
        state.trained = {n: p.detach().to("cpu", copy=True) for n, p in trained_parameters(self.model).items()}
        state.optimizer = None if optimizer is None else optimizer.state_dict()
        state.data_rng = None if rng is None else rng.bit_generator.state
        state.torch_rng = torch.get_rng_state()
        state.seconds += time.time() - started
        save_state(self.checkpoint_dir, state)

    def run(self, stop_after: int | None = None) -> None:
        """Run the stages from the saved state; `stop_after` ends after that many steps in all (as a kill)."""
        self.budget = stop_after
        for index, stage in enumerate(STAGES):
            if index < self.state.stage:
                continue
            if self.budget is not None and self.budget <= 0:
                return
            if stage == "vision":
                self._vision(index)
            else:
                self._language_stage(index, stage)

    def _vision(self, index: int) -> None:
        """Stage 1 as a whole (minutes): a kill inside it restarts it, from the same seeds."""
        from ukmp.zoo.train_shapes import images_to_pixels
        from ukmp.zoo.vision_pretraining import pretrain_vision

        cfg, started = self.cfg, time.time()
        if cfg.vision_steps:
            for param in stage_parameters(self.model, "vision", cfg).values():
                param.requires_grad_(True)
            torch.manual_seed(cfg.seed + 1)
            log = pretrain_vision(
                self.model.model.vision_model,
                self.data.images,
                self.data.cell_labels,
                lambda images: images_to_pixels(images).to(self.device),
                steps=cfg.vision_steps,
                lr=cfg.vision_lr,
                batch_size=cfg.vision_batch,
                warmup_steps=min(cfg.vision_warmup, cfg.vision_steps),
                weight_decay=cfg.weight_decay,
                grad_clip=cfg.grad_clip,
                rng=np.random.default_rng(cfg.seed + 1),
                progress=self.progress,
                tokens=cell_tokens,
            )
            for param in self.model.parameters():
                param.requires_grad_(False)
            self.state.log += log
            if self.budget is not None:
                self.budget -= len(log)
        self._checkpoint(index + 1, 0, None, None, started)

    def _language_stage(self, index: int, stage: str) -> None:
        cfg = self.cfg
        steps, peak = (cfg.align_steps, cfg.align_lr) if stage == "align" else (cfg.instruct_steps, cfg.instruct_lr)
        vqa = 0.0 if stage == "align" else cfg.vqa_fraction
        params = stage_parameters(self.model, stage, cfg)
        for param in params.values():
            param.requires_grad_(True)
        optimizer = _optimizer(params, peak, cfg)
        rng = np.random.default_rng(cfg.seed + 1 + index)
        first = 0
        if self.state.stage == index and self.state.step > 0:
            first = self.state.step
            optimizer.load_state_dict(self.state.optimizer)
            rng.bit_generator.state = self.state.data_rng
            torch.set_rng_state(self.state.torch_rng)
        connector_factor = None  # the scale set when alignment starts, logged with its first step
        if stage == "align" and first == 0 and cfg.image_scale is not None:
            connector_factor = self._set_image_scale()
        self.model.train()
        started = time.time()
        bar = tqdm(range(first, steps), desc=f"{stage}: shapes-smolvlm", unit="step", disable=not self.progress)
        for step in bar:
            if self.budget is not None and self.budget <= 0:
                break
            loss, loudness = self._step(optimizer, params, rng, step, steps, peak, vqa)
            entry = {"stage": stage, "step": step, "loss": loss, "lr": self._lr(step, steps, peak)}
            if cfg.image_scale is not None or cfg.image_cap is not None:
                entry["image_norm"] = loudness  # in word-embedding norms
            if connector_factor is not None and step == first:
                entry["connector_factor"] = connector_factor
            self.state.log.append(entry)
            bar.set_postfix(loss=f"{loss:.3f}")
            if self.budget is not None:
                self.budget -= 1
            done = step + 1
            if done == steps:
                self._checkpoint(index + 1, 0, None, None, started)
            elif done % cfg.checkpoint_every == 0 or (self.budget is not None and self.budget <= 0):
                self._checkpoint(index, done, optimizer, rng, started)
                started = time.time()
        bar.close()
        if steps == 0:
            self._checkpoint(index + 1, 0, None, None, started)
        for param in params.values():
            param.requires_grad_(False)
        self.model.eval()

    def _lr(self, step: int, steps: int, peak: float) -> float:
        cfg = self.cfg
        return warmup_then_cosine(step, steps, peak, min(cfg.warmup_steps, steps), cfg.min_lr_ratio)

    def _set_image_scale(self) -> float:
        """Scale the connector so the first 64 training images' tokens have `image_scale` word norms."""
        from ukmp.zoo.smolvlm_data import CAPTION_INSTRUCTION

        count = min(64, len(self.data.images))
        captions = [self.data.captions[i][0] for i in range(count)]
        batch = encode_examples(self.processor, self.data.images[:count], [CAPTION_INSTRUCTION] * count, captions)
        pixels = batch["pixel_values"].to(self.device)
        mask = batch["pixel_attention_mask"].to(self.device)
        return set_connector_scale(self.model, pixels, mask, self.cfg.image_scale * self.word_norm)

    def _step(self, optimizer, params, rng, step: int, steps: int, peak: float, vqa: float) -> tuple[float, float]:
        """One optimizer step; (the task loss, the image tokens' mean norm in word-embedding norms)."""
        cfg = self.cfg
        idx, instructions, answers = sample_examples(self.data, rng, cfg.batch_size, vqa)
        batch = encode_examples(self.processor, self.data.images[torch.from_numpy(idx)], instructions, answers)
        batch = {k: v.to(self.device) for k, v in batch.items()}
        for group in optimizer.param_groups:
            group["lr"] = self._lr(step, steps, peak)
        with torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype != torch.float32):
            loss = self.model(**batch).loss
        tokens = self.tap.take()
        objective = loss
        if cfg.image_cap is not None:
            cap = cfg.image_cap * self.word_norm
            objective = loss + cfg.image_cap_weight * loudness_penalty(tokens, cap)
        optimizer.zero_grad(set_to_none=True)
        objective.backward()
        torch.nn.utils.clip_grad_norm_(list(params.values()), cfg.grad_clip)
        optimizer.step()
        return float(loss.detach()), mean_token_norm(tokens) / self.word_norm


def train_smolvlm_run(
    checkpoint_dir: Path,
    cfg: SmolVLMTrainConfig,
    *,
    text_loader: Callable[[], TextModel] = smollm2_text_model,
    device: str = "cpu",
    dtype: torch.dtype = torch.float32,
    stop_after: int | None = None,
    progress: bool = True,
) -> Run:
    """Run (or continue) the recipe with its checkpoints in `checkpoint_dir`; return the finished `Run`.

    The language model is loaded (and its GGUF checked) before anything is written.
    """
    torch.set_num_threads(cfg.threads)
    text = text_loader()
    run = Run(cfg, text, Path(checkpoint_dir), device, dtype, progress)
    run.run(stop_after)
    return run
