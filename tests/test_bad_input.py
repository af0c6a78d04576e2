"""A user's mistakes, in one table: each ends with one sentence and exit code 2, nothing else.

Every case builds its own broken input from small, valid pieces (a tiny BLIP-2 with its processor,
a few world records, a pruned artifact), runs the real command line in-process and checks the
same four things: exit code 2, exactly one `error:` line naming the problem (no traceback), the
inputs byte-for-byte untouched, and no output or temporary folder of ours left behind.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image

from eval_tiny_model import tiny_model_dir
from ukmp.cli import main
from ukmp.data.world_writer import write_split
from ukmp.pruning import PruneConfig, prune


@dataclass
class World:
    """Valid pieces a case copies and breaks."""

    root: Path
    model: Path
    calib: Path
    val: Path
    pruned: Path


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    root = tmp_path_factory.mktemp("bad-input")
    model = root / "model"
    shutil.copytree(tiny_model_dir(), model)
    calib = write_split("train", 6, root / "calib")
    val = write_split("val", 3, root / "val")
    pruned = root / "pruned"
    prune(PruneConfig(str(model), pruned, "magnitude", 0.3), verbose=False)
    return World(root, model, calib, val, pruned)


@dataclass(frozen=True)
class Case:
    """One mistake: how to build it (returns argv, the inputs that must stay untouched, the output)."""

    name: str
    build: Callable[[World, Path], tuple[list[str], list[Path], Path | None]]
    expected: str


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _prune(model: Path | str, out: Path, *extra: str, method: str = "magnitude") -> list[str]:
    return ["prune", str(model), "--method", method, "--ratio", "0.3", "--out", str(out), *extra]


def _calibrated(w: World, model: Path | str, calib: Path | str, out: Path, *extra: str) -> list[str]:
    argv = _prune(model, out, "--calib", str(calib), "--num-samples", "2", "--batch-size", "2", method="flap")
    return [*argv, *extra]


# ---------------------------------------------------------------------------------- the broken inputs


def truncated_weights(w: World, tmp: Path):
    model = _copy(w.model, tmp / "model")
    weights = model / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    return _prune(model, tmp / "out"), [model], tmp / "out"


def empty_weights(w: World, tmp: Path):
    model = _copy(w.model, tmp / "model")
    (model / "model.safetensors").write_bytes(b"")
    return _prune(model, tmp / "out"), [model], tmp / "out"


def corrupt_png(w: World, tmp: Path):
    calib = _copy(w.calib, tmp / "calib")
    for image in (calib / "images").rglob("*.png"):  # whichever samples the draw picks
        image.write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really a png" * 4)
    return _calibrated(w, w.model, calib, tmp / "out"), [calib, w.model], tmp / "out"


def processor_size_mismatch(w: World, tmp: Path):
    model = _copy(w.model, tmp / "model")
    pre = model / "processor_config.json"
    config = json.loads(pre.read_text())
    config["image_processor"]["size"] = {"height": 40, "width": 40}
    pre.write_text(json.dumps(config))
    return _calibrated(w, model, w.calib, tmp / "out"), [model], tmp / "out"


def perplexity_on_blip2(w: World, tmp: Path):
    text = tmp / "held-out.txt"
    text.write_text("a red circle\n\na blue square\n")
    out = tmp / "ppl.json"
    return ["evaluate", str(w.model), "--task", "perplexity", "--data", str(text), "--out", str(out)], [w.model], out


def out_is_cwd(w: World, tmp: Path):
    return _prune(w.model, Path("."), "--overwrite"), [w.model], None


def out_is_model(w: World, tmp: Path):
    model = _copy(w.model, tmp / "model")
    return _prune(model, model, "--overwrite"), [model], None


def out_inside_model(w: World, tmp: Path):
    model = _copy(w.model, tmp / "model")
    return _prune(model, model / "pruned"), [model], None


def out_contains_model(w: World, tmp: Path):
    model = _copy(w.model, tmp / "work" / "model")
    return _prune(model, tmp / "work", "--overwrite"), [model], None


def overwrite_foreign_folder(w: World, tmp: Path):
    out = tmp / "photos"
    out.mkdir()
    (out / "holiday.jpg").write_bytes(b"precious")
    return _prune(w.model, out, "--overwrite"), [w.model, out], None


def out_not_writable(w: World, tmp: Path):
    return _prune(w.model, Path("/proc/ukmp-cannot-write-here")), [w.model], None


def out_is_a_file(w: World, tmp: Path):
    out = tmp / "file.txt"
    out.write_text("mine")
    return _prune(w.model, out), [w.model, out], None


def missing_image(w: World, tmp: Path):
    calib = _copy(w.calib, tmp / "calib")
    sorted((calib / "images").rglob("*.png"))[0].unlink()
    return _calibrated(w, w.model, calib, tmp / "out"), [calib], tmp / "out"


def missing_calib_file(w: World, tmp: Path):
    return _calibrated(w, w.model, tmp / "corpus.jsonl", tmp / "out"), [w.model], tmp / "out"


def calib_json_file(w: World, tmp: Path):
    file = tmp / "pairs.json"
    file.write_text("[]")
    return _calibrated(w, w.model, file, tmp / "out"), [file], tmp / "out"


def local_looking_missing_model(w: World, tmp: Path):
    (tmp / "models").mkdir()
    return _prune(tmp / "models" / "x", tmp / "out"), [], tmp / "out"


def relative_missing_model(w: World, tmp: Path):
    return _prune("models/definitely-not-here", tmp / "out"), [], tmp / "out"


def missing_gguf(w: World, tmp: Path):
    return _prune("x.gguf", tmp / "out"), [], tmp / "out"


def unsupported_gguf(w: World, tmp: Path):
    from tiny_gguf import write_gguf_with_architecture

    file = write_gguf_with_architecture(tmp / "falcon.gguf", "falcon")
    return _prune(file, tmp / "out"), [file], tmp / "out"


def not_a_gguf(w: World, tmp: Path):
    file = tmp / "model.gguf"
    file.write_bytes(b"GGUF" + b"\x00" * 20)
    return _prune(file, tmp / "out"), [file], tmp / "out"


def ratio_as_percentage(w: World, tmp: Path):
    argv = ["prune", str(w.model), "--method", "magnitude", "--ratio", "50", "--out", str(tmp / "out")]
    return argv, [w.model], tmp / "out"


def non_utf8_captions(w: World, tmp: Path):
    calib = _copy(w.calib, tmp / "calib")
    captions = next(p for p in calib.glob("cc595k_*.json"))
    captions.write_bytes(captions.read_bytes().replace(b"a ", b"\xe9\xff ", 3))
    return _calibrated(w, w.model, calib, tmp / "out"), [calib], tmp / "out"


def vqa_annotations_mismatch(w: World, tmp: Path):
    val = _copy(w.val, tmp / "val")
    ann_file = next(val.glob("vqa_*_annotations.json"))
    ann = json.loads(ann_file.read_text())
    for entry in ann["annotations"]:
        entry["question_id"] = entry["question_id"] + 10_000
    ann_file.write_text(json.dumps(ann))
    out = tmp / "r.json"
    return ["evaluate", str(w.pruned), "--data", str(val), "--task", "vqa", "--out", str(out)], [val], out


def artifact_without_tokenizer(w: World, tmp: Path):
    pruned = _copy(w.pruned, tmp / "pruned")
    for name in ("tokenizer.json", "tokenizer_config.json", "processor_config.json", "preprocessor_config.json"):
        (pruned / name).unlink(missing_ok=True)
    out = tmp / "r.json"
    return ["evaluate", str(pruned), "--data", str(w.val), "--task", "vqa", "--out", str(out)], [pruned], out


def hub_id_typo(w: World, tmp: Path):
    return _prune("Salesforce/blip2-flan-t5-xll", tmp / "out"), [], tmp / "out"


def manifest_plan_edited(w: World, tmp: Path):
    pruned = _copy(w.pruned, tmp / "pruned")
    manifest = json.loads((pruned / "pruning.json").read_text())
    group = next(g for g in manifest["groups"].values() if 0 < len(g["kept"]) < g["num_units"])
    missing = sorted(set(range(group["num_units"])) - set(group["kept"]))
    group["kept"] = sorted([*group["kept"][1:], missing[0]])
    (pruned / "pruning.json").write_text(json.dumps(manifest))
    out = tmp / "r.json"
    return ["evaluate", str(pruned), "--data", str(w.val), "--task", "vqa", "--out", str(out)], [pruned], out


def moved_base_model(w: World, tmp: Path):
    model = _copy(w.model, tmp / "model")
    pruned = tmp / "pruned"
    prune(PruneConfig(str(model), pruned, "magnitude", 0.3), verbose=False)
    shutil.move(model, tmp / "moved")
    out = tmp / "rec"
    return ["recover", str(pruned), "--data", str(w.calib), "--out", str(out)], [pruned], out


def recover_dense_model(w: World, tmp: Path):
    out = tmp / "rec"
    return ["recover", str(w.model), "--data", str(w.calib), "--out", str(out)], [w.model], out


def recover_into_pruned(w: World, tmp: Path):
    pruned = _copy(w.pruned, tmp / "pruned")
    return ["recover", str(pruned), "--data", str(w.calib), "--out", str(pruned), "--overwrite"], [pruned], None


def scores_file_missing(w: World, tmp: Path):
    return _prune(w.model, tmp / "out", "--scores", str(tmp / "scores.safetensors")), [w.model], tmp / "out"


def unknown_component(w: World, tmp: Path):
    return _prune(w.model, tmp / "out", "--components", "vision,audio"), [w.model], tmp / "out"


def bad_threshold(w: World, tmp: Path):
    return _calibrated(w, w.model, w.calib, tmp / "out", "--threshold", "abc"), [w.model], tmp / "out"


def zero_samples(w: World, tmp: Path):
    argv = _prune(w.model, tmp / "out", "--calib", str(w.calib), "--num-samples", "0", method="flap")
    return argv, [w.model], tmp / "out"


def unknown_calib_split(w: World, tmp: Path):
    return _calibrated(w, w.model, w.calib, tmp / "out", "--calib-split", "nope"), [w.model], tmp / "out"


def calib_without_index(w: World, tmp: Path):
    (tmp / "empty").mkdir()
    return _calibrated(w, w.model, tmp / "empty", tmp / "out"), [w.model], tmp / "out"


def jsonl_without_text(w: World, tmp: Path):
    file = tmp / "corpus.jsonl"
    file.write_text('{"body": "a red circle"}\n')
    return _calibrated(w, w.model, file, tmp / "out"), [file], tmp / "out"


def evaluate_missing_model(w: World, tmp: Path):
    out = tmp / "r.json"
    return ["evaluate", str(tmp / "nope"), "--data", str(w.val), "--out", str(out)], [], out


def evaluate_out_is_folder(w: World, tmp: Path):
    (tmp / "results").mkdir()
    return ["evaluate", str(w.pruned), "--data", str(w.val), "--task", "vqa", "--out", str(tmp / "results")], [], None


def evaluate_zero_limit(w: World, tmp: Path):
    out = tmp / "r.json"
    return ["evaluate", str(w.pruned), "--data", str(w.val), "--limit", "0", "--out", str(out)], [], out


def compare_unknown_method(w: World, tmp: Path):
    argv = ["compare", str(w.model), "--methods", "ukmp,magic", "--calib", str(w.calib), "--eval", str(w.val)]
    return [*argv, "--out", str(tmp / "cmp")], [w.model], tmp / "cmp"


def compare_ratio_percentages(w: World, tmp: Path):
    argv = ["compare", str(w.model), "--methods", "magnitude", "--ratios", "20,50", "--eval", str(w.val)]
    return [*argv, "--out", str(tmp / "cmp")], [w.model], tmp / "cmp"


def compare_out_is_model(w: World, tmp: Path):
    model = _copy(w.model, tmp / "model")
    argv = ["compare", str(model), "--methods", "magnitude", "--eval", str(w.val), "--overwrite"]
    return [*argv, "--out", str(model)], [model], None


def bench_missing_model(w: World, tmp: Path):
    return ["bench", str(tmp / "nope"), "--out", str(tmp / "b.json")], [], tmp / "b.json"


def inspect_a_file(w: World, tmp: Path):
    file = tmp / "notes.txt"
    file.write_text("hello")
    return ["inspect", str(file)], [file], None


def data_unknown_split(w: World, tmp: Path):
    return ["data", "shapes", "--split", "nope", "--n", "3", "--out", str(tmp / "d")], [], tmp / "d"


def zoo_unknown_name(w: World, tmp: Path):
    return ["zoo", "verify", "shapes-blip2-t6"], [], None


def report_missing_run(w: World, tmp: Path):
    return ["report", str(tmp / "no-run")], [], None


def recover_bad_vqa_fraction(w: World, tmp: Path):
    out = tmp / "rec"
    argv = ["recover", str(w.pruned), "--data", str(w.calib), "--out", str(out), "--vqa-fraction", "1.5"]
    return argv, [w.pruned], out


def config_json_broken(w: World, tmp: Path):
    model = _copy(w.model, tmp / "model")
    (model / "config.json").write_text("{ not json")
    return _prune(model, tmp / "out"), [model], tmp / "out"


def demo_into_foreign_folder(w: World, tmp: Path):
    out = tmp / "documents"
    out.mkdir()
    (out / "thesis.tex").write_text("years of work")
    return ["demo", "--out", str(out)], [out], None


def device_cuda_without_cuda(w: World, tmp: Path):
    return _prune(w.model, tmp / "out", "--device", "cuda"), [w.model], tmp / "out"


def device_nonsense(w: World, tmp: Path):
    return _prune(w.model, tmp / "out", "--device", "gpu0"), [w.model], tmp / "out"


def device_map_unknown_module(w: World, tmp: Path):
    device_map = '{"vision_model": "cpu", "text_tower": "cpu"}'
    return _calibrated(w, w.model, w.calib, tmp / "out", "--device-map", device_map), [w.model], tmp / "out"


def device_map_on_disk(w: World, tmp: Path):
    return _prune(w.model, tmp / "out", "--device-map", '{"": "disk"}'), [w.model], tmp / "out"


def device_map_not_json(w: World, tmp: Path):
    return _prune(w.model, tmp / "out", "--device-map", "{vision: cpu"), [w.model], tmp / "out"


def compare_device_cuda_without_cuda(w: World, tmp: Path):
    argv = ["compare", str(w.model), "--methods", "magnitude", "--eval", str(w.val), "--device", "cuda:1"]
    return [*argv, "--out", str(tmp / "cmp")], [w.model], tmp / "cmp"


CASES = [
    Case("truncated dense model.safetensors", truncated_weights, "is truncated or corrupt"),
    Case("empty dense model.safetensors", empty_weights, "is truncated or corrupt"),
    Case("corrupt PNG in the calibration data", corrupt_png, "is not a readable image"),
    Case("processor image size differs from the model's", processor_size_mismatch, "does not match the model"),
    Case("perplexity on a T5 vision-language model", perplexity_on_blip2, "perplexity needs a decoder-only language"),
    Case("--out . --overwrite", out_is_cwd, "is the current folder"),
    Case("--out MODEL --overwrite", out_is_model, "is the input model"),
    Case("--out inside the input model", out_inside_model, "inside the input model"),
    Case("--out contains the input model", out_contains_model, "contains the input model"),
    Case("--overwrite on a folder ukmp did not write", overwrite_foreign_folder, "not a ukmp output"),
    Case("--out not writable", out_not_writable, "cannot write"),
    Case("--out is a file", out_is_a_file, "is a file"),
    Case("a calibration record's image is missing", missing_image, "missing image file"),
    Case("calibration file that does not exist", missing_calib_file, "--calib"),
    Case("calibration given as a .json file", calib_json_file, "--calib"),
    Case("local-looking model path that does not exist", local_looking_missing_model, "does not exist"),
    Case("relative model path under a missing folder", relative_missing_model, "does not exist"),
    Case("a .gguf path that does not exist", missing_gguf, "does not exist"),
    Case("GGUF of an unsupported architecture", unsupported_gguf, "architecture 'falcon'"),
    Case("a .gguf file that is not GGUF", not_a_gguf, "not a readable GGUF file"),
    Case("--ratio given as a percentage", ratio_as_percentage, "--ratio 0.5"),
    Case("non-UTF-8 captions", non_utf8_captions, "encoding"),
    Case("VQA annotations that do not match the questions", vqa_annotations_mismatch, "annotation"),
    Case("artifact folder without its tokenizer", artifact_without_tokenizer, "processor"),
    Case("hub id typo (offline)", hub_id_typo, "Hugging Face Hub"),
    Case("manifest kept indices edited", manifest_plan_edited, "checksum"),
    Case("base model moved after pruning", moved_base_model, "--teacher"),
    Case("recover on a dense model", recover_dense_model, "not a ukmp pruned model"),
    Case("recover --out PRUNED --overwrite", recover_into_pruned, "is the input model"),
    Case("--scores file that does not exist", scores_file_missing, "does not exist"),
    Case("unknown component", unknown_component, "audio"),
    Case("--threshold that is not a number", bad_threshold, "threshold"),
    Case("--num-samples 0", zero_samples, "--num-samples"),
    Case("unknown calibration split", unknown_calib_split, "nope"),
    Case("calibration folder without an index", calib_without_index, "ukmp_data.json"),
    Case("JSONL calibration without a text field", jsonl_without_text, "text"),
    Case("evaluate a model that does not exist", evaluate_missing_model, "not found"),
    Case("evaluate --out is a folder", evaluate_out_is_folder, "is a folder"),
    Case("evaluate --limit 0", evaluate_zero_limit, "--limit"),
    Case("compare with an unknown method", compare_unknown_method, "magic"),
    Case("compare --ratios as percentages", compare_ratio_percentages, "0.2,0.5"),
    Case("compare --out MODEL --overwrite", compare_out_is_model, "is the input model"),
    Case("bench a model that does not exist", bench_missing_model, "does not exist"),
    Case("inspect a plain file", inspect_a_file, "is a file"),
    Case("data with an unknown split", data_unknown_split, "nope"),
    Case("zoo verify with a misspelt name", zoo_unknown_name, "shapes-blip2-t6"),
    Case("report of a run folder that does not exist", report_missing_run, "is not a folder"),
    Case("--vqa-fraction above 1", recover_bad_vqa_fraction, "--vqa-fraction"),
    Case("config.json that is not JSON", config_json_broken, "config.json"),
    Case("demo --out a folder of the user's", demo_into_foreign_folder, "not a ukmp output"),
    Case("--device cuda on a machine without CUDA", device_cuda_without_cuda, "needs CUDA"),
    Case("--device that is no device", device_nonsense, "--device must be"),
    Case("--device-map naming a module the model lacks", device_map_unknown_module, "text_tower"),
    Case("--device-map putting the model on disk", device_map_on_disk, "on disk"),
    Case("--device-map that is not JSON", device_map_not_json, "--device-map must be"),
    Case("compare --device cuda:1 without CUDA", compare_device_cuda_without_cuda, "needs CUDA"),
]


def fingerprint(path: Path) -> dict[str, str]:
    """Every file under `path` (or the file itself) with the hash of its bytes."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def our_leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".tmp-" in p.name or ".old-" in p.name)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input(case: Case, world: World, tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    argv, inputs, out = case.build(world, tmp_path)
    before = {str(p): fingerprint(p) for p in inputs}
    listing = sorted(p.name for p in tmp_path.iterdir())
    capsys.readouterr()
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse's own usage errors: one "error:" line after the usage, exit 2
        code = exc.code
    _, err = capsys.readouterr()
    assert code == 2, err
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if "error:" in line]
    assert len(lines) == 1, err
    assert case.expected in lines[0], lines[0]
    for p in inputs:
        assert p.exists() and fingerprint(p) == before[str(p)], f"{p} was changed"
    if out is not None:
        assert not out.exists(), f"{out} was written"
    assert sorted(p.name for p in tmp_path.iterdir()) == listing
    assert our_leftovers(tmp_path) == []


def test_the_table_is_long_enough() -> None:
    assert len(CASES) >= 40
    assert len({c.name for c in CASES}) == len(CASES)


def test_gguf_header_helper_writes_what_it_says(tmp_path: Path) -> None:
    from tiny_gguf import write_gguf_with_architecture

    file = write_gguf_with_architecture(tmp_path / "g.gguf", "falcon")
    magic, version = struct.unpack("<4sI", file.read_bytes()[:8])
    assert magic == b"GGUF" and version == 3


def test_mixed_image_sizes_and_modes_calibrate(world: World, tmp_path: Path, capsys) -> None:
    """Not a mistake: RGBA, grayscale and odd-sized images are converted like any processor would."""
    calib = _copy(world.calib, tmp_path / "calib")
    images = sorted((calib / "images").rglob("*.png"))
    Image.open(images[0]).convert("RGBA").resize((50, 70)).save(images[0])
    Image.open(images[1]).convert("L").resize((90, 30)).save(images[1])
    code = main(_calibrated(world, world.model, calib, tmp_path / "out"))
    assert code == 0, capsys.readouterr().err
    assert (tmp_path / "out" / "pruning.json").is_file()
