"""Collapsed-stack analysis, the analysis report, the run index and run comparison.

Everything here works on files a capture left behind; nothing talks to Docker.
The run directory is the contract with the capture code::

    docs/perf/runs/<stamp>/
        manifest.json
        k6-summary.json
        <service>/<event>.collapsed          (alloc/lock: weights, see below)
        <service>/<event>.samples.collapsed  (alloc/lock: sample counts)
        <service>/<event>.html
    docs/perf/flamegraphs/<service>-<event>-<stamp>.html   (seed-compatible copies)

Shares are always fractions (0..1) of a profile's total (samples, or weight); reports print
them as percentages and differences as percentage *points*.

Weights: alloc and lock captures may be converted with ``jfrconv --total``, so their
``<event>.collapsed`` holds *weights* (bytes allocated, nanoseconds of lock wait), and
``<event>.samples.collapsed`` the sample counts of the same stacks. The manifest's
capture entry then says ``"weight": "bytes"`` / ``"ns"`` (absent or ``"samples"``:
counts), ``"samples": N`` (always a count) and ``"weight_total": W``. Shares come from
the weighted file; their sampling error (± points, the ~1,000-sample rule) always comes
from the sample *count*, never from the weight total.

Application frames: profiles of a JVM service are dominated by JDK, JVM and native
frames. For each stack the *application frame* is the deepest Java method outside the
JDK/JVM packages (:data:`JDK_PACKAGES`), or inside the caller's ``app_packages``;
hidden-class lambda frames are skipped. See :func:`app_hotspots`.

No invoke, no print: user-facing failures are :class:`~flamekit.errors.ReportError`,
everything else goes to ``logging``.
"""
from __future__ import annotations

import html
import json
import logging
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence
from urllib.parse import quote

from ..errors import ReportError
from ..runs import RUN_HINT, latest_run, list_runs, read_manifest, resolve_run  # noqa: F401
from ..runs import captures as _captures

log = logging.getLogger(__name__)

DEFAULT_RUNS_ROOT = Path("docs/perf/runs")

#: Under this many samples a share is uncertain by several points (DESIGN.md §5).
MIN_SAMPLES = 1000
#: Two-sided 95 % normal quantile.
Z95 = 1.96
#: achieved/target below this means the arrival rate was not held.
MIN_RATE_FRACTION = 0.95
#: error rate (fraction) above this makes the load figures suspect.
MAX_ERROR_RATE = 0.01
#: engines that sample CPU time with a timer when perf_events is unavailable.
TIMER_ENGINES = ("ctimer", "itimer")
#: Package prefixes of the JDK and the JVM: their frames are never application frames
#: (unless the caller names them in ``app_packages``).
JDK_PACKAGES: tuple[str, ...] = ("java.", "javax.", "jdk.", "sun.", "com.sun.", "org.ietf.",
                                 "org.w3c.", "org.xml.")
#: What a collapsed file's numbers count: samples, or weights (alloc bytes, lock wait ns).
WEIGHT_SAMPLES = "samples"
#: The file of sample counts next to a weighted ``<event>.collapsed``.
SAMPLES_SUFFIX = ".samples.collapsed"

_STAMP_RE = re.compile(r"^\d{8}-\d{6}")
# async-profiler frame-type annotations: _[j] JIT, _[i] inlined, _[k] kernel,
# _[0] interpreted, _[1] C1 ... (and for alloc leaves _[i] in / _[k] outside TLAB).
_SUFFIX_RE = re.compile(r"_\[[0-9a-z]\]$")
# JVM hidden classes carry their address: ``Foo$$Lambda$12/0x0000000800c0b000`` (JDK 17
# class names) or ``Foo$$Lambda$76.0x00007fe4ed085a70.handle`` (jfrconv frames).
_HIDDEN_CLASS_RE = re.compile(r"[./]0x[0-9a-fA-F]+(?=[./]|$)")
# a Java method frame once cleaned: dotted identifiers, the last one the method name
_IDENT = r"(?:[^\W\d]|\$)[\w$]*"
_JAVA_METHOD_RE = re.compile(rf"^{_IDENT}(?:\.{_IDENT})*\.(?:{_IDENT}|<init>|<clinit>)$")
# name segments gcc/clang append to native symbols (``foo.isra.0``, ``foo.cold``)
_NATIVE_SUFFIXES = frozenset(("cold", "isra", "constprop", "part", "lto_priv", "localalias", "plt"))
_THREAD_RE = re.compile(r"^\[.* tid=\d+\]$")
_COUNT_LINE_RE = re.compile(r"\S\s+\d+\s*$")


# --------------------------------------------------------------------------- profiles


def clean_frame(frame: str) -> str:
    """Return the display name of one collapsed-stack frame.

    * strips async-profiler's type annotation (``_[j]``, ``_[i]``, ``_[k]``, ``_[0]``...);
    * drops the address of JVM hidden classes (``Foo$$Lambda$12/0x0000000800c0b000``
      becomes ``Foo$$Lambda$12``; ``Foo$$Lambda$76.0x00007fe4ed085a70.handle`` becomes
      ``Foo$$Lambda$76.handle``) so lambdas compare across runs;
    * turns Java's internal class names into dotted ones
      (``demo/order/PricingEngine.priceOrder`` -> ``demo.order.PricingEngine.priceOrder``).
      Frames that are not Java methods are left alone: native paths (``/lib/...``),
      C++ symbols (``Foo::bar``), pseudo frames (``[unknown]``, thread frames).
    """
    name = frame.strip()
    name = _SUFFIX_RE.sub("", name)
    if name.startswith("[") or name.startswith("/") or "::" in name or " " in name:
        return name
    name = _HIDDEN_CLASS_RE.sub("", name)
    return name.replace("/", ".")


def is_thread_frame(frame: str) -> bool:
    """True for the ``[name tid=N]`` root frames async-profiler adds with ``--threads``."""
    return bool(_THREAD_RE.match(frame))


@dataclass
class Profile:
    """Stacks of one capture: ``stacks`` maps a tuple of cleaned frames (root first,
    leaf last) to its sample count, or to its weight for a weighted profile;
    ``total`` is the sum of all values.

    ``weight`` names what the values count: ``"samples"`` (the default), ``"bytes"``
    (alloc converted with ``jfrconv --total``), ``"ns"`` (lock wait). Shares are
    always of ``total``; ``sample_count`` is the number of samples behind a weighted
    profile, the figure every sampling error is computed from (see :attr:`samples`).
    """

    stacks: dict[tuple[str, ...], int]
    total: int
    source: str = ""
    weight: str = WEIGHT_SAMPLES
    sample_count: int | None = None

    @property
    def weighted(self) -> bool:
        """True when the values are weights (bytes, ns...), not sample counts."""
        return self.weight != WEIGHT_SAMPLES

    @property
    def samples(self) -> int:
        """The number of samples, for uncertainty: ``sample_count`` when known, else
        ``total`` for a profile of counts; 0 (unknown) for a weighted profile whose
        count was not recorded (never the weight total)."""
        if self.sample_count is not None:
            return int(self.sample_count)
        return self.total if not self.weighted else 0

    @classmethod
    def from_stacks(cls, stacks: Mapping[Iterable[str], int] | Iterable[tuple[Iterable[str], int]],
                    source: str = "", weight: str = WEIGHT_SAMPLES,
                    sample_count: int | None = None) -> "Profile":
        """Build a profile from (frames, count) pairs; frames are cleaned and merged."""
        items = stacks.items() if isinstance(stacks, Mapping) else stacks
        merged: dict[tuple[str, ...], int] = {}
        for frames, count in items:
            key = tuple(clean_frame(f) for f in frames)
            if key and count > 0:
                merged[key] = merged.get(key, 0) + int(count)
        return cls(stacks=merged, total=sum(merged.values()), source=source,
                   weight=weight or WEIGHT_SAMPLES, sample_count=sample_count)


def _looks_like_path(value: str) -> bool:
    if "\n" in value or not value.strip():
        return False
    if os.path.exists(value):
        return True
    return not _COUNT_LINE_RE.search(value)


def parse_collapsed(path_or_text: str | os.PathLike[str], weight: str = WEIGHT_SAMPLES,
                    sample_count: int | None = None) -> Profile:
    """Parse async-profiler collapsed output (``frame1;frame2;...;leaf COUNT`` per line).

    Accepts a path (``Path`` or an existing/path-like string) or the text itself.
    Frames are cleaned with :func:`clean_frame`; identical cleaned stacks are merged.
    Blank lines are skipped, malformed lines are skipped with a logged warning.
    ``weight`` says what the numbers are (``"samples"``, or ``"bytes"``/``"ns"`` for
    ``jfrconv --total`` output) and ``sample_count`` the samples behind weights.
    Raises ReportError when a file cannot be read.
    """
    source = ""
    if isinstance(path_or_text, os.PathLike) or (
        isinstance(path_or_text, str) and _looks_like_path(path_or_text)
    ):
        path = Path(path_or_text)
        source = str(path)
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            raise ReportError(f"no collapsed stacks at {path}", RUN_HINT) from None
        except OSError as exc:
            raise ReportError(f"cannot read {path}: {exc.strerror or exc}",
                              "check the file's permissions") from None
    else:
        text = str(path_or_text)

    merged: dict[tuple[str, ...], int] = {}
    bad = 0
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        stack_text, _, count_text = line.rpartition(" ")
        if not stack_text or not count_text.isdigit():
            bad += 1
            continue
        count = int(count_text)
        if count <= 0:
            continue
        frames = tuple(clean_frame(f) for f in stack_text.strip().split(";") if f.strip())
        if not frames:
            bad += 1
            continue
        merged[frames] = merged.get(frames, 0) + count
    if bad:
        log.warning("skipped %d malformed line(s) in %s", bad, source or "collapsed text")
    return Profile(stacks=merged, total=sum(merged.values()), source=source,
                   weight=weight or WEIGHT_SAMPLES, sample_count=sample_count)


