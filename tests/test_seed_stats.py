"""Seed aggregation: spreads and paired orderings on cases computed by hand."""

from __future__ import annotations

import math

import pytest

from ukmp.seed_stats import DOES_NOT_HOLD, HOLDS, WITHIN_NOISE, paired_ordering, spread


def test_spread_of_three_values():
    s = spread([50.0, 60.0, 55.0])
    assert (s.n, s.mean, s.min, s.max) == (3, 55.0, 50.0, 60.0)
    assert s.std == pytest.approx(5.0)
    # t(0.975, 2) = 4.3027; 4.3027 * 5 / sqrt(3) = 12.42
    assert s.ci95 == pytest.approx(4.302653 * 5.0 / math.sqrt(3), rel=1e-5)
    assert s.text() == "55.0 [50.0–60.0]"


def test_one_seed_has_no_interval_and_never_decides():
    s = spread([42.0])
    assert s.std == 0.0 and math.isinf(s.ci95) and s.text() == "42.0"
    assert paired_ordering([90.0], [10.0])[0] == WITHIN_NOISE


def test_paired_differences_see_through_shared_noise():
    # each seed moves both methods together by 20 points; the difference is always +3 +- 1
    a = [40.0, 60.0, 80.0, 50.0]
    b = [37.0, 56.0, 78.0, 47.0]
    verdict, diff = paired_ordering(a, b)
    assert verdict == HOLDS
    assert diff.mean == pytest.approx(3.0)
    assert paired_ordering(b, a)[0] == DOES_NOT_HOLD
    # unpaired, the spreads overlap completely: the same means with shuffled seeds are noise
    assert paired_ordering([40.0, 60.0, 80.0, 50.0], [78.0, 37.0, 47.0, 56.0])[0] == WITHIN_NOISE


def test_mismatched_lengths_are_refused():
    with pytest.raises(ValueError):
        paired_ordering([1.0, 2.0], [1.0])
