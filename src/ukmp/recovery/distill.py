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
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from safetensors.torch import save_file
from torch import nn
from tqdm import tqdm

from ukmp.adapters import find_adapter
from ukmp.artifact import WEIGHTS, cast_to_saved_dtype, save_retrained, weight_dtypes
from ukmp.atomic import write_json_atomic
from ukmp.data.calibration import TextCalibrationSource, load_calibration_samples
from ukmp.data.index import DEFAULT_SHAPES_IMAGES, available_tasks, resolve_data_dir
from ukmp.data.recovery_mix import mix_questions, mix_vqa, read_prompts
from ukmp.data.text import is_text_data
from ukmp.errors import UserError
from ukmp.loading import resolve_model_ref
from ukmp.output_guard import check_output
from ukmp.preflight import check_processor_matches
from ukmp.recovery import checkpoint as ckpt
from ukmp.recovery.config import RecoveryConfig, learning_rate
from ukmp.recovery.data_parallel import gradient_sync, local_batch, reduce_values
from ukmp.recovery.features import block_paths, loss_keys, phase_loss
from ukmp.recovery.models import load_models, load_recovery_processor
from ukmp.recovery.phases import allocate_samples, make_schedule
from ukmp.recovery.recall_lora import (
    adapter_parameters,
    adapter_state_dict,
    adapter_summary,
    attach_recall_lora,
    load_adapter_state_dict,
    merge_recall_lora,
    recall_layers,
)
from ukmp.recovery.recovered import ADAPTER_CONFIG, ADAPTER_FILE, ADAPTER_FORMAT
from ukmp.recovery.teacher_answers import teacher_answerer

HISTORY_FILE = "history.json"
CURVE_FILE = "loss_curve.png"
MERGED_DIR = "merged"
CHECKPOINT_DIR = "checkpoints"
#: what a recovery output holds (one of them marks a folder `--overwrite` may replace)
RECOVERY_MARKERS = ("adapter_config.json", CHECKPOINT_DIR, "history.json", MERGED_DIR, CURVE_FILE, ".loss_curve*")


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


def question_mix(config: RecoveryConfig, captions: list, data_dir, teacher, processor, progress: bool) -> list:
    """The captions with ``config.vqa_fraction`` of them replaced by question prompts (`ukmp.data.recovery_mix`).

    The prompts are the split's questions or the user's ``--prompts``; the answers their labels, or
    with ``--answers teacher`` the teacher's own (no label is read).
    """
    answer = teacher_answerer(teacher, processor, progress=progress) if config.answers == "teacher" else None
    if config.prompts is not None:
        return mix_questions(captions, read_prompts(config.prompts), config.vqa_fraction, answer, seed=config.seed)
    if "vqa" not in available_tasks(data_dir, config.split):
        raise UserError(
            f"--vqa-fraction {config.vqa_fraction:g} mixes in the split's questions, but the {config.split!r} split of "
            f"{data_dir} has none: pass --prompts FILE (the teacher answers them) or --vqa-fraction 0."
        )
    images = world_images(config)
    return mix_vqa(
        captions, data_dir, config.split, config.vqa_fraction, seed=config.seed, answer=answer, images=images
    )


def world_images(config: RecoveryConfig) -> int:
    """How many of the built-in world's images this run asks for: the shared cache may hold more, written by
    an earlier, larger run, and drawing from all of them would make one seed draw other samples on a
    machine with another history (`load_calibration_samples`'s ``pool``)."""
    return config.max_samples or DEFAULT_SHAPES_IMAGES


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
            data_dir = resolve_data_dir(config.data, config.split, world_images(config))

    student, teacher, manifest, teacher_ref, pruned_ref = load_models(config)
    processor = load_recovery_processor(pruned_ref, teacher_ref, text=text)
    if not text:
        check_processor_matches(student, processor, str(config.pruned))
    if text:
        data_dir = TextCalibrationSource(Path(config.data), config.seq_len, tokenizer=processor)
    samples = load_calibration_samples(
        data_dir, config.split, seed=config.seed, pool=None if text else world_images(config)
    )
    if config.max_samples is not None:
        samples = samples[: config.max_samples]
    if config.vqa_fraction > 0:
        if text:
            raise UserError("--vqa-fraction needs an image-text data folder with VQA questions, not a text file.")
        samples = question_mix(config, samples, data_dir, teacher, processor, progress and accelerator.is_main_process)
    decoder_only = not find_adapter(student).inputs.encoder_decoder
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
            batch, n_local = local_batch(processor, chunk, accelerator, student)
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
            gradient_sync(params, share, accelerator)
            if accelerator.scaler is not None:
                accelerator.scaler.step(optimizer)
                accelerator.scaler.update()
            else:
                optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            values = reduce_values(values, share, accelerator)
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
    merge_recall_lora(student)  # in float32: a bf16 student would lose updates smaller than its rounding step
    source = Path(recovery["adapter"]["pruned_model"])
    student.eval().cpu()
    cast_to_saved_dtype(student, "auto", weight_dtypes(source / WEIGHTS))  # then one cast, to the artifact's dtypes
    extra_files = {}
    if (source / "scores.safetensors").is_file():
        extra_files["scores.safetensors"] = lambda dst: shutil.copyfile(source / "scores.safetensors", dst)
    recovery = {"method": "lpd" if recovery["schedule"] == "lpd" else recovery["schedule"], **recovery}
    save_retrained(
        student, manifest, folder, processor=processor, recovery=recovery, overwrite=True, extra_files=extra_files
    )
