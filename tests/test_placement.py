"""Device, precision and device map of scoring (`ukmp.placement`), checked on the CPU.

The GPU paths differ from these only in the device string: a device map whose parts all sit on the
CPU still runs through accelerate's dispatch and hooks (``force_hooks``), and bfloat16 runs on the
CPU, so the code a GPU would run is the code tested here.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from scipy.stats import spearmanr

from eval_tiny_model import tiny_model_dir
from ukmp.artifact import load_pruned, read_manifest
from ukmp.data.world_writer import write_split
from ukmp.distributed import World
from ukmp.errors import UserError
from ukmp.groups import PruningPlan
from ukmp.loading import load_model
from ukmp.method_scores import MethodScores
from ukmp.placement import Placement, parse_device_map, resolve_device, resolve_dtype, to_model
from ukmp.pruning import PruneConfig, prune, world_placement
from ukmp.surgery import apply_plan_physically

#: two parts, as a map over two GPUs would give (the vision tower, and everything else)
TWO_PARTS = '{"vision_model": "cpu", "language_model": "cpu", "": "cpu"}'


@pytest.fixture(scope="module")
def calib(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_split("train", 12, tmp_path_factory.mktemp("placement") / "calib")


def _scores(folder: Path) -> dict[str, torch.Tensor]:
    return MethodScores.load(folder / "scores.safetensors").scores


def _prune(out: Path, calib: Path, method: str = "ukmp", **placement) -> dict:
    config = PruneConfig(
        str(tiny_model_dir()),
        out,
        method,
        0.3,
        calib=calib,
        num_samples=4,
        batch_size=2,
        progress=False,
        placement=Placement(**placement),
    )
    return prune(config, verbose=False)


def test_default_on_a_cpu_machine_moves_and_casts_nothing() -> None:
    model = load_model(tiny_model_dir())
    pointers = [p.data_ptr() for p in model.parameters()]
    placed = Placement().place(model, runs=True, gradients=True)
    assert placed is model and [p.data_ptr() for p in model.parameters()] == pointers
    assert Placement().resolved() == Placement("cpu", "float32", None)


@pytest.mark.parametrize("method", ["ukmp", "llm-pruner-global", "wanda-sp"])
def test_a_model_split_by_a_device_map_scores_as_one_placement(tmp_path: Path, calib: Path, method: str) -> None:
    """The same scores through accelerate's dispatch (hooks on every part) as on one device."""
    _prune(tmp_path / "one", calib, method, device="cpu", dtype="float32")
    _prune(tmp_path / "split", calib, method, device="cpu", dtype="float32", device_map=TWO_PARTS)
    one, split = _scores(tmp_path / "one"), _scores(tmp_path / "split")
    assert one.keys() == split.keys()
    for name in one:
        torch.testing.assert_close(split[name], one[name], rtol=1e-5, atol=1e-9)
    assert read_manifest(tmp_path / "split")["groups"] == read_manifest(tmp_path / "one")["groups"]


def test_dispatch_attaches_accelerate_hooks() -> None:
    model = Placement("cpu", "float32", TWO_PARTS).place(load_model(tiny_model_dir()), runs=True, gradients=True)
    assert hasattr(model.vision_model, "_hf_hook") and hasattr(model.language_model, "_hf_hook")


def test_bfloat16_scoring_ranks_units_as_float32_and_saves_what_it_sliced(tmp_path: Path, calib: Path) -> None:
    summary = _prune(tmp_path / "bf16", calib, device="cpu", dtype="bfloat16")
    _prune(tmp_path / "fp32", calib, device="cpu", dtype="float32")
    low, full = _scores(tmp_path / "bf16"), _scores(tmp_path / "fp32")
    assert all(low[name].dtype in (torch.float32, torch.float64) for name in low)  # sums formed wide
    # a tiny random model's heads are near ties, so the ranks are compared over all units of the model
    # at once (the shipped model's per-group figures are in results/bf16-scoring/)
    names = sorted(full)
    pooled = [torch.cat([s[n].double() for n in names]).numpy() for s in (low, full)]
    assert spearmanr(*pooled).statistic > 0.98
    # only the plan came from the bf16 pass: the artifact holds the float32 base's own weights, sliced
    plan = PruningPlan.from_dict(read_manifest(tmp_path / "bf16")["groups"])
    expected = apply_plan_physically(load_model(tiny_model_dir()), plan).state_dict()
    saved = load_pruned(tmp_path / "bf16").state_dict()
    assert saved.keys() == expected.keys()
    assert all(saved[k].dtype == torch.float32 and torch.equal(saved[k], expected[k]) for k in saved)
    steps = summary["steps"]
    assert set(steps) == {"load", "score", "plan", "reload", "slice", "save"}
    assert steps["score"]["memory_device"] == "cpu" and steps["score"]["peak_memory_mb"] > 0


