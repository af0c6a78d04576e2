"""UKMP and two baselines at BLIP-2 FlanT5-XL's real size, in bfloat16, on this machine's CPU.

Nothing in the project had run at a real model's size; this does, end to end, the way a user would:

1. build a BLIP-2 with FlanT5-XL's exact config (ViT-g 39 layers, Q-Former, FlanT5-XL 24 + 24
   layers; 3.94B parameters) on the meta device, materialise it in bfloat16 with random weights
   (no hub is reachable here; the shapes and the bytes are what matter) and save it as a local
   checkpoint with a processor (224-pixel images, the shipped model's tokenizer);
2. prune it to 50% with UKMP (the default flags), magnitude (data-free) and Wanda-sp (activations),
   scoring in bfloat16 on ``--samples`` calibration samples of the shapes world, each in a fresh
   process through the library's ``prune`` (the function `ukmp prune` calls); every step's wall
   time and peak resident memory comes from the prune summary (``ukmp.peak_memory``), the whole
   process's peak from the kernel (``wait4``);
3. ``load_pruned`` each artifact in a fresh process: the peak resident memory the load added;
4. ``ukmp bench`` dense against every pruned artifact at batch 1 in bfloat16, side by side in one
   run (no masked reference: it would be a second dense copy).

Every figure is written as a multiple of the bf16 model's bytes to ``results/bench/real_size.md``
(and ``real_size.json``). Each step is skipped when its output already exists in ``--work``, so an
interrupted run resumes; ``--fresh`` starts over.

    python3 bench/real_size.py [--work DIR] [--samples 4] [--methods ukmp,magnitude,wanda-sp]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results" / "bench"


def flan_t5_xl_config():
    """BLIP-2 FlanT5-XL's config (Salesforce/blip2-flan-t5-xl), written out: no hub is reachable here."""
    from transformers import Blip2Config, Blip2QFormerConfig, Blip2VisionConfig, T5Config

    vision = Blip2VisionConfig(
        hidden_size=1408,
        intermediate_size=6144,
        num_hidden_layers=39,
        num_attention_heads=16,
        image_size=224,
        patch_size=14,
        qkv_bias=True,
        layer_norm_eps=1e-6,
    )
    qformer = Blip2QFormerConfig(
        hidden_size=768,
        num_hidden_layers=12,
        num_attention_heads=12,
        intermediate_size=3072,
        cross_attention_frequency=2,
        encoder_hidden_size=1408,
    )
    text = T5Config(
        vocab_size=32128,
        d_model=2048,
        d_kv=64,
        d_ff=5120,
        num_layers=24,
        num_decoder_layers=24,
        num_heads=32,
        feed_forward_proj="gated-gelu",
        tie_word_embeddings=False,
        decoder_start_token_id=0,
        pad_token_id=0,
        eos_token_id=1,
    )
    config = Blip2Config(
        vision_config=vision.to_dict(),
        qformer_config=qformer.to_dict(),
        text_config=text.to_dict(),
        num_query_tokens=32,
        image_token_index=3,  # the shipped tokenizer's image token
    )
    config.architectures = ["Blip2ForConditionalGeneration"]
    return config


def build(folder: Path) -> dict:
    """The random-weight bf16 checkpoint and its processor in ``folder`` (child process)."""
    import torch
    from transformers import Blip2ForConditionalGeneration, Blip2Processor, BlipImageProcessor

    from ukmp.processors import load_processor
    from ukmp.zoo import resolve_model_name

    started = time.perf_counter()
    config = flan_t5_xl_config()
    with torch.device("meta"):
        model = Blip2ForConditionalGeneration(config)
    model.to(torch.bfloat16)
    model.to_empty(device="cpu")
    model.tie_weights()  # to_empty gives tied parameters their own storage; T5 shares its input embeddings
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name.lower():  # LayerNorm / T5LayerNorm: weight 1, bias 0
                p.fill_(1.0 if name.endswith("weight") else 0.0)
            elif name.endswith("bias"):
                p.zero_()
            else:
                for row in p.view(p.shape[0], -1).split(1024):  # bf16 chunks: no float32 copy of the model
                    row.copy_(torch.randn(row.shape, generator=generator) * 0.02)
    params = sum(p.numel() for p in model.parameters())
    shipped = load_processor(str(resolve_model_name("shapes-blip2-t5")))
    image_processor = BlipImageProcessor(
        size={"height": 224, "width": 224},
        image_mean=[0.48145466, 0.4578275, 0.40821073],
        image_std=[0.26862954, 0.26130258, 0.27577711],
    )
    processor = Blip2Processor(image_processor=image_processor, tokenizer=shipped.tokenizer, num_query_tokens=32)
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    processor.save_pretrained(tmp)
    tmp.rename(folder)
    return {"parameters": params, "seconds": time.perf_counter() - started}


