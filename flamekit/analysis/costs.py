"""Cost per request: what each hotspot costs one k6 iteration, and what to fix first.

A capture's window is its profiler's (``profiler_started``..``profiler_stopped``; else the
timeline's ``profilers_*``; else ``settings.duration``); the iterations completed in it are
``load.achieved_tps`` x window seconds. Per iteration, for the deepest application frame of
each stack (see :func:`flamekit.analysis.hotspots.app_hotspots`):

* cpu: self samples x interval (the capture's, else the run's, else async-profiler's
  default of 10 ms) -> ms of CPU;
* alloc: self bytes (``jfrconv --total`` weights) -> MB allocated;
* lock: self wait ns -> ms of lock wait;
* wall: request threads' self samples x the wall interval -> ms of request time
  (:func:`flamekit.analysis.threads.request_wall`; waits in blocking HTTP client calls are
  the called service's time and are reported apart, not ranked).

Replicas of a service are summed. Shares are of the service's total for that kind (for wall:
of its request time), with ± from the sample *count* (:mod:`flamekit.analysis.stats`).
Beside each service's profiled totals stand what the container and the JVM measured over the
same window: the cgroup's CPU, and the bytes the JVM's per-thread counters grew by
(``jvm_allocated_bytes`` of an alloc capture).
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from .captures import CaptureData
from .collapsed import Profile, parse_collapsed
from .events import event_kind, user_mode_only
from .hotspots import app_hotspots
from .stats import Uncertainty, uncertainty
from .threads import CpuBreakdown, cpu_breakdown, merge_breakdowns, request_wall, without_downstream
from .values import get, number

#: async-profiler's default cpu interval (ctimer/itimer/perf_events): 10 ms.
DEFAULT_CPU_INTERVAL_MS = 10.0
#: flamekit records wall with ``--wall 20ms`` (capture/session.py); the manifest's
#: ``interval`` is the cpu one, so a wall capture only overrides it with ``wall_interval``.
DEFAULT_WALL_INTERVAL_MS = 20.0
#: Under this share of the cgroup's CPU, the profile misses CPU time.
MIN_CGROUP_COVERAGE = 0.80
#: Outside this range of the JVM's own allocation counters, the sampled bytes are off: under it
#: samples were lost; over it, more than TLAB waste (which the JVM's heap sampler counts as
#: allocated, its counters do not: 0-9 % on the demo) is in the profile.
ALLOC_COVERAGE_RANGE = (0.80, 1.25)
#: Over this share of a service's CPU in the JIT compiler, the warm-up was too short.
MAX_JIT_SHARE = 0.15
#: Over this share of a service's CPU in GC threads, GC is a finding of its own.
GC_FINDING_SHARE = 0.10
#: (kind, title) of the ranked tables, in report order.
KINDS: tuple[tuple[str, str], ...] = (("cpu", "CPU"), ("alloc", "Allocation"), ("lock", "Lock wait"),
                                      ("wall", "Request latency"))
UNITS = {"cpu": "ms CPU", "alloc": "MB", "lock": "ms wait", "wall": "ms"}
_INTERVAL_RE = re.compile(r"^\s*([0-9.]+)\s*(ns|us|µs|ms|s)?\s*$")
_UNIT_MS = {"ns": 1e-6, "us": 1e-3, "µs": 1e-3, "ms": 1.0, "s": 1e3}


def interval_ms(value: Any, default: float = DEFAULT_CPU_INTERVAL_MS) -> float:
    """``"10ms"`` -> 10.0; a plain number is nanoseconds, as asprof reads ``-i``."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return float(value) * 1e-6
    m = _INTERVAL_RE.match(str(value)) if isinstance(value, str) else None
    if not m:
        return default
    return float(m.group(1)) * _UNIT_MS[m.group(2) or "ns"] or default


def parse_time(value: Any) -> dt.datetime | None:
    """An ISO timestamp of the manifest (UTC when it names no zone); None if unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        t = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=dt.timezone.utc)


def window_seconds(cap: CaptureData, manifest: Mapping) -> float | None:
    """Seconds the capture's profiler ran (see the module doc for the fallbacks)."""
    for start, stop in ((cap.meta.get("profiler_started"), cap.meta.get("profiler_stopped")),
                        (get(manifest, "timeline", "profilers_started"),
                         get(manifest, "timeline", "profilers_stopped"))):
        a, b = parse_time(start), parse_time(stop)
        if a and b and b > a:
            return (b - a).total_seconds()
    return number(get(manifest, "settings", "duration"))


def iterations(cap: CaptureData, manifest: Mapping) -> float | None:
    """k6 iterations completed in the capture's window: achieved TPS x window seconds."""
    tps, secs = number(get(manifest, "load", "achieved_tps")), window_seconds(cap, manifest)
    return tps * secs if tps and secs else None


