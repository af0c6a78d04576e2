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

from ukmp.adapters import is_image_in_prompt_model
from ukmp.data.calibration import with_image_placeholder
from ukmp.data.reading import load_image
from ukmp.data.records import CaptionRecord
from ukmp.evaluation.generation import (
    image_features,
    is_encoder_decoder,
    prefix_embeddings,
    prepare_processor,
    processor_inputs,
)

KS = (1, 5, 10)


def _prefix_embeddings(model, inputs: dict) -> torch.Tensor:
    """Prompt token embeddings with the image features (Q-Former or LLaVA projector) over the `<image>` slots."""
    extra = {k: inputs.get(k) for k in ("qformer_input_ids", "qformer_attention_mask", "image_sizes")}
    return prefix_embeddings(model, inputs["input_ids"], image_features(model, inputs["pixel_values"], **extra))


def _image_side(model, processor, image_paths: Sequence[Path], prompt: str, batch_size: int, progress: bool):
    """Per image: T5 encoder states (or decoder-only prefix embeddings) and their attention mask."""
    states, masks = [], []
    encoder = model.language_model.get_encoder() if is_encoder_decoder(model) else None
    for start in tqdm(
        range(0, len(image_paths), batch_size), desc="retrieval: images", unit="batch", disable=not progress
    ):
        paths = image_paths[start : start + batch_size]
        text = with_image_placeholder(processor, prompt)  # LLaVA: `<image>` in front; BLIP-2: unchanged
        inputs = processor_inputs(processor, model, [load_image(p) for p in paths], [text] * len(paths))
        embeds = _prefix_embeddings(model, inputs)
        if encoder is not None:
            embeds = encoder(inputs_embeds=embeds, attention_mask=inputs["attention_mask"]).last_hidden_state
        states.append(embeds)
        masks.append(inputs["attention_mask"])
    return torch.cat(states), torch.cat(masks)


def _caption_ids(model, processor, captions: Sequence[str], max_tokens: int) -> list[list[int]]:
    """Caption token ids ending in `</s>`: T5's tokenizer adds it; for decoder-only LMs we append EOS."""
    tokenizer = processor.tokenizer
    if is_encoder_decoder(model):
        return tokenizer(list(captions), truncation=True, max_length=max_tokens)["input_ids"]
    ids = tokenizer(list(captions), add_special_tokens=False, truncation=True, max_length=max_tokens - 1)
    return [seq + [tokenizer.eos_token_id] for seq in ids["input_ids"]]


def _pair_loglik(model, states, masks, labels: torch.Tensor) -> torch.Tensor:
    """Mean log-likelihood of each row of `labels` (-100 = padding) given the matching image row."""
    if is_encoder_decoder(model):
        from transformers.modeling_outputs import BaseModelOutput

        lm = model.language_model
        decoder_input_ids = lm.prepare_decoder_input_ids_from_labels(labels=labels)
        logits = lm(
            encoder_outputs=BaseModelOutput(last_hidden_state=states),
            attention_mask=masks,
            decoder_input_ids=decoder_input_ids,
            use_cache=False,
        ).logits
    else:
        caption_embeds = model.get_input_embeddings()(labels.clamp(min=0))
        embeds = torch.cat([states, caption_embeds], dim=1)
        mask = torch.cat([masks, (labels != -100).to(masks.dtype)], dim=1)
        # LLaVA's `language_model` is the bare decoder; its own forward adds the head (no pixels: no image pass)
        lm = model if is_image_in_prompt_model(model) else model.language_model
        logits = lm(inputs_embeds=embeds, attention_mask=mask, use_cache=False).logits
        logits = logits[:, states.shape[1] - 1 : -1]  # position t predicts token t + 1
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
    prepare_processor(processor, model)
    model.eval()
    n, m = len(image_paths), len(captions)
    scores = torch.empty(n, m, dtype=torch.float32)
    with torch.inference_mode():
        states, masks = _image_side(model, processor, image_paths, prompt, batch_size, progress)
        ids = _caption_ids(model, processor, captions, max_caption_tokens)
        order = sorted(range(m), key=lambda j: len(ids[j]))
        image_block = max(1, min(n, pair_batch_size // 32))
        caption_block = max(1, pair_batch_size // image_block)
        device = states.device
        blocks = [(c, i) for c in range(0, m, caption_block) for i in range(0, n, image_block)]
        for c0, i0 in tqdm(blocks, desc="retrieval: pairs", unit="batch", disable=not progress):
            cols = order[c0 : c0 + caption_block]
            width = max(len(ids[j]) for j in cols)
            labels = torch.full((len(cols), width), -100, dtype=torch.long)
            for row, j in enumerate(cols):
                labels[row, : len(ids[j])] = torch.tensor(ids[j])
            rows = slice(i0, i0 + image_block)
            k = states[rows].shape[0]
            pair_states = states[rows].repeat_interleave(len(cols), dim=0)
            pair_masks = masks[rows].repeat_interleave(len(cols), dim=0)
            pair_labels = labels.to(device).repeat(k, 1)
            ll = _pair_loglik(model, pair_states, pair_masks, pair_labels)
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
