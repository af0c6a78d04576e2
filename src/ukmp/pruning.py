"""The one prune path: load -> score -> plan -> finalize (slice) -> save, driven by a ``PruneConfig``.

`ukmp prune`, `ukmp compare`, the demo, the benchmarks and the results scripts all prune through
these functions, so a figure in `results/` and a user's command run exactly the same code. The
config is also what the manifest records (``PruneConfig.manifest_options``), so an artifact says
how it was made in the terms the user typed.

The steps are separate functions because a comparison loads the dense model once and scores each
method once, then plans and slices many copies (``prune_scored``); ``prune`` does all of it for
one model.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ukmp.accounting import parameter_counts, prunable_parameters
from ukmp.adapters import find_adapter
from ukmp.adapters.base import ModelAdapter
from ukmp.artifact import MANIFEST, cast_to_saved_dtype, check_output_dir, save_pruned, state_dict_sha256
from ukmp.data.calibration import TextCalibrationSource, text_source
from ukmp.data.index import local_path, portable_path
from ukmp.distributed import ONE_PROCESS, World, current_world
from ukmp.errors import UserError
from ukmp.groups import PrunableGroup
from ukmp.loading import base_reference, load_model, resolve_model_ref
from ukmp.method_scores import MethodScores, check_scores_match
from ukmp.methods.base import MethodOptions, Scorer, ScoringInputs
from ukmp.methods.calibration_pass import CalibrationPass
from ukmp.methods.end_layers import END_LAYER_RULES
from ukmp.methods.registry import base_method, get_scorer, scorer_names
from ukmp.peak_memory import recorded_step
from ukmp.placement import Placement, model_device
from ukmp.planning.global_schedule import PlanResult
from ukmp.planning.iterative import IterativeOptions
from ukmp.planning.schedules import plan_from_scores
from ukmp.planning.scope_choice import choose_scope, scope_choice_batches
from ukmp.planning.search import PlanSearchOptions, search_plan, selection_batches
from ukmp.preflight import check_calibration_data, check_model_source, check_processor_matches, check_ratio
from ukmp.processors import load_processor
from ukmp.provenance import MODEL, Settings, as_recorded, shown
from ukmp.surgery import apply_plan_physically

#: what an artifact's weights may be saved as; "auto" keeps the base model's dtype
SAVED_DTYPES = ("auto", "float32", "bfloat16", "float16")


@dataclass
class PruneConfig:
    """Everything that decides a pruned model (the flags of `ukmp prune`).

    ``calib`` is a data folder (image-text pairs) or, for a language model, a text / JSONL file
    cut into ``seq_len``-token prefix-LM windows. ``gguf_file`` names the GGUF file inside the
    folder ``model`` (a ``.gguf`` path needs no name). ``method`` may carry a variant
    (``ukmp:1.0``). ``plan_search`` with more than one candidate chooses among perturbed plans by
    the answer loss on question-answer pairs of ``plan_search_data``, or for a text ``calib`` by the
    next-token loss on held-out windows of that text (beyond the paper).
    """

    model: str
    out: str | Path
    method: str
    ratio: float
    of: str = "all"
    components: list[str] | None = None
    seed: int = 0
    schedule: str | None = None
    calib: Any = None
    calib_split: str = "train"
    num_samples: int = 1000
    batch_size: int = 8
    seq_len: int | None = None
    gguf_file: str | None = None
    options: MethodOptions = field(default_factory=MethodOptions)
    iterative: IterativeOptions | None = None
    scores_file: str | Path | None = None
    plan_search: PlanSearchOptions = field(default_factory=PlanSearchOptions)
    plan_search_data: str | Path | None = None
    base_model_name: str | None = None
    progress: bool = True
    dtype: str = "auto"
    keep_end_layers: str = "none"  # 'llm-pruner': leave LLM-Pruner's first/last layers dense (any method)
    #: where scoring, the plan choices and the slicing run, and in what precision (`ukmp.placement`)
    placement: Placement = field(default_factory=Placement)

    def validate(self) -> None:
        check_ratio(self.ratio)
        self.placement.resolved()
        if self.dtype not in SAVED_DTYPES:
            raise UserError(f"--dtype must be one of {', '.join(SAVED_DTYPES)}, got {self.dtype!r}.")
        if self.of not in ("all", "prunable"):
            raise UserError(f"--of must be 'all' or 'prunable', got {self.of!r}.")
        if self.num_samples < 1:
            raise UserError(f"--num-samples must be at least 1, got {self.num_samples}.")
        if self.keep_end_layers not in END_LAYER_RULES:
            rules = ", ".join(END_LAYER_RULES)
            raise UserError(f"--keep-end-layers must be one of {rules}, got {self.keep_end_layers!r}.")
        self.plan_search.validate()
        text = self.calib is not None and text_source(self.calib) is not None
        if self.plan_search.enabled and self.plan_search_data is None and not text:
            raise UserError(
                "--plan-search needs a data folder with question-answer pairs (or, for a language model, "
                "a calibration text): pass --calib."
            )

    def scorer(self) -> Scorer:
        return get_scorer(self.method, self.options)

    def plan_settings(self, scorer: Scorer, components: list[str]) -> Settings:
        """The settings that decide the plan and the saved weights given the scores, by flag (`ukmp.provenance`)."""
        schedule = self.schedule or scorer.schedule
        out: Settings = {"--ratio": self.ratio, "--of": self.of, "--components": components, "--schedule": schedule}
        if schedule == "iterative":
            iterative = self.iterative or scorer.iterative_options()
            out.update({"--norm": iterative.norm, "--norm-scope": iterative.scope})
        out.update({"--keep-end-layers": self.keep_end_layers, "--plan-search": self.plan_search.candidates})
        if self.plan_search.enabled:
            search = self.plan_search
            out.update(
                {
                    "--plan-search-split": search.split,
                    "--plan-search-samples": search.samples,
                    "--plan-search-spread": search.spread,
                }
            )
            if search.answers != "labels":  # runs from before the flag existed read labels; their keys stay valid
                out["--plan-search-answers"] = search.answers
        out["--dtype"] = self.dtype
        return out

    def manifest_options(self, scorer: Scorer, scored: MethodScores, components: list[str]) -> dict[str, Any]:
        """The manifest's ``method.options``: the config as it decided this model."""
        schedule = self.schedule or scorer.schedule
        options: dict[str, Any] = {"ratio": self.ratio, "of": self.of, "components": components, "schedule": schedule}
        if scorer.variant is not None:
            options["variant"] = scorer.variant
        if self.keep_end_layers != "none":
            options["keep_end_layers"] = self.keep_end_layers
        options.update(scorer.manifest_options(scored))
        if "calibration" in scored.stats:
            options["calibration"] = scored.stats["calibration"]
        if "approximation" in scored.stats:
            options["approximation"] = scored.stats["approximation"]
        text = text_source(self.calib) if self.calib is not None else None
        if text is not None and self.scores_file is None:
            options["calibration_text"] = {
                "file": str(text.path),
                "seq_len": self.seq_len or text.seq_len,
                "form": "prefix-LM windows",
            }
        if schedule == "iterative":
            options["iterative"] = asdict(self.iterative or scorer.iterative_options())
        if self.scores_file is not None:
            options["scores_file"] = str(self.scores_file)
        return options


