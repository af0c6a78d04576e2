"""Save -> load in a fresh process is bit-identical; dense checkpoints load through load_model."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from safetensors.torch import load_file, save_file

import ukmp
from test_surgery_equivalence import heterogeneous_plan
from tiny_models import blip2_inputs, tiny_blip2
from ukmp.artifact import save_pruned, state_dict_sha256
from ukmp.errors import UserError
from ukmp.loading import load_model
from ukmp.surgery import apply_plan_physically

FRESH = textwrap.dedent(
    """
    import sys, torch
    from safetensors.torch import load_file, save_file
    import ukmp
    torch.set_num_threads(int(sys.argv[2]))  # same thread count as the saving process: same reductions
    out = {}
    for name in sys.argv[3:]:
        model = ukmp.load_pruned(f"{sys.argv[1]}/{name}")
        assert not model.training
        # clone: tensors read from a file may be unaligned, which changes CPU kernel rounding
        inputs = {k: v.clone() for k, v in load_file(f"{sys.argv[1]}/{name}.inputs.safetensors").items()}
        with torch.no_grad():
            out[name] = model(**inputs).logits.contiguous()
    save_file(out, f"{sys.argv[1]}/fresh.safetensors")
    """
)


def pruned(lm: str, seed: int = 0):
    model = tiny_blip2(lm, seed=seed)
    checksum = state_dict_sha256(model)
    return apply_plan_physically(model, heterogeneous_plan(model, seed)), checksum


def test_save_then_load_in_a_fresh_process_is_bit_identical(tmp_path):
    expected = {}
    for lm in ("t5", "llama"):
        model, checksum = pruned(lm)
        save_pruned(model, None, tmp_path / lm, base_model_ref="tiny", base_checksum=checksum, method="test",
                    options={"k": 1}, seed=3, target_ratio=0.5)  # fmt: skip
        inputs = blip2_inputs(lm)
        save_file(inputs, str(tmp_path / f"{lm}.inputs.safetensors"))
        with torch.no_grad():
            expected[lm] = model(**inputs).logits
    threads = str(torch.get_num_threads())
    subprocess.run([sys.executable, "-c", FRESH, str(tmp_path), threads, "t5", "llama"], check=True)
    fresh = load_file(str(tmp_path / "fresh.safetensors"))
    for lm in ("t5", "llama"):
        assert torch.equal(fresh[lm], expected[lm]), lm


def test_manifest_records_what_was_done(tmp_path):
    model, checksum = pruned("opt")
    plan = model.ukmp_plan
    before_total = sum(p.numel() for p in tiny_blip2("opt").parameters())
    save_pruned(model, plan, tmp_path / "a", base_model_ref="base/ref", base_checksum=checksum,
                method="magnitude", options={"ratio": 0.4}, seed=7, target_ratio=0.4)  # fmt: skip
    manifest = json.loads((tmp_path / "a" / "pruning.json").read_text())
    assert manifest["format_version"] == 1 and manifest["ukmp_version"] == ukmp.__version__
    assert manifest["base_model"] == {
        "reference": "base/ref",
        "sha256": checksum,
        "checksum_method": manifest["base_model"]["checksum_method"],
        "source": None,  # set only when the base weights came from a quantised file (GGUF)
        "revision": None,  # the hub commit of a hub base model
    }
    assert manifest["method"] == {"name": "magnitude", "options": {"ratio": 0.4}} and manifest["seed"] == 7
    assert manifest["parameters"]["before"]["total"] == before_total
    assert manifest["parameters"]["after"]["total"] == sum(p.numel() for p in model.parameters())
    removed = before_total - manifest["parameters"]["after"]["total"]
    assert manifest["achieved_ratio"] == pytest.approx(removed / before_total)
    assert {k: v["kept"] for k, v in manifest["groups"].items()} == plan.kept
    assert "recovery" in manifest
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [
        "config.json",
        "model.safetensors",
        "pruning.json",
    ]
    assert not list(tmp_path.glob(".a.*"))  # no temporary directory left behind


def test_load_model_handles_dense_checkpoints_and_artifacts(tmp_path):
    dense = tiny_blip2("t5")
    dense.save_pretrained(tmp_path / "dense")
    inputs = blip2_inputs("t5")
    loaded = load_model(tmp_path / "dense")
    assert type(loaded).__name__ == "Blip2ForConditionalGeneration" and not loaded.training
    with torch.no_grad():
        torch.testing.assert_close(loaded(**inputs).logits, dense(**inputs).logits, atol=0, rtol=0)

    model = apply_plan_physically(copy.deepcopy(dense), heterogeneous_plan(dense, 1))
    save_pruned(model, None, tmp_path / "pruned")
    again = load_model(str(tmp_path / "pruned"))
    assert again.ukmp_manifest["format_version"] == 1
    with torch.no_grad():
        assert torch.equal(again(**inputs).logits, model(**inputs).logits)


def test_missing_paths_and_unreachable_hub_ids_are_one_sentence(tmp_path):
    with pytest.raises(UserError, match="does not exist") as info:
        load_model(tmp_path / "nowhere")
    assert "\n" not in str(info.value)
    script = (
        "from ukmp.loading import load_model\n"
        "try:\n    load_model('some-org/not-a-model-ukmp-test')\n"
        "except Exception as e:\n    print(type(e).__name__, e)\n"
    )
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf"))
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env).stdout
    assert out.startswith("UserError some-org/not-a-model-ukmp-test does not exist locally and could not be fetched")


def test_load_pruned_builds_the_base_on_the_meta_device(tmp_path, monkeypatch):
    """The dense base is never materialised: it is built empty and only the saved tensors become real."""
    import ukmp.artifact as artifact_module

    built_on: list[torch.device] = []
    real_model_class = artifact_module.model_class

    def spying_model_class(config, fallback=None):
        cls = real_model_class(config, fallback)

        class Spy(cls):
            @classmethod
            def _from_config(klass, *args, **kwargs):
                model = cls._from_config(*args, **kwargs)
                built_on.append(next(model.parameters()).device)
                return model

        return Spy

    monkeypatch.setattr(artifact_module, "model_class", spying_model_class)
    model, checksum = pruned("t5")
    save_pruned(model, None, tmp_path / "t5", base_model_ref="tiny", base_checksum=checksum, method="test",
                options={}, seed=0, target_ratio=0.5)  # fmt: skip
    loaded = artifact_module.load_pruned(tmp_path / "t5")
    assert built_on == [torch.device("meta")]
    assert all(p.device.type == "cpu" for p in loaded.parameters())
    assert all(b.device.type == "cpu" for b in loaded.buffers())
