"""The examples page: every model's captions and answers on the same images, from the evaluation compare ran.

One small comparison of the shipped model (it answers most questions right, so right and wrong
answers both occur; a random tiny model answers everything wrong) is checked from the outside: the
images the page should show and each answer's verdict are recomputed here from the data and the
kept evaluations, not read from the page's own document. The page is parsed with the standard
library's HTML parser and, where a Chromium and the Playwright package are installed, opened in
the browser too (the ratio switch is CSS only, which a parser cannot run).
"""

from __future__ import annotations

import base64
import json
import re
import shutil
from pathlib import Path

import pytest

from eval_tiny_model import build_tiny_instructblip, tiny_model_dir
from html_tree import Element, parse
from ukmp.cli import main
from ukmp.data.index import load_task
from ukmp.data.world_writer import write_split
from ukmp.evaluation.vqa_metric import vqa_accuracy

SHIPPED = "shapes-blip2-t5"
MODELS = ("dense", "magnitude-30", "random-30", "magnitude-60", "random-60")
LIMIT, CAPTION_LIMIT, EXAMPLES = 12, 3, 3


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("examples-data")
    return write_split("train", 4, root / "calib"), write_split("val", 4, root / "val")


def compare(model: str | Path, out: Path, world: tuple[Path, Path], *extra: str) -> int:
    calib, val = world
    argv = ["compare", str(model), "--calib", str(calib), "--eval", str(val), "--out", str(out), "--num-samples", "2"]
    argv += ["--methods", "magnitude,random", "--ratios", "0.3,0.6", "--tasks", "vqa,caption", "--no-progress"]
    argv += ["--limit", str(LIMIT), "--caption-limit", str(CAPTION_LIMIT), "--examples", str(EXAMPLES)]
    return main([*argv, *extra])


@pytest.fixture(scope="module")
def run(world: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("examples-run") / "run"
    assert compare(SHIPPED, out, world) == 0
    return out


def page(file: Path) -> Element:
    return parse(file.read_text())


def output_cells(root: Element) -> list[tuple[str, str, str, Element]]:
    """(image id, row kind, question id or image id, cell) of every model's output cell."""
    out = []
    for body in root.iter("tbody"):
        for row in body.iter("tr"):
            key = row.attrs.get("data-question") or row.attrs.get("data-row")
            for cell in row.iter("td"):
                if "output" in cell.classes:
                    out.append((body.attrs["data-item"], row.attrs["class"], key, cell))
    return out


def expected_images(val: Path) -> list[tuple[str, Path]]:
    """The first EXAMPLES images the evaluation read captions of, checked to have evaluated questions too."""
    captions = load_task(val, "val", "caption")[:CAPTION_LIMIT]
    asked = {r.image_path for r in load_task(val, "val", "vqa")[:LIMIT]}
    chosen = [(str(r.image_id), Path(r.image_path)) for r in captions[:EXAMPLES]]
    assert all(path in asked for _, path in chosen)  # else the page would rightly pick other images first
    return chosen


@pytest.mark.slow  # the shared compare run of the shipped model (~40 s)
def test_compare_page_shows_every_model_and_image_and_marks_wrong_answers(run: Path, world) -> None:
    root = page(run / "examples.html")
    # every model has a column: the dense one always shown, each method at each ratio behind the switch
    heads = {th.attrs["data-model"]: th for th in root.iter("th") if "data-model" in th.attrs}
    assert set(heads) == set(MODELS)
    assert {"pick", "r0", "d0"} <= heads["magnitude-30"].classes and {"pick", "r1"} <= heads["random-60"].classes
    assert "pick" not in heads["dense"].classes
    # every image of the sample, in order, embedded byte for byte
    images = expected_images(world[1])
    bodies = list(root.iter("tbody"))
    assert [b.attrs["data-item"] for b in bodies] == [i for i, _ in images]
    for body, (_, path) in zip(bodies, images, strict=True):
        src = next(body.iter("img")).attrs["src"]
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1]) == path.read_bytes()
    # each cell is the evaluation's own output; an answer is marked wrong exactly when it scores 0
    records = {str(r.question_id): r for r in load_task(world[1], "val", "vqa")[:LIMIT]}
    evals = {m: json.loads((run / "evals" / f"{m}.json").read_text())["tasks"] for m in MODELS}
    seen = {"right": 0, "wrong": 0}
    cells = output_cells(root)
    for _, kind, key, cell in cells:
        model = cell.attrs["data-model"]
        if kind == "caption":
            assert cell.text == (evals[model]["caption"]["predictions"][key] or "(empty)")
            assert not cell.classes & {"right", "wrong", "partly"}
            continue
        answer = evals[model]["vqa"]["predictions"][key]
        score = vqa_accuracy(answer, records[key].answers)
        assert cell.own_text() == (answer or "(empty)")
        marks = [span.text for span in cell.iter("span") if "mark" in span.classes]
        if score == 0:
            assert "wrong" in cell.classes and marks == ["✗"]
            seen["wrong"] += 1
        elif score == 1:
            assert "wrong" not in cell.classes and "right" in cell.classes and marks == ["✓"]
            seen["right"] += 1
    questions = sum(1 for r in records.values() if str(r.image_path) in {str(p) for _, p in images})
    assert len(cells) == len(MODELS) * (len(images) + questions)
    assert seen["right"] > 0 and seen["wrong"] > 0
    # the switch: one radio per ratio, the one nearest 50% checked, and a rule that shows its cells
    radios = {i.attrs["id"]: i for i in root.iter("input")}
    assert "checked" in radios["ratio-1"].attrs and "checked" not in radios["ratio-0"].attrs
    style = next(root.iter("style")).text
    assert "#ratio-0:checked ~ #draw-0:checked ~ table .pick.r0.d0" in style


