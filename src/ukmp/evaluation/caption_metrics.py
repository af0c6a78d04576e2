"""Caption metrics with pycocoevalcap, the scorer every captioning paper (and LAVIS) reports.

Both predictions and references go through the Stanford PTB tokenizer (lowercased, punctuation
dropped) first, as in the COCO caption evaluation, then BLEU-1..4, METEOR, ROUGE-L and CIDEr(-D).
BLEU, METEOR and the tokenizer use Java jars bundled in the pycocoevalcap wheel and work offline.

SPICE additionally needs the Stanford CoreNLP 3.6.0 jars, which pycocoevalcap downloads on first
use; where they are absent (as in an offline install) SPICE is reported as `null` with the reason,
never as a number, and nothing is downloaded. Scores are pycocoevalcap's raw values (CIDEr 1.5 is
"150" in some papers' tables).
"""

from __future__ import annotations

import atexit
import importlib.util
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

#: METEOR's Java process, kept for the life of this Python process: it takes seconds to load its
#: paraphrase tables, and a comparison scores the captions of many models one after another
_METEOR = None
_METEOR_LOCK = threading.Lock()

SPICE_UNAVAILABLE = "unavailable: SPICE needs Stanford CoreNLP jars, which cannot be downloaded here"
_CORENLP_JARS = ("stanford-corenlp-3.6.0.jar", "stanford-corenlp-3.6.0-models.jar")


def spice_available() -> bool:
    """True when pycocoevalcap's SPICE jar and the CoreNLP jars it needs are all on disk."""
    spec = importlib.util.find_spec("pycocoevalcap")
    if spec is None or not spec.submodule_search_locations:
        return False
    spice_dir = Path(list(spec.submodule_search_locations)[0]) / "spice"
    needed = [spice_dir / "spice-1.0.jar", *(spice_dir / "lib" / jar for jar in _CORENLP_JARS)]
    return all(p.is_file() for p in needed)


def caption_scores(
    predictions: Mapping[int | str, str],
    references: Mapping[int | str, Sequence[str]],
    *,
    spice: bool | None = None,
) -> dict:
    """Corpus-level caption metrics for `predictions[id]` against `references[id]`.

    Returns `{"BLEU-1", ..., "BLEU-4", "METEOR", "ROUGE-L", "CIDEr", "SPICE", "notes"}`; SPICE is
    computed when `spice` is True or (None) when its jars are present, else None with a note.
    """
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.meteor.meteor import Meteor
    from pycocoevalcap.rouge.rouge import Rouge
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    ids = sorted(predictions, key=str)
    if not ids:
        raise ValueError("no predictions to score")
    missing = [i for i in ids if not references.get(i)]
    if missing:
        raise ValueError(f"no references for {len(missing)} images (first: {missing[0]!r})")
    with _METEOR_LOCK:
        meteor = _running_meteor(Meteor)  # a new one loads while the tokenizer and BLEU run
        gts, res = _tokenize(PTBTokenizer(), ids, predictions, references)
        scores: dict[str, float | None] = {}
        bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
        for n, value in enumerate(bleu, start=1):
            scores[f"BLEU-{n}"] = float(value)
        try:
            scores["METEOR"] = float(meteor.compute_score(gts, res)[0])
        except Exception:
            _forget_meteor()  # a broken process is not reused
            raise
    scores["ROUGE-L"] = float(Rouge().compute_score(gts, res)[0])
    scores["CIDEr"] = float(Cider().compute_score(gts, res)[0])

    notes: dict[str, str] = {}
    if spice is None:
        spice = spice_available()
    if spice:
        from pycocoevalcap.spice.spice import Spice

        try:
            scores["SPICE"] = float(Spice().compute_score(gts, res)[0])
        except Exception as exc:  # a Java failure must not lose the other metrics
            scores["SPICE"] = None
            notes["SPICE"] = f"unavailable: SPICE failed ({type(exc).__name__}: {exc})"
    else:
        scores["SPICE"] = None
        notes["SPICE"] = SPICE_UNAVAILABLE
    return {**scores, "notes": notes}


def _tokenize(tokenizer, ids: list, predictions: Mapping, references: Mapping) -> tuple[dict, dict]:
    """(references, predictions) through the PTB tokenizer in one Java run: it reads one caption per
    line, so tokenising both sets together gives what two runs give."""
    both = {("ref", i): [{"caption": c} for c in references[i]] for i in ids}
    both.update({("pred", i): [{"caption": predictions[i]}] for i in ids})
    tokens = tokenizer.tokenize(both)
    return {i: tokens[("ref", i)] for i in ids}, {i: tokens[("pred", i)] for i in ids}


def _running_meteor(factory):
    """This process's METEOR, started on first use and again if its Java process has ended."""
    global _METEOR
    proc = getattr(_METEOR, "meteor_p", None)
    if proc is None or proc.poll() is not None:
        _forget_meteor()
        _METEOR = factory()
    return _METEOR


@atexit.register
def _forget_meteor() -> None:
    global _METEOR
    if _METEOR is not None:
        _close_meteor(_METEOR)
    _METEOR = None


def _close_meteor(meteor) -> None:
    """Stop METEOR's Java process now instead of whenever the garbage collector runs `__del__`."""
    proc = getattr(meteor, "meteor_p", None)
    if proc is None:
        return
    try:
        if proc.stdin:
            proc.stdin.close()
        proc.kill()
        proc.wait(timeout=10)
    except Exception:
        pass