def test_peak_memory_is_measured_inside_each_method(tmp_path: Path, calib: Path) -> None:
    """Not the process's lifetime peak: the kernel's peak is reset when each scoring starts."""
    _prune(tmp_path / "u", calib)
    scoring = read_manifest(tmp_path / "u")["extra"]["scoring"]["scoring"]
    assert scoring["memory_kind"] == "peak RSS during this step"


def test_inputs_follow_the_model_device_and_precision() -> None:
    model = torch.nn.Linear(3, 2).to(torch.bfloat16)
    batch = to_model({"pixel_values": torch.ones(1, 3), "input_ids": torch.ones(1, 2, dtype=torch.long)}, model)
    assert batch["pixel_values"].dtype == torch.bfloat16 and batch["input_ids"].dtype == torch.long


def test_device_sentences(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("cuda") == torch.device("cuda", 0)
    assert resolve_device("auto") == torch.device("cuda", 0)
    with pytest.raises(UserError, match="cuda:0 to cuda:1"):
        resolve_device("cuda:2")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    with pytest.raises(UserError, match="cannot compute in bfloat16"):
        resolve_dtype("bfloat16", torch.device("cuda", 0))
    assert resolve_dtype("auto", torch.device("cuda", 0)) == "float32"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    assert resolve_dtype("auto", torch.device("cuda", 0)) == "bfloat16"
    assert parse_device_map('{"vision_model": 1, "": "cuda:0"}') == {"vision_model": "cuda:1", "": "cuda:0"}
    with pytest.raises(UserError, match="cuda:0 to cuda:1"):
        parse_device_map('{"": "cuda:3"}')


def test_device_map_from_a_file(tmp_path: Path) -> None:
    file = tmp_path / "map.json"
    file.write_text('{"vision_model": "cpu", "": "cpu"}')
    assert parse_device_map(str(file)) == {"vision_model": "cpu", "": "cpu"}
    model = Placement("cpu", "float32", str(file)).place(load_model(tiny_model_dir()), runs=False, gradients=False)
    assert hasattr(model.vision_model, "_hf_hook")


def test_launched_processes_each_take_their_own_device() -> None:
    world = World(rank=1, size=2, device="cuda:1")
    assert world_placement(Placement(), world).device == "cuda:1"
    assert world_placement(Placement(device="cpu"), world).device == "cpu"
    with pytest.raises(UserError, match="accelerate launch"):
        world_placement(Placement(device_map="auto"), world)


def test_a_data_free_method_keeps_the_base_dtype(tmp_path: Path) -> None:
    model = tmp_path / "bf16-model"
    shutil.copytree(tiny_model_dir(), model)
    load_model(model).to(torch.bfloat16).save_pretrained(model)
    config = PruneConfig(str(model), tmp_path / "out", "magnitude", 0.3, placement=Placement("cpu", "float32"))
    prune(config, verbose=False)
    assert read_manifest(tmp_path / "out")["dtype"] == "bfloat16"


def test_a_step_inside_another_keeps_the_outer_peak() -> None:
    """An inner step resets the process's peak counter; the outer step still reports its own whole peak."""
    import numpy as np

    from ukmp.peak_memory import PeakMeter, measured_peak

    with measured_peak("cpu") as outer:
        block = np.ones(64 * 2**20 // 8)  # 64 MiB, touched, then freed before the inner step
        del block
        with measured_peak("cpu") as inner:
            pass
    assert outer.kind == "peak RSS during this step"
    assert outer.mib >= inner.mib + 48  # the freed block counts for the outer step only
    assert PeakMeter.running == []
