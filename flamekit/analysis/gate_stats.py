"""The statistics of the regression gate: per-time-slice tables, a block bootstrap, and
Benjamini-Hochberg.

Why slices: profile samples are autocorrelated (GC pauses, bursts, JIT phases), so a
two-proportion z-test over 10^5 samples flags noise as significant (DESIGN.md §5). Instead a
capture's window is cut into K time slices (``jfrconv --from/--to``), each slice gives one
figure per method, and the bootstrap resamples *slices* (in circular blocks of ``block``
adjacent slices, so correlation between neighbouring slices is kept too), never samples.

Own code, standard library only: numpy/scipy are not dependencies of flamekit and the
computation is a few thousand sums over at most 12 slices.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence


@dataclass
class SliceTable:
    """One service-event of one run, cut into time slices.

    ``seconds[i]`` is slice i's length; ``totals[i]`` the value of all its stacks counted
    (samples, bytes or ns; for wall only the stacks with an application frame);
    ``methods[name][i]`` the value whose deepest application frame is ``name``.
    ``scale`` turns a value into ``unit`` (CPU ms, MB...); ``tps`` is the run's achieved rate,
    so ``value x scale / (tps x seconds)`` is the cost per request. ``samples`` is the
    capture's sample *count* (for alloc/lock the values are weights), ``per_sample`` the mean
    value of one sample (the pseudo-count that keeps an empty resample finite).
    """

    service: str
    event: str
    unit: str
    scale: float
    tps: float
    samples: int
    seconds: list[float]
    totals: list[float]
    methods: dict[str, list[float]] = field(default_factory=dict)
    per_sample: float = 1.0

    @property
    def k(self) -> int:
        return len(self.seconds)

    def cost(self, values: Sequence[float]) -> float:
        """Cost per request in ``unit`` of a per-slice series, over the whole window."""
        secs = sum(self.seconds)
        return sum(values) * self.scale / (self.tps * secs) if secs > 0 and self.tps > 0 else 0.0

    def share(self, values: Sequence[float]) -> float:
        tot = sum(self.totals)
        return sum(values) / tot if tot > 0 else 0.0

    def series(self, name: str) -> list[float]:
        """A method's per-slice values; the totals for ``TOTAL``; zeros when absent."""
        if name == TOTAL:
            return list(self.totals)
        return list(self.methods.get(name, [0.0] * self.k))

    def to_dict(self) -> dict[str, Any]:
        return {"service": self.service, "event": self.event, "unit": self.unit, "scale": self.scale,
                "tps": self.tps, "samples": self.samples, "per_sample": self.per_sample,
                "seconds": [round(s, 4) for s in self.seconds], "totals": self.totals,
                "methods": self.methods}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "SliceTable":
        return cls(service=str(d["service"]), event=str(d["event"]), unit=str(d["unit"]),
                   scale=float(d["scale"]), tps=float(d["tps"]), samples=int(d["samples"]),
                   seconds=[float(x) for x in d["seconds"]], totals=[float(x) for x in d["totals"]],
                   methods={str(k): [float(x) for x in v] for k, v in dict(d.get("methods") or {}).items()},
                   per_sample=float(d.get("per_sample") or 1.0))


#: The pseudo-method of a table's totals: everything the service spent on the event.
TOTAL = "[total]"


@dataclass(frozen=True)
class Estimate:
    """B vs A of one method: cost per request in both runs, their ratio with a bootstrap
    percentile interval, the share change in fractions, and two-sided p-values (from the
    bootstrap standard error of log ratio and of the share difference)."""

    cost_a: float
    cost_b: float
    ratio: float
    ratio_lo: float
    ratio_hi: float
    share_a: float
    share_b: float
    share_lo: float
    share_hi: float
    p_cost: float
    p_share: float

    @property
    def share_delta(self) -> float:
        return self.share_b - self.share_a


def block_counts(k: int, block: int, rng: random.Random) -> list[int]:
    """How often each of ``k`` slices is drawn in one circular moving-block resample: blocks of
    ``block`` adjacent slices (wrapping round) from uniform starts until ``k`` are drawn."""
    block = max(1, min(block, k))
    counts = [0] * k
    drawn = 0
    while drawn < k:
        start = rng.randrange(k)
        for j in range(block):
            if drawn == k:
                break
            counts[(start + j) % k] += 1
            drawn += 1
    return counts


def resample_plan(k: int, block: int, resamples: int, rng: random.Random) -> list[list[int]]:
    """``resamples`` block resamples of ``k`` slices, as counts per slice. Drawn once per run
    and shared by every method, so methods of one run move together as the data does."""
    return [block_counts(k, block, rng) for _ in range(resamples)]


def _dot(counts: Sequence[int], values: Sequence[float]) -> float:
    return sum(c * v for c, v in zip(counts, values) if c)


