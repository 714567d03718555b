"""Two runs side by side: per service and event, the methods whose shares moved most, and
the load figures of both.

Shares are normalised, so runs of different lengths compare; deltas are B - A as fractions.
"Beyond noise" is the two runs' binomial sampling error (:func:`stats.beyond_noise`): samples
are autocorrelated, so it flags candidates, not proven changes (DESIGN.md §5).
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..runs import read_manifest, resolve_run
from .captures import CaptureData, load_captures
from .collapsed import WEIGHT_SAMPLES, Profile
from .hotspots import all_hotspots
from .stats import beyond_noise
from .validity import validity_warnings
from .values import error_fraction, get, number

log = logging.getLogger(__name__)

#: Where runs are looked up by stamp when the caller names no runs directory.
DEFAULT_RUNS_ROOT = Path("docs/perf/runs")


@dataclass(frozen=True)
class MethodDelta:
    """A method's shares in runs A and B; deltas are B - A as fractions."""

    name: str
    self_a: float
    self_b: float
    total_a: float
    total_b: float
    significant: bool = False  # |total delta| beyond the 95 % sampling error of both runs

    @property
    def self_delta(self) -> float:
        return self.self_b - self.self_a

    @property
    def total_delta(self) -> float:
        return self.total_b - self.total_a


@dataclass
class CaptureComparison:
    service: str
    event: str
    samples_a: int
    samples_b: int
    engine_a: str | None
    engine_b: str | None
    hotter_total: list[MethodDelta]
    cooler_total: list[MethodDelta]
    hotter_self: list[MethodDelta]
    cooler_self: list[MethodDelta]
    profile_a: Profile | None = field(default=None, repr=False)
    profile_b: Profile | None = field(default=None, repr=False)
    #: what the compared shares are of: "samples", "bytes", "ns"; "mixed" when the runs
    #: recorded different units and no pair of sample counts was available
    weight: str = WEIGHT_SAMPLES


@dataclass(frozen=True)
class LoadDelta:
    metric: str
    a: float | None
    b: float | None

    @property
    def delta(self) -> float | None:
        return None if self.a is None or self.b is None else self.b - self.a


@dataclass
class Comparison:
    run_a: Path
    run_b: Path
    stamp_a: str
    stamp_b: str
    load: list[LoadDelta]
    captures: list[CaptureComparison]
    only_in_a: list[tuple[str, str]]
    only_in_b: list[tuple[str, str]]
    warnings_a: list[str]
    warnings_b: list[str]


#: (label, manifest ``load`` key) of the load figures compared.
LOAD_METRICS = (("achieved TPS", "achieved_tps"), ("p50 ms", "p50_ms"), ("p95 ms", "p95_ms"),
                ("p99 ms", "p99_ms"), ("error rate", "error_rate"),
                ("dropped iterations", "dropped_iterations"))


def compare_profiles(profile_a: Profile, profile_b: Profile, event: str = "cpu",
                     top: int = 10) -> tuple[list[MethodDelta], list[MethodDelta],
                                             list[MethodDelta], list[MethodDelta]]:
    """(hotter by total, cooler by total, hotter by self, cooler by self) of B vs A,
    each sorted by the size of the change; unchanged methods are left out."""
    ha, hb = all_hotspots(profile_a, event), all_hotspots(profile_b, event)
    na, nb = profile_a.samples, profile_b.samples  # sampling error from the counts
    deltas = []
    for name in set(ha) | set(hb):
        a, b = ha.get(name), hb.get(name)
        ta, tb = (a.total_share if a else 0.0), (b.total_share if b else 0.0)
        deltas.append(MethodDelta(name, a.self_share if a else 0.0, b.self_share if b else 0.0,
                                  ta, tb, beyond_noise(ta, na, tb, nb)))
    eps = 1e-12
    hot_t = sorted((d for d in deltas if d.total_delta > eps), key=lambda d: (-d.total_delta, d.name))[:top]
    cool_t = sorted((d for d in deltas if d.total_delta < -eps), key=lambda d: (d.total_delta, d.name))[:top]
    hot_s = sorted((d for d in deltas if d.self_delta > eps), key=lambda d: (-d.self_delta, d.name))[:top]
    cool_s = sorted((d for d in deltas if d.self_delta < -eps), key=lambda d: (d.self_delta, d.name))[:top]
    return hot_t, cool_t, hot_s, cool_s


def _comparable(ca: CaptureData, cb: CaptureData) -> tuple[Profile, Profile, str]:
    """The two profiles to compare and their unit: the weighted files when both runs
    recorded the same weight, else the sample counts of both, else the files as they are
    ("mixed")."""
    pa, pb = ca.profile, cb.profile
    assert pa is not None and pb is not None
    if pa.weight == pb.weight:
        return pa, pb, pa.weight
    sa = ca.sample_profile if ca.sample_profile is not None else (None if pa.weighted else pa)
    sb = cb.sample_profile if cb.sample_profile is not None else (None if pb.weighted else pb)
    if sa is not None and sb is not None:
        return sa, sb, WEIGHT_SAMPLES
    log.warning("%s %s: A is in %s, B in %s and no sample counts for both; shares may not compare",
                ca.service, ca.event, pa.weight, pb.weight)
    return pa, pb, "mixed"


def compare_runs(run_a: str | os.PathLike[str], run_b: str | os.PathLike[str],
                 runs_root: str | os.PathLike[str] = DEFAULT_RUNS_ROOT, top: int = 10) -> Comparison:
    """Compare two runs (directories or stamps under ``runs_root``): per service and
    event present in both, the methods whose shares moved most; and load deltas.

    Shares are normalised, so weighted and count profiles both work: the weighted
    files are compared when both runs have them (same unit), else the sample counts;
    the sampling error behind "beyond noise" always comes from the sample counts."""
    dir_a, dir_b = resolve_run(runs_root, run_a), resolve_run(runs_root, run_b)
    man_a, man_b = read_manifest(dir_a), read_manifest(dir_b)
    caps_a = {(c.service, c.event): c for c in load_captures(dir_a, man_a) if c.profile is not None}
    caps_b = {(c.service, c.event): c for c in load_captures(dir_b, man_b) if c.profile is not None}
    results = []
    for key in sorted(set(caps_a) & set(caps_b)):
        ca, cb = caps_a[key], caps_b[key]
        pa, pb, unit = _comparable(ca, cb)
        hot_t, cool_t, hot_s, cool_s = compare_profiles(pa, pb, key[1], top)
        results.append(CaptureComparison(key[0], key[1], pa.samples, pb.samples,
                                         ca.engine, cb.engine, hot_t, cool_t, hot_s, cool_s,
                                         pa, pb, unit))
    load = []
    for label, key in LOAD_METRICS:
        conv = error_fraction if key == "error_rate" else number
        load.append(LoadDelta(label, conv(get(man_a, "load", key)), conv(get(man_b, "load", key))))
    return Comparison(
        run_a=dir_a, run_b=dir_b,
        stamp_a=str(man_a.get("stamp") or dir_a.name), stamp_b=str(man_b.get("stamp") or dir_b.name),
        load=load, captures=results,
        only_in_a=sorted(set(caps_a) - set(caps_b)), only_in_b=sorted(set(caps_b) - set(caps_a)),
        warnings_a=validity_warnings(man_a), warnings_b=validity_warnings(man_b),
    )