# --------------------------------------------------------------------------- hotspots


def event_kind(event: str | None) -> str:
    """Group an async-profiler event into how its stacks end.

    ``"alloc"`` (alloc, live: the leaf is the allocated class), ``"lock"`` (the leaf is
    the lock class), ``"cpu"`` otherwise (cpu, wall, itimer, ctimer, cpu-clock...:
    the leaf is the running method).
    """
    e = (event or "cpu").lower()
    if e in ("alloc", "live") or e.startswith("alloc"):
        return "alloc"
    if e == "lock" or e.startswith("lock"):
        return "lock"
    return "cpu"


def event_label(event: str | None) -> str:
    """A reader's name for an event's samples ("CPU", "allocation"...)."""
    e = (event or "cpu").lower()
    return {
        "cpu": "CPU", "ctimer": "CPU", "itimer": "CPU", "cpu-clock": "CPU",
        "wall": "wall-clock", "alloc": "allocation", "live": "live-object",
        "lock": "lock-contention", "nativemem": "native-memory",
    }.get(e, e)


@dataclass(frozen=True)
class Hotspot:
    """One method's share of a profile. Shares are fractions (0..1) of the profile's
    total; ``self_samples``/``total_samples`` are in the profile's unit (samples, or
    bytes / ns for a weighted profile); ``samples`` is the profile's sample *count*,
    which the uncertainty is computed from."""

    name: str
    self_samples: int
    total_samples: int
    self_share: float
    total_share: float
    samples: int = 0  # the profile's number of samples, for uncertainty

    def self_uncertainty(self) -> "Uncertainty":
        return uncertainty(self.samples, self.self_share)

    def total_uncertainty(self) -> "Uncertainty":
        return uncertainty(self.samples, self.total_share)


def _split_stack(stack: tuple[str, ...], kind: str) -> tuple[tuple[str, ...], str | None]:
    """Return (method frames, object) of a stack: thread frames dropped; for alloc/lock
    the leaf (allocated class / lock class) is split off as the object."""
    frames = tuple(f for f in stack if not is_thread_frame(f))
    if kind == "cpu":
        return frames, None
    if not frames:
        return (), None
    obj = frames[-1]
    body = frames[:-1] or ("[unknown]",)
    return body, obj


def _tables(profile: Profile, event: str) -> tuple[dict[str, int], dict[str, int], dict[str, int]]:
    """Return (self counts, total counts, object counts) per name."""
    kind = event_kind(event)
    self_c: dict[str, int] = {}
    total_c: dict[str, int] = {}
    obj_c: dict[str, int] = {}
    for stack, count in profile.stacks.items():
        body, obj = _split_stack(stack, kind)
        if not body:
            continue
        leaf = body[-1]
        self_c[leaf] = self_c.get(leaf, 0) + count
        for name in set(body):  # once per stack: recursion is not double-counted
            total_c[name] = total_c.get(name, 0) + count
        if obj is not None:
            obj_c[obj] = obj_c.get(obj, 0) + count
    return self_c, total_c, obj_c


def _rank(items: Iterable[Hotspot], by: str, top: int | None) -> list[Hotspot]:
    if by == "self":
        key = lambda h: (-h.self_samples, -h.total_samples, h.name)  # noqa: E731
    elif by == "total":
        key = lambda h: (-h.total_samples, -h.self_samples, h.name)  # noqa: E731
    else:
        raise ValueError(f"by must be 'self' or 'total', not {by!r}")
    ranked = sorted(items, key=key)
    return ranked if top is None else ranked[:top]


def all_hotspots(profile: Profile, event: str = "cpu") -> dict[str, Hotspot]:
    """Every method of the profile as a Hotspot, keyed by name (see :func:`hotspots`)."""
    self_c, total_c, _ = _tables(profile, event)
    n, count = profile.total, profile.samples
    return {
        name: Hotspot(name, self_c.get(name, 0), tot,
                      self_c.get(name, 0) / n if n else 0.0, tot / n if n else 0.0, count)
        for name, tot in total_c.items()
    }


def hotspots(profile: Profile, event: str = "cpu", top: int | None = 10,
             by: str = "self") -> list[Hotspot]:
    """The top methods of a profile, ranked by ``by`` ("self" or "total") samples.

    Rules (shares are of the profile's total samples):

    * cpu, wall, itimer, ctimer and other execution events: *self* is the leaf frame
      (the method running when sampled); *total* counts every stack a method is on,
      once per stack however often it recurses.
    * alloc / live: the leaf is the allocated class, so *self* is the allocation
      **site**, the frame just above the class; *total* counts stacks a method is on,
      the class frame excluded. See :func:`allocated_classes` for the classes.
    * lock: the leaf is the lock's class, so *self* is the **contending method**
      just above it; see :func:`allocated_classes` (named for alloc, works for locks)
      for the lock classes.

    Ranked by self, methods with no self samples are left out. Thread frames
    (``[name tid=N]``) never count as methods. A stack holding only an allocated/lock
    class has the site ``[unknown]``.
    """
    items = all_hotspots(profile, event).values()
    if by == "self":
        items = [h for h in items if h.self_samples > 0]
    return _rank(items, by, top)


def allocated_classes(profile: Profile, event: str = "alloc", top: int | None = 10) -> list[Hotspot]:
    """The leaf objects of an alloc (allocated classes) or lock (lock classes) profile.

    Each class's self and total samples are the samples whose leaf it is.
    Empty for execution events (cpu, wall...).
    """
    _, _, obj_c = _tables(profile, event)
    n, count = profile.total, profile.samples
    items = (Hotspot(name, c, c, c / n if n else 0.0, c / n if n else 0.0, count)
             for name, c in obj_c.items())
    return _rank(items, "self", top)


def share_of(profile: Profile, method: str, event: str = "cpu") -> tuple[float, float]:
    """(self share, total share) of one method, by the rules of :func:`hotspots`.

    The name is cleaned like a frame, so ``demo/order/Foo.bar_[j]`` and
    ``demo.order.Foo.bar`` are the same method. An absent method gives (0.0, 0.0).
    """
    self_c, total_c, _ = _tables(profile, event)
    name = clean_frame(method)
    n = profile.total
    if not n:
        return 0.0, 0.0
    return self_c.get(name, 0) / n, total_c.get(name, 0) / n


# --------------------------------------------------------------------------- application frames


def app_package_prefixes(app_packages: Sequence[str] | str | None) -> tuple[str, ...] | None:
    """Normalise ``app_packages`` (a sequence of prefixes, or one comma-separated string)
    to dotted prefixes; None when none is given (then "not a JDK/JVM package" decides)."""
    if app_packages is None:
        return None
    if isinstance(app_packages, str):
        app_packages = app_packages.split(",")
    prefixes = []
    for p in app_packages:
        if not isinstance(p, str):
            continue
        p = p.strip().replace("/", ".")
        if p and p not in prefixes:
            prefixes.append(p)
    return tuple(prefixes) or None


def _has_prefix(name: str, prefix: str) -> bool:
    """``demo`` matches ``demo.X.y`` and ``demo$Inner.y``, not ``demonstration.X.y``;
    a prefix ending in ``.`` or ``$`` matches as written."""
    if prefix.endswith((".", "$")):
        return name.startswith(prefix)
    return name == prefix or name.startswith(prefix + ".") or name.startswith(prefix + "$")


def _is_app(name: str, prefixes: tuple[str, ...] | None) -> bool:
    """:func:`is_app_frame` on an already cleaned frame."""
    if not _JAVA_METHOD_RE.match(name):
        return False  # native, C++ (::), paths, [pseudo] frames, kernel symbols, "itable stub"
    if "$$Lambda" in name:
        return False  # hidden-class lambda frames: the lambda's body is the next frame
    parts = name.rsplit(".", 2)
    if parts[-1] in _NATIVE_SUFFIXES and not parts[-2][:1].isupper():
        return False  # gcc/clang clones: tcp_v4_rcv.cold
    if prefixes is not None:
        return any(_has_prefix(name, p) for p in prefixes)
    return not name.startswith(JDK_PACKAGES)


def is_app_frame(frame: str, app_packages: Sequence[str] | None = None) -> bool:
    """True when ``frame`` is an application frame: a Java method (``pkg.Class.method``)
    that is not a hidden-class lambda frame (``Foo$$Lambda$76.handle``) and, without
    ``app_packages``, whose class is not in a JDK/JVM package (:data:`JDK_PACKAGES`);
    with ``app_packages``, whose name starts with one of those prefixes. Native and
    JVM frames (``pthread_cond_wait``, ``Unsafe_Park``, ``Foo::bar``, ``/lib/...``,
    ``[unknown]``, thread frames) never are. The frame is cleaned first."""
    return _is_app(clean_frame(frame), app_package_prefixes(app_packages))