@pytest.mark.slow  # the shared compare run of the shipped model (~40 s)
def test_markdown_page_has_the_same_tables_per_ratio(run: Path) -> None:
    text = (run / "examples.md").read_text()
    sections = re.split(r"^## ", text, flags=re.M)[1:]
    assert [s.splitlines()[0] for s in sections] == ["30% of the parameters removed", "60% of the parameters removed"]
    html_cells = output_cells(page(run / "examples.html"))
    for section, pct in zip(sections, ("30", "60"), strict=True):
        header = next(line for line in section.splitlines() if line.startswith("| image"))
        assert "**dense**" in header and "**magnitude**" in header and "**random**" in header
        for _, kind, _, cell in html_cells:
            model = cell.attrs["data-model"]
            if kind == "question" and model.endswith(pct) and "wrong" in cell.classes:
                assert f"| {cell.own_text()} ✗ |" in section or f"| {cell.own_text()} ✗\n" in section
    for src in re.findall(r'<img src="([^"]+)"', text):
        assert (run / src).is_file()


@pytest.mark.slow  # the shared compare run of the shipped model (~40 s)
def test_report_links_the_page_and_carries_its_own_copy(run: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "report"
    assert main(["report", str(run), "--out", str(out)]) == 0
    report = (out / "report.md").read_text()
    assert "[examples.html](examples.html)" in report and "[examples.md](examples.md)" in report
    copied = page(out / "examples.html")
    assert {th.attrs["data-model"] for th in copied.iter("th") if "data-model" in th.attrs} == set(MODELS)
    assert len(list(copied.iter("img"))) == EXAMPLES
    for src in re.findall(r'<img src="([^"]+)"', (out / "examples.md").read_text()):
        assert (out / src).is_file()


@pytest.mark.slow  # the shared compare run of the shipped model (~40 s)
def test_rerun_generates_nothing_again_and_an_old_evaluation_is_redone(run: Path, world, tmp_path: Path, capsys):
    out = tmp_path / "again"
    shutil.copytree(run, out)
    evals = sorted((out / "evals").glob("*.json"))
    stamps = {p: p.stat().st_mtime_ns for p in evals}
    # a smaller sample comes out of the same evaluations: no model is evaluated again
    assert compare(SHIPPED, out, world, "--examples", "2") == 0
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items())
    assert len(list(page(out / "examples.html").iter("tbody"))) == 2
    assert sorted(p.name for p in (out / "examples").iterdir()) == ["image-01.png", "image-02.png"]
    # an evaluation made before captions were kept is evaluated again, and only that one
    old = out / "evals" / "random-30.json"
    data = json.loads(old.read_text())
    del data["tasks"]["caption"]["predictions"]
    old.write_text(json.dumps(data))
    stamps = {p: p.stat().st_mtime_ns for p in evals}
    assert compare(SHIPPED, out, world, "--examples", "2") == 0
    assert "predictions" in json.loads(old.read_text())["tasks"]["caption"]
    assert [p.name for p in evals if p.stat().st_mtime_ns != stamps[p]] == ["random-30.json"]
    # an evaluation made with other settings is still refused, not mixed in
    capsys.readouterr()
    assert compare(SHIPPED, out, world, "--caption-limit", "2") == 2
    err = capsys.readouterr().err
    assert "--caption-limit 3, but this run asks for --caption-limit 2" in err and "Traceback" not in err


