"""The regression gate: did a method's cost per request, or the load, get worse than in a
saved baseline, beyond noise and beyond a practical threshold?

Per service and event, each application method's cost per request (deepest application frame,
as in :mod:`flamekit.analysis.costs`) and its share are compared between the baseline (A) and
the run (B) with a block bootstrap over time slices (:mod:`.gate_stats`); p-values of every
method test are corrected together with Benjamini-Hochberg. A change counts only when it is
significant (q <= ``alpha``) AND beyond the practical threshold (:class:`GateConfig`).

Verdicts (exit codes): 0 nothing got worse (improvements listed), 1 regression (the first line
names the worst), 2 cannot judge (each reason named). docs/gate.md explains the method.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from ..errors import FlamekitError
from .collapsed import Profile
from .events import event_kind, user_mode_only
from .gate_stats import (TOTAL, Estimate, SliceTable, benjamini_hochberg, combine, dispersion, resample_plan,
                         run_figure)
from .hotspots import app_hotspots
from .values import error_fraction, get, number


@dataclass(frozen=True)
class GateConfig:
    """The gate's thresholds; defaults are what `inv gate` uses."""

    cost_pct: float = 0.10          # +10 % cost per request ...
    share_points: float = 0.03      # ... or +3 points of share (and a higher cost)
    p95_pct: float = 0.15           # +15 % p95 latency ...
    p95_floor_ms: float = 5.0       # ... and at least this many ms
    error_points: float = 0.01      # +1 point of error rate
    tps_drop: float = 0.05          # achieved TPS 5 % under the baseline's
    tps_mismatch: float = 0.02      # target rates further apart than this: cannot judge
    max_dropped: float = 0.01       # dropped iterations over this share of them: rate not held
    min_rate: float = 0.95          # achieved TPS under this share of the target: rate not held
    alpha: float = 0.05             # Benjamini-Hochberg false discovery rate
    weighted: bool = True           # BH weighted by the baseline's share (see compare_tables)
    level: float = 0.95             # confidence level of the intervals
    min_samples: int = 100          # per service-event and run; fewer in one run: cannot judge
    min_share: float = 0.01         # methods under this share in both runs are not tested
    min_method_samples: float = 20  # ... nor those with fewer samples (summed over both runs)
    min_impact: float = 0.03        # a method's change must move the service's cost per request
                                    # by this share of the baseline's total (3 %, as share_points)
    resamples: int = 2000
    block: int = 2                  # slices per bootstrap block
    seed: int = 1729
    top_methods: int = 100          # methods kept per service-event in a baseline


DEFAULT = GateConfig()

#: Per event kind: (unit, what one value is converted by; None = from the interval).
UNITS = {"cpu": "CPU ms", "wall": "wall ms", "alloc": "MB", "lock": "ms lock wait"}


class GateRegression(FlamekitError):
    """Something got worse: exit code 1; the message names the worst change."""

    exit_code = 1


class GateUndecided(FlamekitError):
    """The runs cannot be compared (or a check has too few samples): exit code 2."""

    exit_code = 2


# --------------------------------------------------------------------------- tables


def gate_kind(event: str) -> str:
    return "wall" if (event or "").lower() == "wall" else event_kind(event)


def slice_values(profile: Profile, event: str, app_packages: Sequence[str] | None) -> tuple[dict[str, float], float]:
    """(value per deepest application frame, total) of one slice. The total is the whole
    profile for cpu/alloc/lock, only the stacks with an application frame for wall (idle pool
    threads are wall time of no request)."""
    kind = gate_kind(event)
    hs = app_hotspots(profile, "cpu" if kind == "wall" else event, None, app_packages)
    methods = {h.name: float(h.self_samples) for h in hs}
    total = sum(methods.values()) if kind == "wall" else float(profile.total)
    return methods, total


