"""Plan search (beyond the paper): among plans the scores cannot tell apart, keep the one that answers best.

Why. At 50% of the shipped model's parameters, the VQA accuracy of a pruned model depends on which
nearly tied units fall on either side of the cut, not on how precisely they were scored:
perturbing one calibration draw's scores by as much as two draws disagree (Spearman 0.989 between
the perturbed and the original scores) moves VQA over 72.6-80.1%, as wide as five calibration
draws (72.9-79.7%), and four times the calibration data does not narrow it
(`results/evidence-50/`, section 7). Those plans are equivalent to the scorer; a held-out task
loss is not: the loss on 256 of the world's *train* question-answer pairs ranks ten such plans
the way val VQA does (Spearman +0.78), where the loss on calibration captions and the KL from the
dense model do not (+0.13 and -0.02).

So the search draws `candidates - 1` perturbed copies of the scores (each unit's score times
exp(spread * N(0, 1)), seeded), plans each one with the method's own schedule, and keeps the plan
whose pruned model has the lowest mean answer loss on the selection pairs. Candidate 0 is the
scores' own plan, so `candidates = 1` is the plain method, and the search never changes what the
scorer or the schedule compute. It works for every method (it only sees scores and a plan
function). On a vision-language model it reads task data that the paper's methods do not
(question-answer pairs of a train split), so its results are reported apart from the
paper-faithful ones. On a standalone language model it reads only the calibration text: the
windows the scorer did not read, with the next-token loss the user's perplexity measures.

A candidate is evaluated with its removed units masked at the inputs of their consumers (forward
pre-hooks zero those input columns), which is exactly what the sliced model computes and needs
no copy of the model. FLAP's bias compensation is applied only to the chosen plan, after the
search.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from ukmp.adapters.base import get_module
from ukmp.data.calibration import calibration_batches, load_calibration_samples, text_source
from ukmp.data.prefix_lm import PrefixLMSample
from ukmp.data.recovery_mix import Prompt, vqa_samples
from ukmp.data.text_calibration import TextSample
from ukmp.errors import UserError
from ukmp.groups import PrunableGroup, PruningPlan
from ukmp.planning.global_schedule import PlanResult
from ukmp.recovery.teacher_answers import teacher_answerer
from ukmp.removal_cost import mean_target_nll

#: where the answers of the selection pairs come from (a text --calib needs neither: its windows are their own targets)
SELECTION_ANSWERS = ("labels", "teacher")


@dataclass
class PlanSearchOptions:
    """How many plans to try, how far from the scores, and on how many selection pairs."""

    candidates: int = 1
    spread: float = 0.25
    samples: int = 256
    split: str = "train"
    batch_size: int = 16
    #: who answers the selection questions: the split's human "labels", or the dense "teacher" (no label read)
    answers: str = "labels"

    @property
    def enabled(self) -> bool:
        return self.candidates > 1

    def validate(self) -> None:
        if self.candidates < 1:
            raise UserError(f"--plan-search must be at least 1 (1 = no search), got {self.candidates}.")
        if not math.isfinite(self.spread) or self.spread <= 0:
            raise UserError(f"--plan-search-spread must be a positive number, got {self.spread:g}.")
        if self.samples < 1:
            raise UserError(f"--plan-search-samples must be at least 1, got {self.samples}.")
        if self.answers not in SELECTION_ANSWERS:
            raise UserError(
                f"--plan-search-answers must be one of {', '.join(SELECTION_ANSWERS)}, got {self.answers!r}."
            )


def perturbed_scores(
    scores: Mapping[str, torch.Tensor], spread: float, generator: torch.Generator
) -> dict[str, torch.Tensor]:
    """Each unit's score times exp(spread * N(0, 1)): the same signs, ranks shuffled only among near ties."""
    out = {}
    for name in sorted(scores):
        value = scores[name]
        noise = torch.randn(value.shape, generator=generator, dtype=torch.float64)
        out[name] = (value.double() * torch.exp(spread * noise)).to(value.dtype)
    return out


@contextmanager
def consumer_inputs_masked(model: nn.Module, groups: Sequence[PrunableGroup], plan: PruningPlan) -> Iterator[None]:
    """Inside the block the plan's removed units feed nothing into their consumers (hooks removed on exit)."""
    columns: dict[str, list[torch.Tensor]] = {}
    for group in groups:
        removed = plan.removed(group) if group.name in plan.kept else []
        for member in group.consumers if removed else ():
            columns.setdefault(member.module, []).append(member.indices(removed))
    hooks = []

    def zero_columns(index: torch.Tensor):
        def hook(_module: nn.Module, args: tuple) -> tuple:
            x = args[0].clone()
            x[..., index.to(x.device)] = 0.0
            return (x, *args[1:])

        return hook

    try:
        for name, parts in sorted(columns.items()):
            hooks.append(get_module(model, name).register_forward_pre_hook(zero_columns(torch.cat(parts).unique())))
        yield
    finally:
        for handle in hooks:
            handle.remove()