@pytest.mark.slow  # the shared compare run of the shipped model (~40 s)
def test_page_in_a_browser_switches_ratio(run: Path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("no Chromium on this machine")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            view = browser.new_page()
            view.goto((run / "examples.html").as_uri())

            def shown(model: str) -> bool:
                return view.locator(f'th[data-model="{model}"]').is_visible()

            assert shown("dense") and shown("magnitude-60") and not shown("magnitude-30")
            widths = view.eval_on_selector_all("img", "images => images.map(i => i.naturalWidth)")
            assert len(widths) == EXAMPLES and all(w > 0 for w in widths)
            assert view.locator('td.wrong[data-model="random-60"]').first.is_visible()
            view.click('label[for="ratio-0"]')
            assert shown("dense") and shown("magnitude-30") and not shown("magnitude-60")
        finally:
            browser.close()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["compare", SHIPPED, "--out", "OUT", "--examples", "-1"], "--examples must be 0 (no examples page)"),
        (["evaluate", SHIPPED, "--data", "shapes", "--out", "OUT/r.json", "--examples", "-1"], "--examples must be 0"),
        (["evaluate", SHIPPED, "--data", "shapes", "--out", "OUT/r.json", "--examples", "2"], "--task perplexity"),
    ],
)
def test_bad_examples_is_one_sentence(argv: list[str], message: str, tmp_path: Path, capsys) -> None:
    argv = [a.replace("OUT", str(tmp_path / "out")) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and err[0].startswith(f"ukmp {argv[0]}: error:")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("family", ["instructblip", "llava"])
def test_instructblip_and_llava_compares_show_their_answers(family: str, world, tmp_path: Path) -> None:
    if family == "llava":
        from tiny_llava import save_tiny_llava_with_processor

        model = save_tiny_llava_with_processor(tmp_path / "llava")
    else:
        model = build_tiny_instructblip(tmp_path / "instructblip", "t5")
    out = tmp_path / "ib"
    calib, val = world
    argv = ["compare", str(model), "--calib", str(calib), "--eval", str(val), "--out", str(out), "--no-progress"]
    argv += ["--methods", "magnitude", "--ratios", "0.3", "--tasks", "vqa", "--limit", "12", "--examples", "2"]
    assert main(argv) == 0
    doc = json.loads((out / "examples.json").read_text())
    assert doc["kind"] == "image" and [c["key"] for c in doc["columns"]] == ["dense", "magnitude-30"]
    root = page(out / "examples.html")
    assert len(list(root.iter("tbody"))) == 2 and len(list(root.iter("img"))) == 2
    evals = {m: json.loads((out / "evals" / f"{m}.json").read_text()) for m in ("dense", "magnitude-30")}
    cells = output_cells(root)
    assert cells and all(kind == "question" for _, kind, _, _ in cells)
    for _, _, qid, cell in cells:
        assert cell.own_text() == (evals[cell.attrs["data-model"]]["tasks"]["vqa"]["predictions"][qid] or "(empty)")


def test_seeds_page_switches_between_draws(world, tmp_path: Path) -> None:
    out = tmp_path / "seeds"
    calib, val = world
    argv = ["compare", str(tiny_model_dir()), "--calib", str(calib), "--eval", str(val), "--out", str(out)]
    argv += ["--methods", "random", "--ratios", "0.3", "--tasks", "vqa", "--limit", "6", "--examples", "2"]
    assert main([*argv, "--seeds", "2", "--num-samples", "2", "--no-progress"]) == 0
    root = page(out / "examples.html")
    heads = {th.attrs["data-model"]: th.classes for th in root.iter("th") if "data-model" in th.attrs}
    assert heads["seed-0/random-30"] >= {"r0", "d0"} and heads["seed-1/random-30"] >= {"r0", "d1"}
    labels = {label.attrs["for"]: label.text for label in root.iter("label")}
    assert labels["draw-0"] == "seed 0" and labels["draw-1"] == "seed 1"
    assert "Draws: seeds 0, 1" in root.text
    # each draw's folder has the page of its own draw
    assert "One calibration draw (seed 1)" in page(out / "seed-1" / "examples.html").text


def test_language_model_page_shows_prompts_and_continuations(lm_dir: Path, corpus: Path, tmp_path: Path) -> None:
    folder = tmp_path / "lm-run"
    pruned = folder / "magnitude-25"
    assert main(["prune", str(lm_dir), "--method", "magnitude", "--ratio", "0.25", "--out", str(pruned)]) == 0
    for model, name in ((lm_dir, "dense"), (pruned, "magnitude-25")):
        argv = ["evaluate", str(model), "--task", "perplexity", "--data", str(corpus), "--seq-len", "12"]
        assert main([*argv, "--examples", "2", "--no-progress", "--out", str(folder / f"{name}.json")]) == 0
    results = {n: json.loads((folder / f"{n}.json").read_text()) for n in ("dense", "magnitude-25")}
    kept = {n: r["tasks"]["perplexity"]["continuations"]["items"] for n, r in results.items()}
    assert [i["prompt"] for i in kept["dense"]] == [i["prompt"] for i in kept["magnitude-25"]]
    assert main(["report", str(folder)]) == 0
    root = page(folder / "report" / "examples.html")
    prompts = [td.text for td in root.iter("td") if "prompt" in td.classes]
    assert prompts == [i["prompt"] for i in kept["dense"]] and all(prompts)
    for _, kind, key, cell in output_cells(root):
        model = "dense" if cell.attrs["data-model"] == "dense" else "magnitude-25"
        assert kind == "prompt" and cell.text == (kept[model][int(key)]["continuation"] or "(empty)")
    assert {th.attrs["data-model"] for th in root.iter("th") if "data-model" in th.attrs} == set(kept)
    assert "[examples.html](examples.html)" in (folder / "report" / "report.md").read_text()