def build_table(service: str, event: str, slices: Sequence[Profile], seconds: Sequence[float], *,
                scale: float, tps: float, samples: int, per_sample: float = 1.0,
                app_packages: Sequence[str] | None = None, top: int = DEFAULT.top_methods) -> SliceTable:
    """A :class:`SliceTable` from the per-slice profiles of one capture; the ``top`` methods by
    value are kept (the rest still count in the totals)."""
    per: list[dict[str, float]] = []
    totals: list[float] = []
    for prof in slices:
        m, t = slice_values(prof, event, app_packages)
        per.append(m)
        totals.append(t)
    sums: dict[str, float] = {}
    for m in per:
        for name, v in m.items():
            sums[name] = sums.get(name, 0.0) + v
    keep = sorted(sums, key=lambda n: (-sums[n], n))[:top]
    methods = {n: [m.get(n, 0.0) for m in per] for n in keep}
    return SliceTable(service, event, UNITS[gate_kind(event)], scale, tps, samples, list(seconds), totals,
                      methods, per_sample)


# --------------------------------------------------------------------------- results


@dataclass
class MethodCheck:
    service: str
    event: str
    method: str
    unit: str
    est: Estimate
    q_cost: float = 1.0
    q_share: float = 1.0
    verdict: str = "ok"  # "regression", "improvement", "ok"
    why: str = ""
    base_total: float = 0.0  # the service-event's cost per request in the baseline (all methods)

    @property
    def pct(self) -> float:
        return (self.est.ratio - 1.0) * 100.0

    @property
    def impact(self) -> float:
        """What the change adds to the service's cost per request, as a share of the baseline's
        total: +100 % of a 1 % method is +0.01, +50 % of a 60 % method +0.30. Worst first means
        largest impact first (a method's relative change alone would put a tiny method first)."""
        added = self.est.cost_b - self.est.cost_a
        if self.base_total <= 0:  # nothing to compare with: any change is all of it
            return math.copysign(math.inf, added) if added else 0.0
        return added / self.base_total


def _worst_first(ms, better: bool = False) -> list[MethodCheck]:
    """Methods before the service's ``[total]``, then by impact (most added cost first, or most
    saved with ``better``)."""
    sign = 1.0 if better else -1.0
    return sorted(ms, key=lambda m: (m.method == TOTAL, sign * m.impact, sign * m.est.ratio))


@dataclass
class CaptureCheck:
    """One service-event: its method checks, or why it was not judged."""

    service: str
    event: str
    unit: str = ""
    samples_a: int = 0
    samples_b: int = 0
    methods: list[MethodCheck] = field(default_factory=list)
    undecided: str | None = None   # cannot judge: the reason
    skipped: str | None = None     # nothing to judge (too little in both runs)

    @property
    def name(self) -> str:
        return f"{self.service} {self.event}"

    @property
    def regressions(self) -> list[MethodCheck]:
        return _worst_first(m for m in self.methods if m.verdict == "regression")

    @property
    def improvements(self) -> list[MethodCheck]:
        return _worst_first((m for m in self.methods if m.verdict == "improvement"), better=True)


@dataclass
class LoadCheck:
    name: str          # "p95", "error rate", "achieved TPS"
    a: float | None
    b: float | None
    verdict: str = "ok"
    detail: str = ""


@dataclass
class GateResult:
    baseline: str
    run: str
    noun: str
    checks: list[CaptureCheck]
    load: list[LoadCheck]
    reasons: list[str]            # run-level: the runs cannot be compared
    notes: list[str] = field(default_factory=list)
    config: GateConfig = DEFAULT

    @property
    def regressions(self) -> list[MethodCheck]:
        return _worst_first(m for c in self.checks for m in c.regressions)

    @property
    def improvements(self) -> list[MethodCheck]:
        return _worst_first((m for c in self.checks for m in c.improvements), better=True)

    @property
    def load_regressions(self) -> list[LoadCheck]:
        return [x for x in self.load if x.verdict == "regression"]

    @property
    def undecided(self) -> list[str]:
        """Every reason the gate cannot judge: run-level ones, then per check."""
        return list(self.reasons) + [f"{c.name}: {c.undecided}" for c in self.checks if c.undecided]

    @property
    def exit_code(self) -> int:
        if self.reasons:
            return 2
        if self.regressions or self.load_regressions:
            return 1
        return 2 if self.undecided else 0

    @property
    def verdict(self) -> str:
        return {0: "pass", 1: "regression", 2: "cannot judge"}[self.exit_code]

    def headline(self) -> str:
        """One line: the worst regression, the first reason it cannot judge, or a pass."""
        code = self.exit_code
        if code == 2:
            more = len(self.undecided) - 1
            return f"cannot judge: {self.undecided[0]}" + (f" (+{more} more reason(s))" if more > 0 else "")
        if code == 1:
            if self.regressions:
                return method_line(self.regressions[0], self.noun)
            return load_line(self.load_regressions[0])
        judged = sum(1 for c in self.checks if not c.skipped)
        better = len(self.improvements)
        return (f"no regression against {self.baseline}: {judged} service-event check(s), "
                f"{len(self.load)} load check(s)" + (f"; {better} improvement(s)" if better else ""))

    def error(self) -> FlamekitError | None:
        code = self.exit_code
        if code == 0:
            return None
        if code == 1:
            n = len(self.regressions) + len(self.load_regressions) - 1
            return GateRegression(self.headline(), f"{n} more regression(s)" if n > 0 else None)
        return GateUndecided(self.headline(), "; ".join(self.undecided[1:]) or None)


