"""The recovery training job: weight-recalling LoRA trained by progressive distillation, on Accelerate.

One function, ``run_recovery``, runs the same way single-process on a CPU, under
``accelerate launch`` with several processes (CPU or GPUs), and with mixed precision on GPUs:

1. load the pruned artifact (the student) and its dense base model (the teacher, frozen, no
   gradients); check that the teacher is the model the artifact was pruned from (manifest checksum);
2. attach ``RecallLoRALinear`` to every producer/consumer Linear of the prunable groups, rebuilding
   the frozen recall matrices from the teacher's weights and the manifest's plan;
3. run the schedule's sub-phases (``phases.py``) on consecutive, disjoint slices of one shuffled copy
   of the recovery set: each sub-phase gets a fresh AdamW (weight decay 0.05 on the LoRA matrices)
   and its own learning-rate schedule: linear warm-up from ``warmup_lr`` to ``lr`` over
   ``warmup_steps`` steps, then constant, which is what the reference's warm-up-cosine schedule
   amounts to with one epoch;
4. write the adapter (safetensors), its config, the loss history and a loss-curve PNG, and with
   ``merge`` the merged model as an ordinary pruned artifact whose manifest records the recovery.

Dropout is off everywhere (teacher and student, as in the reference) except on the LoRA branch.

*Multi-process.* ``batch_size`` is the number of samples per optimizer step over all processes; each
process takes its share of the step's samples, and the adapter gradients are averaged explicitly
(weighted by each process's share) before the step. The model is not wrapped in DDP: in most
sub-phases much of the adapter receives no gradient and the forward may stop early, and an explicit
all-reduce keeps "no gradient" meaning "no update", exactly as in a single-process run.

*Resuming.* A checkpoint is written every ``checkpoint_every`` steps and after every sub-phase
(``checkpoint.py``). The data order is a function of (sub-phase, step) and the checkpoint restores
the adapter, AdamW's state and every process's random state, so a run that is stopped and resumed
ends with the same weights as one that never stopped (same seed, same number of processes).
"""

from __future__ import annotations

import math
import os
import shutil
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ukmp.adapters import find_adapter, is_vision_language_model
from ukmp.atomic import write_json_atomic
from ukmp.data.recovery_mix import mix_vqa
from ukmp.errors import UserError
from ukmp.output_guard import check_output
from ukmp.preflight import check_processor_matches, looks_local
from ukmp.recovery import checkpoint as ckpt
from ukmp.recovery.losses import distillation_kl, feature_loss, task_loss
from ukmp.recovery.phases import BETAS, FORWARD_ORDER, SCHEDULES, Phase, allocate_samples, make_schedule
from ukmp.recovery.recall_lora import (
    RecallLoRAOptions,
    adapter_parameters,
    adapter_state_dict,
    adapter_summary,
    attach_recall_lora,
    load_adapter_state_dict,
    merge_recall_lora,
    recall_layers,
)
from ukmp.recovery.recovered import ADAPTER_CONFIG, ADAPTER_FILE, ADAPTER_FORMAT

HISTORY_FILE = "history.json"
CURVE_FILE = "loss_curve.png"
MERGED_DIR = "merged"
CHECKPOINT_DIR = "checkpoints"
#: what a recovery output holds (one of them marks a folder `--overwrite` may replace)
RECOVERY_MARKERS = ("adapter_config.json", CHECKPOINT_DIR, "history.json", MERGED_DIR, CURVE_FILE, ".loss_curve*")


