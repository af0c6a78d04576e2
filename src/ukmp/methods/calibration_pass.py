"""One shared calibration pass for every baseline: activation statistics and plain-loss gradients.

FLAP, Wanda-sp and ECoFLaP-sp read per-channel statistics of the consumers' inputs; LLM-Pruner and
UPop read gradients of the plain next-token loss. Both come out of the same forward passes over the
same samples, so a run that compares several methods declares everything it will need up front
(``require``) and the first request computes it all in one pass; later requests are served from
memory. A request for something not computed yet (Fisher after a first-order pass) runs one more
pass, and says so in ``passes``.

Samples go through one at a time: no padding then reaches a hooked Linear (padded positions would
shift the means and variances), and per-sample gradients are available for the Fisher. The loss is
LLM-Pruner's: cross-entropy averaged over all target tokens of a sample, summed over samples, with
no token selection (that is UKMP's own gradient pass).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ukmp.data.calibration import calibration_batches, load_calibration_samples, take_disjoint
from ukmp.errors import UserError
from ukmp.groups import PrunableGroup
from ukmp.methods.activation_stats import ChannelStats, consumer_names, record_input_stats
from ukmp.methods.targets import target_logits
from ukmp.methods.weight_gradients import member_modules, take_gradients
from ukmp.peak_memory import PeakMeter
from ukmp.placement import model_device


def plain_target_loss(model: nn.Module, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over every target token (labels != -100) of the batch."""
    logits, labels = target_logits(model, logits, labels)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), labels.reshape(-1), ignore_index=-100)


@dataclass
class CalibrationPass:
    """The model, its groups and the calibration samples every baseline of one run shares."""

    model: nn.Module
    processor: object
    groups: list[PrunableGroup]
    calib_dir: str | Path
    split: str = "train"
    num_samples: int = 64
    batch_size: int = 8
    seed: int = 0
    progress: bool = True
    passes: list[dict] = field(default_factory=list)
    _needs: set[str] = field(default_factory=set)
    _activations: dict[str, ChannelStats] | None = None
    _grads: dict[str, torch.Tensor] | None = None
    _fisher: dict[str, torch.Tensor] | None = None
    _samples: list | None = None

    def __post_init__(self) -> None:
        if self.num_samples <= 0:
            raise UserError(f"--num-samples must be positive, got {self.num_samples}.")
        if self.batch_size <= 0:
            raise UserError(f"--batch-size must be positive, got {self.batch_size}.")
        if self.processor is None:
            raise UserError("calibration needs the model's processor (image processor + tokenizer).")

    # ------------------------------------------------------------------------------------ samples

    def samples(self) -> list:
        """The first ``num_samples`` prefix-LM samples of the shuffled calibration split."""
        if self._samples is None:
            everything = load_calibration_samples(self.calib_dir, self.split, seed=self.seed, pool=2 * self.num_samples)
            self._samples = take_disjoint(everything, [self.num_samples])[0]
        return self._samples

    def batches(self, batch_size: int | None = None):
        """Model inputs for the samples, ``batch_size`` at a time (default: the pass's batch size)."""
        return calibration_batches(
            self.processor,
            self.samples(),
            batch_size or self.batch_size,
            model=self.model,
        )

    # -------------------------------------------------------------------------------- shared pass

    def require(self, *needs: str) -> None:
        """Declare what later requests will need ('activations', 'gradients', 'fisher')."""
        unknown = set(needs) - {"activations", "gradients", "fisher"}
        if unknown:
            raise ValueError(f"unknown calibration needs {sorted(unknown)}")
        self._needs.update(needs)

    def activations(self) -> dict[str, ChannelStats]:
        """Input statistics of every consumer Linear (computed on first use)."""
        if self._activations is None:
            self._run({"activations"})
        return self._activations

    def gradients(self, fisher: bool = False) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """G = sum_n dL_n/dW of every member weight, and F = sum_n (dL_n/dW)^2 when ``fisher``."""
        if self._grads is None or (fisher and self._fisher is None):
            self._run({"gradients", "fisher"} if fisher else {"gradients"})
        return self._grads, (self._fisher or {})

    def _run(self, wanted: set[str]) -> None:
        needs = wanted | self._needs
        if "fisher" in needs:
            needs.add("gradients")
        if self._activations is not None:
            needs.discard("activations")
        if self._grads is not None and ("fisher" not in needs or self._fisher is not None):
            needs -= {"gradients", "fisher"}
        if not needs:
            return
        model = self.model
        modules = member_modules(model, self.groups)
        with_grad = "gradients" in needs
        with_fisher = "fisher" in needs
        fisher = {n: torch.zeros_like(m.weight, dtype=torch.float32) for n, m in modules.items()} if with_fisher else {}
        flags = {p: p.requires_grad for p in model.parameters()}
        was_training = model.training
        model.eval()
        for p in model.parameters():
            p.requires_grad_(False)
        if with_grad:
            for module in modules.values():
                module.weight.requires_grad_(True)
                module.weight.grad = None
        # without Fisher, autograd's accumulation into .grad is the sum G: one set of gradients, no buffer
        in_place = with_grad and not with_fisher
        grads = {n: torch.zeros_like(m.weight, dtype=torch.float32) for n, m in modules.items()} if with_fisher else {}
        names = consumer_names(self.groups) if "activations" in needs else []
        started = time.time()
        tokens = 0
        meter = PeakMeter(model_device(model)).start()
        desc = "calibration pass (" + ", ".join(sorted(needs)) + ")"
        try:
            with record_input_stats(model, names) as stats:
                bar = tqdm(
                    self.batches(1), total=len(self.samples()), desc=desc, unit="sample", disable=not self.progress
                )
                for batch in bar:
                    tokens += int((batch["labels"] != -100).sum())
                    if not with_grad:
                        with torch.no_grad():
                            model(**batch)
                        continue
                    out = model(**batch)
                    plain_target_loss(model, out.logits, batch["labels"]).backward()
                    if in_place:
                        continue
                    for name, module in modules.items():
                        g = module.weight.grad.float()
                        grads[name] += g
                        fisher[name] += g * g
                        module.weight.grad = None
            if in_place:
                grads = take_gradients(modules)
        finally:
            reading = meter.stop()
            for p, flag in flags.items():
                p.requires_grad_(flag)
            model.train(was_training)
        if names:
            self._activations = stats
        if with_grad:
            self._grads = grads
            self._fisher = fisher if with_fisher else self._fisher
        self.passes.append(
            {
                "computes": sorted(needs),
                "samples": len(self.samples()),
                "target_tokens": tokens,
                "seconds": time.time() - started,
                **reading.as_dict(),
            }
        )
