"""Peak memory of one step, measured inside that step, on the device it ran on.

Why not the process's lifetime peak: a comparison scores several methods in one process, and a
lifetime peak only grows, so every method after the largest would report the largest's figure. On
an accelerator the allocator's peak is reset before the step (``torch.cuda.reset_peak_memory_stats``);
on the CPU the kernel's peak resident set size is reset by writing ``5`` to
``/proc/self/clear_refs`` (Linux) and read back from ``VmHWM``. Where neither can be reset (another
operating system) the process's lifetime peak is reported, and the reading says so.
"""

from __future__ import annotations

import contextlib
import resource
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch


def status_kib(field: str) -> int | None:
    """A ``/proc/self/status`` field in KiB (``VmRSS``, ``VmHWM``), or None off Linux."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def reset_peak_rss() -> bool:
    """Reset the kernel's peak resident set size of this process; False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def lifetime_peak_rss_kib() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak


@dataclass
class PeakReading:
    """What ``measured_peak`` found: the peak in MiB, on which device, and how it was measured."""

    device: str
    mib: float = 0.0
    kind: str = ""

    def as_dict(self) -> dict[str, object]:
        return {"peak_memory_mb": round(self.mib, 1), "memory_device": self.device, "memory_kind": self.kind}


class PeakMeter:
    """Resets the peak on ``start`` and reads it on ``stop``, for steps that are not one ``with`` block.

    The kernel's and the allocator's peaks are one counter per process, so a meter started inside
    another (a calibration pass inside a method's scoring) resets the outer one's too. Each start
    therefore first folds the peak so far into every running meter, and a stop reports the larger of
    what it folded and what the counter holds: nested steps each get their own whole peak.
    """

    running: ClassVar[list[PeakMeter]] = []

    def __init__(self, device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)
        self.resettable = False
        self.folded = 0.0

    def start(self) -> PeakMeter:
        for outer in PeakMeter.running:
            outer.folded = max(outer.folded, outer._read().mib)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            self.resettable = reset_peak_rss()
        PeakMeter.running.append(self)
        return self

    def stop(self) -> PeakReading:
        if self in PeakMeter.running:
            PeakMeter.running.remove(self)
        reading = self._read()
        reading.mib = max(reading.mib, self.folded)
        return reading

    def _read(self) -> PeakReading:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            mib = torch.cuda.max_memory_allocated(self.device) / 2**20
            return PeakReading(str(self.device), mib, "allocator peak during this step")
        peak = status_kib("VmHWM") if self.resettable else None
        if peak is None:
            return PeakReading(str(self.device), lifetime_peak_rss_kib() / 1024, "process lifetime peak RSS")
        return PeakReading(str(self.device), peak / 1024, "peak RSS during this step")


@contextlib.contextmanager
def measured_peak(device: torch.device | str = "cpu") -> Iterator[PeakReading]:
    """Measure the peak memory of the block on ``device``; the reading is filled in when the block ends."""
    reading = PeakReading(str(device))
    meter = PeakMeter(device).start()
    try:
        yield reading
    finally:
        done = meter.stop()
        reading.mib, reading.kind = done.mib, done.kind


@contextlib.contextmanager
def recorded_step(record: dict[str, dict], name: str, device: torch.device | str = "cpu") -> Iterator[None]:
    """Time the block and measure its peak memory into ``record[name]`` (seconds, peak, device)."""
    started = time.perf_counter()
    with measured_peak(device) as reading:
        yield
    record[name] = {"seconds": round(time.perf_counter() - started, 2), **reading.as_dict()}