@dataclass
class DenseModel:
    """A loaded dense model with what every step needs of it, computed once."""

    ref: str
    model: nn.Module
    processor: Any
    adapter: ModelAdapter
    groups: list[PrunableGroup]
    checksum: str
    counts: dict[str, int]
    basis: int
    #: each parameter's dtype as the base was loaded (a T5 keeps `wo` in float32 inside a float16
    #: checkpoint); scoring may run in float32, the artifact goes back to these
    param_dtypes: dict[str, torch.dtype] = field(default_factory=dict)
    #: where the scoring precision lost some of the base's (bfloat16 scoring of a float32 or float16 base):
    #: loads the base again, in its own precision and placement, to be sliced (``take_slice_target``)
    reload_base: Callable[[], nn.Module] | None = field(default=None, repr=False)

    def copy(self) -> DenseModel:
        """A copy whose model can be sliced while this one stays dense."""
        if self.reload_base is not None:
            return DenseModel(**{**self.__dict__, "model": self.reload_base(), "reload_base": None})
        return DenseModel(**{**self.__dict__, "model": copy.deepcopy(self.model)})

    def take_slice_target(self) -> nn.Module:
        """The model to slice: the scored one, or where its precision was lower, the base in its own.

        Only the scores and the plan come from a lower-precision pass; the artifact's weights are the
        base's. The scored model is released first, so the two never take memory together here.
        """
        if self.reload_base is not None:
            reload, self.reload_base = self.reload_base, None
            self.model = None  # the scored model is freed before the base is loaded
            self.model = reload()
        return self.model


