"""Per-thread stacks (``jfrconv --threads``: each stack rooted at ``[name tid=N]``): where a
service's CPU goes by kind of thread, and which threads serve requests.

CPU categories, first match wins (:func:`cpu_category`):

* ``profiler``: the profiler's own work: a frame of async-profiler's signal handlers or
  engine (``WallClock::signalHandler``, ``Profiler::...``, ``libasyncProfiler``) on any
  thread, or a thread of async-profiler itself;
* ``jit``: the JIT compiler threads (``C1 CompilerThread*``, ``C2 CompilerThread*``);
* ``gc``: garbage collection: ``VM Thread`` (Serial GC collects there, and it runs other
  safepoint operations too), ``GC Thread*``, G1/ZGC/Shenandoah/Parallel worker threads;
* ``jvm``: the other threads of the JVM (Service Thread, Signal Dispatcher, VM Periodic
  Task Thread, Reference Handler, Finalizer, Common-Cleaner...);
* ``app``: any other thread's stack with an application frame on it;
* ``native``: any other stack whose leaf is native or kernel code (not a Java method);
* ``jdk``: the rest: JDK/library Java code on other threads (HTTP server dispatcher...).

Request threads (:func:`request_wall`): a thread *serves requests* when at least one of its
wall-clock stacks in the window holds an application frame. Its stacks with one are
*request time*; its stacks without one (a pool worker waiting for the next request) are its
idle time; threads that never ran application code are left out of the headline shares.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Sequence

from .collapsed import Profile, is_thread_frame
from .hotspots import _is_app, app_package_prefixes

CATEGORIES: tuple[tuple[str, str], ...] = (
    ("app", "application code"), ("jdk", "JDK and library code (no application frame)"),
    ("native", "native and kernel code (no application frame)"), ("jit", "JIT compiler"),
    ("gc", "garbage collection"), ("jvm", "other JVM threads"), ("profiler", "the profiler itself"))

_THREAD_NAME_RE = re.compile(r"^\[(.*?)(?: tid=\d+)?\]$")
_JIT_RE = re.compile(r"^C[12] CompilerThread")
_GC_RE = re.compile(r"^(VM Thread|GC Thread|G1 |ZGC|Z |ZDriver|ZDirector|ZStat|ZWorker|Shenandoah"
                    r"|Parallel GC|ParGC|Gang worker|Conc(urrent)? ?Mark|CMS)")
_JVM_RE = re.compile(r"^(Service Thread|Signal Dispatcher|VM Periodic Task Thread|Reference Handler"
                     r"|Finalizer|Common-Cleaner|Sweeper thread|Monitor Deflation Thread|Notification "
                     r"Thread|Attach Listener|Thread-\d+ \(JVM\)|JFR |Monitor Ctrl-Break)")
_PROFILER_THREAD_RE = re.compile(r"(?i)async[- ]?profiler")
_PROFILER_FRAME_RE = re.compile(r"(WallClock::|Profiler::|CTimer::|ITimer::|PerfEvents::|"
                                r"AllocTracer::|LockTracer::|libasyncProfiler)")
#: Frames of blocking HTTP client calls: a request thread below one waits on another service.
DOWNSTREAM_FRAMES: tuple[str, ...] = (
    "jdk.internal.net.http.", "java.net.http.", "sun.net.www.protocol.http.HttpURLConnection",
    "sun.net.www.http.", "java.net.HttpURLConnection")


def thread_name(frame: str) -> str | None:
    """``C2 CompilerThread0`` of ``[C2 CompilerThread0 tid=12]``; None for other frames."""
    if not is_thread_frame(frame) and not (frame.startswith("[") and frame.endswith("]")):
        return None
    m = _THREAD_NAME_RE.match(frame)
    return m.group(1) if m else None


_JAVA_FRAME_RE = re.compile(r"^(?:[^\W\d]|\$)[\w$]*(?:\.(?:[^\W\d]|\$)[\w$]*)*\.(?:[\w$]+|<init>|<clinit>)$")


def cpu_category(stack: tuple[str, ...], prefixes: tuple[str, ...] | None = None) -> str:
    """The category of one per-thread CPU stack (see the module doc)."""
    name = thread_name(stack[0]) if stack else None
    frames = stack[1:] if name is not None else stack
    if any(_PROFILER_FRAME_RE.search(f) for f in frames) or (name and _PROFILER_THREAD_RE.search(name)):
        return "profiler"
    if name:
        if _JIT_RE.match(name):
            return "jit"
        if _GC_RE.match(name):
            return "gc"
        if _JVM_RE.match(name):
            return "jvm"
    if any(_is_app(f, prefixes) for f in frames):
        return "app"
    if frames and not _JAVA_FRAME_RE.match(frames[-1]):
        return "native"
    return "jdk"


@dataclass
class CpuBreakdown:
    """Samples per category (keys of :data:`CATEGORIES`) of one service's CPU profile."""

    samples: dict[str, int]
    total: int

    def share(self, category: str) -> float:
        return self.samples.get(category, 0) / self.total if self.total else 0.0


