"""One calibration draw of `ukmp compare`: load once, score each method once, prune and evaluate each ratio.

Why a class: the loaded dense model, the shared calibration pass and the dense evaluation are made
once and read by every (method, ratio); every piece is cached in OUT under the settings that
decided it (`ukmp.compare.cache`), so a rerun computes only what is missing. The dense model is
kept dense; each (method, ratio) prunes a copy. The baselines' activation statistics and gradients
come from one shared pass (``CalibrationPass``) declared up front with the union of their needs;
UKMP runs its own passes (token-selected gradients and entropy), as the method prescribes.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import torch

from ukmp.adapters import is_language_model
from ukmp.atomic import write_json_atomic
from ukmp.compare.cache import recorded_recovery_settings
from ukmp.compare.config import CompareConfig, recovery_kind
from ukmp.compare.image_eval import ImageEvaluation
from ukmp.compare.layout import RECOVERY_SETTINGS, artifact_name, check_compare_output
from ukmp.compare.report import write_results
from ukmp.compare.text_eval import TextEvaluation
from ukmp.compare.vlm_text_eval import TasksAndTextEvaluation
from ukmp.data.index import resolve_data_dir
from ukmp.errors import UserError
from ukmp.examples_page.from_compare import write_compare_examples
from ukmp.method_scores import MethodScores, check_scores_match
from ukmp.methods.base import ScoringInputs
from ukmp.methods.calibration_pass import CalibrationPass
from ukmp.preflight import check_calibration_data
from ukmp.provenance import COMPARE_FIX, MODEL, Settings, as_recorded, check_reusable
from ukmp.pruning import PruneConfig, calibration_source, load_dense, prune_scored, recorded_artifact_settings, score
from ukmp.recovery.distill import MERGED_DIR, RecoveryConfig, run_recovery


def evaluation_for(config: CompareConfig, out: Path):
    """How the run measures each model: perplexity for text; for images the tasks, and text perplexity if asked."""
    if config.text:
        return TextEvaluation(config, out)
    return TasksAndTextEvaluation(config, out) if config.eval_texts else ImageEvaluation(config, out)


class CompareRun:
    """One comparison: load once, score each method once, prune/evaluate each ratio, write results."""

    def __init__(self, config: CompareConfig, *, overwrite: bool = False, shared: CompareRun | None = None) -> None:
        """``shared``: a run of the same model whose loaded model, data and dense evaluation this one reuses."""
        config.validate()
        self.config = config
        self.out = Path(config.out)
        check_compare_output(config, overwrite=overwrite)
        if overwrite and self.out.exists():
            shutil.rmtree(self.out)
        self._created = not self.out.exists()
        self.out.mkdir(parents=True, exist_ok=True)
        self.rows: list[dict[str, Any]] = []
        self.dense_eval: dict[str, Any] | None = None
        self.plan_search_data: Path | None = None
        self._loaded = False
        self.started = time.time()
        self.evaluation = evaluation_for(config, self.out)
        if shared is not None:
            shared._load()
            for name in ("dense", "calib_dir", "plan_search_data"):
                setattr(self, name, getattr(shared, name))
            self._calibration = None
            self._loaded = True
            if shared.dense_eval is not None:  # the files, answers included
                for theirs, mine in zip(shared.evaluation.files("dense"), self.evaluation.files("dense")):
                    write_json_atomic(mine, json.loads(theirs.read_text()))

    def say(self, text: str) -> None:
        print(text, flush=True)

    # -------------------------------------------------------------------------------- model, data

    def _load(self) -> None:
        """Resolve the calibration data and load the dense model once (through the prune path's loader)."""
        if self._loaded:
            return
        c = self.config
        if c.text:  # a text file, cut into windows with the model's tokenizer; a plan search reads its held-out windows
            self.calib_dir = Path(c.calib)
        else:
            self.calib_dir = resolve_data_dir(c.calib, c.calib_split, 2 * c.num_samples, flag="--calib")
            check_calibration_data(self.calib_dir, c.calib_split)
            if c.plan_search.enabled:
                self.plan_search_data = resolve_data_dir(c.calib, c.plan_search.split, flag="--calib")
        self.dense = load_dense(self.prune_config(c.methods[0], c.ratios[0], self.out), runs=True)
        if self.dense.processor is None and c.text:
            raise UserError(f"{c.model} has no tokenizer to read text with.")
        if not c.text and is_language_model(self.dense.model):
            raise UserError(
                f"{c.model} is a language model without images; calibrate it on text: pass a .txt or .jsonl --calib "
                "and the held-out texts to measure as --eval-text."
            )
        if self.dense.processor is None:
            raise UserError(f"{c.model} has no processor files (image processor + tokenizer) to read data with.")
        self._calibration = None
        self._loaded = True

    def calibration(self) -> CalibrationPass:
        """The shared calibration pass, declared with the needs of every method still to score."""
        if self._calibration is None:
            c = self.config
            self._calibration = self.scoring_inputs().calibration_pass()
            for method in c.methods:
                if not self._scores_file(method).is_file():
                    self._calibration.require(*c.scorer(method).calibration_needs())
        return self._calibration

    def scoring_inputs(self) -> ScoringInputs:
        """The dense model and calibration data every method of this run scores with."""
        c = self.config
        return ScoringInputs(
            self.dense.model,
            self.dense.processor,
            self.dense.groups,
            calibration_source(self.prune_config(c.methods[0], c.ratios[0], self.out), self.dense.processor),
            c.calib_split,
            num_samples=c.num_samples,
            batch_size=c.batch_size,
            seed=c.seed,
            progress=c.progress,
        )

    def prune_config(self, method: str, ratio: float, out: Path) -> PruneConfig:
        """The `ukmp prune` configuration of one artifact of this run."""
        c = self.config
        return PruneConfig(
            model=c.model,
            out=out,
            method=method,
            ratio=ratio,
            of=c.of,
            seed=c.seed,
            calib=self.calib_dir,
            calib_split=c.calib_split,
            num_samples=c.num_samples,
            batch_size=c.batch_size,
            options=c.method_options,
            plan_search=c.plan_search,
            plan_search_data=self.plan_search_data,
            base_model_name=c.model,
            progress=c.progress,
            dtype=c.dtype,
            keep_end_layers=c.keep_end_layers,
            placement=c.placement,
            seq_len=c.seq_len,
            gguf_file=c.gguf_file,
            iterative=c.iterative(method),
        )

    # ----------------------------------------------------------------------------------- settings

    def scores_settings(self, method: str) -> Settings:
        """What decides ``method``'s scores in this run: what OUT/scores/<method> must record to be reused."""
        c = self.config
        scorer = c.scorer(method)
        calibration = self.scoring_inputs().calibration_record() if scorer.calibrated else None
        dtype = c.placement.resolved().dtype  # every method scores the model cast to it (`load_dense`, runs)
        return {**scorer.settings(calibration, seed=c.seed, dtype=dtype), MODEL: self.dense.checksum}

    def artifact_settings(self, method: str, ratio: float) -> Settings:
        """The scores' settings and what decides the plan and the saved weights from them."""
        plan = self.prune_config(method, ratio, self.out).plan_settings(
            self.config.scorer(method), list(self.dense.adapter.default_components)
        )
        return {**self.scores_settings(method), **plan}

    def recovery_settings(self, method: str, ratio: float) -> Settings:
        """The artifact's settings and how it is recovered."""
        c = self.config
        recovery = {
            "--recover": recovery_kind(method, c.recover),
            "--recover-samples": c.recover_samples,
            "--recover-batch-size": c.recover_batch_size,
            "--recover-lr": c.recover_lr,
            "--recover-warmup-steps": c.recover_warmup_steps,
        }
        return {**self.artifact_settings(method, ratio), **recovery}

    # ------------------------------------------------------------------------------------ scoring

    def _scores_file(self, method: str) -> Path:
        return self.out / "scores" / f"{method}.safetensors"

    def cached_scores(self, method: str) -> MethodScores | None:
        """``method``'s scores from OUT, if there and made with this run's settings (else one sentence)."""
        file = self._scores_file(method)
        if not file.is_file():
            return None
        self._load()
        scored = MethodScores.load(file)
        check_scores_match(scored.scores, self.dense.groups)
        recorded = self.config.scorer(method).recorded_settings(scored)
        check_reusable(file, recorded, self.scores_settings(method), COMPARE_FIX)
        return scored

    def scores(self, method: str) -> MethodScores:
        """``method``'s scores, computed once per run (through the shared calibration pass) and cached."""
        cached = self.cached_scores(method)
        if cached is not None:
            return cached
        self._load()
        scorer = self.config.scorer(method)
        config = self.prune_config(method, self.config.ratios[0], self.out)
        shared = self.calibration() if scorer.calibration_needs() else None
        scored = score(config, self.dense, scorer, shared_pass=shared)
        file = self._scores_file(method)
        file.parent.mkdir(parents=True, exist_ok=True)
        scored.save(file)
        return scored

    # ------------------------------------------------------------------------------------ pruning

    def cached_artifact(self, method: str, ratio: float) -> Path | None:
        """The artifact of ``method`` at ``ratio`` in OUT, if there and made with this run's settings."""
        folder = self.out / "artifacts" / artifact_name(method, ratio)
        if not (folder / "pruning.json").is_file():
            return None
        self._load()
        recorded = recorded_artifact_settings(folder, self.config.scorer(method))
        check_reusable(folder, recorded, self.artifact_settings(method, ratio), COMPARE_FIX)
        return folder

    def prune(self, method: str, ratio: float, scored: MethodScores) -> Path:
        """The artifact of ``method`` at ``ratio`` (pruned now, on a copy of the dense model, unless already in OUT)."""
        cached = self.cached_artifact(method, ratio)
        if cached is not None:
            return cached
        self._load()
        folder = self.out / "artifacts" / artifact_name(method, ratio)
        config = self.prune_config(method, ratio, folder)
        prune_scored(config, self.dense.copy(), self.config.scorer(method), scored, overwrite=True)
        return folder

    # --------------------------------------------------------------------------------- evaluation

    def cached_eval(self, name: str, settings: Settings) -> dict[str, Any] | None:
        """Model ``name``'s evaluation from OUT, if there and made with this run's settings (else one sentence)."""
        return self.evaluation.cached(name, settings)

    def evaluate(
        self, model_ref: str | Path, name: str, settings: Settings, label: str | None = None
    ) -> dict[str, Any]:
        """Model ``name``'s evaluation (images: every task; text: perplexity per held-out text), cached in OUT."""
        return self.evaluation.evaluate(model_ref, name, settings, label)

    # ----------------------------------------------------------------------------------- recovery

    def cached_recovery(self, method: str, ratio: float) -> Path | None:
        """The merged recovery of ``method`` at ``ratio`` in OUT, if there and made with this run's settings."""
        folder = self.out / "recovered" / artifact_name(method, ratio)
        merged = folder / MERGED_DIR
        if not (merged / "pruning.json").is_file():
            return None
        self._load()
        check_reusable(merged, recorded_recovery_settings(folder), self.recovery_settings(method, ratio), COMPARE_FIX)
        return merged

    def recover(self, method: str, ratio: float, artifact: Path) -> Path | None:
        """Recover ``artifact`` (plain LoRA or LPD) and return the merged artifact."""
        kind = recovery_kind(method, self.config.recover)
        if kind is None:
            return None
        cached = self.cached_recovery(method, ratio)
        if cached is not None:
            return cached
        folder = self.out / "recovered" / artifact_name(method, ratio)
        merged = folder / MERGED_DIR
        asked = self.recovery_settings(method, ratio)
        c = self.config
        config = RecoveryConfig(
            pruned=str(artifact),
            out=str(folder),
            teacher=c.model,
            data=c.calib,
            split=c.calib_split,
            schedule="lpd" if kind == "lpd" else "task",
            plain_lora=kind == "lora",
            batch_size=c.recover_batch_size,
            lr=c.recover_lr,
            warmup_steps=c.recover_warmup_steps,
            max_samples=c.recover_samples,
            seed=c.seed,
            cpu=torch.device(c.device).type == "cpu",
            merge=True,
            **({"seq_len": c.seq_len} if c.text and c.seq_len is not None else {}),
        )
        run_recovery(config, overwrite=True, progress=c.progress)
        write_json_atomic(folder / RECOVERY_SETTINGS, as_recorded(asked))
        return merged

    # ------------------------------------------------------------------------------------ the run

    def recovered_at(self, method: str, ratio: float) -> bool:
        c = self.config
        recover_at = set(c.recover_ratios if c.recover_ratios is not None else c.ratios)
        return ratio in recover_at and recovery_kind(method, c.recover) is not None

    def check_cache(self) -> None:
        """Every piece OUT holds already was made with this run's settings (else one sentence), before any work.

        So a rerun with other settings stops at once, with nothing in OUT replaced and no table rewritten.
        """
        c = self.config
        self.cached_eval("dense", {MODEL: self.dense.checksum})
        for method in c.methods:
            self.cached_scores(method)
            for ratio in c.ratios:
                name = artifact_name(method, ratio)
                self.cached_artifact(method, ratio)
                self.cached_eval(name, self.artifact_settings(method, ratio))
                if self.recovered_at(method, ratio):
                    self.cached_recovery(method, ratio)
                    self.cached_eval(f"{name}-recovered", self.recovery_settings(method, ratio))

    def run(self) -> dict[str, Any]:
        c = self.config
        self.say(f"ukmp compare: {len(c.methods)} methods x {len(c.ratios)} ratios on {c.model}; results in {self.out}")
        try:
            self._load()
        except UserError:
            if self._created and not any(p.is_file() for p in self.out.rglob("*")):
                shutil.rmtree(self.out)  # a mistake found on loading leaves nothing behind
            raise
        self.check_cache()
        self.say("[dense] evaluating the dense model")
        dense = {MODEL: self.dense.checksum}
        self.dense_eval = self.evaluate(self.dense.ref, "dense", dense, label=f"dense ({self.config.model})")
        for i, method in enumerate(c.methods, 1):
            self.say(f"[{i}/{len(c.methods)}] {method}: scoring")
            scored = self.scores(method)
            for ratio in c.ratios:
                name = artifact_name(method, ratio)
                self.say(f"[{i}/{len(c.methods)}] {method}: ratio {ratio:g} -> {name}")
                artifact = self.prune(method, ratio, scored)
                manifest = json.loads((artifact / "pruning.json").read_text())
                row = {
                    "method": method,
                    "name": name,
                    "target_ratio": ratio,
                    "achieved_ratio": manifest.get("achieved_ratio"),
                    "schedule": (manifest.get("method") or {}).get("options", {}).get("schedule"),
                    "params_after": manifest["parameters"]["after"]["total"],
                    "params_before": manifest["parameters"]["before"]["total"],
                    "scoring": scored.stats.get("scoring", {}),
                    "shared_calibration_seconds": (scored.stats.get("shared_calibration") or {}).get("seconds", 0.0),
                    "approximation": scored.stats.get("approximation"),
                    "artifact": str(artifact.relative_to(self.out)),
                    "eval": self.evaluate(artifact, name, self.artifact_settings(method, ratio)),
                }
                if self.recovered_at(method, ratio):
                    self.say(f"[{i}/{len(c.methods)}] {method}: recovering {name} ({recovery_kind(method, c.recover)})")
                    merged = self.recover(method, ratio, artifact)
                    row["recovery"] = recovery_kind(method, c.recover)
                    recovered = self.recovery_settings(method, ratio)
                    row["recovered_eval"] = self.evaluate(merged, f"{name}-recovered", recovered)
                self.rows.append(row)
                write_results(self)  # after every model, so an interrupted run still has a table
                write_compare_examples([self], self.out)
        files = write_results(self) + write_compare_examples([self], self.out)
        self.say(f"wrote {', '.join(str(f) for f in files)} ({(time.time() - self.started) / 60:.1f} min)")
        return {"rows": self.rows, "files": [str(f) for f in files]}