@dataclass
class RecoveryConfig:
    """Everything that determines a recovery run (defaults: the appendix and the reference config)."""

    pruned: str
    out: str
    teacher: str | None = None
    data: str = "shapes"
    split: str = "train"
    schedule: str = "lpd"
    plain_lora: bool = False
    input_recall: bool = True
    rank: int = 8
    recall_rank: int = 8
    alpha: float = 16.0
    lora_dropout: float = 0.05
    lr: float = 2e-5
    warmup_lr: float = 5e-7
    warmup_steps: int = 50
    weight_decay: float = 0.05
    batch_size: int = 20
    max_samples: int | None = None
    seed: int = 42
    temperature: float = 1.0
    mixed_precision: str | None = None
    cpu: bool = False
    checkpoint_every: int = 200
    merge: bool = False
    seq_len: int = 128  # tokens per prefix-LM window when ``data`` is a text file (a standalone LM)
    vqa_fraction: float = 0.0  # beyond the paper: share of the samples that are the split's VQA pairs

    #: fields that do not change the trained weights (may differ between a run and its resumption)
    NOT_IN_RESULT = ("out", "checkpoint_every", "merge", "cpu")

    def lora_options(self) -> RecallLoRAOptions:
        return RecallLoRAOptions(
            rank=self.rank,
            recall_rank=self.recall_rank,
            alpha=self.alpha,
            dropout=self.lora_dropout,
            output_recall=not self.plain_lora,
            input_recall=self.input_recall and not self.plain_lora,
        )

    def fingerprint(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in self.NOT_IN_RESULT}

    def validate(self) -> None:
        if self.schedule not in SCHEDULES:
            raise UserError(f"unknown schedule {self.schedule!r}; choose one of {', '.join(SCHEDULES)}.")
        for name in ("batch_size", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise UserError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}.")
        if self.max_samples is not None and self.max_samples < 1:
            raise UserError(f"--max-samples must be at least 1, got {self.max_samples}.")
        if self.warmup_steps < 0 or self.lr <= 0 or self.warmup_lr < 0:
            raise UserError("--lr must be positive, --warmup-lr and --warmup-steps non-negative.")
        if self.temperature <= 0:
            raise UserError(f"--temperature must be positive, got {self.temperature}.")
        if not 0.0 <= self.vqa_fraction <= 1.0:
            raise UserError(f"--vqa-fraction must be between 0 and 1, got {self.vqa_fraction:g}.")
        self.lora_options().validate()


def learning_rate(step: int, config: RecoveryConfig) -> float:
    """Linear warm-up from ``warmup_lr`` to ``lr`` over ``warmup_steps`` steps (step 0 first), then constant."""
    if config.warmup_steps <= 0 or step >= config.warmup_steps:
        return config.lr
    return config.warmup_lr + (config.lr - config.warmup_lr) * step / config.warmup_steps


# --------------------------------------------------------------------------------- feature capture


class _StopForward(Exception):
    """Raised by a hook once the last needed block has run (the rest of the forward is skipped)."""


def block_paths(model: nn.Module) -> dict[str, list[str]]:
    """Component -> module path of each transformer block, in depth order (vision and LM stacks)."""
    return find_adapter(model).block_paths(model, BETAS)


class FeatureTaps:
    """Forward hooks that keep the outputs of chosen blocks and optionally stop the forward after one."""

    def __init__(self, model: nn.Module, blocks: dict[tuple[str, int], str], stop_after: tuple[str, int] | None):
        self.model = model
        self.blocks = blocks
        self.stop_after = stop_after
        self.features: dict[tuple[str, int], torch.Tensor] = {}
        self._handles: list[Any] = []

    def __enter__(self) -> FeatureTaps:
        for key, path in self.blocks.items():
            self._handles.append(self.model.get_submodule(path).register_forward_hook(self._hook(key)))
        return self

    def _hook(self, key):
        def hook(module, args, output):
            self.features[key] = output[0] if isinstance(output, tuple) else output
            if key == self.stop_after:
                raise _StopForward

        return hook

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def run(self, batch: dict[str, torch.Tensor]):
        try:
            return self.model(**batch)
        except _StopForward:
            return None


def _last_block(supervised: dict[str, tuple[int, ...]]) -> tuple[str, int]:
    component = max(supervised, key=FORWARD_ORDER.index)
    return component, max(supervised[component])


def loss_keys(phase: Phase) -> list[str]:
    keys = [f"mse_{c}" for c in sorted(phase.supervised)] if "mse" in phase.losses else []
    return keys + [k for k in ("kl", "task") if k in phase.losses]


