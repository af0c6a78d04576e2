"""Broken or mismatched artifacts and existing outputs each give one clear sentence."""

from __future__ import annotations

import json
import shutil

import pytest

from test_surgery_equivalence import heterogeneous_plan
from tiny_models import tiny_blip2
from ukmp.artifact import load_pruned, save_pruned
from ukmp.errors import UserError
from ukmp.loading import load_model
from ukmp.surgery import apply_plan_physically


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    model = tiny_blip2("t5")
    model = apply_plan_physically(model, heterogeneous_plan(model, 0))
    path = tmp_path_factory.mktemp("art") / "pruned"
    save_pruned(model, None, path)
    return path, model


@pytest.fixture
def copy_of(artifact, tmp_path):
    dst = tmp_path / "copy"
    shutil.copytree(artifact[0], dst)
    return dst


def one_sentence(exc: pytest.ExceptionInfo, pattern: str) -> None:
    text = str(exc.value)
    assert "\n" not in text and "Traceback" not in text
    assert pattern in text, text


def test_truncated_weights(copy_of):
    weights = copy_of / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError) as info:
        load_pruned(copy_of)
    one_sentence(info, "is truncated or corrupt")


def test_flipped_bytes_fail_the_checksum(copy_of):
    weights = copy_of / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-10] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(UserError) as info:
        load_pruned(copy_of)
    one_sentence(info, "does not match the checksum")


def test_manifest_that_does_not_match_the_weights(copy_of):
    manifest = json.loads((copy_of / "pruning.json").read_text())
    entry = next(v for v in manifest["groups"].values() if len(v["kept"]) < v["num_units"])
    entry["kept"] = list(range(entry["num_units"]))  # claims more units than the weights hold
    manifest.pop("checksum")  # as written before the plan checksum: the structural checks still catch it
    (copy_of / "pruning.json").write_text(json.dumps(manifest))
    with pytest.raises(UserError) as info:
        load_pruned(copy_of)
    one_sentence(info, "does not match model.safetensors")


def test_manifest_for_another_model(copy_of):
    manifest = json.loads((copy_of / "pruning.json").read_text())
    manifest["groups"]["lm.layers.9.attn"] = {"num_units": 4, "kept": [0]}
    manifest.pop("checksum")  # as written before the plan checksum: the structural checks still catch it
    (copy_of / "pruning.json").write_text(json.dumps(manifest))
    with pytest.raises(UserError) as info:
        load_pruned(copy_of)
    one_sentence(info, "does not match its config.json")


def test_unknown_format_version(copy_of):
    manifest = json.loads((copy_of / "pruning.json").read_text())
    manifest["format_version"] = 99
    (copy_of / "pruning.json").write_text(json.dumps(manifest))
    with pytest.raises(UserError) as info:
        load_pruned(copy_of)
    one_sentence(info, "format version 99")


@pytest.mark.parametrize("missing", ["config.json", "model.safetensors"])
def test_missing_files(copy_of, missing):
    (copy_of / missing).unlink()
    with pytest.raises(UserError) as info:
        load_pruned(copy_of)
    one_sentence(info, missing)


def test_missing_manifest_is_explained(copy_of):
    (copy_of / "pruning.json").unlink()
    with pytest.raises(UserError) as info:
        load_pruned(copy_of)
    one_sentence(info, "has no pruning.json")
    with pytest.raises(UserError) as info:
        load_model(copy_of)  # would otherwise fall through to from_pretrained
    one_sentence(info, "cannot be loaded with from_pretrained")


def test_existing_output_needs_overwrite(artifact, tmp_path):
    _, model = artifact
    out = tmp_path / "out"
    save_pruned(model, None, out)
    (out / "marker").write_text("old")
    with pytest.raises(UserError) as info:
        save_pruned(model, None, out)
    one_sentence(info, "already exists; pass --overwrite")
    assert (out / "marker").exists()
    save_pruned(model, None, out, overwrite=True)
    assert not (out / "marker").exists() and (out / "pruning.json").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_a_crash_while_writing_leaves_nothing(artifact, tmp_path):
    class Exploding:
        def save_pretrained(self, path):
            (path / "half.json").write_text("{")
            raise RuntimeError("disk full")

    _, model = artifact
    with pytest.raises(RuntimeError, match="disk full"):
        save_pruned(model, None, tmp_path / "out", processor=Exploding())
    assert list(tmp_path.iterdir()) == []


def test_edited_kept_indices_fail_the_plan_checksum(copy_of):
    """Other valid indices of the same count load silently without it; recovery would recall the wrong rows."""
    manifest = json.loads((copy_of / "pruning.json").read_text())
    entry = next(v for v in manifest["groups"].values() if 0 < len(v["kept"]) < v["num_units"])
    dropped = sorted(set(range(entry["num_units"])) - set(entry["kept"]))
    entry["kept"] = sorted([*entry["kept"][1:], dropped[0]])
    (copy_of / "pruning.json").write_text(json.dumps(manifest))
    with pytest.raises(UserError) as info:
        load_pruned(copy_of)
    one_sentence(info, "does not match the checksum saved with the weights")
    manifest.pop("checksum")
    (copy_of / "pruning.json").write_text(json.dumps(manifest))
    assert load_pruned(copy_of) is not None  # what the checksum is there for: without it this loads