def load_dense(
    config: PruneConfig, *, preloaded: tuple[Any, Any] | None = None, runs: bool | None = None
) -> DenseModel:
    """Load ``config.model`` (or take ``preloaded`` = (model, processor), sliced later: pass a copy), placed.

    The model is cast to the scoring precision and put on ``config.placement``'s device(s) when it
    will be run at all (``runs``; by default when the method reads calibration data or a plan search
    evaluates candidates). A data-free method keeps the base dtype: its scores are the same (an L1
    norm of exact upcasts) and a bf16 model then costs one copy of its weights instead of two.

    The checksum is taken before the cast, so it names the base as loaded. Where the cast loses
    precision (a float32 or float16 base scored in bfloat16), the base is loaded again for the slice
    (``DenseModel.take_slice_target``), so the artifact holds the base's own weights.
    """
    ref = resolve_model_ref(config.model)
    if preloaded is None:
        check_model_source(ref, config.gguf_file)
    model = preloaded[0] if preloaded is not None else load_model(ref, gguf_file=config.gguf_file)
    if getattr(model, "ukmp_manifest", None) is not None:
        raise UserError(f"{config.model} is already a pruned model; give its dense base model instead.")
    scorer = config.scorer()
    if runs is None:
        runs = scorer.calibrated or config.plan_search.enabled
    checksum = state_dict_sha256(model, as_float32=True)
    param_dtypes = {name: p.dtype for name, p in model.named_parameters()}
    model = config.placement.place(model, runs=runs, gradients=scorer.reads_gradients).eval()
    lossy = any(p.dtype not in (param_dtypes[n], torch.float32) for n, p in model.named_parameters())
    reload_base = None
    if lossy:
        if preloaded is not None:
            raise UserError("a preloaded model cannot be scored in a lower precision than its own; pass it unloaded.")

        def reload_base() -> nn.Module:
            scored_in = config.placement.resolved().dtype
            print(f"loading {config.model} again in its own precision, to slice (scored in {scored_in})")
            base = load_model(ref, gguf_file=config.gguf_file)
            return config.placement.place(base, runs=False, gradients=False).eval()

    adapter = find_adapter(model)
    groups = adapter.groups(model, config.components)
    if not groups:
        raise UserError(f"{config.model} has no prunable groups in the chosen components.")
    processor = preloaded[1] if preloaded is not None else load_processor(ref, config.gguf_file)
    check_processor_matches(model, processor, str(ref))
    counts = parameter_counts(model, adapter)
    basis = counts["total"] if config.of == "all" else prunable_parameters(groups)
    return DenseModel(str(ref), model, processor, adapter, groups, checksum, counts, basis, param_dtypes, reload_base)


def recorded_artifact_settings(artifact: Path, scorer: Scorer) -> Settings:
    """The settings a pruned artifact records (its manifest's ``extra.settings``).

    An artifact saved before they were recorded gives those its manifest and scores file show.
    """
    manifest = json.loads((artifact / MANIFEST).read_text())
    recorded = (manifest.get("extra") or {}).get("settings")
    if recorded is not None:
        return recorded
    scores = artifact / "scores.safetensors"
    out = scorer.recorded_settings(MethodScores.load(scores)) if scores.is_file() else {}
    options = (manifest.get("method") or {}).get("options") or {}
    keys = {"--ratio": "ratio", "--of": "of", "--components": "components", "--schedule": "schedule"}
    out.update({flag: options[key] for flag, key in keys.items() if key in options})
    out["--keep-end-layers"] = options.get("keep_end_layers", "none")
    out["--plan-search"] = (options.get("plan_search") or {}).get("candidates", 1)
    return out


@dataclass(frozen=True)
class TypedFlag:
    """A flag as the user typed it (``--taylor second``, ``--preset paper``) and the setting value it asks for."""

    text: str
    value: Any


