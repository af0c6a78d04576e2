"""`ukmp evaluate`: measure a dense or pruned model on captioning, VQA, GQA and retrieval.

Example: `ukmp evaluate shapes-blip2-t5 --task all --data shapes --out results.json` evaluates the
shipped model on the shapes world's val split (generated into the cache on first use).
A language model is measured by `--task perplexity --data FILE` on a .txt or .jsonl ('text' field)
file (`ukmp.evaluation.perplexity` defines the figure); so is a vision-language model's language
model, reading the text alone (for a decoder-only language model: LLaVA, Qwen2-VL, SmolVLM, BLIP-2 OPT).
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from ukmp.preflight import check_processor_matches, require_image_processor

TASK_CHOICES = ("caption", "vqa", "gqa", "retrieval", "perplexity", "all")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="captioning / VQA / GQA / retrieval quality of a model",
        description=__doc__.splitlines()[0],
    )
    parser.add_argument("model", metavar="MODEL", help="model folder, pruned artifact, hub id or zoo name")
    parser.add_argument(
        "--task",
        action="append",
        choices=TASK_CHOICES,
        help="task to run (repeatable); default: all the data folder provides",
    )
    parser.add_argument(
        "--data", required=True, help="folder with ukmp_data.json, 'shapes', or a .txt/.jsonl file for perplexity"
    )
    parser.add_argument("--seq-len", type=int, default=256, help="tokens per perplexity window (default 256)")
    parser.add_argument("--gguf-file", default=None, help="the GGUF file inside the MODEL folder to load")
    parser.add_argument("--split", default="val", help="split named in the data index (default: val)")
    parser.add_argument(
        "--limit",
        type=int,
        default=None,
        help="first N records per task (images for caption/retrieval, questions for VQA/GQA)",
    )
    parser.add_argument(
        "--retrieval-limit",
        type=int,
        default=50,
        help="images used for retrieval when --limit is not given (cost grows as N^2; default 50); 0 = all",
    )
    parser.add_argument(
        "--batch-size", type=int, default=32, help="images or questions per generation batch (default 32)"
    )
    parser.add_argument(
        "--pair-batch-size",
        type=int,
        default=256,
        help="(image, caption) pairs per retrieval batch (default 256)",
    )
    parser.add_argument("--num-beams", type=int, default=5, help="beam size for captions and answers (default 5)")
    parser.add_argument("--caption-prompt", default="", help="caption prompt (the paper's NoCaps run: 'a photo of')")
    parser.add_argument("--caption-min-new-tokens", type=int, default=1, help="default 1; the paper uses 8 on NoCaps")
    parser.add_argument("--caption-max-new-tokens", type=int, default=30, help="default 30")
    parser.add_argument("--vqa-max-new-tokens", type=int, default=10, help="default 10")
    parser.add_argument(
        "--on-error",
        choices=("stop", "skip"),
        default="stop",
        help="on a bad record or missing image: stop (default), or skip and count it",
    )
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default)")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="CPU threads for torch (default: torch's choice; 1 is faster when another job shares the cores)",
    )
    parser.add_argument("--save-predictions", action="store_true", help="store every prediction in the results")
    parser.add_argument(
        "--examples",
        type=int,
        default=0,
        help="perplexity: keep N prompts (the first windows' openings) with the model's greedy continuations, "
        "which `ukmp report` shows side by side (default 0)",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    parser.add_argument("--out", required=True, type=Path, help="results JSON to write")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ukmp.data.index import available_tasks, resolve_data_dir
    from ukmp.errors import UserError
    from ukmp.evaluation.generation import CAPTION_SETTINGS, VQA_SETTINGS

    for name in (
        "threads",
        "limit",
        "batch_size",
        "pair_batch_size",
        "num_beams",
        "caption_max_new_tokens",
        "vqa_max_new_tokens",
    ):
        value = getattr(args, name)
        if value is not None and value <= 0:
            raise UserError(f"--{name.replace('_', '-')} must be a positive number, got {value}.")
    if args.retrieval_limit < 0:
        raise UserError(f"--retrieval-limit must be 0 (all images) or positive, got {args.retrieval_limit}.")
    if args.examples < 0:
        raise UserError(f"--examples must be 0 (none) or a number of prompts, got {args.examples}.")
    if args.caption_min_new_tokens > args.caption_max_new_tokens:
        raise UserError("--caption-min-new-tokens cannot exceed --caption-max-new-tokens.")
    from ukmp.evaluation.harness import evaluate, expand_tasks, format_table, write_results

    _check_results_file(args.out)
    if "perplexity" in (args.task or []):
        return _run_perplexity(args)
    if args.examples:
        raise UserError(
            "--examples keeps continuations of --task perplexity; image tasks keep every caption and answer with "
            "--save-predictions."
        )
    # Check the data and the tasks before spending time on loading the model.
    data_dir = resolve_data_dir(args.data, args.split)
    have = available_tasks(data_dir, args.split)
    tasks = expand_tasks(args.task or ["all"], data_dir, args.split)[0]
    for task in tasks:
        if task not in have:
            raise UserError(f"the {args.split!r} split of {data_dir} has no {task} data; choose another --task.")
    from ukmp.evaluation.model_loading import load_model_and_processor

    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    model, processor, path = load_model_and_processor(args.model, device=args.device)
    if getattr(model.config, "vision_config", None) is None:
        raise UserError(
            f"ukmp evaluate's image tasks need a vision-language model; {args.model} is {type(model).__name__} "
            "(a language model is evaluated with --task perplexity)."
        )
    require_image_processor(processor, args.model)
    check_processor_matches(model, processor, args.model)
    caption = replace(
        CAPTION_SETTINGS,
        prompt=args.caption_prompt,
        num_beams=args.num_beams,
        max_new_tokens=args.caption_max_new_tokens,
        min_new_tokens=args.caption_min_new_tokens,
    )
    vqa = replace(VQA_SETTINGS, num_beams=args.num_beams, max_new_tokens=args.vqa_max_new_tokens)
    results = evaluate(
        model,
        processor,
        data_dir,
        args.split,
        args.task or ["all"],
        args.limit,
        args.batch_size,
        caption_settings=caption,
        vqa_settings=vqa,
        retrieval_limit=args.retrieval_limit or None,
        pair_batch_size=args.pair_batch_size,
        on_error=args.on_error,
        keep_predictions=args.save_predictions,
        model_name=args.model,  # as the user named it: a zoo name stays portable, a resolved path would not
        progress=not args.no_progress,
    )
    out = write_results(results, args.out)
    print(f"{args.model} on {data_dir} [{args.split}], {results['seconds']:.1f} s:")
    print(format_table(results))
    print(f"wrote {out}")
    return 0


def _run_perplexity(args: argparse.Namespace) -> int:
    """Perplexity on a plain-text file (no images, so no other task mixes in): a language model's, or a
    vision-language model's language model reading the text alone."""
    from ukmp.data.text import is_text_data
    from ukmp.errors import UserError
    from ukmp.evaluation.harness import format_table, write_results
    from ukmp.evaluation.model_loading import load_model_and_processor
    from ukmp.evaluation.perplexity import evaluate_perplexity

    if set(args.task) != {"perplexity"}:
        raise UserError("--task perplexity reads plain text and cannot be combined with image tasks; run it alone.")
    if not is_text_data(args.data):
        raise UserError(f"--task perplexity needs --data to be a .txt or .jsonl file; {args.data} is not one.")
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    model, processor, _ = load_model_and_processor(args.model, device=args.device, gguf_file=args.gguf_file)
    if getattr(model.config, "vision_config", None) is not None and args.examples:
        raise UserError(
            f"--examples with --task perplexity keeps a standalone language model's continuations; {args.model} is a "
            "vision-language model, whose language model is measured on the text without them: drop --examples."
        )
    results = evaluate_perplexity(
        model,
        processor,
        args.data,
        seq_len=args.seq_len,
        batch_size=args.batch_size,
        limit=args.limit,
        model_name=args.model,
        progress=not args.no_progress,
        examples=args.examples,
    )
    out = write_results(results, args.out)
    print(f"{args.model} on {args.data}, {results['seconds']:.1f} s:")
    print(format_table(results))
    print(f"wrote {out}")
    return 0


def _check_results_file(out: Path) -> None:
    """--out names a file to write: not a folder, and its folder can take it (checked before any loading)."""
    from ukmp.errors import UserError
    from ukmp.output_guard import check_writable

    target = Path(out).expanduser()
    if target.is_dir():
        raise UserError(
            f"--out {target} is a folder; give the path of the results file to write, e.g. {target}/results.json."
        )
    check_writable(target)
