"""Sampling error of shares."""
from __future__ import annotations

import math

import pytest

from flamekit.analysis.stats import beyond_noise, uncertainty, worst_case_points


def test_uncertainty_binomial_math():
    u = uncertainty(1000, 0.5)
    assert u.stderr == pytest.approx(math.sqrt(0.25 / 1000))
    assert u.margin == pytest.approx(1.96 * math.sqrt(0.25 / 1000))
    assert u.points == pytest.approx(3.099, abs=1e-3)
    assert u.text == "± 3.1 points"
    assert u.reliable
    big = uncertainty(4321, 0.632)
    assert big.points == pytest.approx(100 * 1.96 * math.sqrt(0.632 * 0.368 / 4321))
    assert big.text == "± 1.4 points"
    assert uncertainty(100, 0.0).points == 0.0


def test_uncertainty_under_1000_samples_says_several_points():
    u = uncertainty(400, 0.2)
    assert not u.reliable
    assert "several points" in u.note and "400" in u.note
    assert worst_case_points(400) == pytest.approx(4.9, abs=0.01)
    none = uncertainty(0, 0.3)
    assert not none.reliable and "no samples" in none.text and math.isinf(none.points)


def test_beyond_noise_needs_both_counts_and_a_gap_wider_than_the_error():
    assert beyond_noise(0.60, 1000, 0.30, 1000)
    assert not beyond_noise(0.50, 1000, 0.52, 1000)   # 2 points: inside ±4.4
    assert not beyond_noise(0.60, 0, 0.30, 1000)       # unknown count: never claimed
    assert not beyond_noise(0.0, 100, 0.0, 100)