def _app_tables(profile: Profile, event: str, app_packages: Sequence[str] | None
                ) -> tuple[dict[str, int], dict[str, int], int]:
    """(self by deepest app frame, total by app frame anywhere, value of stacks with an
    app frame) of a profile. The leaf object of alloc/lock stacks is never a frame."""
    kind = event_kind(event)
    prefixes = app_package_prefixes(app_packages)
    verdict: dict[str, bool] = {}
    self_c: dict[str, int] = {}
    total_c: dict[str, int] = {}
    covered = 0
    for stack, count in profile.stacks.items():
        body, _ = _split_stack(stack, kind)
        apps = []
        for f in body:
            ok = verdict.get(f)
            if ok is None:
                ok = verdict[f] = _is_app(f, prefixes)
            if ok:
                apps.append(f)
        if not apps:
            continue
        covered += count
        self_c[apps[-1]] = self_c.get(apps[-1], 0) + count
        for name in set(apps):
            total_c[name] = total_c.get(name, 0) + count
    return self_c, total_c, covered


def app_hotspots(profile: Profile, event: str, top: int | None = 10,
                 app_packages: Sequence[str] | None = None) -> list[Hotspot]:
    """The application frames of a profile, ranked by self share.

    For each stack the application frame is the deepest (closest to the leaf) frame
    for which :func:`is_app_frame` holds; JDK, JVM, native and lambda frames below it
    are skipped. For alloc it is the application allocation site, for lock the
    application method contending, for cpu/wall the application method on whose
    behalf the time is spent.

    *self* is the samples (or weight) of the stacks whose deepest application frame is
    the method; *total* the stacks with the method anywhere, once per stack. Shares are
    of ALL the profile's samples, so stacks without any application frame (idle pool
    threads, selectors, JVM threads) make the shares add up to less than 100 %.
    """
    self_c, total_c, _ = _app_tables(profile, event, app_packages)
    n, count = profile.total, profile.samples
    items = [Hotspot(name, self_c[name], tot, self_c[name] / n if n else 0.0,
                     tot / n if n else 0.0, count)
             for name, tot in total_c.items() if self_c.get(name)]
    return _rank(items, "self", top)


def top_app_frame(profile: Profile, event: str, app_packages: Sequence[str] | None = None) -> str | None:
    """The name of the top application frame (see :func:`app_hotspots`), None if no
    stack holds one."""
    top = app_hotspots(profile, event, 1, app_packages)
    return top[0].name if top else None


def app_coverage(profile: Profile, event: str, app_packages: Sequence[str] | None = None) -> float:
    """The share (0..1) of the profile with an application frame on the stack."""
    _, _, covered = _app_tables(profile, event, app_packages)
    return covered / profile.total if profile.total else 0.0


# --------------------------------------------------------------------------- uncertainty


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


# --------------------------------------------------------------------------- manifest & runs


def _get(obj: Any, *keys: str, default: Any = None) -> Any:
    for key in keys:
        if not isinstance(obj, Mapping):
            return default
        obj = obj.get(key)
        if obj is None:
            return default
    return obj