def _signed_pct(x: float) -> str:
    return f"{x:+.0f}%"


def method_line(m: MethodCheck, noun: str = "request") -> str:
    """``order-service cpu: demo.X.y +48% CPU ms per order (+39%..+57%)``."""
    e = m.est
    if m.why == "share":
        return (f"{m.service} {m.event}: {m.method} {e.share_delta * 100:+.1f} points of {m.unit} "
                f"({e.share_a:.1%} -> {e.share_b:.1%}, {_signed_pct(m.pct)} {m.unit} per {noun})")
    return (f"{m.service} {m.event}: {m.method} {_signed_pct(m.pct)} {m.unit} per {noun} "
            f"({_signed_pct((e.ratio_lo - 1) * 100)}..{_signed_pct((e.ratio_hi - 1) * 100)})")


def load_line(x: LoadCheck) -> str:
    return f"load: {x.name} {x.detail}"


# --------------------------------------------------------------------------- comparability


def _caps(manifest: Mapping) -> list[Mapping]:
    caps = manifest.get("captures") if isinstance(manifest, Mapping) else None
    return [c for c in caps if isinstance(c, Mapping)] if isinstance(caps, list) else []


def _by_service(manifest: Mapping, services: set[str]) -> dict[str, Mapping]:
    out: dict[str, Mapping] = {}
    for c in _caps(manifest):
        svc = str(c.get("service"))
        if svc in services and not c.get("error"):
            out.setdefault(svc, c)
    return out


def _cpu_engine(manifest: Mapping, svc: str) -> str | None:
    for c in _caps(manifest):
        if c.get("service") == svc and c.get("event") == "cpu" and c.get("engine"):
            return str(c["engine"]) + (" (user mode only)" if user_mode_only(c) else "")
    return None


def rate_problem(manifest: Mapping, who: str, cfg: GateConfig = DEFAULT) -> str | None:
    """k6's own ``rate_held`` is strict (one dropped iteration breaks it); on a shared CI host
    a few dropped iterations of hundreds do not change a cost per request, so the gate allows
    ``max_dropped`` of them and ``min_rate`` of the target rate."""
    load = manifest.get("load") if isinstance(manifest, Mapping) else None
    if not isinstance(load, Mapping):
        return f"rate not held: {who} has no load figures"
    dropped = number(load.get("dropped_iterations")) or 0
    done = number(load.get("iterations")) or 0
    tps, target = number(load.get("achieved_tps")), number(load.get("target_tps"))
    slow = tps is not None and bool(target) and tps < cfg.min_rate * target
    if slow or dropped > cfg.max_dropped * max(done + dropped, 1):
        return (f"rate not held in {who}: {dropped:g} dropped iteration(s)"
                + (f", {tps:g} of {target:g} TPS" if tps is not None and target is not None else ""))
    return None


def _target_tps(manifest: Mapping) -> float | None:
    return number(get(manifest, "load", "target_tps")) or number(get(manifest, "settings", "tps"))


