"""Which `ukmp compare` flags belong to which calibration: image-text pairs, or plain text.

Why: a flag that only one kind of comparison reads would otherwise be ignored silently by the
other (``--tasks vqa`` on a language model, ``--gguf-file`` on images). The held-out text flags
(``--eval-text``, ``--eval-seq-len``, ``--eval-windows``) belong to both: with image-text calibration
they measure a VLM's language model on plain text beside its tasks; so do the recovery sizes, as
either kind recovers on its own calibration data. Each such flag is parsed
with no default, so that a given one is known; the kind the --calib names refuses the other's
flags in one sentence and fills in the defaults.
"""

from __future__ import annotations

import argparse
from typing import Any

from ukmp.compare.config import is_text_file
from ukmp.errors import UserError
from ukmp.recovery.config import PRESETS

#: the paper's recovery settings, which `ukmp compare` keeps unless told otherwise
PAPER_RECOVERY = PRESETS["paper"]

#: image-text flags: (destination, flag, default)
IMAGE_TEXT_FLAGS: tuple[tuple[str, str, Any], ...] = (
    ("eval_data", "--eval", "shapes"),
    ("eval_split", "--eval-split", "val"),
    ("tasks", "--tasks", "vqa,caption"),
    ("limit", "--limit", "1000"),
    ("caption_limit", "--caption-limit", 200),
    ("examples", "--examples", 8),
    ("calib_split", "--calib-split", None),
    ("eval_batch_size", "--eval-batch-size", 64),
)
#: text flags: (destination, flag, default)
TEXT_FLAGS: tuple[tuple[str, str, Any], ...] = (
    ("eval_text", "--eval-text", None),
    ("seq_len", "--seq-len", None),
    ("eval_seq_len", "--eval-seq-len", 256),
    ("eval_windows", "--eval-windows", "all"),
    ("gguf_file", "--gguf-file", None),
    ("eval_batch_size", "--eval-batch-size", 4),
)
#: flags both kinds read, with one default: recovery trains on the calibration data either way
RECOVERY_FLAGS: tuple[tuple[str, str, Any], ...] = (
    ("recover_ratios", "--recover-ratios", None),
    ("recover_samples", "--recover-samples", 2000),
    ("recover_batch_size", "--recover-batch-size", 8),
    ("recover_lr", "--recover-lr", PAPER_RECOVERY["lr"]),
    ("recover_warmup_steps", "--recover-warmup-steps", PAPER_RECOVERY["warmup_steps"]),
)
#: read by both kinds: a VLM's language model is measured on held-out text too, beside its tasks, and
#: either kind recovers on its calibration data (pairs, or windows of the text)
SHARED = {"eval_batch_size", "eval_text", "eval_seq_len", "eval_windows", *(dest for dest, _, _ in RECOVERY_FLAGS)}


def settle_calibration_flags(args: argparse.Namespace) -> bool:
    """True for a text --calib; refuses the other kind's flags (one sentence) and fills in this kind's defaults."""
    text = is_text_file(args.calib)
    own, other = (TEXT_FLAGS, IMAGE_TEXT_FLAGS) if text else (IMAGE_TEXT_FLAGS, TEXT_FLAGS)
    for dest, flag, _ in other:
        if dest in SHARED or getattr(args, dest) is None:
            continue
        if text:
            raise UserError(
                f"{flag} is for image-text calibration; --calib {args.calib} is text, so every model is measured "
                f"by perplexity on --eval-text instead: drop {flag}."
            )
        raise UserError(
            f"{flag} is for a language model calibrated on text; pass a .txt or .jsonl --calib with it "
            f"(--calib {args.calib} is image-text data)."
        )
    # the other kind's flags, none of them given, are read by nothing
    for dest, _, default in (*own, *RECOVERY_FLAGS, *other):
        if getattr(args, dest) is None:
            setattr(args, dest, default)
    return text
