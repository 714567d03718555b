"""Ranking a profile: hotspots, application frames, allocated/lock classes, shares.

Shares are always fractions (0..1) of a profile's total (samples, or weight); reports
print them as percentages and differences as percentage *points*. Every :class:`Hotspot`
carries the profile's sample *count*, which its uncertainty comes from.

Application frames: profiles of a JVM service are dominated by JDK, JVM and native
frames. For each stack the *application frame* is the deepest Java method outside the
JDK/JVM packages (:data:`JDK_PACKAGES`), or inside the caller's ``app_packages``;
hidden-class lambda frames are skipped. See :func:`app_hotspots`.

:class:`Profile` and :func:`parse_collapsed` are re-exported so that one import reads and
ranks a capture (``from flamekit.analysis import hotspots``).
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Iterable, Sequence

from .collapsed import Profile, clean_frame, is_thread_frame, parse_collapsed
from .events import event_kind
from .stats import Uncertainty, uncertainty

#: Package prefixes of the JDK and the JVM: their frames are never application frames
#: (unless the caller names them in ``app_packages``).
JDK_PACKAGES: tuple[str, ...] = ("java.", "javax.", "jdk.", "sun.", "com.sun.", "org.ietf.",
                                 "org.w3c.", "org.xml.")

# a Java method frame once cleaned: dotted identifiers, the last one the method name
_IDENT = r"(?:[^\W\d]|\$)[\w$]*"
_JAVA_METHOD_RE = re.compile(rf"^{_IDENT}(?:\.{_IDENT})*\.(?:{_IDENT}|<init>|<clinit>)$")
# name segments gcc/clang append to native symbols (``foo.isra.0``, ``foo.cold``)
_NATIVE_SUFFIXES = frozenset(("cold", "isra", "constprop", "part", "lto_priv", "localalias", "plt"))


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

    def self_uncertainty(self) -> Uncertainty:
        return uncertainty(self.samples, self.self_share)


def _split_stack(stack: tuple[str, ...], kind: str) -> tuple[tuple[str, ...], str | None]:
    """Return (method frames, object) of a stack: thread frames dropped; for alloc/lock
    the leaf (allocated class / lock class) is split off as the object."""
    frames = tuple(f for f in stack if not is_thread_frame(f))
    if kind == "cpu":
        return frames, None
    if not frames:
        return (), None
    return frames[:-1] or ("[unknown]",), frames[-1]


def _add(counts: dict[str, int], name: str, value: int) -> None:
    counts[name] = counts.get(name, 0) + value


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
        _add(self_c, body[-1], count)
        for name in set(body):  # once per stack: recursion is not double-counted
            _add(total_c, name, count)
        if obj is not None:
            _add(obj_c, obj, count)
    return self_c, total_c, obj_c


def _hotspot(profile: Profile, name: str, self_value: int, total_value: int) -> Hotspot:
    n = profile.total
    return Hotspot(name, self_value, total_value, self_value / n if n else 0.0,
                   total_value / n if n else 0.0, profile.samples)


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
    return {name: _hotspot(profile, name, self_c.get(name, 0), tot) for name, tot in total_c.items()}


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
    items: Iterable[Hotspot] = all_hotspots(profile, event).values()
    if by == "self":
        items = [h for h in items if h.self_samples > 0]
    return _rank(items, by, top)


def allocated_classes(profile: Profile, event: str = "alloc", top: int | None = 10) -> list[Hotspot]:
    """The leaf objects of an alloc (allocated classes) or lock (lock classes) profile.

    Each class's self and total samples are the samples whose leaf it is.
    Empty for execution events (cpu, wall...).
    """
    _, _, obj_c = _tables(profile, event)
    return _rank((_hotspot(profile, name, c, c) for name, c in obj_c.items()), "self", top)


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
    prefixes: list[str] = []
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


@functools.lru_cache(maxsize=1 << 16)  # called for every frame of every stack, on few distinct frames
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
        _add(self_c, apps[-1], count)
        for name in set(apps):
            _add(total_c, name, count)
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
    items = [_hotspot(profile, name, self_c[name], tot)
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


__all__ = ["Hotspot", "JDK_PACKAGES", "Profile", "parse_collapsed", "all_hotspots", "hotspots",
           "allocated_classes", "share_of", "app_package_prefixes", "is_app_frame", "app_hotspots",
           "top_app_frame", "app_coverage"]
