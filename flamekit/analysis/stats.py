"""Sampling error of shares: the ± points every report figure carries.

A share measured from n samples has the binomial standard error sqrt(p(1-p)/n); under
~1,000 samples a hotspot share is uncertain by several points (DESIGN.md §5). Samples of
one run are not independent (GC pauses, bursts), so these are lower bounds of the error.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

#: Under this many samples a share is uncertain by several points (DESIGN.md §5).
MIN_SAMPLES = 1000
#: Two-sided 95 % normal quantile.
Z95 = 1.96


@dataclass(frozen=True)
class Uncertainty:
    """Binomial sampling error of a share measured from ``samples`` samples.

    ``stderr`` = sqrt(p(1-p)/n); ``margin`` is the 95 % half-width (1.96 stderr) as a
    fraction, ``points`` the same in percentage points. Samples of one run are not
    independent (bursts, phases), so read this as a lower bound of the real error.
    """

    samples: int
    share: float
    stderr: float
    margin: float
    points: float
    reliable: bool

    @property
    def text(self) -> str:
        if self.samples <= 0:
            return "± ? (no samples)"
        return f"± {self.points:.1f} points"

    @property
    def note(self) -> str:
        if self.samples <= 0:
            return "no samples: no share can be measured"
        if self.reliable:
            return f"{self.samples:,} samples: {self.text} at 95%"
        return (f"only {self.samples:,} samples (under ~{MIN_SAMPLES:,}): shares are uncertain "
                f"by several points (up to ± {worst_case_points(self.samples):.1f} points at 95%)")

    def __str__(self) -> str:
        return self.text


def uncertainty(samples: int, share: float) -> Uncertainty:
    """Binomial standard error of ``share`` (0..1) over ``samples`` samples, at 95 %.

    ``reliable`` is False under ~1,000 samples, where a share is uncertain by several
    points (± 3.1 points for a 50 % share at exactly 1,000 samples).
    """
    n = int(samples or 0)
    p = min(max(float(share or 0.0), 0.0), 1.0)
    if n <= 0:
        return Uncertainty(0, p, math.inf, math.inf, math.inf, False)
    se = math.sqrt(p * (1.0 - p) / n)
    margin = Z95 * se
    return Uncertainty(n, p, se, margin, margin * 100.0, n >= MIN_SAMPLES)


def worst_case_points(samples: int) -> float:
    """95 % half-width, in points, of a 50 % share (the widest) over ``samples``."""
    return uncertainty(samples, 0.5).points


def beyond_noise(share_a: float, samples_a: int, share_b: float, samples_b: int) -> bool:
    """True when two shares of two runs differ by more than their combined 95 % sampling
    error; False when either sample count is unknown (0). Autocorrelated samples make
    this generous: treat it as "worth a look", not as a significance test."""
    if not (samples_a and samples_b):
        return False
    se = math.sqrt(share_a * (1 - share_a) / samples_a + share_b * (1 - share_b) / samples_b)
    return abs(share_b - share_a) > Z95 * se
