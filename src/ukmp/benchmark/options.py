"""What `ukmp bench` measures and how often, and the names of its operations."""

from __future__ import annotations

from dataclasses import dataclass

from ukmp.errors import UserError
from ukmp.placement import DTYPES, resolve_device

BENCH_FORMAT = "ukmp-bench/1"


OPERATIONS = ("encode", "forward", "generate")


OPERATION_TITLES = {"encode": "image encoding", "forward": "forward", "generate": "caption generation"}


KINDS = ("dense", "pruned", "masked", "rounded")


@dataclass
class BenchOptions:
    """What to measure and how often; ``validate`` turns bad values into one-sentence errors."""

    batch_sizes: tuple[int, ...] = (1, 8, 32)
    repeats: int = 5
    warmup: int = 1
    round_to: int = 1
    dtype: str = "float32"
    device: str = "cpu"
    text_len: int = 16
    caption_tokens: int = 20
    masked: bool = True
    memory: bool = True
    threads: int | None = None

    def validate(self) -> None:
        if not self.batch_sizes or any(b <= 0 for b in self.batch_sizes):
            raise UserError(f"--batch-sizes must be positive integers, got {list(self.batch_sizes)}.")
        if self.repeats < 1:
            raise UserError(f"--repeats must be at least 1, got {self.repeats}.")
        if self.warmup < 0:
            raise UserError(f"--warmup must be 0 or more, got {self.warmup}.")
        if self.round_to < 1:
            raise UserError(f"--round-to must be a positive multiple (1 = no rounding), got {self.round_to}.")
        if self.dtype not in DTYPES:
            raise UserError(f"unknown --dtype {self.dtype!r}; choose one of {', '.join(DTYPES)}.")
        if self.text_len < 1 or self.caption_tokens < 1:
            raise UserError("--text-len and --caption-tokens must be at least 1.")
        if self.threads is not None and self.threads < 1:
            raise UserError(f"--threads must be at least 1, got {self.threads}.")
        resolve_device(self.device)  # one sentence for a device this machine does not have
