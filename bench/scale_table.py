"""docs/scale.md: what scoring needs at real sizes, from the factors the FlanT5-XL-size run measured.

    python3 bench/scale_table.py [--record real-size-work/record.json] [--out docs/scale.md]

Every model is built from its published config on the meta device (no weights, no download), so
its parameter count and the parameters of its prunable groups (the weights a gradient scorer holds
a gradient for) are exact. Activations per calibration sample are an estimate: the bytes the
FlanT5-XL-size run's gradient pass held per sample beyond its weights, gradients and runtime
(``bench/real_size.py``), divided by that model's tokens x hidden width x layers, then multiplied by
each model's own. Attention kernels and sequence lengths move that factor, so treat it as a guide.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from real_size import flan_t5_xl_config  # noqa: E402

GIB = 2**30
#: text tokens of a calibration sample (prompt + caption) at the default settings
TEXT_TOKENS = 32
#: what one device holds besides the model: the CUDA context and the allocator's slack
OVERHEAD = 2 * GIB


def llama(hidden: int, layers: int, heads: int, intermediate: int, vocab: int) -> dict:
    return {
        "model_type": "llama",
        "hidden_size": hidden,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "num_key_value_heads": heads,
        "intermediate_size": intermediate,
        "vocab_size": vocab,
        "max_position_embeddings": 4096,
    }


VICUNA_7B = llama(4096, 32, 32, 11008, 32001)
VICUNA_13B = llama(5120, 40, 40, 13824, 32001)
CLIP_L_336 = {
    "model_type": "clip_vision_model",
    "hidden_size": 1024,
    "intermediate_size": 4096,
    "num_hidden_layers": 24,
    "num_attention_heads": 16,
    "image_size": 336,
    "patch_size": 14,
    "projection_dim": 768,
}


def blip2_xxl():
    config = flan_t5_xl_config()
    config.text_config.update({"d_model": 4096, "d_ff": 10240, "num_heads": 64})
    return config


def instructblip(text: dict):
    from transformers import InstructBlipConfig

    base = flan_t5_xl_config()
    return InstructBlipConfig(
        vision_config=base.vision_config.to_dict(),
        qformer_config={**base.qformer_config.to_dict(), "vocab_size": 30523},
        text_config=text,
        num_query_tokens=32,
        image_token_index=32000,
    )


def llava(text: dict, next_: bool = False):
    from transformers import LlavaConfig, LlavaNextConfig

    cls = LlavaNextConfig if next_ else LlavaConfig
    return cls(vision_config=CLIP_L_336, text_config=text, image_token_index=32000)


@dataclass
class Family:
    name: str
    config: object
    cls: str
    image_tokens: int  # tokens the language model reads per image
    vision_tokens: int  # tokens the vision tower runs on per image (all tiles)


def families() -> list[Family]:
    vit_g = (224 // 14) ** 2 + 1
    clip = (336 // 14) ** 2 + 1
    return [
        Family("BLIP-2 FlanT5-XL", flan_t5_xl_config(), "Blip2ForConditionalGeneration", 32, vit_g),
        Family("BLIP-2 FlanT5-XXL", blip2_xxl(), "Blip2ForConditionalGeneration", 32, vit_g),
        Family("InstructBLIP-Vicuna-7B", instructblip(VICUNA_7B), "InstructBlipForConditionalGeneration", 32, vit_g),
        Family("InstructBLIP-Vicuna-13B", instructblip(VICUNA_13B), "InstructBlipForConditionalGeneration", 32, vit_g),
        Family("LLaVA-1.5-7B", llava(VICUNA_7B), "LlavaForConditionalGeneration", 576, clip),
        Family("LLaVA-1.5-13B", llava(VICUNA_13B), "LlavaForConditionalGeneration", 576, clip),
        Family("LLaVA-NeXT-7B (5 tiles)", llava(VICUNA_7B, True), "LlavaNextForConditionalGeneration", 2880, 5 * clip),
    ]


def sizes(family: Family) -> dict:
    """Parameters, prunable-group parameters, and tokens x width x layers of one sample (meta device)."""
    import transformers

    from ukmp.adapters import find_adapter

    with torch.device("meta"):
        model = getattr(transformers, family.cls)(family.config)
    groups = find_adapter(model).groups(model)
    members = {m.module for g in groups for m in g.members}
    config = family.config
    vision, text = config.vision_config, config.text_config
    work = family.vision_tokens * vision.hidden_size * vision.num_hidden_layers
    if hasattr(config, "qformer_config"):
        q = config.qformer_config
        work += 32 * q.hidden_size * q.num_hidden_layers
    lm_tokens = family.image_tokens + TEXT_TOKENS
    if getattr(text, "model_type", "") == "t5":
        work += lm_tokens * text.d_model * text.num_layers + TEXT_TOKENS * text.d_model * text.num_decoder_layers
    else:
        work += lm_tokens * text.hidden_size * text.num_hidden_layers
    return {
        "params": sum(p.numel() for p in model.parameters()),
        "graded": sum(model.get_submodule(m).weight.numel() for m in members),
        "work": work,
    }


def measured_factor(record: dict) -> tuple[float, dict]:
    """Activation bytes per (token x width x layer), from the FlanT5-XL-size UKMP run."""
    ukmp = record["methods"]["ukmp"]["prune"]["steps"]
    weights = record["model_bytes"]
    runtime = ukmp["load"]["peak_memory_mb"] * 2**20 - weights  # what the process held beside the weights
    xl = sizes(families()[0])
    gradient_peak = record["gradient_pass_peak_mb"] * 2**20
    samples = record["samples"]
    activations = (gradient_peak - weights - 2 * xl["graded"] - runtime) / samples
    return activations / xl["work"], {"per_sample": activations, "runtime": runtime, "peak": gradient_peak}


def fits(need_per_device: float, memory: float = 80 * GIB) -> str:
    return "yes" if need_per_device + OVERHEAD <= memory else "no"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--record", type=Path, default=ROOT / "results" / "bench" / "real_size.json")
    parser.add_argument("--batch", type=int, default=8, help="calibration batch size (`--batch-size`)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "scale.md")
    args = parser.parse_args()
    record = json.loads(args.record.read_text())
    factor, measured = measured_factor(record)
    rows = []
    for family in families():
        s = sizes(family)
        weights, grads = 2 * s["params"], 2 * s["graded"]
        act = factor * s["work"]
        ukmp = weights + grads + args.batch * act
        cells = [
            family.name,
            f"{s['params'] / 1e9:.2f}B",
            f"{weights / GIB:.1f}",
            f"{grads / GIB:.1f}",
            f"{act / GIB:.2f}",
            f"{ukmp / GIB:.0f}",
            fits(ukmp),
            fits(ukmp / 2),
            fits(ukmp / 8),
            fits(ukmp),  # each process holds the whole model, its gradients and its own batch
        ]
        rows.append("| " + " | ".join(cells) + " |")
    from ukmp.atomic import write_text_atomic

    columns = [
        "model",
        "parameters",
        "bf16 weights GiB",
        "bf16 gradients GiB",
        "activations GiB per sample",
        f"UKMP scoring GiB (batch {args.batch})",
        "1 × 80 GB",
        "2 × 80 GB (`--device-map auto`)",
        "8 × 80 GB (`--device-map auto`)",
        "8 × 80 GB (`accelerate launch`, data-parallel)",
    ]
    header = "| " + " | ".join(columns) + " |\n|" + "---|" * len(columns)
    text = TEMPLATE.format(
        header=header,
        rows="\n".join(rows),
        batch=args.batch,
        factor=factor,
        per_sample=measured["per_sample"] / GIB,
        peak=measured["peak"] / GIB,
        runtime=measured["runtime"] / GIB,
        samples=record["samples"],
    )
    write_text_atomic(args.out, text)
    print(text)
    print(f"wrote {args.out}")


TEMPLATE = """# Scale: what pruning a real checkpoint needs

