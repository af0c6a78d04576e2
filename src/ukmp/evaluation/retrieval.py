"""Image-text retrieval for generative BLIP-2 models, scored by caption likelihood.

The paper's Flickr30K numbers come from BLIP-2's stage-1 Q-Former (ITC, then ITM re-ranking),
a model that `Blip2ForConditionalGeneration` does not contain. For a generative model ukmp
therefore uses the one image-text score the model itself defines: the mean per-token
log-likelihood of a caption given an image,

    s(image, caption) = (1 / |c|) * sum_t log p(c_t | c_<t, image, prompt)

computed with teacher forcing, the caption's tokens (with its final `</s>`) as decoder labels.
For T5, the encoder reads the projected query embeddings followed by the prompt (empty by
default, i.e. just `</s>`); for a decoder-only LM the caption follows the image tokens and prompt.
LLaVA is scored the same way: its prompt is the processor's `<image>` placeholder (expanded to one
token per image feature) and the prompt, and the caption follows.
Text retrieval (TR@k) ranks all captions per image by s; image retrieval (IR@k) ranks all images
per caption by s. The mean (not the sum) keeps long captions from losing to short ones in TR; in IR
the caption is fixed, so mean and sum rank identically. Ties count against the model.

Cost: every (image, caption) pair needs its own decoder pass, so N images with 5 captions each
cost 5N^2 decoder passes. The image side (ViT, Q-Former, T5 encoder) is computed once per image and
reused for all captions; pairs are scored in batches of `pair_batch_size`, captions grouped by
length so padding stays small. Use a limit (the harness defaults to 50 images) for quick runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from tqdm import tqdm

from ukmp.adapters import ModelInputs, find_adapter
from ukmp.data.records import CaptionRecord

KS = (1, 5, 10)


def _image_side(
    inputs: ModelInputs, model, processor, image_paths: Sequence[Path], prompt: str, batch_size: int, progress: bool
) -> dict[str, torch.Tensor]:
    """Per image, what its captions are scored after (the adapter's ``retrieval_prefix``), images stacked."""
    parts: list[dict[str, torch.Tensor]] = []
    for start in tqdm(
        range(0, len(image_paths), batch_size), desc="retrieval: images", unit="batch", disable=not progress
    ):
        parts.append(inputs.retrieval_prefix(model, processor, image_paths[start : start + batch_size], prompt))
    return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}


def _pair_loglik(inputs: ModelInputs, model, prefix: dict[str, torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
    """Mean log-likelihood of each row of `labels` (-100 = padding) given the matching image row."""
    logits = inputs.caption_logits(model, prefix, labels)
    logp = torch.log_softmax(logits.float(), dim=-1)
    valid = labels != -100
    token_logp = logp.gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1) * valid
    return token_logp.sum(-1) / valid.sum(-1).clamp(min=1)


def caption_loglik_matrix(
    model,
    processor,
    image_paths: Sequence[Path],
    captions: Sequence[str],
    *,
    prompt: str = "",
    batch_size: int = 32,
    pair_batch_size: int = 256,
    max_caption_tokens: int = 32,
    progress: bool = True,
) -> torch.Tensor:
    """The (images x captions) matrix of mean per-token caption log-likelihoods, float32 on CPU."""
    inputs = find_adapter(model).inputs
    inputs.prepare_processor(processor, model)
    model.eval()
    n, m = len(image_paths), len(captions)
    scores = torch.empty(n, m, dtype=torch.float32)
    with torch.inference_mode():
        prefix = _image_side(inputs, model, processor, image_paths, prompt, batch_size, progress)
        ids = inputs.caption_ids(processor.tokenizer, captions, max_caption_tokens)
        order = sorted(range(m), key=lambda j: len(ids[j]))
        image_block = max(1, min(n, pair_batch_size // 32))
        caption_block = max(1, pair_batch_size // image_block)
        device = prefix["states"].device
        blocks = [(c, i) for c in range(0, m, caption_block) for i in range(0, n, image_block)]
        for c0, i0 in tqdm(blocks, desc="retrieval: pairs", unit="batch", disable=not progress):
            cols = order[c0 : c0 + caption_block]
            width = max(len(ids[j]) for j in cols)
            labels = torch.full((len(cols), width), -100, dtype=torch.long)
            for row, j in enumerate(cols):
                labels[row, : len(ids[j])] = torch.tensor(ids[j])
            rows = slice(i0, i0 + image_block)
            k = prefix["states"][rows].shape[0]
            pairs = {key: value[rows].repeat_interleave(len(cols), dim=0) for key, value in prefix.items()}
            pair_labels = labels.to(device).repeat(k, 1)
            ll = _pair_loglik(inputs, model, pairs, pair_labels)
            scores[rows, torch.tensor(cols)] = ll.view(k, len(cols)).float().cpu()
    return scores


def retrieval_recalls(scores: torch.Tensor, caption_image: Sequence[int], ks: Sequence[int] = KS) -> dict:
    """TR@k / IR@k in percent from an (images x captions) score matrix; `caption_image[j]` owns caption j.

    TR: an image is a hit when its best-scored own caption has fewer than k other captions scoring
    at least as high. IR: a caption is a hit when fewer than k other images score it at least as high
    as its own image does.
    """
    n, m = scores.shape
    owner = torch.as_tensor(list(caption_image), dtype=torch.long)
    own = owner.unsqueeze(0) == torch.arange(n).unsqueeze(1)  # (n, m): caption j belongs to image i
    best_own = scores.masked_fill(~own, float("-inf")).max(dim=1).values
    text_rank = ((scores >= best_own.unsqueeze(1)) & ~own).sum(dim=1)
    own_score = scores[owner, torch.arange(m)]
    image_rank = ((scores >= own_score.unsqueeze(0)) & ~own).sum(dim=0)
    has_caption = own.any(dim=1)  # an image without captions cannot be scored for TR
    out: dict[str, float] = {}
    for k in ks:
        out[f"TR@{k}"] = round(100.0 * (text_rank[has_caption] < k).float().mean().item(), 2)
    for k in ks:
        out[f"IR@{k}"] = round(100.0 * (image_rank < k).float().mean().item(), 2)
    out["r_mean"] = round(sum(out.values()) / len(out), 2)
    return out


def evaluate_retrieval(
    model,
    processor,
    records: Sequence[CaptionRecord],
    *,
    prompt: str = "",
    batch_size: int = 32,
    pair_batch_size: int = 256,
    max_caption_tokens: int = 32,
    progress: bool = True,
) -> dict:
    """TR@1/5/10 and IR@1/5/10 over the images of `records` and all their reference captions."""
    captions, owners = [], []
    for i, record in enumerate(records):
        captions.extend(record.references)
        owners.extend([i] * len(record.references))
    scores = caption_loglik_matrix(
        model,
        processor,
        [r.image_path for r in records],
        captions,
        prompt=prompt,
        batch_size=batch_size,
        pair_batch_size=pair_batch_size,
        max_caption_tokens=max_caption_tokens,
        progress=progress,
    )
    return {
        **retrieval_recalls(scores, owners),
        "num_images": len(records),
        "num_captions": len(captions),
        "scoring": "mean per-token caption log-likelihood given the image (generative retrieval)",
    }