def selection_batches(
    processor, model: nn.Module, data: str | Path, options: PlanSearchOptions, seed: int, *, reserved: int = 0
):
    """The pairs (or text windows) that choose the plan, as model inputs.

    An image-text folder gives `options.samples` question-answer pairs of `options.split`, shuffled
    with `seed`; with ``options.answers == "teacher"`` the same questions are answered by ``model``
    (the dense model) instead of the labels, so the judge reads no label: a candidate is then
    judged by how far it drifts from the dense model's own answers. A text file (a standalone
    language model) gives the last `options.samples` of its
    windows in the calibration order of `seed`, with every token a target (the perplexity the user
    measures): the scorers read the first `reserved` windows of that order, so the two never meet.
    """
    if text_source(data) is not None:
        return text_selection_batches(processor, data, options, seed, reserved=reserved, model=model)
    labelled = ("--plan-search-answers labels", "use --plan-search-answers teacher: the dense model answers them.")
    pairs = vqa_samples(data, options.split, labelled_for=labelled if options.answers == "labels" else None)
    if not pairs:
        raise UserError(
            f"--plan-search needs question-answer pairs: {data} has no VQA questions in split {options.split!r}."
        )
    random.Random(seed).shuffle(pairs)
    pairs = pairs[: options.samples]
    if options.answers == "teacher":
        pairs = teacher_answered(model, processor, pairs, batch_size=options.batch_size)
    return list(calibration_batches(processor, pairs, options.batch_size, model=model))


def teacher_answered(model: nn.Module, processor, pairs: Sequence[PrefixLMSample], *, batch_size: int):
    """The same question prompts with the dense model's own answers (the evaluation's VQA settings) as targets."""
    answer = teacher_answerer(model, processor, batch_size=batch_size, progress=False)
    answers = answer([Prompt(p.image_path, p.text_input) for p in pairs])
    return [replace(p, text_output=a) for p, a in zip(pairs, answers, strict=True)]


def text_selection_batches(processor, data, options: PlanSearchOptions, seed: int, *, reserved: int, model=None):
    """Held-out windows of the calibration text, next-token loss on every token (see `selection_batches`)."""
    held_out = held_out_windows(processor, data, seed, reserved=reserved)
    if options.samples > len(held_out):
        raise UserError(
            f"--plan-search needs {options.samples} windows of the calibration text beside the {reserved} the "
            f"scorer reads, but {data} has {len(held_out) + reserved}; lower --plan-search-samples or --num-samples, "
            "or give more text."
        )
    return window_batches(processor, held_out[len(held_out) - options.samples :], options.batch_size, model=model)


def held_out_windows(processor, data, seed: int, *, reserved: int) -> list[TextSample]:
    """The windows of the calibration text after the first ``reserved`` of its order (those the scorers read)."""
    windows = load_calibration_samples(data, "train", seed=seed, tokenizer=processor)
    return [TextSample(w.ids, 0) for w in windows[reserved:]]


def window_batches(processor, windows: Sequence[TextSample], batch_size: int, *, model=None) -> list:
    """Text windows as model inputs with every token a target (placed for ``model`` when given)."""
    return list(calibration_batches(processor, windows, batch_size, model=model))


def plan_loss(model: nn.Module, groups: Sequence[PrunableGroup], plan: PruningPlan, batches: Sequence) -> float:
    """Mean next-token loss of ``model`` with ``plan``'s removed units masked (what the sliced model computes)."""
    with consumer_inputs_masked(model, groups, plan):
        return mean_target_nll(model, batches)


@torch.no_grad()
def search_plan(
    model: nn.Module,
    groups: Sequence[PrunableGroup],
    scores: Mapping[str, torch.Tensor],
    make_plan: Callable[[Mapping[str, torch.Tensor]], PlanResult],
    batches: Sequence[Mapping[str, torch.Tensor]],
    options: PlanSearchOptions,
    *,
    seed: int,
    progress: bool = True,
) -> tuple[PlanResult, dict]:
    """The candidate plan with the lowest selection loss, and a trace of every candidate's loss."""
    generator = torch.Generator().manual_seed(seed)
    was_training = model.training
    model.eval()
    best: tuple[float, int, PlanResult] | None = None
    losses = []
    try:
        for k in tqdm(range(options.candidates), desc="plan search", unit="plan", disable=not progress):
            candidate = scores if k == 0 else perturbed_scores(scores, options.spread, generator)
            result = make_plan(candidate)
            loss = plan_loss(model, groups, result.plan, batches)
            losses.append(round(loss, 6))
            if best is None or loss < best[0]:
                best = (loss, k, result)
    finally:
        model.train(was_training)
    trace = {
        "candidates": options.candidates,
        "spread": options.spread,
        "samples": options.samples,
        "split": options.split,
        "answers": options.answers,
        "seed": seed,
        "losses": losses,
        "chosen": best[1],
    }
    return best[2], trace