def check_flags_apply_to_scores(file: str | Path, scorer: Scorer, typed: dict[str, TypedFlag]) -> None:
    """Typed flags that decide scores cannot apply to saved scores: each must be what ``file`` records.

    ``typed`` maps a setting (``--threshold``) to how the user asked for it. A flag that does not decide
    this method's scores changes nothing and passes, as one the file records with the same value does.
    A file written before settings were recorded, which does not record the setting, cannot be checked.
    """
    scored = MethodScores.load(file)
    if base_method(scored.method) != scorer.name:
        return  # `score` says which method the file holds
    recorded = scorer.recorded_settings(scored)
    for flag, asked in typed.items():
        if flag not in scorer.setting_flags() or (scored.settings and flag not in recorded):
            continue  # it does not decide these scores (a complete record lists every setting that did)
        fix = f"drop {asked.text.split()[0]} to re-plan these scores, or score again without --scores"
        if flag not in recorded:
            raise UserError(f"{asked.text} cannot apply to saved scores, and {file} does not record its {flag}; {fix}.")
        if recorded[flag] != as_recorded({flag: asked.value})[flag]:
            made = f"{file} was made with {flag} {shown(recorded[flag])}"
            raise UserError(f"{asked.text} cannot apply to saved scores: {made}; {fix}.")


def calibration_source(config: PruneConfig, processor: Any) -> Any:
    """``config.calib`` as the scorers read it: a text file is cut with this model's tokenizer."""
    source = text_source(config.calib) if config.calib is not None else None
    if source is None:
        return config.calib
    return TextCalibrationSource(source.path, config.seq_len or source.seq_len, tokenizer=processor)


def score(
    config: PruneConfig,
    dense: DenseModel,
    scorer: Scorer,
    shared_pass: CalibrationPass | None = None,
    world: World = ONE_PROCESS,
) -> MethodScores:
    """The scores ``config`` asks for: read from ``config.scores_file``, or computed by ``scorer``.

    Under ``accelerate launch`` (``world``) a scorer that splits its samples scores this process's
    share and adds the sums up, so every process returns the one-process scores.
    """
    if config.scores_file is not None:
        scored = MethodScores.load(config.scores_file)
        check_scores_match(scored.scores, dense.groups)
        if base_method(scored.method) != scorer.name:  # a compare variant ("ukmp:1.0") is the same scorer
            raise UserError(
                f"{config.scores_file} holds {scored.method} scores, not {scorer.name}; "
                f"pass --method {base_method(scored.method)}."
            )
        return scored
    torch.manual_seed(config.seed)
    inputs = ScoringInputs(
        dense.model,
        dense.processor,
        dense.groups,
        calibration_source(config, dense.processor),
        config.calib_split,
        num_samples=config.num_samples,
        batch_size=config.batch_size,
        seed=config.seed,
        progress=config.progress,
        shared_pass=shared_pass,
        world=world,
    )
    scored = scorer.score(inputs)
    scored.settings[MODEL] = dense.checksum
    return scored


def plan(
    config: PruneConfig, dense: DenseModel, scorer: Scorer, scored: MethodScores
) -> tuple[PlanResult, dict[str, Any]]:
    """The method's plan at ``config.ratio`` (its scope chosen, or searched among perturbed plans, if asked).

    Also returns the traces of those choices for the manifest (``norm_scope_choice``, ``plan_search``).
    """
    groups = scorer.planned_groups(scored, dense.groups, config.keep_end_layers)
    target_ratio = scorer.planning_ratio(scored, dense.model, dense.groups, config.ratio, dense.basis)
    block_scores = scorer.block_scores(scored)
    schedule = config.schedule or scorer.schedule
    iterative = config.iterative or scorer.iterative_options()
    traces: dict[str, Any] = {}

    def make_plan(scores, scope: str | None = None):
        return plan_from_scores(
            scores,
            groups,
            schedule=schedule,
            target_ratio=target_ratio,
            basis_params=dense.basis,
            iterative_options=iterative if scope is None else replace(iterative, scope=scope),
            block_scores=block_scores,
            **scorer.schedule_settings(),
        )

    drawn = scored.stats.get("calibration", {})
    if schedule == "iterative" and iterative.scope == "auto":
        data = calibration_for_choice(config, dense, drawn, "--norm-scope auto")
        seed = int(drawn.get("seed", config.seed))
        num_samples = int(drawn.get("num_samples", config.num_samples))
        split = drawn.get("split", config.calib_split)
        batches = scope_choice_batches(dense.processor, dense.model, data, split, seed=seed, num_samples=num_samples)
        data_name = portable_path(data.path if text_source(data) is not None else data)
        scope, chosen, traces["norm_scope_choice"] = choose_scope(
            dense.model, groups, lambda s: make_plan(scored.scores, s), batches, data_name
        )
        iterative = replace(iterative, scope=scope)  # a plan search below perturbs around the chosen scope
        if not config.plan_search.enabled:
            return chosen, traces
    if not config.plan_search.enabled:
        return make_plan(scored.scores), traces
    # a language model's plan is chosen on windows of its calibration text that the scores never read:
    # the tail of the order the scores drew their windows from (their seed and count, also when re-planned)
    text = text_source(config.calib) if config.calib is not None else None
    if text is not None:
        data, seed = calibration_for_choice(config, dense, drawn, "--plan-search"), int(drawn.get("seed", config.seed))
    else:
        data, seed = config.plan_search_data, config.seed
    reserved = 2 * int(drawn.get("num_samples", config.num_samples))
    batches = selection_batches(dense.processor, dense.model, data, config.plan_search, seed, reserved=reserved)
    result, trace = search_plan(
        dense.model,
        groups,
        scored.scores,
        make_plan,
        batches,
        config.plan_search,
        seed=config.seed,
        progress=config.progress,
    )
    traces["plan_search"] = {**trace, "data": portable_path(data.path if text is not None else data)}
    return result, traces


