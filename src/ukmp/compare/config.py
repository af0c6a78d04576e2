"""What decides a `ukmp compare` run: its configuration (the CLI's flags), checked before any work.

Why one place: the run, the cache keys, the report and the command line all read the same fields,
so a flag is added once here and validated once, before minutes of loading.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from ukmp.data.text import TEXT_SUFFIXES
from ukmp.errors import UserError
from ukmp.methods.base import MethodOptions, Scorer
from ukmp.methods.end_layers import END_LAYER_RULES
from ukmp.methods.registry import compared_by_default, get_scorer
from ukmp.placement import Placement
from ukmp.planning.iterative import SCOPE_CHOICES, IterativeOptions
from ukmp.planning.search import PlanSearchOptions
from ukmp.recovery.config import PRESETS

RECOVERY_MODES = ("none", "lora", "lpd")
#: the registered methods a comparison runs when --methods is not given, in registration order
DEFAULT_METHODS = compared_by_default()


@dataclass
class CompareConfig:
    """Everything that determines a comparison run (the CLI's flags)."""

    model: str
    out: str
    calib: str = "shapes"
    eval_data: str = "shapes"
    methods: tuple[str, ...] = DEFAULT_METHODS
    ratios: tuple[float, ...] = (0.2, 0.35, 0.5)
    recover: str = "none"
    recover_ratios: tuple[float, ...] | None = None
    calib_split: str = "alttext"  # the built-in world's CC595K role; the CLI picks train for a user's folder
    eval_split: str = "val"
    num_samples: int = 256
    batch_size: int = 8
    tasks: tuple[str, ...] = ("vqa", "caption")
    limit: int | None = 1000
    caption_limit: int | None = 200
    eval_batch_size: int = 64
    of: str = "all"
    seed: int = 0
    seeds: int = 1
    #: images the examples page shows (0: no page); their outputs come from the evaluations, not extra generation
    examples: int = 8
    recover_samples: int | None = 2000
    recover_batch_size: int = 8
    recover_lr: float = PRESETS["paper"]["lr"]
    recover_warmup_steps: int = PRESETS["paper"]["warmup_steps"]
    progress: bool = True
    method_options: MethodOptions = field(default_factory=MethodOptions)
    plan_search: PlanSearchOptions = field(default_factory=PlanSearchOptions)
    plan_search_data: str | None = None
    dtype: str = "auto"
    keep_end_layers: str = "none"  # 'llm-pruner': every method leaves LLM-Pruner's end layers dense
    #: where every method scores and slices, and in what precision; evaluation and recovery use its device
    placement: Placement = field(default_factory=Placement)
    extra: dict = field(default_factory=dict)
    #: what one normaliser of an iterative plan pools (`ukmp prune --norm-scope`); None: each method's preset's
    norm_scope: str | None = None
    # A text --calib (.txt / .jsonl) compares methods on a standalone language model: each is calibrated on
    # that text and every model is measured by perplexity on each held-out text (`ukmp.compare.text_eval`).
    #: tokens per calibration window (None: the text source's default, as `ukmp prune --seq-len`)
    seq_len: int | None = None
    #: the GGUF file inside the MODEL folder (a .gguf MODEL needs none)
    gguf_file: str | None = None
    #: the held-out text files every model's perplexity is measured on (with image-text calibration: a VLM's
    #: language model reading them alone, beside its tasks)
    eval_texts: tuple[str, ...] = ()
    eval_seq_len: int = 256
    #: the first N windows of each held-out text (None: all of them)
    eval_windows: int | None = None

    @property
    def text(self) -> bool:
        """Whether the calibration is plain text (a standalone language model) rather than image-text pairs."""
        return is_text_file(self.calib)

    def validate(self) -> None:
        if not self.methods:
            raise UserError("--methods is empty; name at least one method.")
        for m in self.methods:
            try:
                self.scorer(m)  # an unknown method or a bad variant fails now, with its sentence
            except UserError as exc:
                raise UserError(f"{exc} (in --methods)") from None
        if len(set(self.methods)) != len(self.methods):
            raise UserError("--methods names a method twice; list each method once.")
        if not self.ratios:
            raise UserError("--ratios is empty; give at least one ratio, e.g. 0.2,0.35,0.5.")
        if all(2.0 <= r < 100.0 for r in self.ratios):  # every ratio a percentage, e.g. 20,35,50
            fractions = ",".join(f"{r / 100:g}" for r in self.ratios)
            raise UserError(f"--ratios are fractions of the parameters, not percentages; pass --ratios {fractions}.")
        for r in self.ratios:
            if not 0.0 < r < 1.0:
                raise UserError(f"every ratio must be between 0 and 1 (exclusive), got {r:g}.")
        if self.recover not in RECOVERY_MODES:
            raise UserError(f"--recover must be one of {', '.join(RECOVERY_MODES)}, got {self.recover!r}.")
        for r in self.recover_ratios or ():
            if r not in self.ratios:
                raise UserError(f"--recover-ratios names {r:g}, which is not one of --ratios.")
        for name in ("num_samples", "batch_size", "eval_batch_size", "recover_batch_size"):
            if getattr(self, name) < 1:
                raise UserError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}.")
        if not self.recover_lr > 0:
            raise UserError(f"--recover-lr must be positive, got {self.recover_lr:g}.")
        if self.recover_warmup_steps < 0:
            raise UserError(f"--recover-warmup-steps must be 0 or more, got {self.recover_warmup_steps}.")
        for name in ("limit", "caption_limit", "recover_samples"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise UserError(f"--{name.replace('_', '-')} must be at least 1, got {value}.")
        if self.seeds < 1:
            raise UserError(f"--seeds must be at least 1, got {self.seeds}.")
        if self.examples < 0:
            raise UserError(f"--examples must be 0 (no examples page) or a number of images, got {self.examples}.")
        if self.of not in ("all", "prunable"):
            raise UserError(f"--of must be 'all' or 'prunable', got {self.of!r}.")
        if self.keep_end_layers not in END_LAYER_RULES:
            rules = ", ".join(END_LAYER_RULES)
            raise UserError(f"--keep-end-layers must be one of {rules}, got {self.keep_end_layers!r}.")
        self.plan_search.validate()
        self.placement.resolved()
        if self.norm_scope is not None and self.norm_scope not in SCOPE_CHOICES:
            raise UserError(f"--norm-scope must be one of {', '.join(SCOPE_CHOICES)}, got {self.norm_scope!r}.")
        if self.text:
            self.validate_text()
        elif self.eval_texts:  # a VLM's language model, measured on plain text beside its tasks
            self.validate_eval_texts()

    def validate_eval_texts(self) -> None:
        """The held-out texts exist, are text, each has its own name, and the window settings are sound."""
        for file in self.eval_texts:
            if not Path(file).expanduser().is_file():
                raise UserError(
                    f"--eval-text {file} does not exist; give a .txt file or a .jsonl file with a 'text' field."
                )
            if not is_text_file(file):
                raise UserError(f"--eval-text takes .txt or .jsonl files; {file} is neither.")
        names = [Path(f).stem for f in self.eval_texts]
        if len(set(names)) != len(names):
            raise UserError("--eval-text names two files of the same name; give each held-out set its own file name.")
        for name in ("eval_seq_len", "eval_windows"):
            value = getattr(self, name)
            least = 2 if name == "eval_seq_len" else 1
            if value is not None and value < least:
                raise UserError(f"--{name.replace('_', '-')} must be at least {least}, got {value}.")

    @property
    def perplexity_batch_size(self) -> int:
        """Windows per forward of a perplexity: --eval-batch-size for a text comparison; 4 beside a VLM's tasks,
        whose --eval-batch-size counts images (a 256-token window's logits over a 49k vocabulary are 50 MB)."""
        return self.eval_batch_size if self.text else min(self.eval_batch_size, 4)

    def validate_text(self) -> None:
        """A text comparison: the calibration and held-out files exist, each set has its own name."""
        if not Path(self.calib).expanduser().is_file():
            raise UserError(
                f"--calib {self.calib} does not exist; give a .txt file or a .jsonl file with a 'text' field."
            )
        if not self.eval_texts:
            raise UserError(
                "text calibration measures perplexity on held-out text: pass --eval-text FILE[,FILE...] "
                "(.txt or .jsonl)."
            )
        self.validate_eval_texts()
        if self.recover != "none" and self.gguf_file:
            raise UserError(
                f"--recover loads the dense teacher from MODEL alone; give the GGUF file itself as MODEL "
                f"({Path(self.model) / self.gguf_file}) instead of --gguf-file."
            )
        if self.seq_len is not None and self.seq_len < 1:
            raise UserError(f"--seq-len must be at least 1, got {self.seq_len}.")

    def eval_limits(self) -> dict[str, int | None]:
        """Records each task's evaluation reads: --caption-limit images for captions, --limit records otherwise."""
        caption = self.caption_limit if self.caption_limit is not None else self.limit
        return {t: (caption if t == "caption" else self.limit) for t in self.tasks}

    @property
    def device(self) -> str:
        """The device evaluation and recovery run on (the first of a device map's, where one is given)."""
        return self.placement.resolved().device

    def scorer(self, method: str) -> Scorer:
        """The registered scorer ``method`` names, with this run's method options."""
        return get_scorer(method, self.method_options)

    def iterative(self, method: str) -> IterativeOptions | None:
        """``method``'s iterative schedule with this run's --norm-scope (None: the preset's, as `ukmp prune`)."""
        if self.norm_scope is None:
            return None
        return dataclasses.replace(self.scorer(method).iterative_options(), scope=self.norm_scope)


def parse_list(text: str, what: str) -> list[str]:
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise UserError(f"{what} is empty; give a comma-separated list.")
    return items


def parse_ratios(text: str, what: str = "--ratios") -> tuple[float, ...]:
    out = []
    for item in parse_list(text, what):
        try:
            out.append(float(item))
        except ValueError:
            raise UserError(f"{what} must be comma-separated numbers like 0.2,0.5; {item!r} is not a number.") from None
    return tuple(out)


def recovery_kind(method: str, mode: str) -> str | None:
    """'lpd', 'lora' or None for this method under the run's recovery mode."""
    if mode == "none":
        return None
    return "lpd" if mode == "lpd" and get_scorer(method).recovery == "lpd" else "lora"


def is_text_file(data: str | Path | None) -> bool:
    """Whether ``data`` names a plain-text file (.txt, .jsonl) by its suffix: text even before it is found to exist."""
    return data is not None and Path(str(data)).suffix.lower() in TEXT_SUFFIXES
