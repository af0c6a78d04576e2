"""What a language model writes after a prompt: the examples a perplexity figure cannot show.

Why: perplexity says how surprised a pruned model is by held-out text, not what it now writes. For
the examples page (`ukmp.examples_page`) the evaluation keeps, for the first windows of the
evaluation text, the window's opening tokens as a prompt, the text that really followed and the
model's greedy continuation. Greedy decoding without sampling, so the same model writes the same
text; the first windows, so every model of a comparison is shown the same prompts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ukmp.data.text_calibration import pad_id

PROMPT_TOKENS = 32
NEW_TOKENS = 24


@torch.no_grad()
def continuations(
    model: nn.Module,
    tokenizer,
    windows: Sequence[Sequence[int]],
    n: int,
    *,
    prompt_tokens: int = PROMPT_TOKENS,
    new_tokens: int = NEW_TOKENS,
) -> dict[str, Any]:
    """The first ``n`` windows' opening tokens (at most half a window) as prompts, with the model's continuations."""
    device = next(model.parameters()).device
    items = []
    for i, window in enumerate(list(windows)[:n]):
        cut = max(1, min(prompt_tokens, len(window) // 2))
        ids = torch.tensor([list(window[:cut])], device=device)
        output = model.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=new_tokens,
            do_sample=False,
            num_beams=1,
            pad_token_id=pad_id(tokenizer),
        )
        items.append(
            {
                "id": str(i),
                "prompt": tokenizer.decode(list(window[:cut]), skip_special_tokens=True).strip(),
                "reference": tokenizer.decode(list(window[cut : cut + new_tokens]), skip_special_tokens=True).strip(),
                "continuation": tokenizer.decode(output[0, cut:].tolist(), skip_special_tokens=True).strip(),
            }
        )
    return {"prompt_tokens": prompt_tokens, "new_tokens": new_tokens, "decoding": "greedy", "items": items}