def calibration_for_choice(config: PruneConfig, dense: DenseModel, drawn: dict[str, Any], flag: str) -> Any:
    """The calibration data a plan choice reads: a text source cut as the scores' windows were, or the folder.

    Saved scores re-planned without calibration data choose on the data they record, where it still is.
    """
    calib = config.calib if config.calib is not None else recorded_calibration(drawn, flag)
    text = text_source(calib)
    if text is None:
        return calib
    seq_len = int(drawn.get("seq_len", config.seq_len or text.seq_len))
    return TextCalibrationSource(text.path, seq_len, tokenizer=dense.processor)


def recorded_calibration(drawn: dict[str, Any], flag: str) -> Path:
    """The calibration data saved scores record (``drawn``, their ``calibration`` stats), if it is here."""
    recorded = drawn.get("data")
    path = None if recorded is None else local_path(recorded)
    if path is None or not path.exists():
        where = "record none" if recorded is None else f"name {recorded}, which is not here"
        fix = ", or --norm-scope modality to plan without it" if flag == "--norm-scope auto" else ""
        raise UserError(
            f"{flag} chooses with the calibration data the scores came from, and they {where}: "
            f"pass --calib with that data{fix}."
        )
    print(f"{flag}: choosing on the calibration data the scores came from, {path}")
    return path


