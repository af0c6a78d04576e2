"""The prune and evaluate steps as plain functions, shared by the CLI, the demo and the scripts.

Each command is a thin argument parser over these, so a results script and a user typing the
command run exactly the same code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ukmp.errors import UserError
from ukmp.preflight import check_calibration_data, check_model_source, check_processor_matches, check_ratio


def evaluate_model(
    model_ref: str,
    data_dir: str | Path,
    *,
    split: str = "val",
    tasks: tuple[str, ...] = ("all",),
    limit: int | None = None,
    name: str | None = None,
    batch_size: int = 64,
    progress: bool = True,
) -> dict[str, Any]:
    """Load a dense model or a pruned artifact and run the evaluation harness on it."""
    from ukmp.evaluation.harness import evaluate
    from ukmp.evaluation.model_loading import load_model_and_processor

    model, processor, _ = load_model_and_processor(model_ref, device="cpu")
    return evaluate(
        model,
        processor,
        data_dir,
        split,
        tasks,
        limit,
        batch_size,
        model_name=name or model_ref,
        progress=progress,
    )


def load_processor(ref: str, gguf_file: str | None = None):
    """The model's processor or tokenizer, when the source has one (it is copied into the artifact).

    A GGUF model's tokenizer is read from the GGUF file itself; saved into the artifact as
    ordinary tokenizer files, it keeps the pruned model usable without the original file.
    """
    from ukmp.gguf_models import find_gguf, load_gguf_tokenizer

    path = Path(ref)
    gguf = find_gguf(path, gguf_file) if (path.exists() or gguf_file is not None) else None
    if gguf is not None:
        return load_gguf_tokenizer(*gguf)
    if path.is_dir():
        names = (
            "preprocessor_config.json",
            "processor_config.json",
            "tokenizer_config.json",
            "tokenizer.json",
        )
        if not any((path / n).exists() for n in names):
            return None
    from transformers import AutoProcessor, AutoTokenizer

    for loader in (AutoProcessor, AutoTokenizer):
        try:
            return loader.from_pretrained(ref)
        except Exception:  # a model without processor files is fine: the artifact simply has none
            continue
    return None


def prune_model(
    model_ref: str,
    out: str | Path,
    *,
    method: str,
    ratio: float,
    of: str = "all",
    components: list[str] | None = None,
    seed: int = 0,
    schedule: str | None = None,
    calib: str | Path | None = None,
    calib_split: str = "train",
    num_samples: int = 1000,
    batch_size: int = 8,
    seq_len: int | None = None,
    gguf_file: str | None = None,
    ukmi_options=None,
    iterative_options=None,
    scores_file: str | Path | None = None,
    overwrite: bool = False,
    base_model_name: str | None = None,
    verbose: bool = True,
    baseline_options=None,
    preloaded: tuple[Any, Any] | None = None,
    plan_search=None,
    plan_search_data: str | Path | None = None,
) -> dict[str, Any]:
    """Score (or read saved scores), plan, slice and save; returns a summary of what happened.

    ``calib`` is a data folder (image-text pairs) or, for a language model, a text / JSONL file
    cut into ``seq_len``-token prefix-LM windows. ``gguf_file`` names the GGUF file inside the
    folder ``model_ref`` (a ``.gguf`` path needs no name); the manifest records that quantised origin.
    ``preloaded`` is (dense model, processor) already loaded from ``model_ref``, for a script that
    prunes one model many times (a GGUF takes tens of seconds to dequantise); the model is sliced
    in place, so pass a copy.
    ``plan_search`` (a ``PlanSearchOptions`` with more than one candidate) chooses among perturbed
    plans by the answer loss on question-answer pairs of ``plan_search_data`` (beyond the paper).
    """
    from ukmp.accounting import parameter_counts, prunable_parameters
    from ukmp.adapters import find_adapter
    from ukmp.artifact import (
        base_reference,
        check_output_dir,
        load_model,
        resolve_model_ref,
        save_pruned,
        state_dict_sha256,
    )
    from ukmp.baselines import (
        BASELINES,
        baseline_scores,
        block_scores_of,
        compensation_before_surgery,
        plannable_groups,
        planning_ratio,
    )
    from ukmp.data.calibration import TextCalibrationSource, text_source
    from ukmp.data.index import portable_path
    from ukmp.methods import (
        DEFAULT_SCHEDULE,
        METHODS,
        MethodScores,
        check_scores_match,
        plan_from_scores,
        simple_scores,
        ukmi_method_scores,
    )
    from ukmp.plan_search import search_plan, selection_batches
    from ukmp.scoring.calibration_pass import CalibrationPass
    from ukmp.scoring.flap import add_to_biases
    from ukmp.surgery import apply_plan_physically

    check_ratio(ratio)
    if method not in METHODS:
        raise UserError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}.")
    out = Path(out)
    ref = resolve_model_ref(model_ref)
    # seconds of checks before minutes of loading and scoring: the output, the model's files, the data
    check_output_dir(out, overwrite=overwrite, inputs=(ref, calib, scores_file))
    if preloaded is None:
        check_model_source(ref, gguf_file)
    if calib is not None and text_source(calib) is None:
        check_calibration_data(Path(calib), calib_split)
    model = (preloaded[0] if preloaded is not None else load_model(ref, gguf_file=gguf_file)).float().eval()
    if getattr(model, "ukmp_manifest", None) is not None:
        raise UserError(f"{model_ref} is already a pruned model; prune its dense base model instead.")
    adapter = find_adapter(model)
    groups = adapter.groups(model, components)
    if not groups:
        raise UserError(f"{model_ref} has no prunable groups in the chosen components.")
    processor = preloaded[1] if preloaded is not None else load_processor(ref, gguf_file)
    check_processor_matches(model, processor, str(ref))
    if text_source(calib) is not None:  # plain text: cut with this model's tokenizer, as every scorer reads it
        calib = TextCalibrationSource(
            text_source(calib).path, seq_len or text_source(calib).seq_len, tokenizer=processor
        )
    base_checksum = state_dict_sha256(model)
    before = parameter_counts(model, adapter)
    basis = before["total"] if of == "all" else prunable_parameters(groups)

    if scores_file is not None:
        scored = MethodScores.load(scores_file)
        check_scores_match(scored.scores, groups)
        scorer = scored.method.split(":", 1)[0]  # a compare variant ("ukmp:1.0") is the same scorer
        if scorer != method:
            raise UserError(f"{scores_file} holds {scored.method} scores, not {method}; pass --method {scorer}.")
    elif method == "ukmp":
        from ukmp.scoring.ukmi import UKMIOptions

        if calib is None:
            raise UserError("--method ukmp needs calibration data: pass --calib DIR (or --calib shapes).")
        torch.manual_seed(seed)
        scored = ukmi_method_scores(
            model,
            processor,
            groups,
            calib_dir=calib,
            split=calib_split,
            num_samples=num_samples,
            batch_size=batch_size,
            options=ukmi_options or UKMIOptions(),
            seed=seed,
        )
    elif method in BASELINES:
        if calib is None:
            raise UserError(f"--method {method} needs calibration data: pass --calib DIR (or --calib shapes).")
        torch.manual_seed(seed)
        calibration = CalibrationPass(
            model, processor, groups, calib, calib_split, num_samples=num_samples, batch_size=batch_size, seed=seed
        )
        scored = baseline_scores(method, calibration, baseline_options)
    else:
        torch.manual_seed(seed)
        scored = simple_scores(method, model, groups, seed)

    schedule = schedule or DEFAULT_SCHEDULE[method]
    planned_groups = plannable_groups(scored, groups)
    target_ratio = planning_ratio(scored, model, groups, ratio, basis)
    block_scores = block_scores_of(scored)

    def make_plan(scores):
        return plan_from_scores(
            scores,
            planned_groups,
            schedule=schedule,
            target_ratio=target_ratio,
            basis_params=basis,
            iterative_options=iterative_options,
            block_scores=block_scores,
        )

    search_trace = None
    if plan_search is not None and plan_search.enabled:
        if plan_search_data is None:
            raise UserError("--plan-search needs a data folder with question-answer pairs: pass --calib DIR.")
        batches = selection_batches(processor, model, plan_search_data, plan_search, seed)
        result, search_trace = search_plan(
            model, planned_groups, scored.scores, make_plan, batches, plan_search, seed=seed, progress=verbose
        )
    else:
        result = make_plan(scored.scores)
    bias_deltas = compensation_before_surgery(scored, model, groups, result.plan)
    apply_plan_physically(model, result.plan, adapter)
    add_to_biases(model, bias_deltas)
    after = parameter_counts(model, adapter)
    options: dict[str, Any] = {
        "ratio": ratio,
        "of": of,
        "components": components or list(adapter.default_components),
        "schedule": schedule,
    }
    if method == "ukmp":
        options["ukmi"] = scored.stats.get("options", {})
    if "calibration" in scored.stats:
        options["calibration"] = scored.stats["calibration"]
    if method in BASELINES and "options" in scored.stats:
        options[method] = scored.stats["options"]
    if isinstance(calib, TextCalibrationSource) and scores_file is None:
        options["calibration_text"] = {"file": str(calib.path), "seq_len": calib.seq_len, "form": "prefix-LM windows"}
    if schedule == "iterative":
        from ukmp.iterative_planning import IterativeOptions

        options["iterative"] = (iterative_options or IterativeOptions()).__dict__
    if scores_file is not None:
        options["scores_file"] = str(scores_file)
    if search_trace is not None:
        options["plan_search"] = {**search_trace, "data": portable_path(plan_search_data)}
    save_pruned(
        model,
        result.plan,
        out,
        processor=processor,
        # a GGUF inside a folder is named by its own path, so the teacher of `ukmp recover` resolves to it
        base_model_ref=base_model_name or base_reference(model_ref, gguf_file),
        base_revision=getattr(model.config, "_commit_hash", None),
        base_checksum=base_checksum,
        method=method,
        options=options,
        seed=seed,
        target_ratio=ratio,
        ratio_basis=of,
        overwrite=overwrite,
        extra={"scoring": scored.stats},
        extra_files={"scores.safetensors": scored.save},
    )
    summary = {
        "method": method,
        "schedule": schedule,
        "target_ratio": ratio,
        "achieved_ratio": result.achieved_ratio,
        "params_before": before["total"],
        "params_after": after["total"],
        "counts_before": before,
        "counts_after": after,
        "scoring_seconds": sum(v.get("seconds", 0.0) for v in scored.stats.values() if isinstance(v, dict)),
        "out": str(out),
    }
    if "gradient_pass" in scored.stats:
        summary["backpropagated_tokens"] = scored.stats["gradient_pass"]["backpropagated_tokens"]
    if verbose:
        removed = before["total"] - after["total"]  # counted on the saved model (FLAP's added biases included)
        of_all = f"{removed:,} of {before['total']:,} parameters removed"
        if of == "all":
            print(f"target {ratio:g} of all parameters -> achieved {removed / before['total']:.4f} ({of_all})")
        else:
            print(
                f"target {ratio:g} of prunable parameters -> achieved {removed / basis:.4f} "
                f"({of_all}; {removed / before['total']:.4f} of all)"
            )
        width = max(len(k) for k in before)
        for key in before:
            print(f"  {key:<{width}}  {before[key]:>14,} -> {after[key]:>14,}")
        files = sorted(p.name for p in out.iterdir())
        print(f"wrote {out.resolve()} ({', '.join(files)}); load it with ukmp.load_pruned")
    return summary
