"""UKMI: Unified Knowledge Maintenance Importance (docs/method-notes.md).

Per unit (head or channel) of every group:

1. **Taylor selection** (Eq. 8): gradients G of the loss made only of poorly fitted next-token
   predictions (`token_selection.py`), summed over calibration samples.
2. **Taylor term**: `first` |W ⊙ G| (sum over samples first, then the absolute value, as the
   authors' code does); `second` ½ W² ⊙ F with a real diagonal Fisher F = Σ_n g_n² (the authors'
   code never computes it); `mix` = first + second (docs/compare.md).
3. **Block-wise param norm**: the salience summed over every weight attached to the unit
   (producer rows and consumer columns), divided by the number of those weights. For equal-width
   members this is exactly the paper's per-channel mean, and a head's score is the mean over its
   dims. Biases are ignored, as in the code.
4. **Entropy injection** (Eq. 9, `entropy.py`): for language groups (and vision groups if asked),
   the mean entropy of the producer rows a unit owns (q, k, v rows of a head; wi_0, wi_1 rows of a
   channel), multiplied into the Taylor score: a product of means, as in the code.

The entropy pass and the gradient pass use different calibration samples (the authors' loader
gives samples 1-1000 to the entropy pass and 1001-2000 to the gradients). Both passes run with the
model in eval mode and fp32 statistics, where the authors ran in train mode (dropout on) in
fp16/bf16: a deliberate, documented difference that makes the scores deterministic.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch import nn
from tqdm import tqdm

from ukmp.adapters import find_adapter
from ukmp.adapters.base import get_module
from ukmp.distributed import ONE_PROCESS, World
from ukmp.groups import PrunableGroup
from ukmp.methods.entropy import ANGLE_MODES, RowAngleHistogram
from ukmp.methods.option_flag import option_flag
from ukmp.methods.targets import target_logits
from ukmp.methods.token_selection import (
    DEFAULT_THRESHOLD,
    SELECTION_MODES,
    Threshold,
    parse_threshold,
    selected_token_loss,
)
from ukmp.methods.weight_gradients import member_modules, take_gradients
from ukmp.peak_memory import PeakMeter
from ukmp.placement import model_device

TAYLOR_TERMS = ("first", "second", "mix")
ENTROPY_MODES = (*ANGLE_MODES, "off")


@dataclass
class UKMIOptions:
    """Every switch of the appendix's Tables B and C.

    ``threshold`` is the paper's absolute T (a float) or a relative fraction written ``"q0.34"``
    (`token_selection.parse_threshold`); it stays a plain value so the options serialise to JSON.
    """

    flag_group: ClassVar[str] = "UKMP's importance (docs/method-notes.md)"

    threshold: float | str = option_flag(
        DEFAULT_THRESHOLD,
        "--threshold",
        "Taylor selection: absolute T (1.0 = off), or qF for the least-fitted fraction F of each sample's tokens",
        parse=lambda text: parse_threshold(text).option,
        default_text="the preset's",
    )
    selection: str = option_flag("confidence", "--selection", "which tokens T selects", choices=SELECTION_MODES)
    taylor: str = option_flag(
        "first", "--taylor", "Taylor term of UKMP's and LLM-Pruner's importance", choices=TAYLOR_TERMS
    )
    entropy: str = option_flag("cosine", "--entropy", "entropy injection", choices=ENTROPY_MODES)
    entropy_on_vision: bool = option_flag(False, "--entropy-on-vision", "inject entropy into vision groups too")
    bins: int = 100

    def validate(self) -> None:
        from ukmp.errors import UserError

        try:
            parse_threshold(self.threshold)
        except ValueError as exc:
            raise UserError(str(exc)) from None
        if self.selection not in SELECTION_MODES:
            raise UserError(f"--selection must be one of {', '.join(SELECTION_MODES)}, got {self.selection!r}.")
        if self.taylor not in TAYLOR_TERMS:
            raise UserError(f"--taylor must be one of {', '.join(TAYLOR_TERMS)}, got {self.taylor!r}.")
        if self.entropy not in ENTROPY_MODES:
            raise UserError(f"--entropy must be one of {', '.join(ENTROPY_MODES)}, got {self.entropy!r}.")

    @property
    def selection_threshold(self) -> Threshold:
        return parse_threshold(self.threshold)


@dataclass
class UKMIScores:
    """Per-group unit scores, their two factors, and what computing them cost."""

    scores: dict[str, torch.Tensor]
    taylor: dict[str, torch.Tensor]
    entropy: dict[str, torch.Tensor] = field(default_factory=dict)
    stats: dict = field(default_factory=dict)


def accumulate_gradients(
    model: nn.Module,
    groups: list[PrunableGroup],
    batches: Iterable[dict[str, torch.Tensor]],
    options: UKMIOptions,
    *,
    total: int | None = None,
    progress: bool = True,
    world: World = ONE_PROCESS,
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], dict]:
    """G = Σ_n ∂L_n/∂W (and F = Σ_n (∂L_n/∂W)² when needed) for every member Linear's weight.

    With several processes (``world``) each passes its own samples and the sums are added up.
    """
    modules = member_modules(model, groups)
    need_fisher = options.taylor in ("second", "mix")
    inputs = find_adapter(model).inputs  # how a batch splits into samples is the model's
    was_training = model.training
    model.eval()
    flags = {p: p.requires_grad for p in model.parameters()}
    for p in model.parameters():
        p.requires_grad_(False)
    for module in modules.values():
        module.weight.requires_grad_(True)
        module.weight.grad = None
    # Without Fisher, autograd's own accumulation into .grad *is* the sum G, so no second buffer is
    # needed: scoring holds the weights and one set of gradients (bfloat16 scoring: the sum over batches
    # is then formed in bfloat16; everything computed from it is float32). Fisher needs per-sample
    # gradients, summed into float32 buffers.
    in_place = not need_fisher
    grads = {} if in_place else {n: torch.zeros_like(m.weight, dtype=torch.float32) for n, m in modules.items()}
    fisher = (
        {name: torch.zeros_like(m.weight, dtype=torch.float32) for name, m in modules.items()} if need_fisher else {}
    )
    tokens = {"selected": 0, "valid": 0, "samples": 0}
    started = time.time()
    meter = PeakMeter(model_device(model)).start()
    try:
        for batch in tqdm(batches, total=total, desc="UKMI gradients", unit="batch", disable=not progress):
            # Fisher needs per-sample gradients; the first-order sum does not, and one backward of the
            # summed per-sample losses gives exactly Σ_n ∂L_n/∂W.
            pieces = inputs.sample_pieces(batch) if need_fisher else [batch]
            for piece in pieces:
                out = model(**piece)
                logits, labels = target_logits(model, out.logits, piece["labels"])
                selected = selected_token_loss(logits, labels, options.selection_threshold, options.selection)
                selected.loss.backward()
                tokens["selected"] += int(selected.selected_tokens.sum())
                tokens["valid"] += int(selected.valid_tokens.sum())
                tokens["samples"] += int(labels.shape[0])
                if in_place:
                    continue
                for name, module in modules.items():
                    g = module.weight.grad.float()
                    grads[name] += g
                    if need_fisher:
                        fisher[name] += g * g
                    module.weight.grad = None
        if in_place:
            grads = take_gradients(modules)
    finally:
        reading = meter.stop()
        for p, flag in flags.items():
            p.requires_grad_(flag)
        model.train(was_training)
    world.sum_([*grads.values(), *fisher.values()])
    tokens = world.sum_counts(tokens)
    stats = {
        "seconds": time.time() - started,
        **reading.as_dict(),
        "backpropagated_tokens": tokens["selected"],
        "target_tokens": tokens["valid"],
        "samples": tokens["samples"],
        "processes": world.size,
    }
    return grads, fisher, stats


def salience(weight: torch.Tensor, grad: torch.Tensor, fisher: torch.Tensor | None, term: str) -> torch.Tensor:
    """Element-wise Taylor salience of one weight matrix (float32)."""
    w = weight.detach().float()
    first = (w * grad).abs()
    if term == "first":
        return first
    second = 0.5 * w * w * fisher
    return second if term == "second" else first + second


def taylor_unit_scores(
    model: nn.Module,
    groups: list[PrunableGroup],
    grads: dict[str, torch.Tensor],
    fisher: dict[str, torch.Tensor],
    term: str,
) -> dict[str, torch.Tensor]:
    """Mean salience per attached weight, per unit (the block-wise param norm).

    A module's float32 salience is kept only until the last group that reads it is done, so at most
    a few weight matrices' worth exists at once (not a float32 copy of the model).
    """
    cache: dict[str, torch.Tensor] = {}
    readers = Counter(m.module for g in groups for m in g.members)
    out: dict[str, torch.Tensor] = {}
    units = torch.arange(max(g.num_units for g in groups)) if groups else torch.arange(0)
    for group in groups:
        total = torch.zeros(group.num_units, dtype=torch.float64)
        count = 0
        for member in group.members:
            module = get_module(model, member.module)
            if member.module not in cache:
                cache[member.module] = salience(module.weight, grads[member.module], fisher.get(member.module), term)
            readers[member.module] -= 1
            s = cache[member.module] if readers[member.module] else cache.pop(member.module)
            index = member.indices(units[: group.num_units]).to(s.device)
            per_index = s.index_select(member.dim, index).sum(dim=1 - member.dim).double().cpu()
            total += per_index.reshape(group.num_units, member.width).sum(dim=1)
            count += member.width * (module.in_features if member.dim == 0 else module.out_features)
        out[group.name] = total / count
    return out


def accumulate_entropy(
    model: nn.Module,
    groups: list[PrunableGroup],
    batches: Iterable[dict[str, torch.Tensor]],
    options: UKMIOptions,
    *,
    total: int | None = None,
    progress: bool = True,
    world: World = ONE_PROCESS,
) -> tuple[dict[str, torch.Tensor], dict]:
    """Row entropies of every producer Linear of the entropy-receiving groups, streamed.

    With several processes (``world``) each counts its own samples into the histograms, which are
    added up before the entropies are taken.

    Padding tokens would add cosines that depend on how a batch was padded, so batches are split
    into single samples here (the authors ran at batch size 1 too).
    """
    producers = {m.module for g in groups for m in g.producers}
    modules = {name: get_module(model, name) for name in sorted(producers)}
    hists = {name: RowAngleHistogram(m.weight, options.bins, options.entropy) for name, m in modules.items()}
    hooks = []
    for name, module in modules.items():

        def hook(mod: nn.Module, args: tuple, _out: torch.Tensor, name: str = name) -> None:
            hists[name].update(args[0], mod.weight)

        hooks.append(module.register_forward_hook(hook))
    was_training = model.training
    model.eval()
    inputs = find_adapter(model).inputs
    decoder_only = not inputs.encoder_decoder  # from the config, never from tensor shapes
    started = time.time()
    samples = 0
    meter = PeakMeter(model_device(model)).start()
    try:
        with torch.no_grad():
            for batch in tqdm(batches, total=total, desc="UKMI entropy", unit="batch", disable=not progress):
                for piece in inputs.sample_pieces(batch):
                    piece = _strip_padding(piece, decoder_only=decoder_only, token_keys=inputs.token_keys)
                    model(**piece)
                    samples += 1
    finally:
        reading = meter.stop()
        for h in hooks:
            h.remove()
        model.train(was_training)
    world.sum_([h.counts for h in hists.values()])
    samples = world.sum_counts({"samples": samples})["samples"]
    stats = {"seconds": time.time() - started, **reading.as_dict(), "samples": samples}
    return {name: h.entropy() for name, h in hists.items()}, stats


def _strip_padding(
    sample: dict[str, torch.Tensor], *, decoder_only: bool, token_keys: tuple[str, ...] = ()
) -> dict[str, torch.Tensor]:
    """Drop right padding of one sample so no pad token reaches a hooked layer.

    The model kind comes from its config: guessing it from equal label and input widths kept pad
    positions in a T5 decoder whenever a padded label happened to be as wide as the encoder input.
    """
    sample = dict(sample)
    if "attention_mask" in sample and "input_ids" in sample:
        n = int(sample["attention_mask"][0].sum())
        sample["input_ids"] = sample["input_ids"][:, :n]
        sample["attention_mask"] = sample["attention_mask"][:, :n]
        for key in token_keys:  # laid out like input_ids (Qwen2-VL's token types)
            sample[key] = sample[key][:, :n]
        if decoder_only and "labels" in sample:  # labels are aligned with input_ids
            sample["labels"] = sample["labels"][:, :n]
            return sample
    if "labels" in sample:
        valid = (sample["labels"][0] != -100).nonzero()
        n = int(valid.max()) + 1 if len(valid) else sample["labels"].shape[1]
        sample["labels"] = sample["labels"][:, :n]
    return sample


def entropy_unit_scores(groups: list[PrunableGroup], row_entropy: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Mean entropy over the producer rows each unit owns (q, k, v rows; wi_0, wi_1 rows)."""
    out = {}
    for group in groups:
        units = torch.arange(group.num_units)
        total = torch.zeros(group.num_units, dtype=torch.float64)
        rows = 0
        for member in group.producers:
            h = row_entropy[member.module].double()
            total += h[member.indices(units)].reshape(group.num_units, member.width).sum(dim=1)
            rows += member.width
        out[group.name] = total / rows
    return out


