"""Memory and time of pruning and of loading a pruned model, at a real model's widths.

    python3 bench/load_memory.py                      # ~1 GB bf16 model, about 5 min on 2 CPU cores
    python3 bench/load_memory.py --dtype float32      # the same layers, twice the bytes

Why: a user with BLIP-2 FlanT5-XL needs ``ukmp prune`` and ``load_pruned`` to fit where the model
fits. The model here is a randomly initialised ``Blip2ForConditionalGeneration`` with FlanT5-XL's
full widths (T5 d_model 2048, 32 heads, d_ff 5120, 32,128-token vocabulary, untied head; ViT-g
width 1408, MLP 6144, 16 heads; Q-Former 768) and only a few layers, so that it weighs about 1 GB
and runs here; memory per layer is what it is in the full model.

Every figure is measured in its own fresh process (``os.wait4`` gives that child's peak resident
set size), side by side in one run:

- the empty-interpreter baseline: a process that imports torch, transformers and ukmp and stops;
- ``ukmp prune --method magnitude`` on the dense folder: peak RSS above the baseline, as a ratio to
  the dense weights' bytes (goal <= 1.3);
- ``ukmp.load_pruned`` of the artifact: peak RSS above the baseline, as a ratio to the artifact's
  weight bytes (goal <= 1.3), and its time against reading the weights file once (page cache warm
  for both: the artifact was just written);
- the previous way of loading (build and randomly initialise the dense model, slice it, then read
  the file), for comparison.

Results go to ``results/bench/load_memory.md`` and ``.json`` (written atomically).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from ukmp.atomic import write_json_atomic, write_text_atomic  # noqa: E402

IMPORTS = (
    "import time, torch, transformers, ukmp, ukmp.artifact, ukmp.pruning\n"
    "from transformers import Blip2ForConditionalGeneration\n"
    "START = time.perf_counter()\n"
)
#: what a timed snippet prints last: its own seconds after the imports (interpreter start-up excluded)
REPORT = "\nprint('ELAPSED', time.perf_counter() - START)\n"

BUILD = textwrap.dedent(
    """
    import sys, torch
    from transformers import Blip2Config, Blip2ForConditionalGeneration
    layers = [int(x) for x in sys.argv[3].split(",")]
    config = Blip2Config(
        vision_config=dict(hidden_size=1408, intermediate_size=6144, num_attention_heads=16,
                           num_hidden_layers=layers[0], image_size=224, patch_size=14),
        qformer_config=dict(hidden_size=768, intermediate_size=3072, num_attention_heads=12,
                            num_hidden_layers=layers[1], encoder_hidden_size=1408),
        text_config=dict(model_type="t5", d_model=2048, d_kv=64, num_heads=32, d_ff=5120,
                         num_layers=layers[2], num_decoder_layers=layers[3], vocab_size=32128,
                         feed_forward_proj="gated-gelu", tie_word_embeddings=False,
                         decoder_start_token_id=0, pad_token_id=0, eos_token_id=1),
        num_query_tokens=32, image_token_index=32100,
    )
    torch.manual_seed(0)
    model = Blip2ForConditionalGeneration(config).to(getattr(torch, sys.argv[2]))
    model.save_pretrained(sys.argv[1])
    """
)

OLD_LOAD = (
    textwrap.dedent(
        """
    # What load_pruned did before the meta-device build: a dense, randomly initialised model first.
    import sys, torch, ukmp.artifact as a
    from safetensors.torch import load_file
    from transformers import AutoConfig
    from ukmp.groups import PruningPlan
    from ukmp.surgery import apply_plan_physically
    root = a.Path(sys.argv[1])
    manifest = a.read_manifest(root)
    config = AutoConfig.from_pretrained(str(root))
    model = a.model_class(config, manifest.get("architecture"))._from_config(config)
    apply_plan_physically(model, PruningPlan.from_dict(manifest["groups"]))
    model.load_state_dict(load_file(str(root / "model.safetensors")), strict=False)
    """
    )
    + REPORT
)

NEW_LOAD = "import sys, ukmp\nmodel = ukmp.load_pruned(sys.argv[1])\n" + REPORT

READ_FILE = (
    textwrap.dedent(
        """
    import sys
    with open(sys.argv[1], "rb", buffering=0) as f:
        buffer = bytearray(64 * 2**20)
        while f.readinto(buffer):
            pass
    """
    )
    + REPORT
)


def measure(argv: list[str]) -> dict[str, float]:
    """Run ``argv`` as a fresh process: its wall time, its own peak RSS (bytes), and the seconds
    it reported itself after its imports (``ELAPSED``), when it does."""
    start = time.perf_counter()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(argv[:4])} failed; see its output above")
    reported = [float(line.split()[1]) for line in output.splitlines() if line.startswith("ELAPSED ")]
    work = reported[-1] if reported else seconds
    return {"seconds": seconds, "peak_rss": usage.ru_maxrss * 1024, "work_seconds": work}


def python(code: str, *args: str) -> list[str]:
    return [sys.executable, "-c", IMPORTS + code, *args]


def gib(n: float) -> str:
    return f"{n / 2**30:.2f} GiB"


def run(args: argparse.Namespace, work: Path) -> dict:
    dense, artifact = work / "dense", work / "pruned"
    print(f"building the dense model ({args.layers} layers, {args.dtype}) ...", flush=True)
    build = measure(python(BUILD, str(dense), args.dtype, args.layers))
    dense_bytes = sum(f.stat().st_size for f in dense.glob("*.safetensors"))
    baseline = measure(python("pass"))
    print(f"dense weights {gib(dense_bytes)}; empty interpreter {gib(baseline['peak_rss'])}", flush=True)
    prune = measure([sys.executable, "-m", "ukmp", "prune", str(dense), "--method", "magnitude", "--ratio",
                     str(args.ratio), "--out", str(artifact)])  # fmt: skip
    artifact_bytes = (artifact / "model.safetensors").stat().st_size
    read = min(measure(python(READ_FILE, str(artifact / "model.safetensors")))["work_seconds"] for _ in range(2))
    new = [measure(python(NEW_LOAD, str(artifact))) for _ in range(args.repeats)]
    old = measure(python(OLD_LOAD, str(artifact)))
    base = baseline["peak_rss"]
    new_peak = max(m["peak_rss"] for m in new)
    new_seconds = min(m["work_seconds"] for m in new)
    return {
        "model": f"BLIP-2 at FlanT5-XL widths, layers vision,qformer,encoder,decoder = {args.layers}",
        "dtype": args.dtype,
        "ratio": args.ratio,
        "dense_weight_bytes": dense_bytes,
        "artifact_weight_bytes": artifact_bytes,
        "empty_interpreter_peak_rss": base,
        "empty_interpreter_seconds": baseline["seconds"],
        "build_seconds": build["seconds"],
        "prune_peak_rss": prune["peak_rss"],
        "prune_seconds": prune["seconds"],
        "prune_rss_over_dense_bytes": (prune["peak_rss"] - base) / dense_bytes,
        "load_peak_rss": new_peak,
        "load_seconds": new_seconds,
        "load_rss_over_artifact_bytes": (new_peak - base) / artifact_bytes,
        "read_file_seconds": read,
        "load_seconds_over_read": new_seconds / read,
        "previous_load_peak_rss": old["peak_rss"],
        "previous_load_seconds": old["work_seconds"],
        "previous_load_rss_over_artifact_bytes": (old["peak_rss"] - base) / artifact_bytes,
    }


def _row(what: str, peak: float, base: float, ratio: str = "", goal: str = "") -> str:
    return f"| {what} | {gib(peak)} | {gib(peak - base)} | {ratio} | {goal} |"


def report(r: dict, command: str) -> str:
    base = r["empty_interpreter_peak_rss"]
    rows = [
        f"| empty interpreter | {gib(base)} | | | |",
        _row("`ukmp prune --method magnitude`", r["prune_peak_rss"], base,
             f"{r['prune_rss_over_dense_bytes']:.2f}x the dense weights ({gib(r['dense_weight_bytes'])})", "<= 1.3"),
        _row("`ukmp.load_pruned` (meta-device build)", r["load_peak_rss"], base,
             f"{r['load_rss_over_artifact_bytes']:.2f}x the artifact's weights ({gib(r['artifact_weight_bytes'])})",
             "<= 1.3"),
        _row("previous loading (dense random init, slice, read)", r["previous_load_peak_rss"], base,
             f"{r['previous_load_rss_over_artifact_bytes']:.2f}x the artifact's weights"),
    ]  # fmt: skip
    table = "\n".join(rows)
    return f"""# Pruning and loading memory at FlanT5-XL widths