def cpu_breakdown(profile: Profile, app_packages: Sequence[str] | None = None) -> CpuBreakdown:
    """Where a per-thread CPU profile's samples go, by :func:`cpu_category`."""
    prefixes = app_package_prefixes(app_packages)
    out = {key: 0 for key, _ in CATEGORIES}
    for stack, n in profile.stacks.items():
        out[cpu_category(stack, prefixes)] += n
    return CpuBreakdown(out, profile.total)


def merge_breakdowns(items: Sequence[CpuBreakdown]) -> CpuBreakdown:
    """One breakdown of several (the replicas of a service)."""
    out = {key: 0 for key, _ in CATEGORIES}
    for b in items:
        for k, v in b.samples.items():
            out[k] = out.get(k, 0) + v
    return CpuBreakdown(out, sum(b.total for b in items))


def _below_deepest_app(frames: tuple[str, ...], prefixes: tuple[str, ...] | None) -> tuple[str, ...] | None:
    idx = [i for i, f in enumerate(frames) if _is_app(f, prefixes)]
    return frames[idx[-1] + 1:] if idx else None


@dataclass
class RequestWall:
    """Wall-clock samples of one service split by the request-thread rule (module doc).

    ``request`` is the profile of request time (request threads' stacks with an
    application frame, thread frames kept); ``downstream`` the part of it waiting in a
    blocking HTTP client call (:data:`DOWNSTREAM_FRAMES` below the deepest application
    frame); ``idle`` request threads' other samples; ``other`` all other threads'."""

    request: Profile
    downstream: int
    idle: int
    other: int
    threads: list[str] = field(default_factory=list)

    @property
    def all_samples(self) -> int:
        return self.request.total + self.idle + self.other


def request_wall(profile: Profile, app_packages: Sequence[str] | None = None) -> RequestWall:
    """Split a per-thread wall profile (stacks rooted at thread frames) by the request-thread
    rule. A profile without thread frames counts every stack with an application frame as
    request time (the threads cannot be told apart)."""
    prefixes = app_package_prefixes(app_packages)
    serving: set[str] = set()
    for stack in profile.stacks:
        if stack and thread_name(stack[0]) and any(_is_app(f, prefixes) for f in stack):
            serving.add(stack[0])
    request: dict[tuple[str, ...], int] = {}
    downstream = idle = other = 0
    for stack, n in profile.stacks.items():
        key = stack[0] if stack and thread_name(stack[0]) else ""
        below = _below_deepest_app(stack, prefixes)
        if below is not None:
            request[stack] = request.get(stack, 0) + n
            if any(f.startswith(DOWNSTREAM_FRAMES) for f in below):
                downstream += n
        elif key in serving:
            idle += n
        else:
            other += n
    total = sum(request.values())
    count = profile.samples
    sample_count = round(count * total / profile.total) if profile.weighted and profile.total else None
    req = Profile(request, total, profile.source, profile.weight, sample_count)
    names = sorted({thread_name(t) or t for t in serving if t})
    return RequestWall(req, downstream, idle, other, names)


def without_downstream(profile: Profile, app_packages: Sequence[str] | None = None) -> Profile:
    """The stacks of a request-time profile that are not waiting in a blocking HTTP client
    call (:data:`DOWNSTREAM_FRAMES` below the deepest application frame)."""
    prefixes = app_package_prefixes(app_packages)
    kept = {s: v for s, v in profile.stacks.items()
            if not any(f.startswith(DOWNSTREAM_FRAMES) for f in (_below_deepest_app(s, prefixes) or ()))}
    total = sum(kept.values())
    count = round(profile.samples * total / profile.total) if profile.total else 0
    return Profile(kept, total, profile.source, profile.weight, count)


__all__ = ["CATEGORIES", "DOWNSTREAM_FRAMES", "CpuBreakdown", "RequestWall", "cpu_breakdown",
           "cpu_category", "merge_breakdowns", "request_wall", "thread_name", "without_downstream"]