def comparability(base: Mapping, run: Mapping, services: Sequence[str],
                  cfg: GateConfig = DEFAULT) -> list[str]:
    """Why two runs cannot be compared at all; empty when they can. Named reasons: rate not
    held, target TPS, JVM flags, JDK, async-profiler version, CPU engine."""
    reasons = []
    for m, who in ((base, "the baseline"), (run, "this run")):
        problem = rate_problem(m, who, cfg)
        if problem:
            reasons.append(problem)
    ta, tb = _target_tps(base), _target_tps(run)
    if ta and tb and abs(tb - ta) / ta > cfg.tps_mismatch:
        reasons.append(f"different TPS: baseline {ta:g}, this run {tb:g}")
    va, vb = get(base, "environment", "async_profiler"), get(run, "environment", "async_profiler")
    if va and vb and str(va) != str(vb):
        reasons.append(f"different async-profiler version: baseline {va}, this run {vb}")
    wanted = set(services)
    ca, cb = _by_service(base, wanted), _by_service(run, wanted)
    for svc in sorted(set(ca) & set(cb)):
        ja, jb = ca[svc].get("jvm") or {}, cb[svc].get("jvm") or {}
        fa, fb = ja.get("args"), jb.get("args")
        if isinstance(fa, list) and isinstance(fb, list) and sorted(map(str, fa)) != sorted(map(str, fb)):
            only_a = [f for f in fa if f not in fb]
            only_b = [f for f in fb if f not in fa]
            reasons.append(f"different JVM flags for {svc}: baseline only {' '.join(only_a) or '-'}, "
                           f"this run only {' '.join(only_b) or '-'}")
        if ja.get("version") and jb.get("version") and ja.get("version") != jb.get("version"):
            reasons.append(f"different JDK for {svc}: baseline {ja['version']}, this run {jb['version']}")
        ea, eb = _cpu_engine(base, svc), _cpu_engine(run, svc)
        if ea and eb and ea != eb:
            reasons.append(f"different CPU engine for {svc}: baseline {ea}, this run {eb}")
    return reasons


#: CPU engines whose figures spread wider between runs than ctimer's, which docs/ci.md pins for a
#: gate (+25 % caught in 5 of 6 pairs with itimer, 10 of 10 with ctimer; docs/perf/benchmarks.md).
WIDE_ENGINES = ("itimer",)


def engine_notes(run: Mapping, services: Sequence[str]) -> list[str]:
    """Advice, not a verdict: cpu captures of this run taken with an engine that moves more from
    run to run than ctimer (``cpu_engine: auto`` picks itimer where perf_events is not allowed)."""
    wide = [svc for svc in sorted(services) if (_cpu_engine(run, svc) or "").lower() in WIDE_ENGINES]
    return [f"{', '.join(wide)} cpu: sampled with itimer, whose figures move more from run to run than "
            "ctimer's; pin cpu_engine: ctimer for gated runs and their baseline (docs/ci.md)"] if wide else []


# --------------------------------------------------------------------------- the checks


def _load_check(name: str, a: float | None, b: float | None, detail, worse: bool, better: bool) -> LoadCheck:
    c = LoadCheck(name, a, b)
    if a is None or b is None or (name != "error rate" and not a):
        c.verdict, c.detail = "n/a", f"no {name} in one of the runs"
        return c
    c.detail = detail(a, b)
    if worse:
        c.verdict = "regression"
    elif better:
        c.verdict = "improvement"
    return c


def load_checks(base: Mapping, run: Mapping, cfg: GateConfig = DEFAULT) -> list[LoadCheck]:
    """p95, error rate and achieved TPS of the measured window. k6 gives one aggregate per run
    (no per-slice latencies), so these are practical thresholds, not tests."""
    pa, pb = number(get(base, "load", "p95_ms")), number(get(run, "load", "p95_ms"))
    ea, eb = error_fraction(get(base, "load", "error_rate")), error_fraction(get(run, "load", "error_rate"))
    ta, tb = number(get(base, "load", "achieved_tps")), number(get(run, "load", "achieved_tps"))
    ok = lambda *v: all(x is not None for x in v)  # noqa: E731
    return [
        _load_check("p95", pa, pb, lambda a, b: f"{(b / a - 1) * 100:+.0f}% ({a:.1f} -> {b:.1f} ms)",
                    ok(pa, pb) and pb > pa * (1 + cfg.p95_pct) and pb - pa >= cfg.p95_floor_ms,
                    ok(pa, pb) and pb < pa * (1 - cfg.p95_pct) and pa - pb >= cfg.p95_floor_ms),
        _load_check("error rate", ea, eb, lambda a, b: f"{(b - a) * 100:+.2f} points ({a:.2%} -> {b:.2%})",
                    ok(ea, eb) and eb - ea > cfg.error_points, ok(ea, eb) and ea - eb > cfg.error_points),
        _load_check("achieved TPS", ta, tb, lambda a, b: f"{(b / a - 1) * 100:+.1f}% ({a:.2f} -> {b:.2f})",
                    ok(ta, tb) and tb < ta * (1 - cfg.tps_drop), False),
    ]


