"""What UKMI scoring costs, as ratios against a plain training step of the same model, in one run.

    python3 bench/ukmi_scale.py [--samples 16] [--batch-size 4]

For each model, three fresh processes (so each peak memory is its own):
- `train`: forward + backward of the task loss with every parameter trainable (no optimizer);
- `gradient`: UKMI's gradient pass (Taylor selection, first-order G);
- `entropy`: UKMI's entropy pass (no grad, streamed per-row histograms).
Each reports seconds per sample and the process's peak resident memory; the table gives UKMI's
ratios to the training step. Models: the shipped `shapes-blip2-t5` and a randomly initialised
BLIP-2 FlanT5 with the real widths (ViT 1408 wide, 16 heads, MLP 6144; T5 2048 wide, 32 heads,
gated FFN 5120; 224 px images, 32 queries) but only two layers per stack, so the matrix shapes
are the real ones. Inputs are synthetic (random pixels and tokens): cost does not depend on them.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import torch


def real_width_model():
    from transformers import Blip2Config, Blip2ForConditionalGeneration

    config = Blip2Config(
        vision_config=dict(
            hidden_size=1408,
            intermediate_size=6144,
            num_hidden_layers=2,
            num_attention_heads=16,
            image_size=224,
            patch_size=14,
            qkv_bias=True,
        ),
        qformer_config=dict(
            hidden_size=768,
            intermediate_size=3072,
            num_hidden_layers=2,
            num_attention_heads=12,
            encoder_hidden_size=1408,
            vocab_size=32,
        ),
        text_config=dict(
            model_type="t5",
            vocab_size=32128,
            d_model=2048,
            d_kv=64,
            num_heads=32,
            d_ff=5120,
            num_layers=2,
            num_decoder_layers=2,
            feed_forward_proj="gated-gelu",
            tie_word_embeddings=False,
            dropout_rate=0.0,
            decoder_start_token_id=0,
        ),
        num_query_tokens=32,
        image_token_index=32100,
    )
    torch.manual_seed(0)
    return Blip2ForConditionalGeneration(config).eval()


def shipped_model():
    from ukmp.loading import load_model

    return load_model("shapes-blip2-t5").float().eval()


MODELS = {"shapes-blip2-t5": shipped_model, "blip2-flant5xl-widths-2-layers": real_width_model}


def synthetic_batches(model, samples: int, batch: int, text: int = 10, target: int = 10) -> list[dict]:
    cfg = model.config
    size = cfg.vision_config.image_size
    vocab = cfg.text_config.vocab_size
    gen = torch.Generator().manual_seed(1)
    out = []
    for start in range(0, samples, batch):
        b = min(batch, samples - start)
        ids = torch.randint(4, vocab, (b, text), generator=gen)
        ids[ids == cfg.image_token_index] = 4  # a text token must never be read as an image placeholder
        ids = torch.cat([torch.full((b, cfg.num_query_tokens), cfg.image_token_index), ids], dim=1)
        out.append(
            {
                "pixel_values": torch.randn(b, 3, size, size, generator=gen),
                "input_ids": ids,
                "attention_mask": torch.ones_like(ids),
                "labels": torch.randint(4, vocab, (b, target), generator=gen),
            }
        )
    return out


def child(mode: str, name: str, samples: int, batch: int) -> dict:
    from ukmp.adapters import find_adapter
    from ukmp.methods.ukmi import UKMIOptions, accumulate_entropy, accumulate_gradients
    from ukmp.peak_memory import lifetime_peak_rss_kib

    def peak_memory_mb() -> float:
        return lifetime_peak_rss_kib() / 1024

    torch.set_num_threads(2)
    model = MODELS[name]()
    groups = find_adapter(model).groups(model)
    batches = synthetic_batches(model, samples, batch)
    warm = synthetic_batches(model, batch, batch)
    loaded_mb = peak_memory_mb()
    if mode == "train":
        for p in model.parameters():
            p.requires_grad_(True)

        def step(b):
            model(**b).loss.backward()
            model.zero_grad(set_to_none=True)

        step(warm[0])
        started = time.perf_counter()
        for b in batches:
            step(b)
        seconds = time.perf_counter() - started
    elif mode == "gradient":
        accumulate_gradients(model, groups, warm, UKMIOptions())
        started = time.perf_counter()
        accumulate_gradients(model, groups, batches, UKMIOptions())
        seconds = time.perf_counter() - started
    else:
        language = [g for g in groups if g.modality == "language"]
        accumulate_entropy(model, language, warm, UKMIOptions())
        started = time.perf_counter()
        accumulate_entropy(model, language, batches, UKMIOptions())
        seconds = time.perf_counter() - started
    return {
        "mode": mode,
        "model": name,
        "params": sum(p.numel() for p in model.parameters()),
        "seconds_per_sample": seconds / samples,
        "peak_mb": peak_memory_mb(),
        "loaded_mb": loaded_mb,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--child", nargs=2, metavar=("MODE", "MODEL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], args.child[1], args.samples, args.batch_size)))
        return
    rows = []
    for name in args.models.split(","):
        measured = {}
        for mode in ("train", "gradient", "entropy"):
            cmd = [
                sys.executable,
                __file__,
                "--child",
                mode,
                name,
                "--samples",
                str(args.samples),
                "--batch-size",
                str(args.batch_size),
            ]
            proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
            measured[mode] = json.loads(proc.stdout.strip().splitlines()[-1])
        rows.append(measured)
    print(f"UKMI scoring cost vs a plain forward+backward, batch {args.batch_size}, {args.samples} samples, CPU")
    print(
        "| model | params | train step s/sample | UKMI gradient s/sample (ratio) "
        "| UKMI entropy s/sample (ratio) | train peak MB (above load) | gradient peak MB (ratio) "
        "| entropy peak MB (ratio) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for m in rows:
        t, g, e = m["train"], m["gradient"], m["entropy"]
        extra = {k: v["peak_mb"] - v["loaded_mb"] for k, v in m.items()}
        print(
            f"| {t['model']} | {t['params'] / 1e6:.1f}M | {t['seconds_per_sample']:.4f} "
            f"| {g['seconds_per_sample']:.4f} ({g['seconds_per_sample'] / t['seconds_per_sample']:.2f}x) "
            f"| {e['seconds_per_sample']:.4f} ({e['seconds_per_sample'] / t['seconds_per_sample']:.2f}x) "
            f"| {t['peak_mb']:.0f} ({extra['train']:.0f}) "
            f"| {g['peak_mb']:.0f} ({g['peak_mb'] / t['peak_mb']:.2f}x; above load {extra['gradient']:.0f}) "
            f"| {e['peak_mb']:.0f} ({e['peak_mb'] / t['peak_mb']:.2f}x; above load {extra['entropy']:.0f}) |"
        )


if __name__ == "__main__":
    main()
