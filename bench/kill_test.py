"""Kill `ukmp prune`, `ukmp recover` and `ukmp compare` at random moments, then check what is left.

    python3 bench/kill_test.py                  # 24 trials, figures in results/kill-test/
    python3 bench/kill_test.py --trials 6       # a quick look

Each command first runs once uninterrupted on a tiny BLIP-2 saved by the script (the reference:
its duration and the checksums of what it wrote). Every trial then starts the same command in a
fresh folder, sends SIGKILL or SIGINT (alternating) after a random delay within that duration, and
checks:

1. nothing half-written: every artifact under the output loads with its checksums, every results
   file parses, a recovery folder holds either no adapter or one that loads;
2. a rerun (`--resume` for a recovery with a checkpoint, `--overwrite` for a finished prune, the
   same command for compare, which reuses what exists) ends with exactly the reference result;
3. no temporary folder or file of ours is left anywhere in the trial's folder after the rerun.

A trial counts as clean only when all three hold. The commands run as real processes
(`python -m ukmp.cli`), so the signals meet the code exactly as they would meet a user's run.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ukmp.artifact import load_pruned, state_dict_sha256
from ukmp.data.world_writer import write_split
from ukmp.zoo.tiny import build_tiny_blip2

TEMPORARY_MARKS = (".tmp", ".old-")


def commands(work: Path, out: Path, pruned: Path) -> dict[str, list[str]]:
    """The three commands, each writing to `out`."""
    model, calib, val = work / "model", work / "calib", work / "val"
    small = ["--num-samples", "6", "--batch-size", "2"]
    return {
        "prune": ["prune", str(model), "--method", "ukmp", "--ratio", "0.3", "--calib", str(calib), *small],
        "recover": [
            "recover", str(pruned), "--data", str(calib), "--batch-size", "1", "--max-samples", "30",
            "--warmup-steps", "2", "--checkpoint-every", "3", "--threads", "1", "--no-progress", "--merge",
        ],
        "compare": [
            "compare", str(model), "--methods", "magnitude,flap", "--ratios", "0.3", "--calib", str(calib),
            "--eval", str(val), "--num-samples", "4", "--tasks", "vqa", "--limit", "4", "--no-progress",
        ],
    }  # fmt: skip


def run(argv: list[str], out: Path, extra: list[str] = (), *, delay: float | None = None, sig=None) -> dict:
    """Run `ukmp ARGV --out OUT EXTRA`; with `delay`, send `sig` after that many seconds if still running."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "ukmp.cli", *argv, "--out", str(out), *extra]
    start = time.time()
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, text=True, preexec_fn=_default_sigint
    )
    signalled = False
    if delay is not None:
        try:
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            proc.send_signal(sig)
            signalled = True
    _, err = proc.communicate()
    return {"code": proc.returncode, "seconds": time.time() - start, "signalled": signalled, "stderr": err[-600:]}