def _normal_p(estimate: float, stderr: float) -> float:
    """Two-sided p of ``estimate`` against 0 with a normal approximation."""
    if stderr <= 0 or not math.isfinite(stderr):
        return 1.0 if estimate == 0 else 0.0
    return math.erfc(abs(estimate) / stderr / math.sqrt(2.0))


def _percentile(sorted_xs: Sequence[float], q: float) -> float:
    if not sorted_xs:
        return math.nan
    pos = q * (len(sorted_xs) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    return sorted_xs[lo] + (sorted_xs[hi] - sorted_xs[lo]) * (pos - lo)


def _stdev(xs: Sequence[float]) -> float:
    n = len(xs)
    if n < 2:
        return 0.0
    m = sum(xs) / n
    return math.sqrt(sum((x - m) ** 2 for x in xs) / (n - 1))


def estimate(a: SliceTable, b: SliceTable, name: str, plan_a: Sequence[Sequence[int]],
             plan_b: Sequence[Sequence[int]], level: float = 0.95) -> Estimate:
    """Compare one method (or ``TOTAL``) of two runs over the resample plans of each.

    Per resample: cost per request of A and B (value x scale / (tps x seconds drawn)), their
    ratio, and the share of each run's total. Zero values get half a sample's value
    (``per_sample``) so a method absent from one run still has a finite log ratio. The
    interval is the bootstrap percentile interval at ``level``; p-values use the bootstrap
    standard error (normal approximation), which stays continuous for Benjamini-Hochberg
    where percentile p-values would stop at 1/resamples.
    """
    va, vb = a.series(name), b.series(name)
    pa, pb = 0.5 * a.per_sample, 0.5 * b.per_sample

    def cost(t: SliceTable, total_v: float, secs: float, pseudo: float) -> float:
        return (total_v + pseudo) * t.scale / (t.tps * secs) if secs > 0 and t.tps > 0 else 0.0

    ca_point, cb_point = a.cost(va), b.cost(vb)
    ca_s = cost(a, sum(va), sum(a.seconds), pa)
    cb_s = cost(b, sum(vb), sum(b.seconds), pb)
    ratio = cb_s / ca_s if ca_s > 0 else math.inf
    logs, ratios, deltas = [], [], []
    for ca_n, cb_n in zip(plan_a, plan_b):
        xa = cost(a, _dot(ca_n, va), _dot(ca_n, a.seconds), pa)
        xb = cost(b, _dot(cb_n, vb), _dot(cb_n, b.seconds), pb)
        if xa > 0 and xb > 0:
            logs.append(math.log(xb / xa))
            ratios.append(xb / xa)
        ta, tb = _dot(ca_n, a.totals), _dot(cb_n, b.totals)
        sa = _dot(ca_n, va) / ta if ta > 0 else 0.0
        sb = _dot(cb_n, vb) / tb if tb > 0 else 0.0
        deltas.append(sb - sa)
    ratios.sort()
    deltas.sort()
    tail = (1.0 - level) / 2.0
    share_a, share_b = a.share(va), b.share(vb)
    log_ratio = math.log(ratio) if 0 < ratio < math.inf else 0.0
    return Estimate(
        cost_a=ca_point, cost_b=cb_point, ratio=ratio,
        ratio_lo=_percentile(ratios, tail), ratio_hi=_percentile(ratios, 1 - tail),
        share_a=share_a, share_b=share_b,
        share_lo=_percentile(deltas, tail), share_hi=_percentile(deltas, 1 - tail),
        p_cost=_normal_p(log_ratio, _stdev(logs)) if logs else 1.0,
        p_share=_normal_p(share_b - share_a, _stdev(deltas)),
    )


def benjamini_hochberg(pvalues: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (q-values), in the input's order: a test is a
    discovery at false discovery rate ``alpha`` when its q <= alpha."""
    m = len(pvalues)
    if m == 0:
        return []
    order = sorted(range(m), key=lambda i: pvalues[i])
    q = [1.0] * m
    running = 1.0
    for rank in range(m, 0, -1):
        i = order[rank - 1]
        running = min(running, pvalues[i] * m / rank)
        q[i] = min(1.0, running)
    return q


def choose_slices(window_s: float, wanted: int = 10, lo: int = 6, hi: int = 12,
                  min_slice_s: float = 1.5) -> int:
    """How many slices to cut a window into: ``wanted``, within ``lo``..``hi``, fewer when the
    slices would be shorter than ``min_slice_s`` (but never under ``lo``)."""
    k = max(lo, min(hi, wanted))
    if window_s > 0:
        k = min(k, max(lo, int(window_s // min_slice_s)))
    return k


__all__ = ["Estimate", "SliceTable", "TOTAL", "benjamini_hochberg", "block_counts", "choose_slices",
           "estimate", "resample_plan"]