def phase_loss(
    phase: Phase,
    student: nn.Module,
    teacher: nn.Module,
    batch: dict[str, torch.Tensor],
    paths: dict[str, list[str]],
    *,
    decoder_only: bool,
    temperature: float = 1.0,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The sub-phase's loss on one batch (Eq. 13 restricted to the phase's terms) and its parts."""
    use_mse = "mse" in phase.losses and bool(phase.supervised)
    keys = {(c, i): paths[c][i] for c, blocks in phase.supervised.items() for i in blocks} if use_mse else {}
    stop = None if phase.needs_logits else _last_block(phase.supervised)
    teacher_out = None
    teacher_taps = FeatureTaps(teacher, keys, stop)
    if use_mse or "kl" in phase.losses:
        with torch.no_grad(), teacher_taps:
            teacher_out = teacher_taps.run(batch)
    with FeatureTaps(student, keys, stop) as taps:
        student_out = taps.run(batch)
    total = None
    parts: dict[str, float] = {}
    if use_mse:
        total, parts = feature_loss(taps.features, teacher_taps.features, BETAS)
    labels = batch["labels"]
    mask = (labels[:, 1:] != -100) if decoder_only else None
    if "kl" in phase.losses:
        s_logits, t_logits = student_out.logits, teacher_out.logits
        if decoder_only:
            s_logits, t_logits = s_logits[:, :-1], t_logits[:, :-1]
        kl = distillation_kl(s_logits, t_logits, mask=mask, temperature=temperature)
        parts["kl"] = float(kl.detach())
        total = kl if total is None else total + kl
    if "task" in phase.losses:
        task = task_loss(student_out.logits, labels, shift=decoder_only)
        parts["task"] = float(task.detach())
        total = task if total is None else total + task
    if total is None:
        raise UserError(f"sub-phase {phase.name} has no loss term.")
    return total, parts


# -------------------------------------------------------------------------------------- the model


def _load_models(config: RecoveryConfig):
    """(student, teacher, manifest, teacher reference); both in float32, eval mode, on the CPU."""
    from ukmp.artifact import is_pruned_artifact, load_model, load_pruned, resolve_model_ref, state_dict_sha256

    pruned_ref = resolve_model_ref(config.pruned)
    if not is_pruned_artifact(pruned_ref):
        raise UserError(f"{config.pruned} is not a ukmp pruned model (no pruning.json); prune it with ukmp prune.")
    student = load_pruned(pruned_ref).float()
    manifest = student.ukmp_manifest
    standalone_lm = not hasattr(student.config, "vision_config") and not student.config.is_encoder_decoder
    if not is_vision_language_model(student) and not standalone_lm:
        raise UserError(
            f"ukmp recover trains BLIP-2 / InstructBLIP models and decoder-only language models; {config.pruned} is "
            f"{type(student).__name__}."
        )
    base = manifest.get("base_model") or {}
    teacher_ref = config.teacher or base.get("reference")
    if not teacher_ref:
        raise UserError(f"the manifest of {config.pruned} names no base model; pass --teacher BASE.")
    if not config.teacher and looks_local(teacher_ref) and not Path(teacher_ref).expanduser().exists():
        raise UserError(
            f"the base model {teacher_ref} named in {config.pruned}/pruning.json does not exist (moved or deleted?); "
            "pass --teacher with the dense model it was pruned from."
        )
    teacher = load_model(teacher_ref).float()
    if getattr(teacher, "ukmp_manifest", None) is not None:
        raise UserError(f"--teacher {teacher_ref} is a pruned model; give the dense base model it was pruned from.")
    expected = base.get("sha256")
    if expected and state_dict_sha256(teacher) != expected:
        raise UserError(
            f"--teacher {teacher_ref} is not the base model {config.pruned} was pruned from (its weights do not "
            "match the checksum in pruning.json); pass the right dense model."
        )
    teacher.requires_grad_(False)
    return student.eval(), teacher.eval(), manifest, teacher_ref, pruned_ref


def _load_processor(pruned_ref: str, teacher_ref: str, *, text: bool = False):
    """The image-text processor, or for text data any tokenizer (the pruned artifact carries its base's)."""
    from ukmp.artifact import resolve_model_ref
    from ukmp.processors import load_processor

    for ref in (pruned_ref, resolve_model_ref(teacher_ref)):
        processor = load_processor(ref)
        if processor is not None and (text or hasattr(processor, "image_processor")):
            return processor
    need = "a tokenizer" if text else "processor files (image processor + tokenizer)"
    raise UserError(f"neither {pruned_ref} nor {teacher_ref} has {need}.")


# ------------------------------------------------------------------------------------ the training


def _gradient_sync(params: list[nn.Parameter], share: float, accelerator) -> None:
    """Replace each gradient by the share-weighted sum over processes; "no gradient anywhere" stays None."""
    if accelerator.num_processes == 1:
        return
    import torch.distributed as dist

    device = params[0].device
    flat = torch.cat(
        [(p.grad.reshape(-1) * share) if p.grad is not None else torch.zeros(p.numel(), device=device) for p in params]
    )
    present = torch.tensor([float(p.grad is not None) for p in params], device=device)
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    dist.all_reduce(present, op=dist.ReduceOp.MAX)
    offset = 0
    for p, has in zip(params, present.tolist()):
        n = p.numel()
        p.grad = flat[offset : offset + n].view_as(p).clone() if has else None
        offset += n


def _reduce_values(values: dict[str, float], share: float, accelerator) -> dict[str, float]:
    if accelerator.num_processes == 1:
        return values
    import torch.distributed as dist

    keys = sorted(values)
    t = torch.tensor([values[k] * share for k in keys], dtype=torch.float64, device=accelerator.device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return dict(zip(keys, t.tolist()))


def _local_batch(processor, samples: list, accelerator, encoder_decoder: bool):
    from ukmp.data.calibration import calibration_batches

    shares = np.array_split(np.arange(len(samples)), accelerator.num_processes)
    mine = shares[accelerator.process_index]
    if len(mine) == 0:
        return None, 0
    local = [samples[i] for i in mine]
    batch = next(calibration_batches(processor, local, len(local), encoder_decoder=encoder_decoder))
    return {k: v.to(accelerator.device) for k, v in batch.items()}, len(local)


def plot_history(history: list[dict[str, Any]], file: Path) -> None:
    """Loss per step, one colour per sub-phase, dashed lines at sub-phase boundaries (log scale)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 4.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    names: list[str] = []
    for entry in history:
        if entry["phase"] not in names:
            names.append(entry["phase"])
    for name in names:
        xs = [e["step"] for e in history if e["phase"] == name]
        ys = [e["loss"] for e in history if e["phase"] == name]
        ax.plot(xs, ys, label=name, linewidth=1, marker="." if len(xs) < 40 else None)
        ax.axvline(xs[0] - 0.5, color="grey", linestyle="--", linewidth=0.6)
    if history and all(e["loss"] > 0 for e in history):
        ax.set_yscale("log")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss (sub-phase objective)")
    ax.set_title("recovery loss by sub-phase")
    if names:
        ax.legend(fontsize=8)
    fig.tight_layout()
    tmp = file.with_name(f".{file.stem}.tmp.png")
    fig.savefig(tmp, dpi=110)
    os.replace(tmp, file)


def _check_out(out: Path, config: RecoveryConfig, *, resume: bool, overwrite: bool) -> None:
    """Before any loading: OUT is resumable (with --resume), or new, or a recovery output to replace."""
    from ukmp.artifact import resolve_model_ref

    if resume:
        if not (out / CHECKPOINT_DIR / "last" / ckpt.STATE).is_file():
            raise UserError(f"there is no checkpoint to resume in {out}; run without --resume.")
    elif out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        raise UserError(f"{out} already exists; pass --overwrite to replace it, or --resume to continue it.")
    inputs = (resolve_model_ref(config.pruned), config.teacher and resolve_model_ref(config.teacher), config.data)
    check_output(out, overwrite=overwrite, markers=RECOVERY_MARKERS, inputs=inputs, resume=resume)


def _make_out(out: Path, *, resume: bool, accelerator) -> None:
    """Create the output folder (emptied first unless resuming) once the inputs are known to be good."""
    if accelerator.is_main_process:
        if not resume and out.exists() and (not out.is_dir() or any(out.iterdir())):
            shutil.rmtree(out) if out.is_dir() else out.unlink()
        out.mkdir(parents=True, exist_ok=True)
    accelerator.wait_for_everyone()


def run_recovery(
    config: RecoveryConfig,
    *,
    resume: bool = False,
    overwrite: bool = False,
    stop_after: int | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Train (or continue) the adapter and write the outputs; returns a summary.

    ``stop_after`` ends the run cleanly after that many optimizer steps in all (counting steps done
    before a resume), with a checkpoint, so it can be continued with ``resume=True``.
    """
    from accelerate import Accelerator
    from tqdm import tqdm

    from ukmp.data.calibration import TextCalibrationSource, load_calibration_samples
    from ukmp.data.index import DEFAULT_SHAPES_IMAGES, resolve_data_dir
    from ukmp.data.text import is_text_data
    from ukmp.evaluation.generation import is_encoder_decoder

    config.validate()
    accelerator = Accelerator(cpu=config.cpu, mixed_precision=config.mixed_precision)
    if accelerator.num_processes == 1 and "MASTER_ADDR" in os.environ and "RANK" not in os.environ:
        accelerator.print(
            "note: this is ONE process. `accelerate launch --cpu --num_processes N` starts N processes only "
            "through MPI (an mpirun hostfile); without MPI use `accelerate launch --multi_gpu --num_processes N` "
            "(it runs on CPUs too, with gloo) or `torchrun --nproc_per_node N -m ukmp.cli recover ...`."
        )
    out = Path(config.out)
    _check_out(out, config, resume=resume, overwrite=overwrite)
    started = time.time()

    text = is_text_data(config.data)  # a standalone LM recovers on prefix-LM windows of a text file
    if not text:
        with accelerator.main_process_first():
            data_dir = resolve_data_dir(config.data, config.split, config.max_samples or DEFAULT_SHAPES_IMAGES)

    student, teacher, manifest, teacher_ref, pruned_ref = _load_models(config)
    processor = _load_processor(pruned_ref, teacher_ref, text=text)
    if not text:
        check_processor_matches(student, processor, str(config.pruned))
    if text:
        data_dir = TextCalibrationSource(Path(config.data), config.seq_len, tokenizer=processor)
    samples = load_calibration_samples(data_dir, config.split, seed=config.seed)
    if config.max_samples is not None:
        samples = samples[: config.max_samples]
    if config.vqa_fraction > 0:
        if text:
            raise UserError("--vqa-fraction needs an image-text data folder with VQA questions, not a text file.")
        samples = mix_vqa(samples, data_dir, config.split, config.vqa_fraction, seed=config.seed)
    decoder_only = not is_encoder_decoder(student)
    options = config.lora_options()
    attach_recall_lora(student, teacher, student.ukmp_plan, options, seed=config.seed)
    _make_out(out, resume=resume, accelerator=accelerator)
    paths = block_paths(teacher)
    depths = {c: len(p) for c, p in paths.items()}
    phases = make_schedule(config.schedule, depths)
    counts = allocate_samples(phases, len(samples))
    starts = [sum(counts[:i]) for i in range(len(counts))]
    steps = [math.ceil(n / config.batch_size) for n in counts]

    student.to(accelerator.device)
    teacher.to(accelerator.device)
    student.eval()
    for layer in recall_layers(student).values():
        layer.dropout.train()
    named = adapter_parameters(student)
    names = sorted(named)
    params = [named[n] for n in names]
    for p in params:
        p.requires_grad_(True)

    history: list[dict[str, Any]] = []
    start_phase, start_step, global_step = 0, 0, 0
    pending_optimizer = None
    seconds_before = 0.0
    last = out / CHECKPOINT_DIR / "last"
    if resume:
        state = ckpt.read_checkpoint(last)
        saved, now = state["fingerprint"], config.fingerprint()
        for key in now:
            if saved.get(key) != now[key]:
                raise UserError(
                    f"the checkpoint in {out} was made with {key}={saved.get(key)!r}, this run has {now[key]!r}; "
                    "resume with the same settings, or start a new run."
                )
        load_adapter_state_dict(student, ckpt.load_tensors(last / ckpt.ADAPTER))
        start_phase, start_step, global_step = state["phase"], state["step"], state["global_step"]
        history = state["history"]
        seconds_before = state.get("seconds", 0.0)
        if start_step > 0:
            pending_optimizer = ckpt.optimizer_from_files(
                ckpt.load_tensors(last / ckpt.OPTIMIZER), state["optimizer_groups"]
            )
        rng_file = last / f"rng-{accelerator.process_index}.safetensors"
        if state.get("num_processes") != accelerator.num_processes or not rng_file.is_file():
            accelerator.print(
                "warning: the checkpoint was written by a different number of processes; the run continues, "
                "but its result will not be bit-identical to an uninterrupted one."
            )
            torch.manual_seed(config.seed + 1000 * accelerator.process_index + global_step)
        else:
            ckpt.set_rng_state(ckpt.load_tensors(rng_file))
        accelerator.print(f"resuming at sub-phase {start_phase + 1}/{len(phases)}, step {start_step}")
    else:
        torch.manual_seed(config.seed + 1000 * accelerator.process_index)

    if accelerator.is_main_process:
        summary = adapter_summary(student)
        accelerator.print(
            f"ukmp recover: {len(samples)} samples, schedule {config.schedule}, "
            f"{'plain LoRA' if options.plain else 'LoRA with weight recalling'} on {summary['layers']} layers "
            f"({summary['trainable_parameters']:,} trainable parameters), {accelerator.num_processes} process(es) "
            f"on {accelerator.device}"
        )
        for i, (phase, n, s) in enumerate(zip(phases, counts, steps)):
            sup = ", ".join(f"{c} {list(b)}" for c, b in phase.supervised.items()) or "-"
            accelerator.print(
                f"  {i + 1}. {phase.stage} {phase.name}: {n} samples, {s} steps, losses {'+'.join(phase.losses)}, "
                f"supervised {sup}"
            )

    def save(phase_index: int, step: int, optimizer) -> None:
        state = {
            "fingerprint": config.fingerprint(),
            "phase": phase_index,
            "step": step,
            "global_step": global_step,
            "history": history,
            "num_processes": accelerator.num_processes,
            "seconds": seconds_before + time.time() - started,
        }
        ckpt.write_checkpoint(
            last, accelerator=accelerator, state=state, adapter=adapter_state_dict(student), optimizer=optimizer
        )
        if accelerator.is_main_process and history:
            plot_history(history, out / CURVE_FILE)

    stopped = False
    for pi in range(start_phase, len(phases)):
        phase = phases[pi]
        first = start_step if pi == start_phase else 0
        optimizer = torch.optim.AdamW(
            params, lr=config.lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=config.weight_decay
        )
        if pending_optimizer is not None and pi == start_phase:
            optimizer.load_state_dict(pending_optimizer)
        phase_samples = samples[starts[pi] : starts[pi] + counts[pi]]
        bar = tqdm(
            total=steps[pi],
            initial=first,
            desc=f"{phase.stage} {phase.name}",
            disable=not (progress and accelerator.is_local_main_process),
            dynamic_ncols=True,
        )
        for step in range(first, steps[pi]):
            chunk = phase_samples[step * config.batch_size : (step + 1) * config.batch_size]
            lr = learning_rate(step, config)
            for group in optimizer.param_groups:
                group["lr"] = lr
            batch, n_local = _local_batch(processor, chunk, accelerator, not decoder_only)
            share = n_local / len(chunk)
            values = dict.fromkeys(loss_keys(phase), 0.0)
            if batch is not None:
                with accelerator.autocast():
                    loss, parts = phase_loss(
                        phase,
                        student,
                        teacher,
                        batch,
                        paths,
                        decoder_only=decoder_only,
                        temperature=config.temperature,
                    )
                accelerator.backward(loss)
                values.update(parts)
            _gradient_sync(params, share, accelerator)
            if accelerator.scaler is not None:
                accelerator.scaler.step(optimizer)
                accelerator.scaler.update()
            else:
                optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            values = _reduce_values(values, share, accelerator)
            global_step += 1
            total = sum(values.values())
            history.append({"phase": phase.name, "step": global_step, "loss": total, "lr": lr, **values})
            bar.set_postfix(loss=f"{total:.4g}", refresh=False)
            bar.update(1)
            if stop_after is not None and global_step >= stop_after:
                if step + 1 < steps[pi]:
                    save(pi, step + 1, optimizer)
                else:
                    save(pi + 1, 0, None)
                stopped = True
                break
            if step + 1 < steps[pi] and global_step % config.checkpoint_every == 0:
                save(pi, step + 1, optimizer)
        bar.close()
        if stopped:
            break
        save(pi + 1, 0, None)
        del optimizer

    seconds = seconds_before + time.time() - started
    result: dict[str, Any] = {
        "out": str(out),
        "steps": global_step,
        "seconds": seconds,
        "stopped": stopped,
        "phases": [{**p.to_dict(), "samples": n, "steps": s} for p, n, s in zip(phases, counts, steps)],
        "final_loss": history[-1]["loss"] if history else None,
    }
    if stopped:
        accelerator.print(f"stopped after {global_step} steps; continue with --resume (checkpoint in {last})")
        accelerator.end_training()
        return result

    info = {
        "format": ADAPTER_FORMAT,
        "pruned_model": str(Path(pruned_ref).resolve()),
        "teacher": teacher_ref,
        "teacher_sha256": (manifest.get("base_model") or {}).get("sha256"),
        "options": options.to_dict(),
        "adapter": adapter_summary(student),
        "recovery": {
            "schedule": config.schedule,
            "plain_lora": config.plain_lora,
            "data": str(data_dir),
            "split": config.split,
            "samples": len(samples),
            "batch_size": config.batch_size,
            "lr": config.lr,
            "warmup_lr": config.warmup_lr,
            "warmup_steps": config.warmup_steps,
            "weight_decay": config.weight_decay,
            "temperature": config.temperature,
            "seed": config.seed,
            "num_processes": accelerator.num_processes,
            "mixed_precision": accelerator.mixed_precision,
            "steps": global_step,
            "seconds": round(seconds, 1),
            "final_loss": result["final_loss"],
            "phases": result["phases"],
        },
    }
    if accelerator.is_main_process:
        from safetensors.torch import save_file

        tmp = out / f".{ADAPTER_FILE}.tmp"
        save_file(adapter_state_dict(student), str(tmp), metadata={"format": ADAPTER_FORMAT, "producer": "ukmp"})
        os.replace(tmp, out / ADAPTER_FILE)
        write_json_atomic(out / ADAPTER_CONFIG, info)
        write_json_atomic(out / HISTORY_FILE, history)
        if history:
            plot_history(history, out / CURVE_FILE)
        processor.save_pretrained(out)
        if config.merge:
            _save_merged(student, manifest, processor, out / MERGED_DIR, info["recovery"] | {"adapter": info})
        written = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
        accelerator.print(f"wrote {out.resolve()} ({', '.join(written)})")
        if config.merge:
            accelerator.print(f"merged model: {(out / MERGED_DIR).resolve()} (load it with ukmp.load_pruned)")
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return result


def _save_merged(student: nn.Module, manifest: dict[str, Any], processor, folder: Path, recovery: dict) -> None:
    """Fold the adapter into plain Linears and save a normal pruned artifact whose manifest records it."""
    from ukmp.artifact import WEIGHTS, cast_to_saved_dtype, save_pruned, weight_dtypes

    merge_recall_lora(student)  # in float32: a bf16 student would lose updates smaller than its rounding step
    source = Path(recovery["adapter"]["pruned_model"])
    student.eval().cpu()
    cast_to_saved_dtype(student, "auto", weight_dtypes(source / WEIGHTS))  # then one cast, to the artifact's dtypes
    extra_files = {}
    if (source / "scores.safetensors").is_file():
        extra_files["scores.safetensors"] = lambda dst: shutil.copyfile(source / "scores.safetensors", dst)
    method = manifest.get("method") or {}
    save_pruned(
        student,
        None,
        folder,
        processor=processor,
        base_model_ref=(manifest.get("base_model") or {}).get("reference"),
        base_checksum=(manifest.get("base_model") or {}).get("sha256"),
        method=method.get("name"),
        options=method.get("options"),
        seed=manifest.get("seed"),
        target_ratio=manifest.get("target_ratio"),
        ratio_basis=manifest.get("ratio_basis", "all"),
        overwrite=True,
        extra=manifest.get("extra"),
        extra_files=extra_files,
        recovery={"method": "lpd" if recovery["schedule"] == "lpd" else recovery["schedule"], **recovery},
    )