def _num(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    if isinstance(value, str):
        try:
            f = float(value)
        except ValueError:
            return None
        return f if math.isfinite(f) else None
    return None


def _error_fraction(value: Any) -> float | None:
    """k6 reports error rates as fractions; a value over 1 can only be a percentage."""
    f = _num(value)
    if f is None:
        return None
    return f / 100.0 if f > 1.0 else f


def _repo_root_for(run_dir: Path) -> Path:
    """``<repo>`` for ``<repo>/docs/perf/runs/<stamp>``; else the run's parent."""
    parts = run_dir.resolve().parts
    if len(parts) >= 4 and parts[-4:-1] == ("docs", "perf", "runs"):
        return Path(*parts[:-4])
    return run_dir.resolve().parent


@dataclass
class CaptureData:
    """One service/event of a run, with its profile if the collapsed file was readable.

    ``samples`` is the number of samples (a count, also for weighted captures);
    ``weight`` what ``profile``'s values are ("samples", "bytes", "ns");
    ``sample_profile`` the per-stack sample counts of a weighted capture
    (``<event>.samples.collapsed``), or the profile itself for a capture of counts;
    ``app_packages`` the run's ``settings.app_packages`` (None: not a JDK package).
    """

    service: str
    event: str
    engine: str | None
    interval: str | None
    samples: int | None
    profile: Profile | None
    collapsed: Path | None
    html: Path | None
    flamegraph: Path | None
    error: str | None
    meta: dict = field(default_factory=dict, repr=False)
    weight: str = WEIGHT_SAMPLES
    weight_total: float | None = None
    sample_profile: Profile | None = field(default=None, repr=False)
    samples_collapsed: Path | None = None
    app_packages: tuple[str, ...] | None = None


def _rel_or_abs(base: Path, value: Any) -> Path | None:
    if not isinstance(value, str) or not value:
        return None
    p = Path(value)
    return p if p.is_absolute() else base / p


def _samples_path(collapsed: Path) -> Path:
    """``x/alloc.collapsed`` -> ``x/alloc.samples.collapsed``."""
    name = collapsed.name
    stem = name[: -len(".collapsed")] if name.endswith(".collapsed") else name
    return collapsed.with_name(stem + SAMPLES_SUFFIX)


def _weight_of(cap: Mapping, kind: str, profile: Profile | None, counts: Profile | None) -> str:
    """The unit of a capture's collapsed file: the manifest's ``weight``; when absent,
    a ``.samples.collapsed`` whose totals differ says the file holds weights (bytes for
    alloc, ns for lock); otherwise samples."""
    given = cap.get("weight")
    if isinstance(given, str) and given.strip():
        return given.strip().lower()
    if profile is not None and counts is not None and counts.total != profile.total:
        if kind in ("alloc", "lock"):
            unit = "bytes" if kind == "alloc" else "ns"
            log.info("%s: no weight recorded; a samples file with other totals means %s",
                     profile.source, unit)
            return unit
    return WEIGHT_SAMPLES


def load_captures(run_dir: Path, manifest: Mapping, repo_root: Path | None = None) -> list[CaptureData]:
    """Captures of a run: those in the manifest, plus ``<service>/<event>.collapsed``
    files the manifest does not list (``<event>.samples.collapsed``, the counts of a
    weighted capture, is not an event). Profiles that cannot be read are None.

    A weighted capture (manifest ``weight`` "bytes"/"ns") gets its profile from the
    weighted file, ``sample_profile`` from the ``.samples.collapsed`` file and its
    sample count from the manifest's ``samples`` or, failing that, the samples file."""
    run_dir = Path(run_dir)
    repo_root = Path(repo_root) if repo_root else _repo_root_for(run_dir)
    stamp = str(manifest.get("stamp") or run_dir.name)
    settings_interval = _get(manifest, "settings", "interval")
    run_packages = app_package_prefixes(_get(manifest, "settings", "app_packages"))
    out: list[CaptureData] = []
    seen: set[tuple[str, str]] = set()
    entries = list(_captures(manifest))
    for collapsed in sorted(run_dir.glob("*/*.collapsed")):
        if collapsed.name.endswith(SAMPLES_SUFFIX):
            continue
        key = (collapsed.parent.name, collapsed.stem)
        if not any((c.get("service"), c.get("event")) == key for c in entries):
            entries.append({"service": key[0], "event": key[1]})
    for cap in entries:
        service = str(cap.get("service") or "unknown-service")
        event = str(cap.get("event") or "cpu")
        if (service, event) in seen:
            continue
        seen.add((service, event))
        collapsed = _rel_or_abs(run_dir, cap.get("collapsed")) or run_dir / service / f"{event}.collapsed"
        html_path = _rel_or_abs(run_dir, cap.get("html")) or run_dir / service / f"{event}.html"
        fg = _rel_or_abs(repo_root, cap.get("flamegraph"))
        if fg is None or not fg.is_file():
            guess = repo_root / "docs" / "perf" / "flamegraphs" / f"{service}-{event}-{stamp}.html"
            fg = guess if guess.is_file() else fg
        samples_file = _rel_or_abs(run_dir, cap.get("samples_collapsed")) or _samples_path(collapsed)
        profile = counts = None
        error = cap.get("error") or None
        if collapsed.is_file():
            try:
                profile = parse_collapsed(collapsed)
            except ReportError as exc:
                log.warning("%s", exc)
                error = error or str(exc)
        if samples_file.is_file():
            try:
                counts = parse_collapsed(samples_file)
            except ReportError as exc:
                log.warning("%s", exc)
        kind = event_kind(event)
        weight = _weight_of(cap, kind, profile, counts)
        given = _num(cap.get("samples"))
        if weight == WEIGHT_SAMPLES:
            samples = int(given) if given is not None else (profile.total if profile else None)
            counts = profile
        else:
            samples = int(given) if given is not None else (counts.total if counts else None)
            if profile is not None:
                profile.weight, profile.sample_count = weight, samples
                if samples is None:
                    log.warning("%s %s: weighted by %s but no sample count recorded; "
                                "the uncertainty of its shares is unknown", service, event, weight)
            if counts is not None:
                counts.sample_count = samples
        w_total = _num(cap.get("weight_total"))
        if (w_total is not None and profile is not None and weight != WEIGHT_SAMPLES
                and int(w_total) != profile.total):
            log.warning("%s %s: manifest weight_total %s differs from the file's %s",
                        service, event, int(w_total), profile.total)
        out.append(CaptureData(
            service=service, event=event,
            engine=cap.get("engine") or None,
            interval=cap.get("interval") or (settings_interval if event_kind(event) == "cpu" else None),
            samples=samples, profile=profile,
            collapsed=collapsed if collapsed.is_file() else None,
            html=html_path if html_path.is_file() else None,
            flamegraph=fg if fg is not None and fg.is_file() else None,
            error=str(error) if error else None, meta=dict(cap),
            weight=weight,
            weight_total=w_total if w_total is not None else (
                float(profile.total) if profile is not None and weight != WEIGHT_SAMPLES else None),
            sample_profile=counts,
            samples_collapsed=samples_file if samples_file.is_file() else None,
            app_packages=app_package_prefixes(cap.get("app_packages")) or run_packages,
        ))
    return out


# --------------------------------------------------------------------------- validity


def engine_note(engine: str | None) -> str:
    """What a CPU engine name means, for the report's set-up table."""
    if not engine:
        return "not recorded"
    e = engine.lower()
    if e in TIMER_ENGINES:
        return f"{engine} (CPU time sampled by a timer because perf_events is unavailable)"
    if e in ("perf_events", "perf", "cpu", "cpu-clock"):
        return f"{engine} (CPU time from perf_events, kernel stacks included)"
    return engine


def validity_warnings(manifest: Mapping | None) -> list[str]:
    """Reasons to distrust a run's figures, one sentence each; [] for a clean run.

    Checks: run status failed / run error; no captures; no load figures; arrival rate
    not held (dropped iterations, or achieved < 95 % of target); error rate > 1 %;
    no warm-up; per capture: capture error, fewer than 1,000 samples, CPU sampled by
    a timer engine (ctimer/itimer: CPU time, not wall-clock), engine not recorded,
    JVM flags missing.
    """
    m: Mapping = manifest if isinstance(manifest, Mapping) else {}
    warnings: list[str] = []

    status = m.get("status")
    if status == "failed" or (status not in (None, "ok") and status):
        err = m.get("error")
        warnings.append(f"run status is {status}" + (f": {err}" if err else "")
                        + "; figures may be partial")
    elif m.get("error"):
        warnings.append(f"run recorded an error: {m.get('error')}")

    load = m.get("load") if isinstance(m.get("load"), Mapping) else None
    if not load:
        warnings.append("no load figures recorded (k6 summary missing); "
                        "the load during the capture is unknown")
    else:
        target = _num(load.get("target_tps")) or _num(_get(m, "settings", "tps"))
        achieved = _num(load.get("achieved_tps"))
        dropped = _num(load.get("dropped_iterations"))
        reasons = []
        if dropped and dropped > 0:
            reasons.append(f"{int(dropped):,} dropped iterations")
        if target and achieved is not None and achieved < MIN_RATE_FRACTION * target:
            reasons.append(f"achieved {achieved:.1f} TPS of {target:g} target "
                           f"({achieved / target:.0%}, under {MIN_RATE_FRACTION:.0%})")
        if reasons:
            warnings.append("rate not held: " + "; ".join(reasons)
                            + "; latency figures are suspect and the profile is not of the planned load")
        err_rate = _error_fraction(load.get("error_rate"))
        if err_rate is not None and err_rate > MAX_ERROR_RATE:
            warnings.append(f"error rate {err_rate:.2%} is over {MAX_ERROR_RATE:.0%}: "
                            "the profile partly shows error handling, not the normal path")
        checks = _error_fraction(load.get("checks_failed_rate"))
        if checks is not None and checks > MAX_ERROR_RATE:
            warnings.append(f"{checks:.2%} of the k6 checks failed (wrong status or body): "
                            "the stack did not answer as the script expects; see the run's k6.log")

    warmup = _num(_get(m, "settings", "warmup"))
    if warmup is not None and warmup <= 0:
        warnings.append("no warm-up: JIT compilation and class loading may dominate the profile")

    caps = _captures(m)
    if not caps:
        warnings.append("no captures recorded")
    timer_engines: dict[str, list[str]] = {}
    for cap in caps:
        svc = cap.get("service") or "unknown-service"
        ev = cap.get("event") or "cpu"
        label = f"{svc} {ev}"
        if cap.get("error"):
            warnings.append(f"{label}: capture failed: {cap.get('error')}")
        samples = _num(cap.get("samples"))
        if samples is not None and samples < MIN_SAMPLES:
            if samples <= 0:
                warnings.append(f"{label}: no samples captured")
            else:
                warnings.append(
                    f"{label}: only {int(samples):,} samples (under ~{MIN_SAMPLES:,}); "
                    f"shares uncertain by ±{worst_case_points(int(samples)):.1f} points at 95%")
        engine = cap.get("engine")
        if event_kind(ev) == "cpu" and str(ev).lower() != "wall":
            if engine and str(engine).lower() in TIMER_ENGINES:
                timer_engines.setdefault(str(engine), []).append(svc)
            elif not engine and not cap.get("error"):
                warnings.append(f"{label}: profiling engine not recorded; "
                                "the sampling method is unknown")
        missing = _get(cap, "jvm", "flags_missing")
        if isinstance(missing, list) and missing:
            flags = ", ".join(str(f) for f in missing)
            why = (" (without -XX:+DebugNonSafepoints inlined frames go missing)"
                   if any("DebugNonSafepoints" in str(f) for f in missing) else "")
            warnings.append(f"{svc}: JVM flags missing: {flags}{why}")
    for engine, services in timer_engines.items():
        warnings.append(
            f"CPU time sampled by a timer ({engine}) because perf_events is unavailable; "
            f"it is CPU time, not wall-clock; use -e wall for off-CPU time "
            f"({', '.join(dict.fromkeys(services))})")
    return list(dict.fromkeys(warnings))


# --------------------------------------------------------------------------- formatting


def _pct(share: float | None, digits: int = 1) -> str:
    return "n/a" if share is None else f"{share * 100:.{digits}f}%"


def _pct_min(share: float) -> str:
    """Like :func:`_pct`, but a tiny non-zero share reads ``<0.1%``, not ``0.0%``."""
    return "<0.1%" if 0.0 < share < 0.0005 else _pct(share)


def _pts(delta: float) -> str:
    return f"{delta * 100:+.1f}"


def _count(n: Any) -> str:
    f = _num(n)
    if f is None:
        return "n/a"
    return f"{int(f):,}" if float(f).is_integer() else f"{f:,.1f}"


def _fig(value: Any, unit: str = "", digits: int = 1) -> str:
    f = _num(value)
    return "n/a" if f is None else f"{f:,.{digits}f}{unit}"


def _code(name: str) -> str:
    name = name.replace("`", "'").replace("|", "\\|")
    return f"`{name}`"


def _md_cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _link(target: Path, base_dir: Path) -> str:
    rel = os.path.relpath(Path(target).resolve(), Path(base_dir).resolve())
    return quote(Path(rel).as_posix(), safe="/._-~")


def _table(header: list[str], rows: list[list[str]], align: list[str] | None = None) -> list[str]:
    align = align or ["l"] * len(header)
    sep = ["---:" if a == "r" else "---" for a in align]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(sep) + " |"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return lines


# --------------------------------------------------------------------------- report


def report_path(repo_root: str | os.PathLike[str], stamp: str) -> Path:
    """Where the analysis report of a run goes."""
    return Path(repo_root) / "docs" / "perf" / f"flamegraph-analysis-{stamp}.md"


def _scale(weight: str, total: float) -> tuple[str, float]:
    """(unit, divisor) for a table column of a weighted profile's values."""
    if weight == "bytes":
        return ("KB", 1e3) if total < 10e6 else ("MB", 1e6)
    if weight == "ns":
        return ("µs", 1e3) if total < 10e6 else ("ms", 1e6)
    return weight, 1.0


def _amount(weight: str, value: float) -> str:
    """A weight total for a reader: ``1.2 GB allocated``, ``812.3 ms of lock wait``."""
    if weight == "bytes":
        for unit, div in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
            if value >= div:
                return f"{value / div:,.1f} {unit} allocated"
        return f"{int(value):,} bytes allocated"
    if weight == "ns":
        for unit, div in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
            if value >= div:
                return f"{value / div:,.1f} {unit} of lock wait"
        return f"{int(value):,} ns of lock wait"
    return f"{_count(value)} {weight}"


def _measure(event: str, weight: str) -> str:
    """What a capture's shares are of: "allocated bytes", "lock wait time", "CPU samples"."""
    if weight == "bytes":
        return "allocated bytes"
    if weight == "ns":
        return "lock wait time"
    if weight != WEIGHT_SAMPLES:
        return f"{event_label(event)} {weight}"
    return f"{event_label(event)} samples"


@dataclass(frozen=True)
class _Columns:
    """Column names and value format of one capture's tables."""

    app_col: str
    self_col: str
    total_col: str
    obj_col: str
    unit: str
    divisor: float

    def value(self, v: int) -> str:
        if self.divisor == 1.0:
            return f"{v:,}"
        return f"{v / self.divisor:,.1f}"


def _columns(kind: str, profile: Profile) -> _Columns:
    if not profile.weighted:
        self_col = {"alloc": "site samples", "lock": "contention samples"}.get(kind, "self samples")
        return _Columns("samples", self_col, "total samples", "samples", "samples", 1.0)
    unit, div = _scale(profile.weight, profile.total)
    if profile.weight == "ns":
        return _Columns(f"wait {unit}", f"wait {unit}", f"total wait {unit}", f"wait {unit}", unit, div)
    return _Columns(unit, f"self {unit}", f"total {unit}", unit, unit, div)


def _pm(samples: int, share: float) -> str:
    """``± 3.0`` (points, 95 %) from the sample count; ``± ?`` when it is unknown."""
    u = uncertainty(samples, share)
    return "± ?" if samples <= 0 else f"± {u.points:.1f}"


def _hotspot_rows(items: list[Hotspot], by: str, cols: _Columns | None = None) -> list[list[str]]:
    fmt = cols.value if cols else (lambda v: f"{v:,}")
    rows = []
    for i, h in enumerate(items, 1):
        if by == "self":
            rows.append([str(i), _code(h.name), fmt(h.self_samples), _pct(h.self_share),
                         _pm(h.samples, h.self_share), _pct(h.total_share)])
        else:
            rows.append([str(i), _code(h.name), fmt(h.total_samples), _pct(h.total_share),
                         _pm(h.samples, h.total_share), _pct(h.self_share)])
    return rows


def _names(kind: str) -> tuple[str, str, str]:
    """(self heading, self column, object heading) of an event kind."""
    if kind == "alloc":
        return "Top allocation sites (self)", "site samples", "Top allocated classes"
    if kind == "lock":
        return "Top contending methods (self)", "contention samples", "Top lock classes"
    return "Top methods by self share", "self samples", ""


def _app_rule(app_packages: Sequence[str] | None) -> str:
    prefixes = app_package_prefixes(app_packages)
    if prefixes:
        return ("the deepest Java method under " + ", ".join(_code(p) for p in prefixes)
                + " (`app_packages`)")
    return ("the deepest Java method outside the JDK/JVM packages ("
            + ", ".join(_code(p) for p in JDK_PACKAGES) + ")")


def _capture_section(cap: CaptureData, out_dir: Path, top: int,
                     app_packages: Sequence[str] | None = None) -> list[str]:
    kind = event_kind(cap.event)
    pkgs = app_packages if app_packages is not None else cap.app_packages
    lines = [f"### {cap.service}: {cap.event}", ""]
    links = []
    if cap.flamegraph:
        links.append(f"[flame graph]({_link(cap.flamegraph, out_dir)})")
    if cap.html and (cap.flamegraph is None or cap.html.resolve() != cap.flamegraph.resolve()):
        links.append(f"[run copy]({_link(cap.html, out_dir)})")
    if cap.collapsed:
        links.append(f"[collapsed stacks]({_link(cap.collapsed, out_dir)})")
    if cap.samples_collapsed:
        links.append(f"[sample counts]({_link(cap.samples_collapsed, out_dir)})")
    lines.append("Flame graph: " + (" · ".join(links) if links else "missing") + "")
    lines.append("")
    if cap.error:
        lines += [f"Capture failed: {_md_cell(cap.error)}", ""]
    prof = cap.profile
    if prof is None:
        lines += ["No collapsed stacks were captured for this event.", ""]
        return lines
    engine = cap.engine or ("wall" if cap.event == "wall" else "engine not recorded")
    interval = f", interval {cap.interval}" if cap.interval else ""
    n = prof.samples
    u = uncertainty(n, 0.5)
    if not prof.total:
        lines += ["No samples.", ""]
        return lines
    amount = f", {_amount(prof.weight, prof.total)}" if prof.weighted else ""
    counted = f"{n:,} {event_label(cap.event)} samples" if n else \
        f"{event_label(cap.event)} samples (count not recorded)"
    if n <= 0:
        tail = ("the sample count was not recorded, so the sampling error of these shares "
                "is unknown")
    elif u.reliable:
        tail = (f"every share below is within ± {u.points:.1f} points at 95% "
                "(the widest, for a 50% share)")
    else:
        tail = u.note
    lines += [f"{counted}{amount} ({engine}{interval}); {tail}.", ""]
    if prof.weighted:
        lines += [f"Shares are of {_measure(cap.event, prof.weight)}; their ± comes from the "
                  "number of samples.", ""]
    cols = _columns(kind, prof)
    apps = app_hotspots(prof, cap.event, top, pkgs)
    lines += ["#### Top application frames", ""]
    if apps:
        lines += _table(["#", "application frame", cols.app_col, "app share", "± (95%)", "total share"],
                        _hotspot_rows(apps, "self", cols), ["r", "l", "r", "r", "r", "r"])
        lines.append("")
    else:
        lines += ["No application frame on any stack.", ""]
    covered = app_coverage(prof, cap.event, pkgs)
    lines += [f"Application frame: {_app_rule(pkgs)}, skipping JDK, JVM, native and lambda frames. "
              "*app share*: the stacks whose deepest application frame is the method; "
              "*total share*: the stacks it is on. Stacks without any "
              f"application frame hold {_pct(1.0 - covered)} of {_measure(cap.event, prof.weight)}.", ""]
    self_title, _, obj_title = _names(kind)
    lines += [f"#### {self_title}", ""]
    lines += _table(["#", "method" if kind != "alloc" else "allocation site", cols.self_col,
                     "self share", "± (95%)", "total share"],
                    _hotspot_rows(hotspots(prof, cap.event, top, by="self"), "self", cols),
                    ["r", "l", "r", "r", "r", "r"])
    lines += ["", "#### Top methods by total share (on the stack)", ""]
    lines += _table(["#", "method", cols.total_col, "total share", "± (95%)", "self share"],
                    _hotspot_rows(hotspots(prof, cap.event, top, by="total"), "total", cols),
                    ["r", "l", "r", "r", "r", "r"])
    if obj_title:
        rows = [[str(i), _code(h.name), cols.value(h.self_samples), _pct(h.self_share),
                 _pm(h.samples, h.self_share)]
                for i, h in enumerate(allocated_classes(prof, cap.event, top), 1)]
        lines += ["", f"#### {obj_title}", ""]
        lines += _table(["#", "class", cols.obj_col, "share", "± (95%)"], rows, ["r", "l", "r", "r", "r"])
    lines.append("")
    return lines


def finding(cap: CaptureData, app_packages: Sequence[str] | None = None) -> str:
    """One data-driven paragraph about a capture: it leads with the top application
    frame and its share (± from the sample count), then the top raw leaf (the frame
    just above the allocated/lock class for alloc/lock), the top class, and notes on
    flat profiles, timer engines and small sample counts. ``app_packages`` overrides
    the capture's (the run's ``settings.app_packages``)."""
    prof = cap.profile
    if prof is None or not prof.total:
        why = f" ({cap.error})" if cap.error else ""
        return f"No {event_label(cap.event)} samples were captured for {cap.service}{why}."
    kind = event_kind(cap.event)
    pkgs = app_packages if app_packages is not None else cap.app_packages
    engine = cap.engine or ("wall" if cap.event == "wall" else None)
    n = prof.samples
    detail = f"{n:,} samples" if n else "sample count not recorded"
    if prof.weighted:
        detail += f", {_amount(prof.weight, prof.total)}"
    detail += f", {engine}" if engine else ""
    what = _measure(cap.event, prof.weight)
    who = f"{cap.service}'s {what}"
    apps = app_hotspots(prof, cap.event, 3, pkgs)
    raw = hotspots(prof, cap.event, 3, by="self")
    if apps:
        a = apps[0]
        role = {"alloc": "the application site of", "lock": "the application method contending in"}.get(
            kind, "the application method behind")
        text = f"{_code(a.name)} is {role} {_pct(a.self_share)} {_pm(n, a.self_share)} of {who} ({detail})."
        if len(apps) > 1:
            rest = ", ".join(f"{_code(x.name)} {_pct_min(x.self_share)}" for x in apps[1:])
            text += f" Next application frames: {rest}."
        covered = app_coverage(prof, cap.event, pkgs)
        if 1.0 - covered >= 0.0005:
            text += (f" Stacks without any application frame (only JDK, JVM or native code) "
                     f"hold {_pct(1.0 - covered)} of {what}")
            if covered and 1.0 - covered >= 0.5:
                text += (f"; of the {_pct_min(covered)} with one, {_code(a.name)} holds "
                         f"{_pct(a.self_share / covered)}")
            text += "."
    else:
        text = (f"No application frame is on any stack of {who} ({detail}): it is all JDK, "
                "JVM or native code.")
    leaf_word = {"alloc": "raw allocation site", "lock": "raw contending frame"}.get(kind, "raw leaf")
    if raw:
        h = raw[0]
        if apps and h.name == apps[0].name:
            text += f" It is also the top {leaf_word} ({_pct(h.self_share)})."
        else:
            text += (f" The top {leaf_word} is {_code(h.name)} with {_pct(h.self_share)} "
                     f"{_pm(n, h.self_share)}.")
        if kind in ("alloc", "lock"):
            classes = allocated_classes(prof, cap.event, 1)
            if classes:
                word = "allocated" if kind == "alloc" else "contended lock"
                text += f" The top {word} class is {_code(classes[0].name)} ({_pct(classes[0].self_share)})."
        if h.self_share < 0.05 and (not apps or apps[0].self_share < 0.05):
            text += (" No single method dominates (flat profile): look at the total shares "
                     "for the widest call paths.")
    elif not apps:
        text += " There are no method frames."
    if kind == "cpu" and engine and engine.lower() in TIMER_ENGINES:
        text += " These are CPU samples; time spent waiting does not show here."
    if n <= 0:
        text += (" The number of samples was not recorded, so the sampling error of these "
                 "shares is unknown.")
    elif n < MIN_SAMPLES:
        text += (f" With only {n:,} samples every share is uncertain by up to "
                 f"± {worst_case_points(n):.1f} points; capture longer before "
                 "acting on small differences.")
    return text


def _setup_rows(manifest: Mapping, caps: list[CaptureData]) -> list[list[str]]:
    s = manifest.get("settings") if isinstance(manifest.get("settings"), Mapping) else {}
    env = manifest.get("environment") if isinstance(manifest.get("environment"), Mapping) else {}
    services = s.get("services") or sorted({c.service for c in caps})
    events = s.get("events") or sorted({c.event for c in caps})
    cpu_engines = sorted({c.engine for c in caps
                          if c.engine and event_kind(c.event) == "cpu" and c.event != "wall"})
    jvm_versions = sorted({str(_get(c.meta, "jvm", "version")) for c in caps if _get(c.meta, "jvm", "version")})
    flags = s.get("jvm_flags")
    rows = [
        ("flamekit", manifest.get("flamekit_version")),
        ("started", manifest.get("started")),
        ("finished", manifest.get("finished")),
        ("status", manifest.get("status")),
        ("services", ", ".join(map(str, services)) if services else None),
        ("events", ", ".join(map(str, events)) if events else None),
        ("duration", f"{s.get('duration')} s" if s.get("duration") is not None else None),
        ("warm-up", f"{s.get('warmup')} s" if s.get("warmup") is not None else None),
        ("interval", s.get("interval")),
        ("target TPS", s.get("tps")),
        ("privileges", s.get("privileges")),
        ("application packages", ", ".join(f"`{p}`" for p in app_package_prefixes(s.get("app_packages")) or ())
         or None),
        ("CPU engine", "; ".join(engine_note(e) for e in cpu_engines) if cpu_engines else None),
        ("JVM flags", " ".join(f"`{f}`" for f in flags) if isinstance(flags, list) and flags else None),
        ("JDK", ", ".join(jvm_versions) if jvm_versions else None),
        ("async-profiler", env.get("async_profiler")),
        ("k6", env.get("k6")),
        ("container engine", env.get("engine")),
        ("host", env.get("host")),
        ("host CPUs", env.get("cpus")),
    ]
    return [[k, _md_cell(v)] for k, v in rows if v not in (None, "")]


def _load_rows(load: Mapping, settings: Mapping) -> list[list[str]]:
    target = load.get("target_tps", settings.get("tps") if settings else None)
    err = _error_fraction(load.get("error_rate"))
    return [
        ["TPS (target → achieved)", f"{_fig(target)} → {_fig(load.get('achieved_tps'))}"],
        ["p50 latency", _fig(load.get("p50_ms"), " ms")],
        ["p95 latency", _fig(load.get("p95_ms"), " ms")],
        ["p99 latency", _fig(load.get("p99_ms"), " ms")],
        ["error rate", "n/a" if err is None else f"{err:.2%}"],
        ["dropped iterations", _count(load.get("dropped_iterations"))],
        ["iterations", _count(load.get("iterations"))],
        ["HTTP requests", _count(load.get("http_reqs"))],
        ["measured window", _fig(load.get("duration_s"), " s", 0)],
    ]


def write_report(run_dir: str | os.PathLike[str], out_path: str | os.PathLike[str] | None = None,
                 repo_root: str | os.PathLike[str] | None = None, top: int = 10,
                 app_packages: Sequence[str] | None = None) -> Path:
    """Write the analysis markdown of one run and return its path.

    Default ``out_path`` is ``<repo_root>/docs/perf/flamegraph-analysis-<stamp>.md``;
    ``repo_root`` defaults to the repository holding ``docs/perf/runs/<stamp>``.
    Links are relative to the report's directory. Sections: title, Run set-up, Load,
    Hotspots (per service and event: top application frames, then self and total
    tables), Validity, Findings (each led by the top application frame).
    ``app_packages`` (prefixes) overrides the manifest's ``settings.app_packages``;
    with neither, application frames are those outside :data:`JDK_PACKAGES`.
    """
    run_dir = Path(run_dir)
    manifest = read_manifest(run_dir)
    repo = Path(repo_root) if repo_root else _repo_root_for(run_dir)
    stamp = str(manifest.get("stamp") or run_dir.name)
    out = Path(out_path) if out_path else report_path(repo, stamp)
    out_dir = out.parent
    caps = load_captures(run_dir, manifest, repo)

    # validity is judged on the manifest, with sample counts filled in from the profiles
    checked = dict(manifest)
    checked_caps = []
    for cap in caps:
        entry = dict(cap.meta)
        entry.setdefault("service", cap.service)
        entry.setdefault("event", cap.event)
        if _num(entry.get("samples")) is None and cap.samples is not None:
            entry["samples"] = cap.samples
        checked_caps.append(entry)
    checked["captures"] = checked_caps
    warnings = validity_warnings(checked)
    for cap in caps:
        if cap.profile is None and not cap.error:
            warnings.append(f"{cap.service} {cap.event}: no collapsed stacks in the run directory")
        if cap.flamegraph is None and cap.html is None:
            warnings.append(f"{cap.service} {cap.event}: flame graph HTML missing")
        if cap.profile is not None and cap.profile.weighted and not cap.samples:
            warnings.append(f"{cap.service} {cap.event}: weighted by {cap.weight} but the number "
                            "of samples was not recorded; the uncertainty of its shares is unknown")

    lines = [f"# Flame graph analysis: {stamp}", ""]
    rel_run = _link(run_dir, out_dir)
    lines += [f"Generated by flamekit from run [{stamp}]({rel_run}/) "
              f"(status: {manifest.get('status') or 'unknown'}). "
              "Shares are of each capture's samples (of allocated bytes or lock wait time "
              "where the capture recorded weights); ± is the 95% binomial sampling error, "
              "from the number of samples, in percentage points.", ""]

    lines += ["## Run set-up", ""]
    lines += _table(["item", "value"], _setup_rows(manifest, caps)) + [""]

    lines += ["## Load", ""]
    load = manifest.get("load") if isinstance(manifest.get("load"), Mapping) else None
    if load:
        settings = manifest.get("settings") if isinstance(manifest.get("settings"), Mapping) else {}
        lines += _table(["figure", "value"], _load_rows(load, settings), ["l", "r"]) + [""]
    else:
        lines += ["No load figures were recorded.", ""]

    lines += ["## Hotspots", ""]
    if not caps:
        lines += ["No captures.", ""]
    for cap in caps:
        lines += _capture_section(cap, out_dir, top, app_packages)

    lines += ["## Validity", ""]
    lines += [f"- {_md_cell(w)}" for w in warnings] if warnings else ["none"]
    lines.append("")

    lines += ["## Findings", ""]
    for cap in caps:
        lines += [f"**{cap.service} {cap.event}.** {finding(cap, app_packages)}", ""]
    if not caps:
        lines += ["Nothing was captured.", ""]

    out_dir.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines).rstrip() + "\n", encoding="utf-8")
    log.info("wrote report %s", out)
    return out