def _testable(bases: Sequence[SliceTable], b: SliceTable, cfg: GateConfig) -> list[str]:
    names = [TOTAL] if gate_kind(b.event) != "wall" else []
    every = set(b.methods).union(*(a.methods for a in bases))
    for name in sorted(every):
        shares = [a.share(a.series(name)) for a in bases] + [b.share(b.series(name))]
        n = (sum(sum(a.series(name)) / (a.per_sample or 1) for a in bases) / len(bases)
             + sum(b.series(name)) / (b.per_sample or 1))
        if max(shares) >= cfg.min_share and n >= cfg.min_method_samples:
            names.append(name)
    return names


def _classify(m: MethodCheck, cfg: GateConfig) -> None:
    e = m.est
    sig_cost, sig_share = m.q_cost <= cfg.alpha, m.q_share <= cfg.alpha
    if m.method != TOTAL and abs(m.impact) < cfg.min_impact:
        return  # real or not, it moves the service's cost per request by under min_impact
    if sig_cost and e.ratio >= 1 + cfg.cost_pct and e.ratio_lo > 1:
        m.verdict, m.why = "regression", "cost"
    elif m.method != TOTAL and sig_share and sig_cost and e.share_delta >= cfg.share_points and e.ratio > 1:
        # a share can rise only because other methods got cheaper: its cost must rise too
        m.verdict, m.why = "regression", "share"
    elif sig_cost and e.ratio <= 1 - cfg.cost_pct and e.ratio_hi < 1:
        m.verdict, m.why = "improvement", "cost"
    elif m.method != TOTAL and sig_share and sig_cost and e.share_delta <= -cfg.share_points and e.ratio < 1:
        m.verdict, m.why = "improvement", "share"


def _as_runs(x: SliceTable | Sequence[SliceTable]) -> list[SliceTable]:
    return [x] if isinstance(x, SliceTable) else list(x)


