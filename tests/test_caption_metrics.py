"""Caption metrics (pycocoevalcap) on a two-image corpus whose scores follow by hand.

Image 1: the prediction equals its only reference (6 words). Image 2: "two green squares and one
cross" against "two blue squares and one cross" (one word wrong). The two images share no words,
so every n-gram has the same CIDEr idf, log(2), and the scores reduce to simple counts:
- BLEU-1 = (6 + 5) / 12 clipped unigram matches, BLEU-2 = sqrt(11/12 * (5 + 3) / 10) (brevity 1);
- CIDEr-D: image 1 scores 10; image 2 scores 10 * mean(5/6, 3/5, 2/4, 1/3) (matching n-grams over
  n-grams, equal lengths so no length penalty); the corpus score is their mean;
- ROUGE-L: LCS 6/6 and 5/6, so (1 + 5/6) / 2.
"""

from __future__ import annotations

import math

import pytest

from ukmp.evaluation.caption_metrics import SPICE_UNAVAILABLE, caption_scores, spice_available

PREDICTIONS = {1: "A small red circle on grey.", 2: "two green squares and one cross"}
REFERENCES = {1: ["a small red circle on grey"], 2: ["Two blue squares and one cross"]}


@pytest.fixture(scope="module")
def scores() -> dict:
    return caption_scores(PREDICTIONS, REFERENCES)


def test_bleu_by_hand(scores: dict) -> None:
    assert scores["BLEU-1"] == pytest.approx(11 / 12, abs=1e-6)
    assert scores["BLEU-2"] == pytest.approx(math.sqrt(11 / 12 * 8 / 10), abs=1e-6)
    assert 0 < scores["BLEU-4"] < scores["BLEU-2"]


def test_cider_and_rouge_by_hand(scores: dict) -> None:
    image2 = 10 * (5 / 6 + 3 / 5 + 2 / 4 + 1 / 3) / 4
    assert scores["CIDEr"] == pytest.approx((10 + image2) / 2, abs=1e-6)
    assert scores["ROUGE-L"] == pytest.approx((1 + 5 / 6) / 2, abs=1e-6)


def test_meteor_is_computed(scores: dict) -> None:
    assert 0.5 < scores["METEOR"] <= 1.0


def test_spice_is_never_a_made_up_number(scores: dict) -> None:
    if spice_available():
        pytest.skip("SPICE's CoreNLP jars are installed here")
    assert scores["SPICE"] is None
    assert scores["notes"]["SPICE"] == SPICE_UNAVAILABLE


def test_missing_references_are_an_error() -> None:
    with pytest.raises(ValueError, match="no references"):
        caption_scores({1: "a"}, {2: ["a"]})


def test_meteor_java_is_started_once_per_process_and_again_after_it_ends(scores: dict) -> None:
    from ukmp.evaluation import caption_metrics

    first = caption_metrics._METEOR.meteor_p
    assert first.poll() is None  # kept running for the next evaluation
    again = caption_scores(PREDICTIONS, REFERENCES)
    assert caption_metrics._METEOR.meteor_p is first and again == scores
    first.kill()
    first.wait()
    restarted = caption_scores(PREDICTIONS, REFERENCES)
    assert caption_metrics._METEOR.meteor_p is not first and restarted == scores


def test_tokenising_both_sets_in_one_run_gives_what_two_runs_give() -> None:
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    from ukmp.evaluation.caption_metrics import _tokenize

    ids = sorted(PREDICTIONS)
    gts, res = _tokenize(PTBTokenizer(), ids, PREDICTIONS, REFERENCES)
    tokenizer = PTBTokenizer()
    assert gts == tokenizer.tokenize({i: [{"caption": c} for c in REFERENCES[i]] for i in ids})
    assert res == tokenizer.tokenize({i: [{"caption": PREDICTIONS[i]}] for i in ids})
    assert res[2] == ["two green squares and one cross"]