def prune_child(model: str, method: str, out: str, samples: int, device: str) -> dict:
    """One prune through the library's ``prune`` (child process); its summary."""
    from ukmp.data.index import SHAPES_CALIB_SPLIT, resolve_data_dir
    from ukmp.methods.registry import get_scorer
    from ukmp.placement import Placement
    from ukmp.pruning import PruneConfig, prune

    calibrated = get_scorer(method).calibrated
    config = PruneConfig(
        model=model,
        out=out,
        method=method,
        ratio=0.5,
        calib=resolve_data_dir("shapes", SHAPES_CALIB_SPLIT, 2 * samples) if calibrated else None,
        calib_split=SHAPES_CALIB_SPLIT,
        num_samples=samples,
        batch_size=samples,
        placement=Placement(device=device, dtype="bfloat16"),
    )
    summary = prune(config, overwrite=True)
    return {k: v for k, v in summary.items() if k in ("achieved_ratio", "params_before", "params_after", "steps")}


def load_child(artifact: str) -> dict:
    """The resident memory ``load_pruned`` adds (child process)."""
    import torch  # noqa: F401  (the runtime is measured before the load)

    from ukmp.artifact import load_pruned
    from ukmp.peak_memory import reset_peak_rss, status_kib

    before = status_kib("VmRSS")
    reset_peak_rss()
    started = time.perf_counter()
    model = load_pruned(artifact)
    seconds = time.perf_counter() - started
    peak = status_kib("VmHWM")
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    return {"seconds": seconds, "added_mib": (peak - before) / 1024, "weights_mib": weights / 2**20}


def run_child(args: list[str], log: Path) -> tuple[dict, float, float]:
    """(the child's JSON result, its wall seconds, its peak RSS in MiB from the kernel)."""
    started = time.perf_counter()
    with open(log, "w") as fh:
        proc = subprocess.Popen([sys.executable, __file__, *args], stdout=fh, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(args[:2])} failed; see {log}")
    lines = [line for line in log.read_text().splitlines() if line.startswith("RESULT ")]
    return json.loads(lines[-1][len("RESULT ") :]), seconds, usage.ru_maxrss / 1024