def compare_tables(base: Mapping[tuple[str, str], SliceTable | Sequence[SliceTable]],
                   run: Mapping[tuple[str, str], SliceTable | Sequence[SliceTable]], cfg: GateConfig = DEFAULT
                   ) -> tuple[list[CaptureCheck], list[str]]:
    """The method checks of every service-event of the baseline, and notes (service-events
    only in the run). A baseline service-event is one table, or one per baseline run (pooled
    with their between-run variance, see :func:`.gate_stats.estimate`). q-values come from one
    Benjamini-Hochberg family over every cost and share test of the whole gate, weighted by
    the baseline's shares."""
    rng = random.Random(cfg.seed)
    checks: list[CaptureCheck] = []
    notes = [f"{s} {e}: not in the baseline, not judged" for (s, e) in sorted(set(run) - set(base))]
    for key in sorted(base):
        bases = _as_runs(base[key])
        samples_a = min(a.samples for a in bases)
        check = CaptureCheck(key[0], key[1], bases[0].unit, samples_a)
        checks.append(check)
        if run.get(key) is None:
            check.undecided = "in the baseline but missing from this run"
            continue
        cands = _as_runs(run[key])
        samples_b = min(b.samples for b in cands)
        check.samples_b = samples_b
        if samples_a < cfg.min_samples and samples_b < cfg.min_samples:
            check.skipped = (f"under {cfg.min_samples} samples in both runs ({samples_a}, {samples_b}): "
                             "too little to matter")
            continue
        if min(samples_a, samples_b) < cfg.min_samples:
            check.undecided = (f"too few samples: baseline {samples_a}, this run {samples_b} "
                               f"(need {cfg.min_samples} in each)")
            continue
        k_a, k_b = min(a.k for a in bases), min(b.k for b in cands)
        if k_a < 3 or k_b < 3:
            check.undecided = f"too few time slices: baseline {k_a}, this run {k_b}"
            continue
        plans_a = [resample_plan(a.k, cfg.block, cfg.resamples, rng) for a in bases]
        plans_b = [resample_plan(b.k, cfg.block, cfg.resamples, rng) for b in cands]
        base_total = sum(a.cost(a.totals) for a in bases) / len(bases)
        names = sorted(set().union(*(_testable(bases, b, cfg) for b in cands)), key=lambda n: (n != TOTAL, n))
        figs = {n: ([run_figure(a, n, p) for a, p in zip(bases, plans_a)],
                    [run_figure(b, n, p) for b, p in zip(cands, plans_b)])
                for n in names}
        methods = [fa for n, (fa, _) in figs.items() if n != TOTAL]
        d_cost = dispersion([[(f.log_cost, f.var_log) for f in fa] for fa in methods])
        d_share = dispersion([[(f.share, f.var_share) for f in fa] for fa in methods])
        for name, (fa, fb) in figs.items():
            check.methods.append(MethodCheck(key[0], key[1], name, cands[0].unit,
                                             combine(fa, fb, cfg.level, d_cost, d_share), base_total=base_total))
    tests = [m for c in checks for m in c.methods]
    # Weighted by what a method can move: its share of its service-event in the baseline (a
    # service's [total] is all of it), at least min_share. The baseline alone sets them, before
    # this run is seen, as the weighted procedure requires. Unweighted, the family of the
    # demo's cpu and alloc checks (about 60 tests) left a +17 % change of its 75 % method at
    # q = 0.18 (bench/gate.py, round 9 of 2026-12-02).
    weights = [max(m.est.share_a if m.method != TOTAL else 1.0, cfg.min_share) for m in tests] * 2
    qs = benjamini_hochberg([m.est.p_cost for m in tests] + [m.est.p_share for m in tests],
                            weights if cfg.weighted else None)
    for i, m in enumerate(tests):
        m.q_cost, m.q_share = qs[i], qs[len(tests) + i]
        _classify(m, cfg)
    return checks, notes


def judge(base_manifest: Mapping, base_tables: Mapping[tuple[str, str], SliceTable | Sequence[SliceTable]],
          run_manifest: Mapping, run_tables: Mapping[tuple[str, str], SliceTable | Sequence[SliceTable]], *,
          baseline: str, run: str, noun: str = "request", cfg: GateConfig = DEFAULT) -> GateResult:
    """The whole gate on two runs' figures (see the module doc)."""
    services = sorted({s for s, _ in base_tables} | {s for s, _ in run_tables})
    reasons = comparability(base_manifest, run_manifest, services, cfg)
    checks, notes = compare_tables(base_tables, run_tables, cfg)
    notes += engine_notes(run_manifest, services)
    return GateResult(baseline, run, noun, checks, load_checks(base_manifest, run_manifest, cfg), reasons,
                      notes, cfg)


def tables_to_json(tables: Mapping[tuple[str, str], SliceTable]) -> list[dict[str, Any]]:
    return [t.to_dict() for _, t in sorted(tables.items())]


def tables_from_json(items: Any) -> dict[tuple[str, str], SliceTable]:
    out: dict[tuple[str, str], SliceTable] = {}
    for d in items if isinstance(items, list) else []:
        t = SliceTable.from_dict(d)
        out[(t.service, t.event)] = t
    return out


__all__ = ["DEFAULT", "CaptureCheck", "GateConfig", "GateRegression", "GateResult", "GateUndecided",
           "LoadCheck", "MethodCheck", "UNITS", "build_table", "compare_tables", "comparability",
           "engine_notes", "gate_kind", "judge", "load_checks", "load_line", "method_line", "rate_problem",
           "slice_values", "tables_from_json", "tables_to_json"]
