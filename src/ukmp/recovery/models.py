"""The student (the pruned artifact) and its teacher (the dense base it was pruned from, checked by
checksum), and the processor or tokenizer a recovery reads its data with."""

from __future__ import annotations

from pathlib import Path

from ukmp.adapters import find_adapter
from ukmp.artifact import is_pruned_artifact, load_pruned, state_dict_sha256
from ukmp.errors import UserError
from ukmp.loading import load_model, resolve_model_ref
from ukmp.preflight import looks_local
from ukmp.processors import load_processor
from ukmp.recovery.config import RecoveryConfig


def load_models(config: RecoveryConfig):
    """(student, teacher, manifest, teacher reference); both in float32, eval mode, on the CPU."""
    pruned_ref = resolve_model_ref(config.pruned)
    if not is_pruned_artifact(pruned_ref):
        raise UserError(f"{config.pruned} is not a ukmp pruned model (no pruning.json); prune it with ukmp prune.")
    student = load_pruned(pruned_ref).float()
    manifest = student.ukmp_manifest
    if not find_adapter(student).inputs.end_to_end:
        raise UserError(
            "ukmp recover trains vision-language models that write text and decoder-only language models; "
            f"{config.pruned} is {type(student).__name__}."
        )
    base = manifest.get("base_model") or {}
    teacher_ref = config.teacher or base.get("reference")
    if not teacher_ref:
        raise UserError(f"the manifest of {config.pruned} names no base model; pass --teacher BASE.")
    if not config.teacher and looks_local(teacher_ref) and not Path(teacher_ref).expanduser().exists():
        raise UserError(
            f"the base model {teacher_ref} named in {config.pruned}/pruning.json does not exist (moved or deleted?); "
            "pass --teacher with the dense model it was pruned from."
        )
    teacher = load_model(teacher_ref).float()
    if getattr(teacher, "ukmp_manifest", None) is not None:
        raise UserError(f"--teacher {teacher_ref} is a pruned model; give the dense base model it was pruned from.")
    expected = base.get("sha256")
    if expected and state_dict_sha256(teacher) != expected:
        raise UserError(
            f"--teacher {teacher_ref} is not the base model {config.pruned} was pruned from (its weights do not "
            "match the checksum in pruning.json); pass the right dense model."
        )
    teacher.requires_grad_(False)
    return student.eval(), teacher.eval(), manifest, teacher_ref, pruned_ref


def load_recovery_processor(pruned_ref: str, teacher_ref: str, *, text: bool = False):
    """The image-text processor, or for text data any tokenizer (the pruned artifact carries its base's)."""
    for ref in (pruned_ref, resolve_model_ref(teacher_ref)):
        processor = load_processor(ref)
        if processor is not None and (text or hasattr(processor, "image_processor")):
            return processor
    need = "a tokenizer" if text else "processor files (image processor + tokenizer)"
    raise UserError(f"neither {pruned_ref} nor {teacher_ref} has {need}.")