def folder_bytes(folder: Path, name: str = "model.safetensors") -> int:
    return sum(p.stat().st_size for p in folder.glob(name.replace(".safetensors", "*.safetensors")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("real-size-work"), help="checkpoints, artifacts, logs")
    parser.add_argument("--samples", type=int, default=4, help="calibration samples per pass")
    parser.add_argument("--methods", default="ukmp,magnitude,wanda-sp")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per model in the bench")
    parser.add_argument("--device", default="cpu", help="where scoring, slicing and the bench run (cpu, cuda)")
    parser.add_argument("--batch-sizes", default="1", help="batch sizes of the bench")
    parser.add_argument("--fresh", action="store_true", help="start over instead of resuming")
    parser.add_argument("--out", type=Path, default=RESULTS / "real_size.md")
    args = parser.parse_args()
    if args.fresh:
        shutil.rmtree(args.work, ignore_errors=True)
    work = args.work.resolve()
    (work / "logs").mkdir(parents=True, exist_ok=True)
    record_file = work / "record.json"
    record = json.loads(record_file.read_text()) if record_file.is_file() else {}

    def save() -> None:
        record_file.write_text(json.dumps(record, indent=1))

    dense = work / "dense"
    if not (dense / "config.json").is_file():
        print("[build] FlanT5-XL-size BLIP-2, bf16, random weights", flush=True)
        result, seconds, peak = run_child(["--child-build", str(dense)], work / "logs" / "build.log")
        record["build"] = {**result, "wall_seconds": seconds, "peak_mib": peak}
        save()
    model_bytes = folder_bytes(dense)
    record["model_bytes"] = model_bytes
    for method in args.methods.split(","):
        artifact = work / f"{method}-50"
        entry = record.setdefault("methods", {}).setdefault(method, {})
        if "prune" not in entry or not (artifact / "pruning.json").is_file():
            print(f"[prune] {method} at 50%, scoring in bf16 on {args.samples} samples", flush=True)
            child = ["--child-prune", str(dense), method, str(artifact), str(args.samples), args.device]
            result, seconds, peak = run_child(child, work / "logs" / f"prune-{method}.log")
            entry["prune"] = {**result, "wall_seconds": seconds, "process_peak_mib": peak}
            entry.pop("load", None)
            save()
        entry["artifact_bytes"] = folder_bytes(artifact)
        scoring = json.loads((artifact / "pruning.json").read_text())["extra"]["scoring"]
        entry["passes"] = {k: v for k, v in scoring.items() if isinstance(v, dict) and "peak_memory_mb" in v}
        if "load" not in entry:
            print(f"[load] {method}: load_pruned in a fresh process", flush=True)
            result, seconds, peak = run_child(["--child-load", str(artifact)], work / "logs" / f"load-{method}.log")
            entry["load"] = {**result, "wall_seconds": seconds, "process_peak_mib": peak}
            save()
    bench_json = work / "bench.json"
    artifacts = [str(work / f"{m}-50") for m in args.methods.split(",")]
    if not bench_json.is_file() or record.get("bench_artifacts") != artifacts:
        print(f"[bench] dense vs pruned at batch {args.batch_sizes}, bf16, on {args.device}", flush=True)
        command = [sys.executable, "-m", "ukmp", "bench", str(dense), *artifacts, "--batch-sizes", args.batch_sizes]
        command += ["--dtype", "bfloat16", "--no-masked", "--no-memory", "--repeats", str(args.repeats)]
        command += ["--caption-tokens", "8", "--device", args.device, "--out", str(bench_json)]
        started = time.perf_counter()
        with open(work / "logs" / "bench.log", "w") as fh:
            subprocess.run(command, check=True, stdout=fh, stderr=subprocess.STDOUT)
        record["bench_seconds"] = time.perf_counter() - started
        record["bench_artifacts"] = artifacts
        save()
    record["samples"] = args.samples
    if "ukmp" in record["methods"]:
        record["gradient_pass_peak_mb"] = record["methods"]["ukmp"]["passes"]["gradient_pass"]["peak_memory_mb"]
    record["bench"] = json.loads(bench_json.read_text())
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    record["machine"] = {"cpus": os.cpu_count(), "platform": platform.platform(), "gpu": gpu}
    save()
    write_report(record, args)


def process_peak(prune: dict) -> float:
    """The prune process's peak RSS in MiB: each step resets the kernel's peak, so the largest step's, or the
    kernel's own figure for the process where that is larger."""
    return max([prune["process_peak_mib"], *(s.get("peak_memory_mb", 0.0) for s in prune["steps"].values())])


def write_report(record: dict, args: argparse.Namespace) -> None:
    """results/bench/real_size.md (and .json beside it) from the run's record."""
    from ukmp.atomic import write_text_atomic

    gib = 2**30
    model_bytes = record["model_bytes"]
    model_mib = model_bytes / 2**20
    bench = record["bench"]
    speed = {}
    for model in bench.get("models", []):
        for batch, measured in sorted((model.get("batches") or {}).items(), key=lambda kv: int(kv[0])):
            ratios = (measured or {}).get("speedup") or {}
            speed[(model["name"], batch)] = {op: ratios.get(op) for op in ("encode", "forward", "generate")}
    build = record.get("build", {})
    lines = [
        f"# Real size: BLIP-2 FlanT5-XL's config in bfloat16, pruned to 50% on {args.device}",
        "",
        f"Model: {build.get('parameters', 0):,} parameters (random weights, FlanT5-XL's exact shapes), "
        f"{model_bytes / gib:.2f} GiB of bf16 weights. Machine: {record['machine']['cpus']} CPUs"
        f"{', ' + record['machine']['gpu'] if record['machine'].get('gpu') else ', no GPU'}. "
        f"Calibration: {args.samples} samples per pass of the shapes world's alt-text split (images resized "
        f"to 224 px), scoring in bfloat16 on {args.device}.",
        "",
        f"Command: `python3 bench/real_size.py --device {args.device} --batch-sizes {args.batch_sizes}` (resumes "
        "from `--work`; `--fresh` starts over). Peak memory, as a multiple of the bf16 model's bytes (×), is "
        "measured inside each step on the step's device: on the CPU the process's resident set size (the "
        "kernel's peak is reset at the step's start, so it includes the model already resident), on a GPU "
        "the allocator's peak.",
        "",
        "| method | load | score | plan | slice | save | whole prune process | prune wall | achieved ratio "
        "| artifact / dense bytes | `load_pruned` adds (× artifact) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for method, entry in record["methods"].items():
        prune = entry["prune"]
        steps = prune["steps"]

        def cell(name: str, steps: dict = steps) -> str:
            step = steps.get(name) or {}
            if "peak_memory_mb" not in step:
                return "n/a"
            return f"{step['peak_memory_mb'] / model_mib:.2f}× / {step['seconds']:.0f} s"

        load = entry["load"]
        lines.append(
            f"| {method} | {cell('load')} | {cell('score')} | {cell('plan')} | {cell('slice')} | {cell('save')} "
            f"| {process_peak(prune) / model_mib:.2f}× | {prune['wall_seconds'] / 60:.1f} min "
            f"| {prune['achieved_ratio']:.4f} | {entry['artifact_bytes'] / model_bytes:.3f} "
            f"| {load['added_mib'] * 2**20 / entry['artifact_bytes']:.2f}× ({load['seconds']:.0f} s) |"
        )
    lines += [
        "",
        "Each cell of a step: peak resident memory × the bf16 model bytes / wall time. Scoring holds the bf16",
        "weights and one bf16 gradient per prunable weight (the sum over batches lives in `.grad`); Taylor",
        "products, unit sums, entropy histograms and activation statistics are formed in float32 or wider.",
        "",
        f"`ukmp bench` dense vs pruned on {args.device}, bf16, median of {args.repeats} interleaved runs "
        f"({record.get('bench_seconds', 0) / 60:.1f} min):",
        "",
        "| model | batch | image encoding speedup | forward speedup | caption generation speedup |",
        "|---|---|---|---|---|",
    ]
    for (name, batch), ops in speed.items():
        cells = " | ".join("—" if ops[op] is None else f"{ops[op]:.2f}×" for op in ("encode", "forward", "generate"))
        lines.append(f"| {name} | {batch} | {cells} |")
    lines += [
        "",
        f"Built in {build.get('wall_seconds', 0) / 60:.1f} min (peak {build.get('peak_mib', 0) / 1024:.1f} GiB).",
        "",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.out, "\n".join(lines))
    summary = {k: v for k, v in record.items() if k not in ("bench", "bench_artifacts")}  # no machine paths
    write_text_atomic(args.out.with_suffix(".json"), json.dumps(summary, indent=1))
    print("\n".join(lines))
    print(f"wrote {args.out}")


def child_main(argv: list[str]) -> None:
    kind, rest = argv[0], argv[1:]
    if kind == "--child-build":
        result = build(Path(rest[0]))
    elif kind == "--child-prune":
        result = prune_child(rest[0], rest[1], rest[2], int(rest[3]), rest[4])
    else:
        result = load_child(rest[0])
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1].startswith("--child-"):
        child_main(sys.argv[1:])
    else:
        main()
