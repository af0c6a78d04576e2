"""`ukmp bench`: is the pruned model faster? Measured side by side with the dense model in one run.

MODEL is the dense model; each PRUNED is an artifact pruned from it. For every artifact the masked
full-size model (the dense weights with the pruned rows and columns zeroed) is measured too: it
computes the same function as the pruned model, so the gap between the two is what physical
pruning buys. Reported per model: parameters and FLOPs per component; latency of image encoding,
of a full forward and of fixed-length greedy caption generation (median over --repeats, with
min-max); throughput; peak memory of a forward; ratios to the dense model and to the ideal FLOPs
ratio. With --round-to K the kept widths of every layer are also rounded up to a multiple of K and
that variant is measured, to show its parameter cost and speed gain. A standalone decoder-only
language model (MODEL may be a .gguf file) is measured on the forward and on generation only: it has
no image to encode. Timing is never exact on a busy machine: the load average is recorded with the
figures.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ukmp.commands.help_format import HelpFormatter
from ukmp.errors import UserError


def _batch_sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers such as 1,8,32, got {text!r}") from None
    if not sizes:
        raise argparse.ArgumentTypeError("give at least one batch size")
    return sizes


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="latency, throughput, memory, parameters and FLOPs of dense vs pruned vs masked models",
        description=__doc__.splitlines()[0],
        formatter_class=HelpFormatter,
    )
    parser.add_argument("model", metavar="MODEL", help="the dense model: folder, hub id or zoo name")
    parser.add_argument("pruned", metavar="PRUNED", nargs="*", help="pruned artifacts made from MODEL")
    parser.add_argument("--batch-sizes", type=_batch_sizes, default=(1, 8, 32), help="comma-separated")
    parser.add_argument("--round-to", type=int, default=1, help="also measure widths rounded up to this multiple")
    parser.add_argument("--dtype", choices=("float32", "bfloat16", "float16"), default="float32")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per model and operation")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs per model before timing")
    parser.add_argument("--text-len", type=int, default=16, help="prompt tokens (and decoder tokens) of the forward")
    parser.add_argument("--caption-tokens", type=int, default=20, help="new tokens generated per caption (fixed)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--no-masked", dest="masked", action="store_false", help="skip the masked reference")
    parser.add_argument("--no-memory", dest="memory", action="store_false", help="skip the peak-memory probe")
    parser.add_argument("--out", type=Path, default=None, help="write JSON here (and the tables next to it, .md)")
    parser.set_defaults(func=run)


def _command(args: argparse.Namespace) -> list[str]:
    """The invocation, with every setting spelled out (recorded in the results)."""
    words = ["ukmp", "bench", str(args.model), *map(str, args.pruned)]
    words += ["--batch-sizes", ",".join(map(str, args.batch_sizes)), "--round-to", str(args.round_to)]
    words += ["--dtype", args.dtype, "--device", args.device, "--repeats", str(args.repeats)]
    words += [
        "--warmup",
        str(args.warmup),
        "--text-len",
        str(args.text_len),
        "--caption-tokens",
        str(args.caption_tokens),
    ]
    if args.threads is not None:
        words += ["--threads", str(args.threads)]
    words += [] if args.masked else ["--no-masked"]
    words += [] if args.memory else ["--no-memory"]
    return words + (["--out", str(args.out)] if args.out is not None else [])


def run(args: argparse.Namespace) -> int:
    from ukmp.benchmark.files import write_bench
    from ukmp.benchmark.markdown import bench_markdown
    from ukmp.benchmark.options import BenchOptions
    from ukmp.benchmark.run import run_benchmark

    options = BenchOptions(
        batch_sizes=args.batch_sizes,
        repeats=args.repeats,
        warmup=args.warmup,
        round_to=args.round_to,
        dtype=args.dtype,
        device=args.device,
        text_len=args.text_len,
        caption_tokens=args.caption_tokens,
        masked=args.masked,
        memory=args.memory,
        threads=args.threads,
    )
    options.validate()
    if args.out is not None and args.out.is_dir():
        raise UserError(f"--out {args.out} is a folder; give a file name such as {args.out / 'bench.json'}.")
    print(f"ukmp bench: {args.model} vs {len(args.pruned)} pruned model(s), batch sizes {list(options.batch_sizes)}")
    results = run_benchmark(args.model, args.pruned, options, command=_command(args))
    print(bench_markdown(results))
    if args.out is not None:
        json_path, md_path = write_bench(results, args.out)
        print(f"wrote {json_path.resolve()} and {md_path.resolve()}")
    return 0
