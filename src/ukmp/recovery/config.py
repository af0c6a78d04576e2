"""What determines a recovery run (``ukmp recover``'s options), and its learning-rate schedule."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from ukmp.errors import UserError
from ukmp.recovery.phases import SCHEDULES
from ukmp.recovery.recall_lora import RecallLoRAOptions

#: where the answers to the recovery's question prompts come from
ANSWERS = ("labels", "teacher")

#: ukmp's budget follows the damage: samples (batch 8, so steps x 8) by the fraction of parameters
#: removed, up to and including each bound. On the shipped model, 1,000 steps instead of 500 were
#: within noise at 50% (`results/recovery-sweep/`) and gained 5.8 VQA points at 65%
#: (`results/recovery-answers-65*/`: 85.5 -> 91.3, 88.8% -> 94.8% of dense).
BUDGET_BY_RATIO = ((0.5, 4000), (1.0, 8000))
BY_RATIO = "by-ratio"

#: what `ukmp recover --preset` fills in where a flag is not given. "paper": the appendix's values
#: (lr 2e-5, batch 20, every caption; the library's ``RecoveryConfig`` defaults). "ukmp": measured on
#: the shipped model over three draws (`results/recovery-answers/`, `results/recovery-sweep/`): lr
#: 3e-4, batch 8, 500 steps up to 50% removed and 1,000 beyond (`BUDGET_BY_RATIO`), half the samples
#: question prompts answered by the dense teacher, so no label is read.
PRESETS: dict[str, dict[str, Any]] = {
    "paper": {
        "lr": 2e-5, "batch_size": 20, "max_samples": None, "vqa_fraction": 0.0, "answers": "labels",
        "warmup_steps": 50,
    },
    "ukmp": {
        "lr": 3e-4, "batch_size": 8, "max_samples": BY_RATIO, "vqa_fraction": 0.5, "answers": "teacher",
        "warmup_steps": 50,
    },
}  # fmt: skip
#: a standalone language model recovering on a text file (no questions to mix). "ukmp": the same step
#: and learning rate on 800 windows (100 steps of 8), with 10 warm-up steps per sub-phase so that its
#: short feature phases train at all; measured on SmolLM2-135M at 20% removed
#: (`results/smollm2-recovery/`). "paper": the appendix's values on every window.
TEXT_PRESETS: dict[str, dict[str, Any]] = {
    "paper": PRESETS["paper"],
    "ukmp": {
        "lr": 3e-4, "batch_size": 8, "max_samples": 800, "vqa_fraction": 0.0, "answers": "labels",
        "warmup_steps": 10,
    },
}  # fmt: skip
DEFAULT_PRESET = "ukmp"


def budget_for(removed: float | None) -> int:
    """ukmp's recovery samples for a model with ``removed`` of its parameters pruned (the smallest
    bound's budget when the fraction is unknown)."""
    if removed is None:
        return BUDGET_BY_RATIO[0][1]
    return next((samples for bound, samples in BUDGET_BY_RATIO if removed <= bound + 1e-9), BUDGET_BY_RATIO[-1][1])


def preset_values(name: str, *, text: bool) -> dict[str, Any]:
    """The preset's values: for a vision-language model's image-text data, or a text --data (a
    standalone language model, which has no questions to mix and needs a budget of its own)."""
    if name not in PRESETS:
        raise UserError(f"--preset must be one of {', '.join(PRESETS)}, got {name!r}.")
    return dict((TEXT_PRESETS if text else PRESETS)[name])


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
    vqa_fraction: float = 0.0  # beyond the paper: share of the samples that are question prompts
    #: who answers those prompts: the split's human "labels", or the dense "teacher" (no labels read)
    answers: str = "labels"
    #: a JSONL file of the user's own unlabelled prompts (image + prompt), answered by the teacher
    prompts: str | None = None

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
        if self.answers not in ANSWERS:
            raise UserError(f"--answers must be one of {', '.join(ANSWERS)}, got {self.answers!r}.")
        if self.prompts is not None and self.answers != "teacher":
            raise UserError("--prompts holds no answers: the teacher answers them, so pass --answers teacher.")
        if self.prompts is not None and self.vqa_fraction == 0:
            raise UserError("--prompts needs --vqa-fraction F > 0: the share of the samples taken from the prompts.")
        self.lora_options().validate()


def learning_rate(step: int, config: RecoveryConfig) -> float:
    """Linear warm-up from ``warmup_lr`` to ``lr`` over ``warmup_steps`` steps (step 0 first), then constant."""
    if config.warmup_steps <= 0 or step >= config.warmup_steps:
        return config.lr
    return config.warmup_lr + (config.lr - config.warmup_lr) * step / config.warmup_steps
