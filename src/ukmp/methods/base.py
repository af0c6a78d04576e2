"""The scorer interface: everything the prune path needs to know about a method, in one object.

A method is a scorer (how important is each unit?) plus the few places where a method departs
from "plan by the scores, slice, save": its default schedule, the groups it leaves dense, the
ratio it must plan for, and what it does to the model around the surgery (FLAP's bias
compensation). Each of those is a method of ``Scorer`` with a neutral default, so the prune path
(`ukmp.pruning`) never asks which method it runs, and adding a method is one file that subclasses
``Scorer`` and registers it (`ukmp.methods.registry`).

The split follows Torch-Pruning's importance / pruner division: scorers compute numbers, the
schedules in `ukmp.planning.schedules` turn numbers into plans, `ukmp.surgery` slices.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from torch import nn

from ukmp.data.index import portable_path
from ukmp.distributed import ONE_PROCESS, World
from ukmp.errors import UserError
from ukmp.groups import PrunableGroup, PruningPlan
from ukmp.method_scores import MethodScores
from ukmp.methods.calibration_pass import CalibrationPass
from ukmp.methods.end_layers import end_layer_groups
from ukmp.methods.option_flag import flagged_fields
from ukmp.peak_memory import measured_peak
from ukmp.placement import model_device, model_dtype
from ukmp.planning.iterative import IterativeOptions
from ukmp.provenance import Settings, calibration_settings

#: each scorer's options class, by the name its options go by (``Scorer.options_name``); filled as scorers are defined
_OPTION_TYPES: dict[str, type] = {}


class MethodOptions:
    """The options of every scorer of a run, each under its scorer's ``options_name`` (``ukmi``, ``llm_pruner``).

    A container that names no method, so the commands and the prune path can carry every method's
    options without importing one. Options that were not given are their scorer's defaults, made on
    first read: ``MethodOptions(llm_pruner=LLMPrunerOptions(taylor="mix")).ukmi`` is UKMI's defaults.
    """

    def __init__(self, **given: Any) -> None:
        self._given = dict(given)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        given = self.__dict__.setdefault("_given", {})
        if name not in given:
            if name not in _OPTION_TYPES:
                raise AttributeError(f"no registered scorer takes options named {name!r}")
            given[name] = _OPTION_TYPES[name]()
        return given[name]

    def replace(self, **changes: Any) -> MethodOptions:
        """A copy with ``changes`` (options by name) in place of these."""
        return MethodOptions(**{**self._given, **changes})

    def validate(self) -> None:
        for options in self._given.values():
            options.validate()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MethodOptions) and self._given == other._given

    def __repr__(self) -> str:
        return f"MethodOptions({', '.join(f'{k}={v!r}' for k, v in self._given.items())})"


@dataclass
class ScoringInputs:
    """The dense model and the calibration data one scoring run reads.

    ``calib`` is a data folder or a text source (`data.calibration.TextCalibrationSource`).
    Baselines share one calibration pass (`shared_pass`): a run that scores several methods
    declares the union of their needs first, so activations and gradients are computed once.
    """

    model: nn.Module
    processor: Any
    groups: list[PrunableGroup]
    calib: Any = None
    split: str = "train"
    num_samples: int = 1000
    batch_size: int = 8
    seed: int = 0
    progress: bool = True
    shared_pass: CalibrationPass | None = None
    #: the processes scoring together (``accelerate launch``); a scorer that splits samples reads it
    world: World = ONE_PROCESS

    def calibration_pass(self) -> CalibrationPass:
        """The shared pass over the calibration samples (created on first use)."""
        if self.shared_pass is None:
            self.shared_pass = CalibrationPass(
                self.model,
                self.processor,
                self.groups,
                self.calib,
                self.split,
                num_samples=self.num_samples,
                batch_size=self.batch_size,
                seed=self.seed,
                progress=self.progress,
            )
        return self.shared_pass

    def calibration_record(self) -> dict[str, Any]:
        """What the manifest says about the calibration data the scores came from."""
        record = {
            "data": portable_path(self.calib),
            "split": self.split,
            "num_samples": self.num_samples,
            "batch_size": self.batch_size,
            "seed": self.seed,
        }
        seq_len = getattr(self.calib, "seq_len", None)  # a text source: how its windows were cut
        if seq_len is not None:
            record["seq_len"] = seq_len
        return record


class Scorer:
    """One pruning method. Subclasses set the class attributes and implement ``compute``.

    ``variant`` is the text after ``:`` in a method name (``ukmp:1.0``); only scorers that
    override ``configure_variant`` accept one.
    """

    #: the name users type (`--method`); unique in the registry
    name: ClassVar[str] = ""
    #: the schedule the method's paper plans with (`ukmp.planning.schedules.SCHEDULES`)
    schedule: ClassVar[str] = "global"
    #: whether it reads calibration data (the data-free ones do not)
    calibrated: ClassVar[bool] = True
    #: set where our implementation approximates the published method; recorded in every manifest
    approximation: ClassVar[str | None] = None
    #: what the paper's protocol recovers this method's model with: "lpd" or plain "lora"
    recovery: ClassVar[str] = "lora"
    #: the method the paper proposes; reports compare it against the others
    proposed: ClassVar[bool] = False
    #: whether `ukmp compare` runs it when --methods is not given (in registration order); a method opts in
    compared_by_default: ClassVar[bool] = False
    #: whether ``compute`` splits its calibration samples across launched processes (``inputs.world``)
    splits_across_processes: ClassVar[bool] = False
    #: whether the scores depend on ``--seed`` beyond the calibration samples it draws (random scores)
    seeded: ClassVar[bool] = False
    #: the name the method's own options go by in ``MethodOptions`` (``"llm_pruner"``), and their class
    #: (a dataclass with ``validate()``); None: the method takes no options
    options_name: ClassVar[str | None] = None
    options_type: ClassVar[type | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Record the subclass's options class, so ``MethodOptions`` can make their defaults."""
        super().__init_subclass__(**kwargs)
        if cls.options_name is not None and cls.options_type is not None:
            known = _OPTION_TYPES.setdefault(cls.options_name, cls.options_type)
            if known is not cls.options_type:
                raise ValueError(f"options named {cls.options_name!r} already belong to {known.__name__}")

    def __init__(self, options: MethodOptions | None = None, variant: str | None = None) -> None:
        self.options = options or MethodOptions()
        self.variant = variant
        if variant is not None:
            self.configure_variant(variant)

    @property
    def option_flags(self) -> dict[str, str]:
        """Each of this method's options that decides the scores, by its flag (``{"taylor": "--taylor"}``).

        The options class declares them (`ukmp.methods.option_flag.option_flag`); they are recorded with the scores.
        """
        return flagged_fields(self.options_type) if self.options_type is not None else {}

    @property
    def own_options(self) -> Any:
        """This method's own options (``options_name``'s entry of ``self.options``)."""
        if self.options_name is None:
            raise AttributeError(f"{self.name} takes no options")
        return getattr(self.options, self.options_name)

    @property
    def label(self) -> str:
        """The method name with its variant (``ukmp:1.0``): what scores files and tables are named by."""
        return self.name if self.variant is None else f"{self.name}:{self.variant}"

    def configure_variant(self, variant: str) -> None:
        raise UserError(f"{self.name} takes no variant; {self.name}:{variant} is not a method.")

    # ----------------------------------------------------------------------------------- scoring

    def calibration_needs(self) -> set[str]:
        """What this scorer reads from the shared calibration pass ('activations', 'gradients', 'fisher')."""
        return set()

    @property
    def reads_gradients(self) -> bool:
        """Whether scoring backpropagates (memory for one gradient per prunable weight is then needed)."""
        return bool(self.calibration_needs() & {"gradients", "fisher"})

    def compute(self, inputs: ScoringInputs) -> MethodScores:
        """Per-unit scores of every group of ``inputs.groups`` (stats and factors as the method has them)."""
        raise NotImplementedError

    def score(self, inputs: ScoringInputs) -> MethodScores:
        """``compute``, timed, with the calibration and approximation recorded in the stats.

        The time of shared calibration passes this scorer relied on is recorded apart from its own,
        so a comparison can charge each method what it would cost alone. The peak memory is measured
        inside this method's scoring, on the device the model runs on (``ukmp.peak_memory``).
        """
        if self.calibrated and inputs.calib is None:
            raise UserError(f"--method {self.name} needs calibration data: pass --calib DIR (or --calib shapes).")
        shared = inputs.shared_pass
        passes_before = len(shared.passes) if shared is not None else 0
        started = time.time()
        with measured_peak(model_device(inputs.model)) as peak:
            scored = self.compute(inputs)
        elapsed = time.time() - started
        scored.method = self.label
        stats = scored.stats
        shared = inputs.shared_pass
        needs = self.calibration_needs()
        if shared is not None and needs:
            ran_now = shared.passes[passes_before:]
            used = [p for p in shared.passes if needs & set(p["computes"])]
            elapsed -= sum(p["seconds"] for p in ran_now)
            stats["shared_calibration"] = {
                "seconds": sum(p["seconds"] for p in used),
                "passes": used,
                "needs": sorted(needs),
            }
        stats.setdefault("scoring", {"seconds": elapsed, **peak.as_dict()})
        if self.calibrated:
            stats.setdefault("calibration", inputs.calibration_record())
        if self.approximation:
            stats["approximation"] = self.approximation
        calibration = inputs.calibration_record() if self.calibrated else None
        dtype = str(model_dtype(inputs.model)).removeprefix("torch.")
        scored.settings = self.settings(calibration, seed=inputs.seed, dtype=dtype)
        return scored

    # ---------------------------------------------------------------------------------- settings

    def settings(self, calibration: dict[str, Any] | None, *, seed: int, dtype: str) -> Settings:
        """The settings that decide this method's scores, by flag (`ukmp.provenance`).

        ``calibration`` is the calibration record (``ScoringInputs.calibration_record``; None for a
        data-free method), ``dtype`` the precision of the weights the scores were computed from.
        """
        out: Settings = {"--score-dtype": dtype}
        if self.calibrated and calibration is not None:
            out.update(calibration_settings(calibration))
        if self.seeded:
            out["--seed"] = seed
        out.update(self.option_settings())
        return out

    def setting_flags(self) -> set[str]:
        """Every flag that can decide this method's scores (a text calibration's --seq-len included)."""
        calibration = {"data": "-", "split": "-", "num_samples": 0, "seed": 0, "seq_len": 0}
        return set(self.settings(calibration, seed=0, dtype="-"))

    def option_settings(self) -> Settings:
        """This scorer's own options, by flag (``option_flags``)."""
        if not self.option_flags:
            return {}
        options = self.own_options
        return {flag: getattr(options, name) for name, flag in self.option_flags.items()}

    def recorded_settings(self, scored: MethodScores) -> Settings:
        """The settings saved ``scored`` record; for a file written before they were recorded, those its stats show."""
        if scored.settings:
            return dict(scored.settings)
        stats = scored.stats
        out = calibration_settings(stats["calibration"]) if "calibration" in stats else {}
        if self.option_flags:
            options = stats.get("options") or {}
            out.update({flag: options[name] for name, flag in self.option_flags.items() if name in options})
        return out

    # ---------------------------------------------------------------------------------- planning

    def plannable_groups(self, scored: MethodScores, groups: list[PrunableGroup]) -> list[PrunableGroup]:
        """The groups the method may prune (default: all)."""
        return list(groups)

    def planned_groups(
        self, scored: MethodScores, groups: list[PrunableGroup], keep_end_layers: str = "none"
    ) -> list[PrunableGroup]:
        """The groups the plan prunes: the method's own (``plannable_groups``) less the end layers kept dense.

        ``keep_end_layers`` is `end_layers.py`'s rule, which any method may plan with (``--keep-end-layers``,
        beyond the paper); the depths it counts are those of the whole model, not of the plannable groups.
        """
        frozen = set(end_layer_groups(groups, keep_end_layers))
        return [g for g in self.plannable_groups(scored, groups) if g.name not in frozen]

    def planning_ratio(
        self, scored: MethodScores, model: nn.Module, groups: list[PrunableGroup], ratio: float, basis: int
    ) -> float:
        """The ratio to plan for so that the saved model meets ``ratio`` (default: ``ratio``)."""
        return ratio

    def block_scores(self, scored: MethodScores) -> dict[str, float] | None:
        """Per-group block scores for the allocated schedule (default: none)."""
        return None

    def schedule_settings(self) -> dict[str, Any]:
        """Settings of the method's own schedule, passed on to `plan_from_scores` (default: the schedule's own)."""
        return {}

    def iterative_options(self) -> IterativeOptions:
        """The iterative schedule's settings when the user sets none (default: the paper's)."""
        return IterativeOptions()

    # -------------------------------------------------------------------------------- finalising

    def finalize(
        self,
        model: nn.Module,
        groups: list[PrunableGroup],
        plan: PruningPlan,
        scored: MethodScores,
        slice_model: Callable[[], None],
    ) -> None:
        """Slice the model (``slice_model()``), doing whatever the method does around the surgery.

        The default only slices; FLAP computes its bias compensation from the dense weights first
        and adds it to the sliced model after.
        """
        slice_model()

    def manifest_options(self, scored: MethodScores) -> dict[str, Any]:
        """The method's own options, as the manifest records them."""
        options = scored.stats.get("options")
        return {self.name: options} if options else {}
