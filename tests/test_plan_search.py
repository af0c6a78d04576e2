"""Plan search: masked candidates compute what sliced ones do; the search keeps the lowest-loss plan."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch

from eval_tiny_model import tiny_model_dir
from test_surgery_equivalence import heterogeneous_plan
from tiny_models import blip2_inputs, tiny_blip2
from ukmp.adapters import find_adapter
from ukmp.cli import main
from ukmp.data.world_writer import write_split
from ukmp.methods.magnitude import magnitude_scores
from ukmp.planning.schedules import plan_from_scores
from ukmp.planning.search import PlanSearchOptions, consumer_inputs_masked, perturbed_scores, search_plan
from ukmp.removal_cost import mean_target_nll
from ukmp.surgery import apply_plan_physically


@pytest.mark.parametrize("lm", ["t5", "opt", "llama"])
def test_masked_consumer_inputs_compute_what_the_sliced_model_computes(lm):
    model = tiny_blip2(lm, seed=2)
    groups = find_adapter(model).all_groups(model)
    plan = heterogeneous_plan(model, 2)
    inputs = blip2_inputs(lm, seed=2)
    with torch.no_grad():
        dense = model(**inputs).logits
        with consumer_inputs_masked(model, groups, plan):
            masked = model(**inputs).logits
        after = model(**inputs).logits
        sliced = apply_plan_physically(copy.deepcopy(model), plan)(**inputs).logits
    assert not torch.allclose(dense, masked, atol=1e-3)
    torch.testing.assert_close(masked, sliced, atol=1e-5, rtol=0)
    torch.testing.assert_close(after, dense, atol=0, rtol=0)  # the hooks are gone


def test_perturbation_multiplies_each_score_by_a_seeded_log_normal_factor():
    scores = {"b": torch.tensor([1.0, -2.0]), "a": torch.tensor([4.0])}
    out = perturbed_scores(scores, 0.5, torch.Generator().manual_seed(3))
    noise = torch.randn(3, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    # groups in sorted order: a draws first, then b
    torch.testing.assert_close(out["a"].double(), torch.tensor([4.0], dtype=torch.float64) * torch.exp(0.5 * noise[:1]))
    torch.testing.assert_close(
        out["b"].double(), torch.tensor([1.0, -2.0], dtype=torch.float64) * torch.exp(0.5 * noise[1:])
    )
    assert out["b"][1] < 0  # signs never change


def _setup():
    model = tiny_blip2("t5", seed=4).eval()
    groups = find_adapter(model).groups(model)
    scores = magnitude_scores(model, groups, seed=0)
    basis = sum(p.numel() for p in model.parameters())

    def make_plan(s):
        return plan_from_scores(s, groups, schedule="global", target_ratio=0.3, basis_params=basis)

    batches = []
    for seed in (5, 6):
        batch = blip2_inputs("t5", seed=seed)
        batch["labels"] = batch.pop("decoder_input_ids")
        batches.append(batch)
    return model, groups, scores, make_plan, batches


def test_one_candidate_is_the_methods_own_plan_and_the_search_keeps_the_lowest_loss():
    model, groups, scores, make_plan, batches = _setup()
    plain, trace = search_plan(model, groups, scores, make_plan, batches, PlanSearchOptions(candidates=1), seed=0)
    assert plain.plan.kept == make_plan(scores).plan.kept and trace["chosen"] == 0

    options = PlanSearchOptions(candidates=6, spread=1.0)
    chosen, trace = search_plan(model, groups, scores, make_plan, batches, options, seed=3, progress=False)
    dense_copy = copy.deepcopy(model)
    assert trace["losses"][0] == pytest.approx(
        mean_target_nll(apply_plan_physically(dense_copy, plain.plan), batches), abs=1e-5
    )
    # on this seed a perturbed plan answers better than the scores' own one, and the search keeps it
    assert trace["chosen"] != 0 and trace["losses"][trace["chosen"]] == min(trace["losses"])
    assert chosen.plan.kept != plain.plan.kept
    sliced = apply_plan_physically(copy.deepcopy(model), chosen.plan)
    assert mean_target_nll(sliced, batches) == pytest.approx(min(trace["losses"]), abs=1e-5)


@pytest.fixture(scope="module")
def calib(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_split("train", 8, tmp_path_factory.mktemp("calib"))


def test_prune_records_the_search_in_the_manifest(calib: Path, tmp_path: Path) -> None:
    out = tmp_path / "pruned"
    argv = ["prune", str(tiny_model_dir()), "--method", "magnitude", "--ratio", "0.3", "--out", str(out)]
    assert main([*argv, "--calib", str(calib), "--plan-search", "3", "--plan-search-samples", "5"]) == 0
    search = json.loads((out / "pruning.json").read_text())["method"]["options"]["plan_search"]
    assert search["candidates"] == 3 and len(search["losses"]) == 3 and search["samples"] == 5
    assert search["losses"][search["chosen"]] == min(search["losses"])


@pytest.mark.parametrize(
    ("extra", "message"),
    [(["--plan-search", "0"], "at least 1"), (["--plan-search", "3"], "pass --calib"),
     (["--plan-search", "2", "--plan-search-spread", "0"], "positive number")],
)  # fmt: skip
def test_plan_search_mistakes_are_one_sentence(tmp_path: Path, capsys, extra, message) -> None:
    argv = ["prune", str(tiny_model_dir()), "--method", "magnitude", "--ratio", "0.3", "--out", str(tmp_path / "o")]
    assert main([*argv, *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def _with_answers_replaced(source: Path, dest: Path, answer: str) -> Path:
    """A copy of a data folder whose every VQA label is `answer` (images shared)."""
    import shutil

    shutil.copytree(source, dest)
    file = dest / "vqa_train_annotations.json"
    data = json.loads(file.read_text())
    for record in data["annotations"]:
        record["multiple_choice_answer"] = answer
        for item in record["answers"]:
            item["answer"] = answer
    file.write_text(json.dumps(data))
    return dest


def test_the_teacher_judge_reads_no_label_and_scores_the_dense_models_own_answers(calib: Path, tmp_path: Path):
    from ukmp.evaluation.generation import VQA_SETTINGS, generate_texts
    from ukmp.loading import load_model
    from ukmp.planning.search import selection_batches
    from ukmp.processors import load_processor

    model, processor = load_model(str(tiny_model_dir())).eval(), load_processor(str(tiny_model_dir()))
    wrong = _with_answers_replaced(calib, tmp_path / "wrong", "zebra")
    teacher = PlanSearchOptions(candidates=2, samples=6, batch_size=4, answers="teacher")
    labels = PlanSearchOptions(candidates=2, samples=6, batch_size=4, answers="labels")
    batches = selection_batches(processor, model, calib, teacher, seed=1)
    # the labels do not enter: every label changed, the same batches
    for a, b in zip(batches, selection_batches(processor, model, wrong, teacher, seed=1), strict=True):
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert any(
        not torch.equal(a["labels"], b["labels"])
        for a, b in zip(selection_batches(processor, model, calib, labels, seed=1),
                        selection_batches(processor, model, wrong, labels, seed=1), strict=True)
    )  # fmt: skip
    # the targets are the dense model's own greedy answers to the same questions
    from ukmp.data.recovery_mix import vqa_samples

    pairs = vqa_samples(calib, "train")
    import random

    random.Random(1).shuffle(pairs)
    own = generate_texts(model, processor, [p.image_path for p in pairs[:6]], [p.text_input for p in pairs[:6]],
                         VQA_SETTINGS, batch_size=4, progress=False)  # fmt: skip
    tokenizer = processor.tokenizer
    targets = [tokenizer.decode([t for t in row.tolist() if t >= 0], skip_special_tokens=True).strip()
               for batch in batches for row in batch["labels"]]  # fmt: skip
    assert targets == [a.strip() for a in own]


def test_the_teacher_judge_value_is_the_mean_token_cross_entropy_on_the_teachers_answers():
    model, groups, scores, make_plan, batches = _setup()
    options = PlanSearchOptions(candidates=1, answers="teacher")
    plain, trace = search_plan(model, groups, scores, make_plan, batches, options, seed=0, progress=False)
    sliced = apply_plan_physically(copy.deepcopy(model), plain.plan)
    total, tokens = 0.0, 0
    with torch.no_grad():
        for batch in batches:  # by hand: -log p(target token), summed over targets, over their count
            logp = torch.log_softmax(sliced(**batch).logits.double(), dim=-1)
            labels = batch["labels"]
            chosen = labels != -100
            total -= float(logp[chosen].gather(-1, labels[chosen].unsqueeze(-1)).sum())
            tokens += int(chosen.sum())
    assert trace["losses"][0] == pytest.approx(total / tokens, abs=1e-5)
    assert trace["answers"] == "teacher"


def test_prune_with_the_teacher_judge_records_every_candidates_value(calib: Path, tmp_path: Path) -> None:
    out = tmp_path / "pruned"
    argv = ["prune", str(tiny_model_dir()), "--method", "magnitude", "--ratio", "0.3", "--out", str(out)]
    argv += ["--calib", str(calib), "--plan-search", "3", "--plan-search-samples", "5", "--plan-search-answers"]
    assert main([*argv, "teacher"]) == 0
    search = json.loads((out / "pruning.json").read_text())["method"]["options"]["plan_search"]
    assert search["answers"] == "teacher" and len(search["losses"]) == 3
    assert search["losses"][search["chosen"]] == min(search["losses"])
