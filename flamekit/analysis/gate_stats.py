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
import statistics
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
    interval, the share change in fractions, and two-sided p-values (normal approximation with
    the bootstrap variances, plus the between-run variance when the baseline has several runs)."""

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
    runs_a: int = 1          # baseline runs pooled
    runs_b: int = 1          # runs under test pooled (repeats of one build)
    tau_log: float = 0.0     # a method's own between-run spread of its log cost (0 with one run)
    dispersion: float = 1.0  # the service-event's run-to-run variance over the bootstrap's (>= 1)

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


def _stdev(xs: Sequence[float]) -> float:
    n = len(xs)
    if n < 2:
        return 0.0
    m = sum(xs) / n
    return math.sqrt(sum((x - m) ** 2 for x in xs) / (n - 1))


@dataclass(frozen=True)
class RunFigure:
    """One run's figure for one method, with its within-run (bootstrap) variance: the log of
    the cost per request and the share, each with the variance of its resamples."""

    cost: float        # point cost per request (no pseudo-count)
    log_cost: float    # log of the cost with the pseudo-count (finite when the method is absent)
    var_log: float
    share: float
    var_share: float


def run_figure(t: SliceTable, name: str, plan: Sequence[Sequence[int]]) -> RunFigure:
    """Resample one run's slices by ``plan``. Zero values get half a sample's value
    (``per_sample``) so a method absent from a run still has a finite log cost."""
    v = t.series(name)
    pseudo = 0.5 * t.per_sample

    def cost(total_v: float, secs: float) -> float:
        return (total_v + pseudo) * t.scale / (t.tps * secs) if secs > 0 and t.tps > 0 else 0.0

    point = cost(sum(v), sum(t.seconds))
    logs, shares = [], []
    for counts in plan:
        x = cost(_dot(counts, v), _dot(counts, t.seconds))
        if x > 0:
            logs.append(math.log(x))
        tot = _dot(counts, t.totals)
        shares.append(_dot(counts, v) / tot if tot > 0 else 0.0)
    return RunFigure(cost=t.cost(v), log_cost=math.log(point) if point > 0 else 0.0,
                     var_log=_stdev(logs) ** 2, share=t.share(v), var_share=_stdev(shares) ** 2)


def _weights(variances: Sequence[float]) -> list[float]:
    """Precision weights, finite for a zero variance."""
    return [1.0 / max(v, 1e-12) for v in variances]


def _known(values: Sequence[float], variances: Sequence[float]) -> tuple[float, float]:
    """Precision-weighted mean of ``values`` and its variance, the variances taken as known."""
    w = _weights(variances)
    return sum(wi * x for wi, x in zip(w, values)) / sum(w), 1.0 / sum(w)


def pool(values: Sequence[float], variances: Sequence[float]) -> tuple[float, float, float]:
    """Random-effects pooling of one figure over the baseline's runs (DerSimonian-Laird):
    (pooled value, its variance, tau^2 = the variance *between* runs beyond each run's own).

    Why: the bootstrap over one run's slices sees only the noise inside that run. Between two
    runs a method can move by more (a fresh JVM compiles differently; kernel network work lands
    on the sender's thread or on ksoftirqd), and a gate blind to that flags it in A/A pairs.
    With one baseline run tau^2 is 0: the gate then assumes runs differ only by their inner
    noise, as before. A closed form of a few lines; no statistics library needed for it."""
    r = len(values)
    if r < 2:
        return values[0], max(variances[0], 0.0), 0.0
    w = _weights(variances)
    sw = sum(w)
    denom = sw - sum(wi * wi for wi in w) / sw
    tau2 = max(0.0, (_cochran_q(values, variances) - (r - 1)) / denom) if denom > 0 else 0.0
    pooled, var = _known(values, [v + tau2 for v in variances])
    return pooled, var, tau2


def _z(level: float) -> float:
    return statistics.NormalDist().inv_cdf(0.5 + level / 2.0)


def _cochran_q(values: Sequence[float], variances: Sequence[float]) -> float:
    """The weighted squared spread of ``values`` around their precision-weighted mean."""
    mean_w = _known(values, variances)[0]
    return sum(wi * (x - mean_w) ** 2 for wi, x in zip(_weights(variances), values))


def _chi2_median(df: int) -> float:
    """Median of a chi-square with ``df`` degrees of freedom (Wilson-Hilferty: 1.3 % high at
    df = 2, closer above; exact enough for a scale factor)."""
    return df * (1.0 - 2.0 / (9.0 * df)) ** 3


def dispersion(groups: Sequence[Sequence[tuple[float, float]]]) -> float:
    """How many times its bootstrap variance a service-event's figures really vary from run to
    run, common to its methods: ``groups`` holds per method the (value, bootstrap variance) of
    each baseline run.

    Why: three baseline runs are too few to learn each method's own between-run variance
    (tau^2 from 2 degrees of freedom often comes out 0 by chance), but the methods of one
    service-event share much of it: on the demo, allocation figures vary 2-5 times their
    bootstrap variance between runs, every method alike, while CPU figures do not. Per method,
    Cochran's Q over the runs is that factor times a chi-square with R-1 degrees of freedom;
    the lower median over methods, scaled by the chi-square's median, is robust to one wild
    method even when a service-event has only two (its own tau^2 then covers that method).
    Never under 1; 1 without two baseline runs."""
    ratios = [_cochran_q([x for x, _ in g], [v for _, v in g]) / _chi2_median(len(g) - 1)
              for g in groups if len(g) >= 2]
    return max(1.0, statistics.median_low(ratios)) if ratios else 1.0


def combine(fa: Sequence[RunFigure], fb: RunFigure | Sequence[RunFigure], level: float = 0.95,
            disp_cost: float = 1.0, disp_share: float = 1.0) -> Estimate:
    """B against the baseline runs' figures: each bootstrap variance scaled by the
    service-event's dispersion, the baseline runs pooled (:func:`pool`, whose tau^2 also
    applies to B), then the normal approximation on the log scale (cost) and on the share
    difference. ``fb`` is one run under test, or several (repeats of the same build): each is
    one draw with variance c var + tau^2, and their precision-weighted mean is compared."""
    fbs = [fb] if isinstance(fb, RunFigure) else list(fb)
    la, var_la, tau_l = pool([f.log_cost for f in fa], [disp_cost * f.var_log for f in fa])
    sa, var_sa, tau_s = pool([f.share for f in fa], [disp_share * f.var_share for f in fa])
    lb, var_lb = _known([f.log_cost for f in fbs], [disp_cost * f.var_log + tau_l for f in fbs])
    sb, var_sb = _known([f.share for f in fbs], [disp_share * f.var_share + tau_s for f in fbs])
    d_log = lb - la
    se_log = math.sqrt(var_lb + var_la)
    d_share = sb - sa
    se_share = math.sqrt(var_sb + var_sa)
    z = _z(level)
    return Estimate(
        cost_a=sum(f.cost for f in fa) / len(fa), cost_b=sum(f.cost for f in fbs) / len(fbs), ratio=math.exp(d_log),
        ratio_lo=math.exp(d_log - z * se_log), ratio_hi=math.exp(d_log + z * se_log),
        share_a=sa, share_b=sb, share_lo=d_share - z * se_share, share_hi=d_share + z * se_share,
        p_cost=_normal_p(d_log, se_log), p_share=_normal_p(d_share, se_share),
        runs_a=len(fa), tau_log=math.sqrt(tau_l), dispersion=disp_cost, runs_b=len(fbs),
    )


def estimate(a: SliceTable | Sequence[SliceTable], b: SliceTable, name: str,
             plan_a: Sequence[Sequence[int]] | Sequence[Sequence[Sequence[int]]],
             plan_b: Sequence[Sequence[int]], level: float = 0.95, disp_cost: float = 1.0,
             disp_share: float = 1.0) -> Estimate:
    """Compare one method (or ``TOTAL``) of a run B with a baseline A of one or more runs.

    Each run's log cost per request and share come with their bootstrap variance over its own
    slice resamples (:func:`run_figure`). Several baseline runs are pooled with a
    random-effects model (:func:`pool`), whose between-run variance tau^2 also applies to B:
    B - A has variance var(B) + tau^2 + var(pooled A), the bootstrap variances first scaled by
    the service-event's :func:`dispersion` (given; 1 by default). Interval and two-sided
    p-value use the normal approximation; they stay continuous for Benjamini-Hochberg where
    percentile p-values would stop at 1/resamples. ``a`` and ``plan_a`` are a table and its
    plan, or lists of them (one per baseline run).
    """
    tables = [a] if isinstance(a, SliceTable) else list(a)
    plans = [plan_a] if isinstance(a, SliceTable) else list(plan_a)
    fa = [run_figure(t, name, p) for t, p in zip(tables, plans)]
    return combine(fa, run_figure(b, name, plan_b), level, disp_cost, disp_share)


def benjamini_hochberg(pvalues: Sequence[float], weights: Sequence[float] | None = None) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (q-values), in the input's order: a test is a
    discovery at false discovery rate ``alpha`` when its q <= alpha.

    ``weights`` (positive, fixed before the data are seen; scaled here to average 1) give the
    weighted procedure of Genovese, Roeder and Wasserman (2006): BH on p / w, which keeps the
    false discovery rate at ``alpha`` while spending more of it on the tests weighted up.
    (Written out: statsmodels' multipletests has no weights.)"""
    m = len(pvalues)
    if m == 0:
        return []
    if weights is not None:
        if len(weights) != m or any(w <= 0 for w in weights):
            raise ValueError("one positive weight per p-value")
        mean = sum(weights) / m
        pvalues = [p / (w / mean) for p, w in zip(pvalues, weights)]
    order = sorted(range(m), key=lambda i: pvalues[i])
    q = [1.0] * m
    running = math.inf
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


__all__ = ["Estimate", "RunFigure", "SliceTable", "TOTAL", "benjamini_hochberg", "block_counts", "choose_slices",
           "combine", "dispersion", "estimate", "pool", "resample_plan", "run_figure"]
