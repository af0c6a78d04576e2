"""Perplexity of a causal language model on plain text, token-weighted over non-overlapping windows.

A vision-language model is measured through its language model reading the text alone (its
adapter's ``text_logits``): whether pruning it for images kept what its language model knew.

The text is cut into windows of ``seq_len`` tokens (``ukmp.data.text``: documents joined by the
end-of-sequence token, consecutive windows, the last one possibly shorter). Each window is read on
its own, so its first token is never predicted and every other token is predicted from the window's
tokens before it. With N_w the negative log-likelihood (natural log) summed over the predicted
tokens of window w and T_w their number (len(w) - 1):

    perplexity = exp( sum_w N_w / sum_w T_w )

i.e. the exponential of the mean NLL per predicted token over the whole file, not a mean of
per-window perplexities (a short last window weighs by its tokens, not as a whole window).
Non-overlapping windows give a slightly higher perplexity than a sliding window would, because
early tokens of each window see less context; the figure is comparable between models only at the
same ``seq_len``, which the results record.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from ukmp.data.text import text_windows
from ukmp.data.text_calibration import pad_id
from ukmp.errors import UserError

DEFAULT_EVAL_SEQ_LEN = 256
DEFINITION = (
    "exp(sum of next-token NLL / number of predicted tokens) over non-overlapping windows of seq_len "
    "tokens read independently (the first token of each window is not predicted); documents joined by EOS"
)


def text_logits_of(model: nn.Module) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """How ``model`` reads text alone: its adapter's answer (a vision-language model's language model),
    or the plain forward for a causal language model ukmp has no adapter for."""
    from ukmp.adapters import find_adapter

    try:
        inputs = find_adapter(model).inputs
    except UserError:
        return lambda ids, mask: model(input_ids=ids, attention_mask=mask).logits
    return lambda ids, mask: inputs.text_logits(model, ids, mask)


@torch.no_grad()
def window_nll(
    model: nn.Module,
    windows: list[list[int]],
    *,
    batch_size: int = 8,
    pad: int = 0,
    progress: bool = True,
) -> tuple[float, int]:
    """(summed NLL in nats, number of predicted tokens) over ``windows``, batched and right-padded."""
    text_logits = text_logits_of(model)
    device = next(model.parameters()).device
    total, count = 0.0, 0
    starts = range(0, len(windows), batch_size)
    for start in tqdm(starts, desc="perplexity", unit="batch", disable=not progress):
        chunk = windows[start : start + batch_size]
        width = max(map(len, chunk))
        ids = torch.full((len(chunk), width), pad, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for row, w in enumerate(chunk):
            ids[row, : len(w)] = torch.tensor(w)
            mask[row, : len(w)] = 1
        ids, mask = ids.to(device), mask.to(device)
        logits = text_logits(ids, mask)[:, :-1].float()
        targets = ids[:, 1:].masked_fill(mask[:, 1:] == 0, -100)
        nll = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="sum")
        total += float(nll)
        count += int((targets != -100).sum())
    return total, count


def evaluate_perplexity(
    model: nn.Module,
    tokenizer,
    path: str | Path,
    *,
    seq_len: int = DEFAULT_EVAL_SEQ_LEN,
    batch_size: int = 8,
    limit: int | None = None,
    model_name: str | None = None,
    progress: bool = True,
    examples: int = 0,
) -> dict[str, Any]:
    """The results dict of ``ukmp evaluate --task perplexity`` (same layout as the other tasks).

    ``examples``: keep that many prompts (the first windows' openings) with the model's continuations
    (`ukmp.evaluation.continuations`), for the examples page of `ukmp report`.
    """
    from ukmp.evaluation.continuations import continuations
    from ukmp.evaluation.harness import RESULTS_FORMAT, _environment

    if batch_size <= 0:
        raise UserError(f"--batch-size must be positive, got {batch_size}.")
    if limit is not None and limit <= 0:
        raise UserError(f"--limit must be a positive number of windows, got {limit}.")
    if examples < 0:
        raise UserError(f"--examples must be 0 (none) or a number of prompts, got {examples}.")
    started, cpu0 = time.perf_counter(), time.process_time()
    windows = text_windows(tokenizer, path, seq_len)
    used = windows[:limit] if limit is not None else windows
    was_training = model.training
    model.eval()
    try:
        nll, tokens = window_nll(model, used, batch_size=batch_size, pad=pad_id(tokenizer), progress=progress)
        # the perplexity's own time, without the examples
        seconds, cpu_seconds = round(time.perf_counter() - started, 2), round(time.process_time() - cpu0, 2)
        written = continuations(model, tokenizer, used, examples) if examples else None
    finally:
        model.train(was_training)
    mean = nll / tokens
    out = {
        "perplexity": math.exp(mean),
        "mean_nll": mean,
        "predicted_tokens": tokens,
        "windows": len(used),
        "windows_in_file": len(windows),
        "seq_len": seq_len,
        "batch_size": batch_size,
        "definition": DEFINITION,
        "source": str(path),
        "skipped_records": 0,
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
    }
    if written is not None:
        out["continuations"] = written
    return {
        "format": RESULTS_FORMAT,
        "model": model_name,
        "data": str(path),
        "split": None,
        "limit": limit,
        **_environment(model),
        "tasks": {"perplexity": out},
        "skipped_tasks": {},
        "seconds": seconds,
    }