# --------------------------------------------------------------------------- index

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#1d1d1f;background:#fafafa}
h1{font-size:20px;margin:0 0 4px}p.sub{color:#666;margin:0 0 16px}
table{border-collapse:collapse;width:100%;background:#fff;box-shadow:0 1px 2px rgba(0,0,0,.08)}
th,td{padding:6px 10px;border-bottom:1px solid #e5e5e5;text-align:left;vertical-align:top}
th{background:#f0f0f0;font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums}
a{color:#0b5cad;text-decoration:none}a:hover{text-decoration:underline}
.ok{color:#137333;font-weight:600}.failed,.bad{color:#b3261e;font-weight:600}.unknown{color:#666}
ul.links{margin:0;padding-left:16px}code{font-size:12px}
"""


def write_index(runs_root: str | os.PathLike[str], flamegraphs_dir: str | os.PathLike[str],
                reports_dir: str | os.PathLike[str]) -> Path:
    """Write ``<flamegraphs_dir>/index.html``: every run, newest first, with status,
    services/events, achieved TPS and links to its flame graphs and report; flame
    graph files that belong to no run are listed after. Static HTML, no script."""
    fg_dir = Path(flamegraphs_dir)
    reports = Path(reports_dir)
    fg_dir.mkdir(parents=True, exist_ok=True)
    out = fg_dir / "index.html"
    linked: set[Path] = set()
    rows = []
    for run in list_runs(runs_root):
        try:
            manifest = read_manifest(run)
        except ReportError as exc:
            log.warning("%s", exc)
            manifest = {"status": "no manifest"}
        stamp = str(manifest.get("stamp") or run.name)
        status = str(manifest.get("status") or "unknown")
        caps = load_captures(run, manifest, fg_dir.parent.parent.parent if fg_dir.name == "flamegraphs" else None)
        items = []
        for cap in caps:
            seed = fg_dir / f"{cap.service}-{cap.event}-{stamp}.html"
            target = seed if seed.is_file() else (cap.flamegraph or cap.html)
            label = html.escape(f"{cap.service} {cap.event}")
            if target is not None:
                linked.add(target.resolve())
                items.append(f'<li><a href="{html.escape(_link(target, fg_dir))}">{label}</a></li>')
            else:
                items.append(f"<li>{label} <span class=\"bad\">(no flame graph)</span></li>")
        achieved = _num(_get(manifest, "load", "achieved_tps"))
        target_tps = _num(_get(manifest, "load", "target_tps")) or _num(_get(manifest, "settings", "tps"))
        tps = "n/a" if achieved is None else f"{achieved:.1f}" + (f" / {target_tps:g}" if target_tps else "")
        report = reports / f"flamegraph-analysis-{stamp}.md"
        report_cell = (f'<a href="{html.escape(_link(report, fg_dir))}">report</a>'
                       if report.is_file() else '<span class="unknown">none</span>')
        cls = status if status in ("ok", "failed") else "unknown"
        rows.append(
            f"<tr><td><code>{html.escape(stamp)}</code></td>"
            f'<td class="{cls}">{html.escape(status)}</td>'
            f'<td><ul class="links">{"".join(items) or "<li>none</li>"}</ul></td>'
            f'<td class="num">{html.escape(tps)}</td><td>{report_cell}</td></tr>')
    others = sorted(p for p in fg_dir.glob("*.html")
                    if p.name != "index.html" and p.resolve() not in linked)
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>flamekit runs</title>", f"<style>{_CSS}</style></head><body>",
        "<h1>flamekit profiling runs</h1>",
        f'<p class="sub">{len(rows)} run(s), newest first. Achieved TPS is shown against the target.</p>',
    ]
    if rows:
        parts += ["<table><thead><tr><th>stamp</th><th>status</th><th>flame graphs</th>"
                  "<th>achieved TPS</th><th>analysis</th></tr></thead><tbody>", *rows, "</tbody></table>"]
    else:
        parts.append(f"<p>No runs yet: {html.escape(RUN_HINT)}.</p>")
    if others:
        parts.append("<h2>Other flame graphs</h2><ul>")
        parts += [f'<li><a href="{html.escape(_link(p, fg_dir))}">{html.escape(p.name)}</a></li>' for p in others]
        parts.append("</ul>")
    parts.append("</body></html>")
    out.write_text("\n".join(parts) + "\n", encoding="utf-8")
    log.info("wrote index %s", out)
    return out


# --------------------------------------------------------------------------- comparison


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


_LOAD_METRICS = (("achieved TPS", "achieved_tps"), ("p50 ms", "p50_ms"), ("p95 ms", "p95_ms"),
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
        se = math.sqrt((ta * (1 - ta) / na if na else 0.0) + (tb * (1 - tb) / nb if nb else 0.0))
        sig = bool(na and nb) and abs(tb - ta) > Z95 * se
        deltas.append(MethodDelta(name, a.self_share if a else 0.0, b.self_share if b else 0.0,
                                  ta, tb, sig))
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
    caps_a = {(c.service, c.event): c for c in load_captures(dir_a, man_a)}
    caps_b = {(c.service, c.event): c for c in load_captures(dir_b, man_b)}
    results = []
    for key in sorted(set(caps_a) & set(caps_b)):
        ca, cb = caps_a[key], caps_b[key]
        if ca.profile is None or cb.profile is None:
            continue
        pa, pb, unit = _comparable(ca, cb)
        hot_t, cool_t, hot_s, cool_s = compare_profiles(pa, pb, key[1], top)
        results.append(CaptureComparison(key[0], key[1], pa.samples, pb.samples,
                                         ca.engine, cb.engine, hot_t, cool_t, hot_s, cool_s,
                                         pa, pb, unit))
    usable_a = {k for k, c in caps_a.items() if c.profile is not None}
    usable_b = {k for k, c in caps_b.items() if c.profile is not None}
    load = []
    for label, key in _LOAD_METRICS:
        conv = _error_fraction if key == "error_rate" else _num
        load.append(LoadDelta(label, conv(_get(man_a, "load", key)), conv(_get(man_b, "load", key))))
    return Comparison(
        run_a=dir_a, run_b=dir_b,
        stamp_a=str(man_a.get("stamp") or dir_a.name), stamp_b=str(man_b.get("stamp") or dir_b.name),
        load=load, captures=results,
        only_in_a=sorted(usable_a - usable_b), only_in_b=sorted(usable_b - usable_a),
        warnings_a=validity_warnings(man_a), warnings_b=validity_warnings(man_b),
    )


def _delta_rows(items: list[MethodDelta], by: str) -> list[list[str]]:
    rows = []
    for d in items:
        if by == "total":
            rows.append([_code(d.name), _pct(d.total_a), _pct(d.total_b), _pts(d.total_delta),
                         "yes" if d.significant else "no", _pts(d.self_delta)])
        else:
            rows.append([_code(d.name), _pct(d.self_a), _pct(d.self_b), _pts(d.self_delta),
                         _pts(d.total_delta)])
    return rows


def comparison_markdown(cmp: Comparison) -> str:
    """The comparison as markdown: load deltas, then per capture the methods that got
    hotter and cooler by total and by self share (in percentage points, B - A)."""
    lines = [f"# Run comparison: {cmp.stamp_a} → {cmp.stamp_b}", "",
             f"A = `{cmp.stamp_a}`, B = `{cmp.stamp_b}`. Deltas are B − A; shares in percentage points.", "",
             "## Load", ""]
    rows = []
    for d in cmp.load:
        if d.metric == "error rate":
            a = "n/a" if d.a is None else f"{d.a:.2%}"
            b = "n/a" if d.b is None else f"{d.b:.2%}"
            delta = "n/a" if d.delta is None else f"{d.delta * 100:+.2f} points"
        else:
            digits = 0 if d.metric == "dropped iterations" else 1
            a, b = _fig(d.a, digits=digits), _fig(d.b, digits=digits)
            if d.delta is None:
                delta = "n/a"
            else:
                rel = f" ({d.delta / d.a:+.0%})" if d.a else ""
                delta = f"{d.delta:+,.{digits}f}{rel}"
        rows.append([d.metric, a, b, delta])
    lines += _table(["figure", "A", "B", "Δ"], rows, ["l", "r", "r", "r"]) + [""]

    lines += ["## Hotspot changes", ""]
    if not cmp.captures:
        lines += ["No service and event was captured in both runs.", ""]
    for c in cmp.captures:
        lines += [f"### {c.service}: {c.event}", "",
                  f"A: {c.samples_a:,} samples ({c.engine_a or 'engine not recorded'}); "
                  f"B: {c.samples_b:,} samples ({c.engine_b or 'engine not recorded'}).", ""]
        if (c.engine_a or "").lower() != (c.engine_b or "").lower():
            lines += [f"Engines differ ({c.engine_a} vs {c.engine_b}): shares may not be comparable.", ""]
        if c.weight == "mixed":
            a_w = c.profile_a.weight if c.profile_a else "?"
            b_w = c.profile_b.weight if c.profile_b else "?"
            lines += [f"Units differ (A: {a_w}, B: {b_w}) and sample counts are not available for "
                      "both: shares may not be comparable.", ""]
        elif c.weight != WEIGHT_SAMPLES:
            lines += [f"Shares are of {_measure(c.event, c.weight)} in both runs.", ""]
        for title, items, by in (("Hotter by total share", c.hotter_total, "total"),
                                 ("Cooler by total share", c.cooler_total, "total"),
                                 ("Hotter by self share", c.hotter_self, "self"),
                                 ("Cooler by self share", c.cooler_self, "self")):
            lines += [f"#### {title}", ""]
            if not items:
                lines += ["none", ""]
                continue
            if by == "total":
                header = ["method", "total A", "total B", "Δ total", "beyond noise", "Δ self"]
                align = ["l", "r", "r", "r", "l", "r"]
            else:
                header = ["method", "self A", "self B", "Δ self", "Δ total"]
                align = ["l", "r", "r", "r", "r"]
            lines += _table(header, _delta_rows(items, by), align) + [""]
    if cmp.only_in_a or cmp.only_in_b:
        lines += ["## Not in both runs", ""]
        lines += [f"- only in A: {s} {e}" for s, e in cmp.only_in_a]
        lines += [f"- only in B: {s} {e}" for s, e in cmp.only_in_b]
        lines.append("")
    lines += ["## Validity", ""]
    for label, warns in (("A", cmp.warnings_a), ("B", cmp.warnings_b)):
        if warns:
            lines += [f"- {label}: {_md_cell(w)}" for w in warns]
        else:
            lines.append(f"- {label}: none")
    lines.append("")
    return "\n".join(lines)


# --------------------------------------------------------------------------- diff flame graph

_DIFF_CSS = """
*{box-sizing:border-box}body{font:13px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:16px;color:#222;background:#fff}
h1{font-size:18px;margin:0 0 6px}#info{min-height:20px;margin:6px 0;font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px;white-space:pre}
#legend span{display:inline-block;padding:1px 8px;margin-right:6px;border-radius:3px}
#graph{position:relative;width:100%;overflow:hidden;border-top:1px solid #ddd}
.fr{position:absolute;height:16px;overflow:hidden;white-space:nowrap;text-overflow:ellipsis;font-size:11px;line-height:16px;
padding:0 3px;border-right:1px solid #fff;border-bottom:1px solid #fff;cursor:pointer;color:#111}
.fr:hover{outline:1px solid #000;z-index:1}.fr.anc{opacity:.6}
button{font:inherit;margin-left:8px}table{border-collapse:collapse;margin-top:16px}
th,td{padding:3px 8px;border-bottom:1px solid #eee;text-align:left}td.num{text-align:right;font-variant-numeric:tabular-nums}
"""

_DIFF_JS = r"""
(function () {
  "use strict";
  var D = JSON.parse(document.getElementById("flamekit-data").textContent);
  var names = D.names, TA = D.total_a, TB = D.total_b, ROW = 17;
  var graph = document.getElementById("graph"), info = document.getElementById("info");
  function node(a) { return {name: names[a[0]], a: a[1], b: a[2], kids: a[3] || [], parent: null}; }
  function build(a, parent) {
    var n = node(a); n.parent = parent;
    n.kids = n.kids.map(function (k) { return build(k, n); });
    return n;
  }
  var root = build(D.root, null);
  function shareA(n) { return TA > 0 ? n.a / TA : 0; }
  function shareB(n) { return TB > 0 ? n.b / TB : 0; }
  function delta(n) { return shareB(n) - shareA(n); }
  var maxAbs = 0;
  (function walk(n, depth) {
    if (depth > 0) { maxAbs = Math.max(maxAbs, Math.abs(delta(n))); }
    n.kids.forEach(function (k) { walk(k, depth + 1); });
  })(root, 0);
  var scale = Math.max(maxAbs, 0.005);
  document.getElementById("scale").textContent = (scale * 100).toFixed(1);
  function color(n) {
    var d = delta(n), t = Math.min(1, Math.abs(d) / scale);
    if (Math.abs(d) < 1e-9) { return "hsl(0,0%,90%)"; }
    var light = 94 - 52 * Math.sqrt(t);
    return d > 0 ? "hsl(0,85%," + light + "%)" : "hsl(215,85%," + light + "%)";
  }
  function pct(x) { return (x * 100).toFixed(2) + "%"; }
  function describe(n) {
    var d = delta(n) * 100;
    return n.name + "\nA: " + pct(shareA(n)) + " (" + n.a + " " + (D.unit_a || "samples") + ")" +
      "\nB: " + pct(shareB(n)) + " (" + n.b + " " + (D.unit_b || "samples") + ")" +
      "\ndelta: " + (d >= 0 ? "+" : "") + d.toFixed(2) + " points";
  }
  var zoomed = root;
  function render() {
    while (graph.firstChild) { graph.removeChild(graph.firstChild); }
    var width = graph.clientWidth || 1000, maxDepth = 0, frag = document.createDocumentFragment();
    var chain = [], p = zoomed;
    while (p) { chain.unshift(p); p = p.parent; }
    function box(n, x, w, depth, anc) {
      var el = document.createElement("div");
      el.className = anc ? "fr anc" : "fr";
      el.style.left = (x * 100) + "%";
      el.style.width = (w * 100) + "%";
      el.style.top = (depth * ROW) + "px";
      el.style.background = color(n);
      el.textContent = w * width > 30 ? n.name : "";
      el.title = describe(n);
      el.addEventListener("mouseover", function () { info.textContent = describe(n).replace(/\n/g, "   "); });
      el.addEventListener("click", function () { zoomed = n; render(); });
      frag.appendChild(el);
      maxDepth = Math.max(maxDepth, depth);
    }
    chain.forEach(function (n, i) { if (n !== zoomed) { box(n, 0, 1, i, true); } });
    function lay(n, x, w, depth) {
      box(n, x, w, depth, false);
      if (n.b <= 0) { return; }
      var cx = x;
      n.kids.forEach(function (k) {
        var kw = w * k.b / n.b;
        if (kw * width >= 0.5) { lay(k, cx, kw, depth + 1); }
        cx += kw;
      });
    }
    lay(zoomed, 0, 1, chain.length - 1);
    graph.style.height = ((maxDepth + 1) * ROW + 2) + "px";
    graph.appendChild(frag);
    document.getElementById("reset").disabled = zoomed === root;
  }
  document.getElementById("reset").addEventListener("click", function () { zoomed = root; render(); });
  window.addEventListener("resize", render);
  render();
})();
"""


def _diff_tree(profile_a: Profile, profile_b: Profile, min_share: float) -> tuple[list, list[str]]:
    root: dict = {"a": 0, "b": 0, "c": {}}
    for prof, key in ((profile_a, "a"), (profile_b, "b")):
        for stack, count in prof.stacks.items():
            node = root
            node[key] += count
            for frame in stack:
                node = node["c"].setdefault(frame, {"a": 0, "b": 0, "c": {}})
                node[key] += count
    tb = profile_b.total
    names: list[str] = []
    index: dict[str, int] = {}

    def idx(name: str) -> int:
        if name not in index:
            index[name] = len(names)
            names.append(name)
        return index[name]

    def convert(name: str, node: dict) -> list:
        kids = [convert(k, v) for k, v in sorted(node["c"].items())
                if tb and v["b"] / tb >= min_share]
        item = [idx(name), node["a"], node["b"]]
        if kids:
            item.append(kids)
        return item

    return convert("all", root), names


def _profile_amount(profile: Profile) -> str:
    """``1,000 samples`` or ``1.2 GB allocated, 249 samples``."""
    if not profile.weighted:
        return f"{profile.total:,} samples"
    n = f"{profile.samples:,} samples" if profile.samples else "sample count not recorded"
    return f"{_amount(profile.weight, profile.total)}, {n}"


def write_diff_flamegraph(profile_a: Profile, profile_b: Profile, out_html: str | os.PathLike[str],
                          title: str = "Differential flame graph", label_a: str = "A",
                          label_b: str = "B", event: str = "cpu", min_share: float = 1e-4) -> Path:
    """Write a self-contained differential flame graph (icicle: root on top).

    Frames are laid out by B's widths (each call path's share of B's samples, or of
    B's weight for a weighted profile);
    colour is the change of the path's normalised total share, B - A: red hotter,
    blue cooler, stronger for bigger changes (full colour at the largest change).
    Hover shows A share, B share and delta; click zooms, "reset zoom" returns.
    Paths under ``min_share`` of B are dropped; paths absent from B cannot be drawn
    by B's widths, so the methods that got cooler are also listed in a table.
    Data is embedded as JSON; no external resources.
    """
    out = Path(out_html)
    tree, names = _diff_tree(profile_a, profile_b, min_share)
    data = {"names": names, "total_a": profile_a.total, "total_b": profile_b.total,
            "unit_a": profile_a.weight, "unit_b": profile_b.weight,
            "label_a": label_a, "label_b": label_b, "root": tree}
    payload = json.dumps(data, separators=(",", ":"), ensure_ascii=True)
    payload = payload.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    hot, cool, _, _ = compare_profiles(profile_a, profile_b, event, 10)

    def rows(items: list[MethodDelta]) -> str:
        if not items:
            return '<tr><td colspan="4">none</td></tr>'
        return "".join(
            f"<tr><td><code>{html.escape(d.name)}</code></td><td class=\"num\">{_pct(d.total_a, 2)}</td>"
            f"<td class=\"num\">{_pct(d.total_b, 2)}</td><td class=\"num\">{_pts(d.total_delta)}</td></tr>"
            for d in items)

    head = "<tr><th>method</th><th>A total</th><th>B total</th><th>Δ points</th></tr>"
    esc = html.escape
    doc = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(title)}</title>
<style>{_DIFF_CSS}</style></head><body>
<h1>{esc(title)}</h1>
<div id="legend">A = {esc(label_a)} ({esc(_profile_amount(profile_a))}), B = {esc(label_b)} ({esc(_profile_amount(profile_b))}).
Widths: B's share of {esc(_measure(event, profile_b.weight))}. <span style="background:hsl(0,85%,55%)">hotter in B</span><span style="background:hsl(215,85%,55%)">cooler in B</span>
full colour at ± <span id="scale" style="padding:0;margin:0">?</span> points. Click a frame to zoom.<button id="reset" type="button">reset zoom</button></div>
<div id="info"></div>
<div id="graph"></div>
<h2>Methods by change of total share</h2>
<table><thead>{head}</thead><tbody><tr><th colspan="4">hotter in B</th></tr>{rows(hot)}
<tr><th colspan="4">cooler in B</th></tr>{rows(cool)}</tbody></table>
<script type="application/json" id="flamekit-data">{payload}</script>
<script>{_DIFF_JS}</script>
</body></html>
"""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(doc, encoding="utf-8")
    log.info("wrote differential flame graph %s", out)
    return out


__all__ = [
    "Profile", "Hotspot", "Uncertainty", "CaptureData", "MethodDelta", "CaptureComparison",
    "LoadDelta", "Comparison", "clean_frame", "is_thread_frame", "parse_collapsed", "event_kind",
    "event_label", "hotspots", "all_hotspots", "allocated_classes", "share_of", "uncertainty",
    "app_hotspots", "top_app_frame", "app_coverage", "is_app_frame", "app_package_prefixes",
    "JDK_PACKAGES", "WEIGHT_SAMPLES", "SAMPLES_SUFFIX",
    "worst_case_points", "read_manifest", "load_captures", "list_runs", "latest_run",
    "resolve_run", "engine_note", "validity_warnings", "report_path", "finding", "write_report",
    "write_index", "compare_profiles", "compare_runs", "comparison_markdown",
    "write_diff_flamegraph", "DEFAULT_RUNS_ROOT", "MIN_SAMPLES", "RUN_HINT",
]
