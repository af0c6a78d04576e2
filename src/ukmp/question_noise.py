"""How much of a spread over calibration draws is the plans, and how much the questions.

Every draw's pruned model is evaluated on the same finite set of questions. Two plans that are
equally good on the population of questions still score differently on a sample of them, because
each gets a different subset right. So the span of the measured accuracies over draws mixes two
things: how much the plans really differ, and the sampling noise of the question set.

With per-question scores ``c[i][q]`` (draw i, question q; VQA accuracy in [0, 1]) and n questions,
draw i's accuracy is ``a_i = mean_q c[i][q] = mu_i + e_i``, where ``e`` is the question-sampling
error. The errors of different draws are correlated (same questions), with covariance ``S / n``,
S the covariance over questions of the columns ``c[i]``. The sample variance of the a_i over k
draws then has the expectation

    Var(mu) + (trace(S) - 1'S1 / k) / ((k - 1) n)

and the second term, computed from the scores themselves, is the question noise. What is left is a
method-of-moments estimate of the plans' own variance (clipped at zero). Its square root times the
expected range of k standard normal values is the span the draws would be expected to show on an
unlimited question set.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# Expected range of k independent standard normal values (d2 of quality control charts).
EXPECTED_RANGE = {2: 1.128, 3: 1.693, 4: 2.059, 5: 2.326, 6: 2.534, 7: 2.704, 8: 2.847, 9: 2.970, 10: 3.078}


@dataclass(frozen=True)
class DrawSpread:
    """Accuracies (percent) of k draws on n shared questions, and their spread split in two parts."""

    n_questions: int
    accuracies: tuple[float, ...]
    span: float
    std: float
    question_noise_std: float
    plan_std: float
    expected_plan_span: float


def draw_spread(scores: Sequence[Sequence[float]]) -> DrawSpread:
    """The `DrawSpread` of per-question scores in [0, 1], one row per draw (at least 2), same questions."""
    c = np.asarray(scores, dtype=np.float64)
    if c.ndim != 2 or c.shape[0] < 2 or c.shape[1] < 2:
        raise ValueError(f"need at least 2 draws of at least 2 questions each, got shape {c.shape}")
    if c.shape[0] not in EXPECTED_RANGE:
        raise ValueError(f"expected ranges are tabled for 2-10 draws, got {c.shape[0]}")
    k, n = c.shape
    acc = 100.0 * c.mean(axis=1)
    between = float(np.var(acc, ddof=1))
    cov = np.cov(c) * 1e4  # in percent squared; rows are the variables (draws)
    noise = float(np.trace(cov) - cov.sum() / k) / ((k - 1) * n)
    plan_var = max(0.0, between - noise)
    return DrawSpread(
        n_questions=n,
        accuracies=tuple(round(float(a), 2) for a in acc),
        span=float(acc.max() - acc.min()),
        std=math.sqrt(between),
        question_noise_std=math.sqrt(max(noise, 0.0)),
        plan_std=math.sqrt(plan_var),
        expected_plan_span=EXPECTED_RANGE[k] * math.sqrt(plan_var),
    )
