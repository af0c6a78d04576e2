"""The relative threshold `--threshold qF`: hand-computed selections."""

from __future__ import annotations

import math

import pytest
import torch

from ukmp.errors import UserError
from ukmp.methods.token_selection import Threshold, parse_threshold, selected_token_loss
from ukmp.methods.ukmi import UKMIOptions


def _logits(rows: list[list[list[float]]]) -> torch.Tensor:
    return torch.log(torch.tensor(rows))  # (B, L, V) from probabilities


# five positions with top-1 confidence 0.9, 0.5, 0.7, 0.95, 0.6 (labels always class 0)
FIVE = [[0.9, 0.1], [0.5, 0.5], [0.7, 0.3], [0.95, 0.05], [0.6, 0.4]]


def test_fraction_selects_the_least_confident_share_of_each_sample():
    logits = _logits([FIVE])
    labels = torch.zeros(1, 5, dtype=torch.long)
    # q = 0.4 of 5 tokens -> round(2.0) = 2 tokens: confidences 0.5 (pos 1) and 0.6 (pos 4)
    out = selected_token_loss(logits, labels, Threshold(0.4, relative=True))
    assert out.selected_tokens.tolist() == [2]
    assert out.loss.item() == pytest.approx((-math.log(0.5) - math.log(0.6)) / 2, rel=1e-6)
    # the absolute T = 0.4 selects only the floor here (position 1, confidence 0.5)
    absolute = selected_token_loss(logits, labels, 0.4)
    assert absolute.selected_tokens.tolist() == [1]


def test_fraction_rounds_half_up_keeps_one_token_and_skips_padding():
    # sample 0: 5 valid tokens, q = 0.3 -> round(1.5) = 2; sample 1: 2 valid tokens, q = 0.3 -> round(0.6) = 1
    logits = _logits([FIVE, [[0.55, 0.45], [0.8, 0.2], [0.5, 0.5], [0.5, 0.5], [0.5, 0.5]]])
    labels = torch.tensor([[0, 0, 0, 0, 0], [0, 0, -100, -100, -100]])
    out = selected_token_loss(logits, labels, Threshold(0.3, relative=True))
    assert out.selected_tokens.tolist() == [2, 1]
    expected = (-math.log(0.5) - math.log(0.6)) / 2 + -math.log(0.55)  # padding (0.5) never chosen
    assert out.loss.item() == pytest.approx(expected, rel=1e-6)
    tiny = selected_token_loss(logits, labels, Threshold(0.01, relative=True))
    assert tiny.selected_tokens.tolist() == [1, 1]  # never fewer than one token
    everything = selected_token_loss(logits, labels, Threshold(1.0, relative=True))
    assert everything.selected_tokens.tolist() == [5, 2]


def test_fraction_ties_are_broken_by_position():
    logits = _logits([[[0.5, 0.5], [0.5, 0.5], [0.5, 0.5], [0.9, 0.1]]])
    labels = torch.tensor([[0, 1, 0, 0]])
    out = selected_token_loss(logits, labels, Threshold(0.25, relative=True))  # one of the three ties
    assert out.selected_tokens.tolist() == [1]
    assert out.per_sample.item() == pytest.approx(-math.log(0.5), rel=1e-6)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0.4", Threshold(0.4)), ("q0.34", Threshold(0.34, True)), ("Q1", Threshold(1.0, True)), (1.0, Threshold(1.0))],
)
def test_parse_threshold(text, expected):
    assert parse_threshold(text) == expected
    assert parse_threshold(str(expected)) == expected  # str() round-trips, as manifests record it


@pytest.mark.parametrize("text", ["q", "q0", "1.5", "qx", "-0.2", "q1.2", "nan"])
def test_bad_thresholds_are_one_sentence(text):
    with pytest.raises(ValueError, match="--threshold"):
        parse_threshold(text)
    with pytest.raises(UserError, match="--threshold"):
        UKMIOptions(threshold=text).validate()