Command: `{command}` ({r["model"]}; {r["dtype"]}; magnitude at ratio {r["ratio"]}). Every figure is one
fresh process's own peak resident set size (`os.wait4`); ratios subtract the empty interpreter (torch,
transformers, ukmp and the model class imported, nothing else).

| what | peak RSS | above the interpreter | ratio | goal |
|---|---|---|---|---|
{table}

Time after the imports (the interpreter itself starts in {r["empty_interpreter_seconds"]:.1f} s): `load_pruned`
{r["load_seconds"]:.2f} s against {r["read_file_seconds"]:.2f} s to read the weights file once (page cache warm
for both), {r["load_seconds_over_read"]:.1f}x; it also checks the file's sha256 and builds the model. The
previous way took {r["previous_load_seconds"]:.2f} s. `ukmp prune` took {r["prune_seconds"]:.0f} s in all.

What remains above one copy in `ukmp prune`: transformers memory-maps the dense checkpoint, and every
page that scoring reads stays resident (file-backed, reclaimable by the kernel, but counted in RSS)
while the sliced copies of the kept units are made beside it; the lower the ratio, the more is
copied. `load_pruned` reads each tensor once into memory of its own and builds the model on the meta
device, so it holds one copy. The interpreter baseline includes the imports both need (the model
class); without importing the model class it is about 0.09 GiB lower and every ratio rises by that much
over the weights' bytes.
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16", "float32"])
    parser.add_argument("--layers", default="3,2,3,3", help="vision,qformer,encoder,decoder layers")
    parser.add_argument("--ratio", type=float, default=0.3, help="fraction of all parameters magnitude removes")
    parser.add_argument("--repeats", type=int, default=2, help="load_pruned processes (fastest time, largest peak)")
    parser.add_argument("--results", type=Path, default=ROOT / "results" / "bench")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ukmp-load-memory-") as tmp:
        result = run(args, Path(tmp))
    command = "python3 bench/load_memory.py" + "".join(
        f" --{k} {v}"
        for k, v in (("dtype", args.dtype), ("layers", args.layers), ("ratio", args.ratio))
        if str(v) != str(parser.get_default(k))
    )
    text = report(result, command)
    args.results.mkdir(parents=True, exist_ok=True)
    write_json_atomic(args.results / "load_memory.json", result)
    write_text_atomic(args.results / "load_memory.md", text)
    print(text)


if __name__ == "__main__":
    main()
