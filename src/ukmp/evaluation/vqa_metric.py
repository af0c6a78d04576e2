"""VQA accuracy as the official VQAv2 evaluation defines it, and GQA exact match.

Answer normalisation follows the official script's rules (reimplemented here from its
description):
1. newlines/tabs become spaces, surrounding whitespace is stripped;
2. punctuation: each of ; / [ ] " { } ( ) = + \\ _ - > < @ ` , ? ! is deleted when it touches a
   space (or the text has a digit,digit comma), else replaced by a space; a period is deleted
   unless a digit follows it (so "1.5" survives, "dog." loses its period);
3. lowercase, split into words, number words zero..ten and "none" become digits ("two" -> "2"),
   the articles a/an/the are dropped, and a subset of the official contractions map restores
   apostrophes (`CONTRACTIONS` below: the common negations and 's/'re/'ve/'ll/'d forms, not the
   full ~170-entry list).

Accuracy of one prediction against n human answers (n = 10 in VQAv2/OK-VQA): for each of the n
leave-one-out subsets, min(#subset answers equal to the prediction / 3, 1); the mean of those. With
10 answers of which m match: (m*min((m-1)/3,1) + (10-m)*min(m/3,1)) / 10, e.g. 2 matches -> 0.6.
A question with a single answer (GQA, or a JSONL file) is scored by exact match.

Deviation, on purpose: the official script normalises the human answers and the prediction only
when the human answers disagree, so a prediction "two" scores 0 against ten "2"s. ukmp always
normalises both sides (`always_normalize=False` restores the official behaviour).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping, Sequence

from ukmp.data.records import VQARecord

_PUNCTUATION = [
    ";",
    "/",
    "[",
    "]",
    '"',
    "{",
    "}",
    "(",
    ")",
    "=",
    "+",
    "\\",
    "_",
    "-",
    ">",
    "<",
    "@",
    "`",
    ",",
    "?",
    "!",
]
_DIGIT_COMMA_DIGIT = re.compile(r"(\d)(,)(\d)")
_PERIOD_NOT_BEFORE_DIGIT = re.compile(r"\.(?!\d)")
NUMBER_WORDS = {
    "none": "0",
    "zero": "0",
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
    "ten": "10",
}
ARTICLES = frozenset({"a", "an", "the"})
CONTRACTIONS = {
    "aint": "ain't",
    "arent": "aren't",
    "cant": "can't",
    "couldnt": "couldn't",
    "didnt": "didn't",
    "doesnt": "doesn't",
    "dont": "don't",
    "hadnt": "hadn't",
    "hasnt": "hasn't",
    "havent": "haven't",
    "isnt": "isn't",
    "shouldnt": "shouldn't",
    "wasnt": "wasn't",
    "werent": "weren't",
    "wont": "won't",
    "wouldnt": "wouldn't",
    "mustnt": "mustn't",
    "neednt": "needn't",
    "hes": "he's",
    "shes": "she's",
    "its": "it's",
    "thats": "that's",
    "theres": "there's",
    "whats": "what's",
    "whos": "who's",
    "lets": "let's",
    "im": "i'm",
    "ive": "i've",
    "youre": "you're",
    "youve": "you've",
    "youll": "you'll",
    "youd": "you'd",
    "theyre": "they're",
    "theyve": "they've",
    "theyll": "they'll",
    "theyd": "they'd",
    "weve": "we've",
    "itll": "it'll",
    "couldve": "could've",
    "shouldve": "should've",
    "wouldve": "would've",
    "mightve": "might've",
    "mustve": "must've",
    "yall": "y'all",
    "oclock": "o'clock",
}


def _strip_punctuation(text: str) -> str:
    out = text
    keep_no_gap = _DIGIT_COMMA_DIGIT.search(text) is not None
    for p in _PUNCTUATION:
        if f"{p} " in text or f" {p}" in text or keep_no_gap:
            out = out.replace(p, "")
        else:
            out = out.replace(p, " ")
    return _PERIOD_NOT_BEFORE_DIGIT.sub("", out)


def _digits_and_articles(text: str) -> str:
    words = [NUMBER_WORDS.get(w, w) for w in text.lower().split()]
    return " ".join(CONTRACTIONS.get(w, w) for w in words if w not in ARTICLES)


def normalize_answer(text: str) -> str:
    """The official VQA answer normalisation (see the module docstring for the exact rules)."""
    text = text.replace("\n", " ").replace("\t", " ").strip()
    return _digits_and_articles(_strip_punctuation(text))


def vqa_accuracy(prediction: str, answers: Sequence[str], *, always_normalize: bool = True) -> float:
    """Accuracy in [0, 1] of one prediction against the human answers (leave-one-out, min(m/3, 1))."""
    if not answers:
        raise ValueError("a VQA question needs at least one human answer")
    pred = prediction.replace("\n", " ").replace("\t", " ").strip()
    refs = [a.replace("\n", " ").replace("\t", " ").strip() for a in answers]
    if always_normalize or len(set(refs)) > 1:
        pred = normalize_answer(pred)
        refs = [normalize_answer(a) for a in refs]
    if len(refs) == 1:
        return float(pred == refs[0])
    matches = sum(r == pred for r in refs)
    # Leaving out a matching answer leaves matches-1 in the subset, leaving out another leaves matches.
    per_subset = [min((matches - (r == pred)) / 3.0, 1.0) for r in refs]
    return sum(per_subset) / len(per_subset)


def exact_match(prediction: str, answer: str) -> float:
    """GQA's metric: 1 if the normalised prediction equals the normalised answer, else 0."""
    return float(normalize_answer(prediction) == normalize_answer(answer))


def _summary(scores: list[tuple[VQARecord, float]]) -> dict:
    by_qtype: dict[str, list[float]] = defaultdict(list)
    by_atype: dict[str, list[float]] = defaultdict(list)
    for record, score in scores:
        by_qtype[record.question_type or "unknown"].append(score)
        by_atype[record.answer_type or "unknown"].append(score)

    def pct(values: list[float]) -> float:
        return round(100.0 * sum(values) / len(values), 2) if values else 0.0

    return {
        "accuracy": pct([s for _, s in scores]),
        "num_questions": len(scores),
        "per_question_type": {k: pct(v) for k, v in sorted(by_qtype.items())},
        "per_answer_type": {k: pct(v) for k, v in sorted(by_atype.items())},
        "question_type_counts": {k: len(v) for k, v in sorted(by_qtype.items())},
    }


def _paired(predictions: Mapping, records: Sequence[VQARecord]) -> list[tuple[VQARecord, str]]:
    missing = [r.question_id for r in records if r.question_id not in predictions]
    if missing:
        raise ValueError(f"no prediction for {len(missing)} questions (first: {missing[0]!r})")
    return [(r, predictions[r.question_id]) for r in records]


def vqa_scores(
    predictions: Mapping[int | str, str], records: Sequence[VQARecord], *, always_normalize: bool = True
) -> dict:
    """Overall VQA accuracy and per question/answer type, in percent (as the official script reports)."""
    pairs = _paired(predictions, records)
    return _summary([(r, vqa_accuracy(p, r.answers, always_normalize=always_normalize)) for r, p in pairs])


def exact_match_scores(predictions: Mapping[int | str, str], records: Sequence[VQARecord]) -> dict:
    """GQA exact-match accuracy (first answer of each record), overall and per type, in percent."""
    pairs = _paired(predictions, records)
    return _summary([(r, exact_match(p, r.answers[0])) for r, p in pairs])