def prune_scored(
    config: PruneConfig,
    dense: DenseModel,
    scorer: Scorer,
    scored: MethodScores,
    *,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Plan, slice ``dense.model`` in place and save it to ``config.out``; returns a summary.

    The summary's ``steps`` give each step's wall time and peak memory (``ukmp.peak_memory``).
    """
    steps: dict[str, dict] = {}
    device = model_device(dense.model)
    with recorded_step(steps, "plan", device):
        result, traces = plan(config, dense, scorer, scored)
    if dense.reload_base is not None:
        with recorded_step(steps, "reload", device):
            dense.take_slice_target()
    model = dense.model
    with recorded_step(steps, "slice", device):
        scorer.finalize(
            model, dense.groups, result.plan, scored, lambda: apply_plan_physically(model, result.plan, dense.adapter)
        )
        cast_to_saved_dtype(model, config.dtype, dense.param_dtypes)
    after = parameter_counts(model, dense.adapter)
    components = config.components or list(dense.adapter.default_components)
    options = config.manifest_options(scorer, scored, components)
    options.update(traces)
    settings = {**scorer.recorded_settings(scored), **config.plan_settings(scorer, components)}
    with recorded_step(steps, "save", "cpu"):
        save_pruned(
            model,
            result.plan,
            config.out,
            processor=dense.processor,
            # a GGUF inside a folder is named by its own path, so the teacher of `ukmp recover` resolves to it
            base_model_ref=config.base_model_name or base_reference(config.model, config.gguf_file),
            base_revision=getattr(model.config, "_commit_hash", None),
            base_checksum=dense.checksum,
            method=scorer.name,
            options=options,
            seed=config.seed,
            target_ratio=config.ratio,
            ratio_basis=config.of,
            overwrite=overwrite,
            extra={"scoring": scored.stats, "settings": settings},
            extra_files={"scores.safetensors": scored.save},
        )
    stats = scored.stats
    summary = {
        "method": scorer.label,
        "schedule": options["schedule"],
        "target_ratio": config.ratio,
        "achieved_ratio": result.achieved_ratio,
        "params_before": dense.counts["total"],
        "params_after": after["total"],
        "counts_before": dense.counts,
        "counts_after": after,
        "scoring_seconds": stats.get("scoring", {}).get("seconds", 0.0)
        + stats.get("shared_calibration", {}).get("seconds", 0.0),
        "steps": steps,
        "out": str(config.out),
    }
    if "gradient_pass" in stats:
        summary["backpropagated_tokens"] = stats["gradient_pass"]["backpropagated_tokens"]
    return summary


def prune(
    config: PruneConfig, *, overwrite: bool = False, verbose: bool = True, preloaded: tuple[Any, Any] | None = None
) -> dict[str, Any]:
    """Score (or read saved scores), plan, slice and save one model; returns a summary.

    ``preloaded`` is (dense model, processor) already loaded from ``config.model``, for a script
    that prunes one model many times (a GGUF takes tens of seconds to dequantise); the model is
    sliced in place, so pass a copy.
    """
    config.validate()
    scorer = config.scorer()
    # seconds of checks before minutes of loading and scoring: the output, the model's files, the data
    out = Path(config.out)
    check_output_dir(
        out, overwrite=overwrite, inputs=(resolve_model_ref(config.model), config.calib, config.scores_file)
    )
    if scorer.calibrated and config.scores_file is None and config.calib is None:
        raise UserError(f"--method {scorer.name} needs calibration data: pass --calib DIR (or --calib shapes).")
    if config.calib is not None and text_source(config.calib) is None:
        check_calibration_data(Path(config.calib), config.calib_split)
    world = current_world()
    if world.size > 1 and scorer.calibrated and config.scores_file is None and not scorer.splits_across_processes:
        splitting = [n for n in scorer_names() if get_scorer(n).splits_across_processes]
        raise UserError(
            f"--method {scorer.name} scores in one process; only {', '.join(splitting)} split their calibration "
            "samples across the processes of `accelerate launch`: run this method without it."
        )
    if world.size > 1:
        config = replace(config, placement=world_placement(config.placement, world))
    loading: dict[str, dict] = {}
    with recorded_step(loading, "load", "cpu"):
        dense = load_dense(config, preloaded=preloaded)
    scored = score(config, dense, scorer, world=world)
    if not world.is_main:
        return {"out": str(config.out), "process": world.rank}  # the main process plans and saves
    summary = prune_scored(config, dense, scorer, scored, overwrite=overwrite)
    scoring = scored.stats.get("scoring", {})
    summary["steps"] = {**loading, "score": scoring, **summary["steps"]}
    if verbose:
        print_summary(summary, config, dense.basis, out)
    return summary


def world_placement(placement: Placement, world: World) -> Placement:
    """Under ``accelerate launch`` each process scores on its own device (``--device cpu`` keeps them on CPUs)."""
    if placement.device_map is not None:
        raise UserError(
            "--device-map spreads one model over the devices, while `accelerate launch` gives each process a whole "
            "copy; use one of them."
        )
    return placement if placement.device.strip().lower() == "cpu" else replace(placement, device=world.device)


def print_summary(summary: dict[str, Any], config: PruneConfig, basis: int, out: Path) -> None:
    """What was removed, per component, and where the model went."""
    before, after = summary["counts_before"], summary["counts_after"]
    removed = before["total"] - after["total"]  # counted on the saved model (FLAP's added biases included)
    of_all = f"{removed:,} of {before['total']:,} parameters removed"
    if config.of == "all":
        print(f"target {config.ratio:g} of all parameters -> achieved {removed / before['total']:.4f} ({of_all})")
    else:
        print(
            f"target {config.ratio:g} of prunable parameters -> achieved {removed / basis:.4f} "
            f"({of_all}; {removed / before['total']:.4f} of all)"
        )
    width = max(len(k) for k in before)
    for key in before:
        print(f"  {key:<{width}}  {before[key]:>14,} -> {after[key]:>14,}")
    steps = ", ".join(_step_text(name, step) for name, step in summary.get("steps", {}).items() if "seconds" in step)
    if steps:
        print(f"steps: {steps}")
    files = sorted(p.name for p in out.iterdir())
    print(f"wrote {out.resolve()} ({', '.join(files)}); load it with ukmp.load_pruned")


def _step_text(name: str, step: dict[str, Any]) -> str:
    peak = step.get("peak_memory_mb")
    return f"{name} {step['seconds']:.1f} s" + (f" (peak {peak / 1024:.2f} GiB)" if peak is not None else "")