def ukmi_scores(
    model: nn.Module,
    groups: list[PrunableGroup],
    entropy_batches: Iterable[dict[str, torch.Tensor]] | None,
    gradient_batches: Iterable[dict[str, torch.Tensor]],
    options: UKMIOptions | None = None,
    *,
    entropy_total: int | None = None,
    gradient_total: int | None = None,
    progress: bool = True,
    world: World = ONE_PROCESS,
) -> UKMIScores:
    """UKMI unit scores for `groups` of `model` (dense) from two disjoint sets of calibration batches."""
    options = options or UKMIOptions()
    options.validate()
    stats: dict = {"options": options.__dict__.copy()}
    entropy_groups = [
        g for g in groups if options.entropy != "off" and (g.modality == "language" or options.entropy_on_vision)
    ]
    entropy: dict[str, torch.Tensor] = {}
    if entropy_groups:
        if entropy_batches is None:
            raise ValueError("entropy injection needs entropy_batches (or options.entropy='off')")
        row_entropy, stats["entropy_pass"] = accumulate_entropy(
            model, entropy_groups, entropy_batches, options, total=entropy_total, progress=progress, world=world
        )
        entropy = entropy_unit_scores(entropy_groups, row_entropy)
    grads, fisher, stats["gradient_pass"] = accumulate_gradients(
        model, groups, gradient_batches, options, total=gradient_total, progress=progress, world=world
    )
    taylor = taylor_unit_scores(model, groups, grads, fisher, options.taylor)
    scores = {name: taylor[name] * entropy[name] if name in entropy else taylor[name].clone() for name in taylor}
    return UKMIScores(scores=scores, taylor=taylor, entropy=entropy, stats=stats)