def _default_sigint() -> None:
    """A shell starts background jobs with SIGINT ignored, and children inherit that: undo it, as a terminal would."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def fingerprint(kind: str, out: Path) -> dict:
    """What the finished command wrote, as checksums (the reference and every rerun must agree).

    Weights are compared as loaded tensors (`state_dict_sha256`), not file bytes: safetensors keeps one
    name of each tied tensor and orders its header as the dict came, both of which can change from
    process to process while every tensor stays bit-identical.
    """
    if kind == "prune":
        return {"weights": _model_sha(out), "plan": json.loads((out / "pruning.json").read_text())["groups"]}
    if kind == "recover":
        return {"adapter": _tensors_sha(out / "adapter.safetensors"), "merged": _model_sha(out / "merged")}
    results = json.loads((out / "results.json").read_text())
    rows = sorted((r["name"], r["metrics"].get("VQA accuracy (%)")) for r in results["rows"])
    return {"rows": rows, "weights": {p.name: _model_sha(p) for p in sorted((out / "artifacts").iterdir())}}


def _model_sha(folder: Path) -> str:
    return state_dict_sha256(load_pruned(folder))


def _tensors_sha(path: Path) -> str:
    """The tensors of a safetensors file by name (its header order can differ between processes)."""
    from safetensors.torch import load_file

    return state_dict_sha256(load_file(str(path)))


def half_written(kind: str, out: Path) -> list[str]:
    """Problems with what a killed run left in `out` (empty when everything there is whole)."""
    problems: list[str] = []
    if not out.exists():
        return problems
    folders = [out] if kind == "prune" else []
    if kind == "recover":
        folders = [out / "merged"] if (out / "merged").exists() else []
        if (out / "adapter.safetensors").exists():
            from safetensors.torch import load_file

            try:
                load_file(str(out / "adapter.safetensors"))
            except Exception as exc:  # noqa: BLE001 - any failure is the finding
                problems.append(f"adapter does not load: {exc}")
    if kind == "compare":
        folders = (
            [p for p in (out / "artifacts").iterdir() if not p.name.startswith(".")]
            if (out / "artifacts").exists()
            else []
        )
        for file in out.rglob("*.json"):
            if not any(m in file.name for m in TEMPORARY_MARKS):
                try:
                    json.loads(file.read_text())
                except ValueError as exc:
                    problems.append(f"{file.name} does not parse: {exc}")
    for folder in folders:
        try:
            load_pruned(folder)
        except Exception as exc:  # noqa: BLE001
            problems.append(f"{folder.name} does not load: {str(exc).splitlines()[0][:120]}")
    return problems


def leftovers(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if any(m in p.name for m in TEMPORARY_MARKS))


def rerun_flags(kind: str, out: Path) -> list[str]:
    if kind == "recover" and (out / "checkpoints" / "last" / "state.json").is_file():
        return ["--resume"]
    if kind in ("prune", "recover") and out.exists() and any(out.iterdir()):
        return ["--overwrite"]
    return []


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--results", type=Path, default=Path("results/kill-test"))
    args = parser.parse_args()
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="ukmp-kill-test-"))
    try:
        build_tiny_blip2(work / "model")
        write_split("train", 16, work / "calib")
        write_split("val", 3, work / "val")
        pruned = work / "pruned"
        first = run(commands(work, pruned, pruned)["prune"], pruned)
        if first["code"] != 0:
            sys.exit(f"the reference prune failed: {first['stderr']}")
        reference: dict[str, dict] = {}
        for kind, argv in commands(work, work / "x", pruned).items():
            out = work / f"reference-{kind}"
            result = run(argv, out)
            if result["code"] != 0:
                sys.exit(f"the reference {kind} failed: {result['stderr']}")
            reference[kind] = {"seconds": result["seconds"], "fingerprint": fingerprint(kind, out)}
            print(f"reference {kind}: {result['seconds']:.1f} s", flush=True)
        trials = []
        kinds = list(reference)
        for i in range(args.trials):
            kind = kinds[i % len(kinds)]
            sig = signal.SIGKILL if (i // len(kinds)) % 2 == 0 else signal.SIGINT
            delay = rng.uniform(0.2, 0.95) * reference[kind]["seconds"]
            trial = work / f"trial-{i}"
            trial.mkdir()
            out = trial / "out"
            argv = commands(work, out, pruned)[kind]
            killed = run(argv, out, delay=delay, sig=sig)
            broken = half_written(kind, out)
            left_by_kill = leftovers(trial)
            rerun = run(argv, out, rerun_flags(kind, out))
            same = rerun["code"] == 0 and fingerprint(kind, out) == reference[kind]["fingerprint"]
            left = leftovers(trial)
            clean = not broken and same and not left
            trials.append({
                "trial": i, "command": kind, "signal": sig.name, "delay_s": round(delay, 2),
                "signalled": killed["signalled"], "exit_code": killed["code"],
                "interrupt_message": killed["stderr"].strip().splitlines()[-1] if killed["stderr"].strip() else "",
                "half_written": broken, "temporaries_after_kill": left_by_kill, "rerun_flags": rerun_flags(kind, out),
                "rerun_code": rerun["code"], "same_result": same, "temporaries_after_rerun": left, "clean": clean,
            })  # fmt: skip
            print(f"trial {i:2d} {kind:8s} {sig.name:7s} at {delay:5.1f} s: exit {killed['code']}, "
                  f"{'clean' if clean else 'NOT CLEAN'}", flush=True)  # fmt: skip
            shutil.rmtree(trial, ignore_errors=True)
        write_results(args, reference, trials)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if all(t["clean"] for t in trials) else 1


def write_results(args: argparse.Namespace, reference: dict, trials: list[dict]) -> None:
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "results.json").write_text(json.dumps({"reference": reference, "trials": trials}, indent=1) + "\n")
    clean = sum(t["clean"] for t in trials)
    signalled = sum(t["signalled"] for t in trials)
    lines = [
        "# Kill test: SIGKILL and SIGINT at random moments of prune, recover and compare",
        "",
        f"`python3 bench/kill_test.py --trials {args.trials} --seed {args.seed}` (tiny BLIP-2 saved by the script).",
        "",
        f"**{clean} of {len(trials)} trials clean** ({signalled} interrupted while running; the others had finished "
        "before the signal). Clean = nothing half-written after the kill, the rerun ends with the reference "
        "result (same weight and plan checksums, same adapter, same compare table), no temporary left.",
        "",
        "| # | command | signal | at (s) | exit | left after kill | rerun | same result | clean |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for t in trials:
        after = ", ".join(t["temporaries_after_kill"]) or "-"
        lines.append(
            f"| {t['trial']} | {t['command']} | {t['signal']} | {t['delay_s']} | {t['exit_code']} | {after} | "
            f"{' '.join(t['rerun_flags']) or 'same command'} | {t['same_result']} | {t['clean']} |"
        )
    lines += ["", "Reference durations: " + ", ".join(f"{k} {v['seconds']:.1f} s" for k, v in reference.items()), ""]
    (args.results / "README.md").write_text("\n".join(lines))
    print(f"wrote {args.results / 'README.md'}: {clean} of {len(trials)} clean")


if __name__ == "__main__":
    sys.exit(main())