Memory of scoring in bfloat16 (`--score-dtype bfloat16`, the default on a GPU). A gradient scorer
(UKMP, LLM-Pruner, UPop, ECoFLaP's first-order variant) holds the bf16 weights, one bf16 gradient
per weight of a prunable group (never for embeddings, norms or heads) and one batch's activations.
An activation scorer (FLAP, Wanda-sp, ECoFLaP's zeroth-order variant) holds the weights and a
forward's activations, without gradients; a data-free one (magnitude, random) the weights only.

Made by `python3 bench/scale_table.py` from `results/bench/real_size.json`. Parameters and
gradient bytes are exact (each model built from its published config on the meta device).
Activations per sample are **estimates**: the FlanT5-XL-size run (`bench/real_size.py`, this 2-core
CPU, {samples} samples per pass) held {per_sample:.2f} GiB per sample in its gradient pass beyond
weights, gradients and runtime (peak {peak:.1f} GiB, runtime {runtime:.2f} GiB), i.e. {factor:.1f}
bytes per token x hidden width x layer; each model's figure is that factor times its own tokens
(images at the tower's resolution, {text} text tokens) x width x layers. Other attention kernels
(SDPA or flash on a GPU keep no attention matrix) move this factor.

{header}
{rows}

"yes" means the share each GPU holds plus {overhead} GiB of CUDA context and allocator slack fits 80
GB: with `--device-map auto` the weights, gradients and activations are split across the GPUs by
layer (accelerate's big-model placement, leaving room for gradients beside the weights); with
`accelerate launch --multi_gpu` every process holds the whole model and its gradients and scores
its share of the samples (UKMP only; the other gradient scorers score in one process). Lower
`--batch-size` to cut the activations (the scores do not depend on it); a data-free method needs
only the weights.

## Commands

```bash
# one GPU (bf16 scoring is the default on a GPU)
ukmp prune Salesforce/blip2-flan-t5-xl --method ukmp --ratio 0.5 --calib DATA --out pruned --device cuda
# a model larger than one GPU: spread it over every GPU (then the CPU)
ukmp prune llava-hf/llava-1.5-13b-hf --method ukmp --ratio 0.5 --calib DATA --out pruned --device-map auto
# or name the parts yourself
ukmp prune MODEL --method ukmp --ratio 0.5 --calib DATA --out pruned \\
    --device-map '{{"vision_tower": "cuda:0", "multi_modal_projector": "cuda:0", "language_model": "cuda:1"}}'
# data-parallel scoring, one process per GPU (NCCL), UKMP only
accelerate launch --multi_gpu --num_processes 8 -m ukmp prune MODEL --method ukmp --ratio 0.5 --calib DATA --out pruned
```

On the CPU (no GPU), `--score-dtype bfloat16` halves the memory of float32 scoring: the
FlanT5-XL-size model scored in {peak:.1f} GiB on a 24 GiB machine (`results/bench/real_size.md`).
"""


if __name__ == "__main__":
    TEMPLATE = TEMPLATE.replace("{text}", str(TEXT_TOKENS)).replace("{overhead}", str(OVERHEAD // GIB))
    main()