def unit_ms(cap: CaptureData, manifest: Mapping) -> float:
    """What one sample of a cpu or wall capture stands for, in ms."""
    if cap.event == "wall":
        # the capture's own interval (recorded per capture since 2026-12-02); older runs ran
        # beside other events at 20 ms
        return interval_ms(cap.meta.get("wall_interval") or cap.interval, DEFAULT_WALL_INTERVAL_MS)
    return interval_ms(cap.interval or get(manifest, "settings", "interval"))


@dataclass
class Finding:
    """One ranked row: ``per_request`` in ``UNITS[kind]`` per iteration (None: unknown);
    ``share`` of the service's total for the kind, measured from ``samples`` samples."""

    kind: str
    method: str
    service: str
    per_request: float | None
    share: float
    samples: int
    flamegraph: Path | None = None
    note: str = ""

    @property
    def uncertainty(self) -> Uncertainty:
        return uncertainty(self.samples, self.share)


@dataclass
class ServiceCosts:
    """One service's figures per iteration (replicas summed)."""

    service: str
    cpu_ms: float | None = None         # profiled CPU (all samples x interval)
    cgroup_ms: float | None = None      # the containers' cgroup CPU
    cpu_samples: int = 0
    user_mode_only: bool = False        # a perf_events profile without kernel frames
    breakdown: CpuBreakdown | None = None
    request_ms: float | None = None     # request threads' wall time
    downstream_ms: float | None = None  # of it, in blocking HTTP client calls
    idle_ms: float | None = None        # request threads without application code
    other_ms: float | None = None       # threads that never ran application code
    request_threads: list[str] = field(default_factory=list)
    alloc_mb: float | None = None       # sampled allocation (all bytes of the alloc profile)
    jvm_alloc_mb: float | None = None   # the JVM's per-thread allocation counters, same window
    jvm_threads_ended: int = 0          # threads gone in the window (their bytes not counted)

    @property
    def coverage(self) -> float | None:
        return self.cpu_ms / self.cgroup_ms if self.cpu_ms is not None and self.cgroup_ms else None

    @property
    def alloc_coverage(self) -> float | None:
        return self.alloc_mb / self.jvm_alloc_mb if self.alloc_mb is not None and self.jvm_alloc_mb else None


