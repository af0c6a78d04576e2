"""Is the pruned model faster? `ukmp bench` on the shipped model and on a real-width BLIP-2, in one go.

    python3 bench/speedup.py                                  # CPU, float32 (this machine)
    python3 bench/speedup.py --device cuda --dtype bfloat16   # what bench/gpu.sh runs

Models (built once into --work and reused):
- `shapes-blip2-t5`: the shipped model (its trained weights when they are installed, else a random
  model of the same architecture; the results say which), pruned by 20% and 50% of all parameters;
- `blip2-flant5xl-widths-2-layers`: a randomly initialised BLIP-2 with the real FlanT5-XL widths
  (ViT 1408 wide with 16 heads and MLP 6144 at 224 px / patch 14; T5 2048 wide, 32 heads x 64,
  gated FFN 5120, vocabulary 32128; a small Q-Former) but two layers per stack, pruned by 20% and
  50% of its *prunable* parameters. With two layers per stack the unprunable embeddings and LM head
  are a third of the model instead of ~5% in the 24-layer original, so a share of all parameters
  would strip the few layers far harder than a real 50% pruning does; a share of the prunable
  parameters gives every layer the widths a real 50% pruning gives it, which is what speed depends on.

Plans come from `--method` (default random: on random weights, magnitude scores rank units by
their initialisation scale, not by anything learned, and can empty one whole layer type; random
scores remove about the same share of every layer, like a real method on average). Each model is
then measured by `ukmp.benchmark.run.run_benchmark` (dense, pruned, masked reference, and rounded
widths with --round-to), and the results go to `--out/<device>-<dtype>/<model>.json|.md`;
`--out/README.md` is rewritten with the headline table of every device measured so far.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

DEFAULT_WORK = Path(os.environ.get("UKMP_BENCH_WORK", Path.home() / ".cache" / "ukmp" / "bench-models"))
SHAPES, FULL = "shapes-blip2-t5", "blip2-flant5xl-widths-2-layers"
RATIOS = (0.2, 0.5)


def build_dense(name: str, work: Path) -> tuple[str, str]:
    """(model reference for `ukmp bench`, what it is)."""
    from ukmp.zoo import resolve_model_name

    if name == SHAPES:
        shipped = Path(resolve_model_name(SHAPES) or "")
        if (shipped / "model.safetensors").is_file():
            return SHAPES, "the shipped model with its trained weights"
        folder = work / f"{SHAPES}-random"
        if not (folder / "config.json").is_file():
            from transformers import Blip2ForConditionalGeneration

            from ukmp.zoo.shapes_config import shapes_blip2_t5_config

            torch.manual_seed(0)
            model = Blip2ForConditionalGeneration(shapes_blip2_t5_config(512)).eval()
            model.save_pretrained(folder)
        return str(folder), "random weights with the shipped model's architecture (trained weights not installed)"
    folder = work / FULL
    if not (folder / "config.json").is_file():
        from ukmi_scale import real_width_model

        print(f"building {FULL} (random weights) into {folder}")
        real_width_model().save_pretrained(folder)
    return str(folder), "random weights, real BLIP-2 FlanT5-XL widths, 2 layers per stack"


def prune_all(name: str, ref: str, work: Path, method: str, seed: int) -> list[str]:
    from ukmp.pruning import PruneConfig, prune

    of = "prunable" if name == FULL else "all"
    tag = "trained" if ref == SHAPES else "randinit"
    out = []
    for ratio in RATIOS:
        folder = work / f"{name}-{tag}-{method}-{of}-{round(ratio * 100)}"
        if not (folder / "pruning.json").is_file():
            prune(PruneConfig(ref, folder, method, ratio, of=of, seed=seed), overwrite=True, verbose=False)
        out.append(str(folder))
    return out


def headline(results: dict, batch: int) -> list[str]:
    """Markdown rows: per pruned model, forward/encode/caption speedup vs ideal, masked next to it."""
    rows = []
    for m in results["models"]:
        if m["kind"] != "pruned" or str(batch) not in m["batches"]:
            continue
        r = m["batches"][str(batch)]
        masked = next((x for x in results["models"] if x["kind"] == "masked" and x["derived_from"] == m["name"]), None)
        masked_speedup = f"{masked['batches'][str(batch)]['speedup']['forward']:.2f}×" if masked else "–"
        rows.append(
            f"| {results['reference']} | {m['name']} | {m['achieved_ratio_of_all']:.1%} | {batch} | "
            f"{r['speedup']['forward']:.2f}× | {m['ideal_speedup']['forward']:.2f}× | {r['of_ideal']['forward']:.0%} | "
            f"{masked_speedup} | {r['speedup']['encode']:.2f}× ({m['ideal_speedup']['encode']:.2f}×) | "
            f"{r['speedup']['generate']:.2f}× ({m['ideal_speedup']['generate']:.2f}×) |"
        )
    return rows


def write_summary(out: Path) -> Path:
    """README.md over every `<device>-<dtype>/*.json` present; GPU marked pending when absent."""
    from ukmp.atomic import write_text_atomic
    from ukmp.benchmark.files import read_bench

    lines = [
        "# Speed of pruned models: measured vs ideal (FLOPs) speedup",
        "",
        "Made by `python3 bench/speedup.py` (CPU) and `bash bench/gpu.sh` (GPU, bf16). Each table row is one "
        "pruned model measured side by side with its dense model and its masked reference (same function, "
        "full size) in one run, interleaved; speedups are ratios of median latencies, ideal = dense FLOPs / "
        "pruned FLOPs, of ideal = measured / ideal. Full tables (spread, memory, per component, round-to) are "
        "in the per-model `.md` files; raw runs in the `.json` files.",
        "",
        "How far to trust a figure: the masked model executes exactly the dense model's FLOPs, so the distance of "
        "its speedup from 1.00× is the noise of that run (on a shared 2-core CPU, ±10% between repeated runs of "
        "the same command is common). The full-width model is pruned by a share of its *prunable* parameters "
        "(2 layers per stack leave the embeddings and LM head a third of the model; see `bench/speedup.py`), and "
        "its plans come from random scores (on random weights, magnitude scores empty the vision encoder).",
        "",
    ]
    runs = sorted(p for p in out.glob("*/*.json"))
    devices = sorted({p.parent.name for p in runs})
    for device in devices:
        lines += [f"## {device}", ""]
        for file in sorted(p for p in runs if p.parent.name == device):
            results = read_bench(file)
            env = results["environment"]
            where = env.get("gpu") or env.get("cpu")
            lines += [
                f"### {results['reference']} (`{device}/{file.name}`)",
                "",
                f"{results.get('model_note', '')}. {where}, {env['threads']} threads, "
                f"torch {env['versions']['torch']}; "
                f"load average {env['loadavg_start']} at start, {env['loadavg_end']} at end; "
                f"{results['settings']['repeats']} repeats; {results['created_utc']}.",
                "",
                f"Command: `{' '.join(results['command'])}`",
                "",
                "| dense model | pruned model | removed (of all) | batch | forward speedup | ideal | of ideal | "
                "masked forward speedup | encode speedup (ideal) | caption speedup (ideal) |",
                "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
            ]
            for batch in results["settings"]["batch_sizes"]:
                lines += headline(results, batch)
            lines.append("")
    if not any(d.startswith("cuda") for d in devices):
        lines += [
            "## GPU",
            "",
            "**Pending**: no GPU was available when these results were made. `bash bench/gpu.sh` measures the same "
            "models in bf16 on CUDA (under 5 minutes, nothing to install beyond the project) and rewrites this "
            "file with its figures under a `cuda-bfloat16` heading.",
            "",
        ]
    return write_text_atomic(out / "README.md", "\n".join(lines))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument(
        "--dtype", choices=("float32", "bfloat16"), default=None, help="default: float32 on CPU, bf16 on CUDA"
    )
    parser.add_argument("--models", default=f"{SHAPES},{FULL}", help="comma-separated: " + ", ".join((SHAPES, FULL)))
    parser.add_argument("--batch-sizes", default=None, help="default: 1,8 on CPU, 1,8,32 on CUDA")
    parser.add_argument("--repeats", type=int, default=None, help="default: 5 on CPU, 10 on CUDA")
    parser.add_argument("--round-to", type=int, default=8)
    parser.add_argument("--method", choices=("random", "magnitude"), default="random")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--no-memory", dest="memory", action="store_false")
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK, help="where the models are built (reused)")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "results" / "bench")
    parser.add_argument("--summary-only", action="store_true", help="only rewrite --out/README.md from its JSON files")
    args = parser.parse_args()
    if args.summary_only:
        print(f"wrote {write_summary(args.out)}")
        return 0

    from ukmp.benchmark.files import write_bench
    from ukmp.benchmark.markdown import bench_markdown
    from ukmp.benchmark.options import BenchOptions
    from ukmp.benchmark.run import run_benchmark

    cuda = args.device == "cuda"
    dtype = args.dtype or ("bfloat16" if cuda else "float32")
    sizes = tuple(int(x) for x in (args.batch_sizes or ("1,8,32" if cuda else "1,8")).split(","))
    repeats = args.repeats or (10 if cuda else 5)
    args.work.mkdir(parents=True, exist_ok=True)
    folder = args.out / f"{args.device}-{dtype}"
    for name in args.models.split(","):
        started = time.time()
        ref, note = build_dense(name, args.work)
        pruned = prune_all(name, ref, args.work, args.method, args.seed)
        options = BenchOptions(
            batch_sizes=sizes,
            repeats=repeats,
            round_to=args.round_to,
            dtype=dtype,
            device=args.device,
            memory=args.memory,
            threads=args.threads,
        )
        command = ["python3", "bench/speedup.py", *sys.argv[1:]]
        results = run_benchmark(ref, pruned, options, command=command)
        results["model_note"] = f"{name}: {note}; plans by {args.method} scores"
        print(bench_markdown(results))
        json_path, md_path = write_bench(results, folder / f"{name}.json")
        print(f"wrote {json_path} and {md_path} ({time.time() - started:.0f} s)")
    summary = write_summary(args.out)
    print(f"wrote {summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