def _add(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else a + b


def _read(path: Path | None) -> Profile | None:
    try:
        return parse_collapsed(path) if path is not None else None
    except Exception:  # a damaged optional file only loses its figures
        return None


def _per_iter(value: float, scale: float | None, iters: float | None) -> float | None:
    return value * scale / iters if iters and scale is not None else None


@dataclass
class _Acc:
    value: float = 0.0
    per_request: float | None = None
    flamegraph: Path | None = None


@dataclass
class _Group:
    total: float = 0.0
    samples: int = 0
    methods: dict[str, _Acc] = field(default_factory=dict)


def _collect(groups: dict, kind: str, service: str, profile: Profile, scale: float | None,
             iters: float | None, cap: CaptureData, total: float, samples: int) -> None:
    g = groups.setdefault((kind, service), _Group())
    g.total += total
    g.samples += samples
    for h in app_hotspots(profile, "cpu" if kind == "wall" else cap.event, None, cap.app_packages):
        acc = g.methods.setdefault(h.name, _Acc(flamegraph=cap.flamegraph or cap.html))
        acc.value += h.self_samples
        acc.per_request = _add(acc.per_request, _per_iter(h.self_samples, scale, iters))


def _scale(kind: str, cap: CaptureData, manifest: Mapping) -> float | None:
    """Profile value -> UNITS[kind]; None when the capture holds counts, not bytes or ns."""
    if kind == "alloc":
        return 1e-6 if cap.weight == "bytes" else None
    if kind == "lock":
        return 1e-6 if cap.weight == "ns" else None
    return unit_ms(cap, manifest)


def analyse(manifest: Mapping, caps: Iterable[CaptureData]) -> tuple[dict[str, list[Finding]],
                                                                     dict[str, ServiceCosts]]:
    """(findings per kind, ranked by cost per iteration then share; figures per service)."""
    groups: dict[tuple[str, str], _Group] = {}
    services: dict[str, ServiceCosts] = {}
    breakdowns: dict[str, list[CpuBreakdown]] = {}
    gc_links: dict[str, Path | None] = {}
    for cap in caps:
        kind = "wall" if cap.event == "wall" else event_kind(cap.event)
        if cap.profile is None or not cap.profile.total or (kind == "cpu" and cap.event != "cpu"):
            continue
        iters, scale = iterations(cap, manifest), _scale(kind, cap, manifest)
        sc = services.setdefault(cap.service, ServiceCosts(cap.service))
        if kind == "cpu":
            n = cap.samples or cap.profile.total
            sc.cpu_samples += n
            sc.cpu_ms = _add(sc.cpu_ms, _per_iter(n, scale, iters))
            sc.user_mode_only = sc.user_mode_only or user_mode_only(cap.meta)
            cg = number(cap.meta.get("cgroup_cpu_s"))
            sc.cgroup_ms = _add(sc.cgroup_ms, _per_iter(cg, 1e3, iters) if cg is not None else None)
            threads = _read(cap.file("threads_collapsed"))
            if threads is not None and threads.total:
                breakdowns.setdefault(cap.service, []).append(cpu_breakdown(threads, cap.app_packages))
                gc_links.setdefault(cap.service, cap.flamegraph or cap.html)
        if kind == "alloc" and scale is not None:
            sc.alloc_mb = _add(sc.alloc_mb, _per_iter(cap.profile.total, scale, iters))
            jb = number(cap.meta.get("jvm_allocated_bytes"))
            sc.jvm_alloc_mb = _add(sc.jvm_alloc_mb, _per_iter(jb, 1e-6, iters) if jb is not None else None)
            sc.jvm_threads_ended += int(number(cap.meta.get("jvm_threads_ended")) or 0)
        if kind == "wall":
            rw = request_wall(_read(cap.file("threads_collapsed")) or cap.profile, cap.app_packages)
            _collect(groups, kind, cap.service, without_downstream(rw.request, cap.app_packages), scale,
                     iters, cap, rw.request.total, rw.request.samples)
            for attr, v in (("request_ms", rw.request.total), ("downstream_ms", rw.downstream),
                            ("idle_ms", rw.idle), ("other_ms", rw.other)):
                setattr(sc, attr, _add(getattr(sc, attr), _per_iter(v, scale, iters)))
            sc.request_threads = sorted(set(sc.request_threads) | set(rw.threads))
        else:
            _collect(groups, kind, cap.service, cap.profile, scale, iters, cap, cap.profile.total,
                     cap.profile.samples)
    for svc, items in breakdowns.items():
        services[svc].breakdown = merge_breakdowns(items)
    findings: dict[str, list[Finding]] = {k: [] for k, _ in KINDS}
    for (kind, svc), g in groups.items():
        for name, acc in g.methods.items():
            findings[kind].append(Finding(kind, name, svc, acc.per_request, acc.value / g.total if g.total else 0.0,
                                          g.samples, acc.flamegraph))
    for svc, sc in services.items():
        b = sc.breakdown
        if b is not None and b.share("gc") > GC_FINDING_SHARE:
            per = sc.cpu_ms * b.share("gc") if sc.cpu_ms is not None else None
            findings["cpu"].append(Finding("cpu", "[garbage collection]", svc, per, b.share("gc"), b.total,
                                           gc_links.get(svc), "GC threads over 10% of the service's CPU"))
    for kind in findings:
        findings[kind].sort(key=lambda f: (-(f.per_request if f.per_request is not None else -1.0),
                                           -f.share, f.service, f.method))
    return findings, services


def cost_warnings(services: Mapping[str, ServiceCosts]) -> list[str]:
    """Profile coverage of the cgroup CPU under 80 %; sampled bytes outside
    ``ALLOC_COVERAGE_RANGE`` of the JVM's counted ones; JIT over 15 % of a service's CPU."""
    out = []
    for svc, sc in sorted(services.items()):
        cov = sc.coverage
        if cov is not None and cov < MIN_CGROUP_COVERAGE:
            why = ("kernel time (the engine samples user mode only), CPU outside the JVM, or samples the "
                   "profiler lost" if sc.user_mode_only else "CPU outside the JVM, or samples the profiler lost")
            out.append(f"{svc}: the CPU profile covers only {cov:.0%} of the container's cgroup CPU "
                       f"({sc.cpu_ms:.2f} of {sc.cgroup_ms:.2f} ms per iteration): {why}; "
                       "hotspot costs are low by that much")
        acov, (low, high) = sc.alloc_coverage, ALLOC_COVERAGE_RANGE
        if acov is not None and not low <= acov <= high:
            why = "samples the profiler lost" if acov < low else "more than the TLAB waste the heap sampler counts"
            out.append(f"{svc}: the allocation profile holds {acov:.0%} of the bytes the JVM's threads counted "
                       f"({sc.alloc_mb:.2f} of {sc.jvm_alloc_mb:.2f} MB per iteration): {why}")
        b = sc.breakdown
        if b is not None and b.share("jit") > MAX_JIT_SHARE:
            out.append(f"{svc}: the JIT compiler holds {b.share('jit'):.0%} of the CPU profile "
                       f"(over {MAX_JIT_SHARE:.0%}): warm-up too short: raise --warmup")
    return out


__all__ = ["ALLOC_COVERAGE_RANGE", "DEFAULT_CPU_INTERVAL_MS", "DEFAULT_WALL_INTERVAL_MS", "Finding", "KINDS", "ServiceCosts",
           "UNITS", "analyse", "cost_warnings", "interval_ms", "iterations", "parse_time",
           "window_seconds"]
