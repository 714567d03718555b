"""The markdown outputs: the analysis report of one run, and the comparison of two.

Report sections, in order: title, one-paragraph summary, What to fix first (ranked per kind by
cost per iteration), cost per iteration by service, where the CPU goes, request threads,
exports (all from :mod:`flamekit.render.summary`), Run set-up, Load, Hotspots (per service and event: top
application frames, then self and total tables, then classes for alloc/lock), Validity,
Findings (one paragraph per capture, led by the top application frame). Every share carries
its ± points (95 %, from the sample count, never from a weight total).
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

from ..runs import read_manifest, report_path
from ..util import atomic_write
from ..analysis.captures import CaptureData, load_captures, repo_root_for
from ..analysis.collapsed import WEIGHT_SAMPLES, Profile
from ..analysis.compare import CaptureComparison, Comparison, LoadDelta, MethodDelta
from ..analysis.events import event_kind, event_label
from ..analysis.hotspots import (JDK_PACKAGES, Hotspot, allocated_classes, app_coverage, app_hotspots,
                                 app_package_prefixes, hotspots)
from ..analysis.stats import MIN_SAMPLES, uncertainty, worst_case_points
from ..analysis.validity import TIMER_ENGINES, engine_note
from ..analysis.values import error_fraction, get, mapping
from .summary import build, ranked_markdown, services_markdown
from .format import amount, cell, code, count, fig, link, measure, pct, pct_min, pts, scale, table

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- hotspot tables


@dataclass(frozen=True)
class _Columns:
    """Column names and value format of one capture's tables."""

    app_col: str
    self_col: str
    total_col: str
    obj_col: str
    divisor: float

    def value(self, v: int) -> str:
        if self.divisor == 1.0:
            return f"{v:,}"
        return f"{v / self.divisor:,.1f}"


def _columns(kind: str, profile: Profile) -> _Columns:
    if not profile.weighted:
        self_col = {"alloc": "site samples", "lock": "contention samples"}.get(kind, "self samples")
        return _Columns("samples", self_col, "total samples", "samples", 1.0)
    unit, div = scale(profile.weight, profile.total)
    if profile.weight == "ns":
        return _Columns(f"wait {unit}", f"wait {unit}", f"total wait {unit}", f"wait {unit}", div)
    return _Columns(unit, f"self {unit}", f"total {unit}", unit, div)


def _pm(samples: int, share: float) -> str:
    """``± 3.0`` (points, 95 %) from the sample count; ``± ?`` when it is unknown."""
    return "± ?" if samples <= 0 else f"± {uncertainty(samples, share).points:.1f}"


def _hotspot_rows(items: list[Hotspot], by: str, cols: _Columns) -> list[list[str]]:
    rows = []
    for i, h in enumerate(items, 1):
        if by == "self":
            rows.append([str(i), code(h.name), cols.value(h.self_samples), pct(h.self_share),
                         _pm(h.samples, h.self_share), pct(h.total_share)])
        else:
            rows.append([str(i), code(h.name), cols.value(h.total_samples), pct(h.total_share),
                         _pm(h.samples, h.total_share), pct(h.self_share)])
    return rows


_RANKED = ["r", "l", "r", "r", "r", "r"]


def _app_rule(app_packages: Sequence[str] | None) -> str:
    prefixes = app_package_prefixes(app_packages)
    if prefixes:
        return ("the deepest Java method under " + ", ".join(code(p) for p in prefixes)
                + " (`app_packages`)")
    return ("the deepest Java method outside the JDK/JVM packages ("
            + ", ".join(code(p) for p in JDK_PACKAGES) + ")")


def _links(cap: CaptureData, out_dir: Path) -> str:
    links = []
    if cap.flamegraph:
        links.append(f"[flame graph]({link(cap.flamegraph, out_dir)})")
    if cap.html and (cap.flamegraph is None or cap.html.resolve() != cap.flamegraph.resolve()):
        links.append(f"[run copy]({link(cap.html, out_dir)})")
    if cap.collapsed:
        links.append(f"[collapsed stacks]({link(cap.collapsed, out_dir)})")
    if cap.samples_collapsed:
        links.append(f"[sample counts]({link(cap.samples_collapsed, out_dir)})")
    return "Flame graph: " + (" · ".join(links) if links else "missing")


def _sampling_line(cap: CaptureData, prof: Profile) -> str:
    """``1,000 CPU samples (perf_events, interval 10ms); every share below is within ...``"""
    engine = cap.engine or ("wall" if cap.event == "wall" else "engine not recorded")
    interval = f", interval {cap.interval}" if cap.interval else ""
    n = prof.samples
    u = uncertainty(n, 0.5)
    weighed = f", {amount(prof.weight, prof.total)}" if prof.weighted else ""
    counted = f"{n:,} {event_label(cap.event)} samples" if n else \
        f"{event_label(cap.event)} samples (count not recorded)"
    if n <= 0:
        tail = "the sample count was not recorded, so the sampling error of these shares is unknown"
    elif u.reliable:
        tail = f"every share below is within ± {u.points:.1f} points at 95% (the widest, for a 50% share)"
    else:
        tail = u.note
    return f"{counted}{weighed} ({engine}{interval}); {tail}."


def _capture_section(cap: CaptureData, out_dir: Path, top: int,
                     app_packages: Sequence[str] | None = None) -> list[str]:
    kind = event_kind(cap.event)
    pkgs = app_packages if app_packages is not None else cap.app_packages
    lines = [f"### {cap.service}: {cap.event}", "", _links(cap, out_dir), ""]
    if cap.error:
        lines += [f"Capture failed: {cell(cap.error)}", ""]
    prof = cap.profile
    if prof is None:
        return lines + ["No collapsed stacks were captured for this event.", ""]
    if not prof.total:
        return lines + ["No samples.", ""]
    lines += [_sampling_line(cap, prof), ""]
    if prof.weighted:
        lines += [f"Shares are of {measure(cap.event, prof.weight)}; their ± comes from the "
                  "number of samples.", ""]
    cols = _columns(kind, prof)
    apps = app_hotspots(prof, cap.event, top, pkgs)
    lines += ["#### Top application frames", ""]
    if apps:
        lines += table(["#", "application frame", cols.app_col, "app share", "± (95%)", "total share"],
                       _hotspot_rows(apps, "self", cols), _RANKED) + [""]
    else:
        lines += ["No application frame on any stack.", ""]
    covered = app_coverage(prof, cap.event, pkgs)
    lines += [f"Application frame: {_app_rule(pkgs)}, skipping JDK, JVM, native and lambda frames. "
              "*app share*: the stacks whose deepest application frame is the method; "
              "*total share*: the stacks it is on. Stacks without any "
              f"application frame hold {pct(1.0 - covered)} of {measure(cap.event, prof.weight)}.", ""]
    self_title = {"alloc": "Top allocation sites (self)",
                  "lock": "Top contending methods (self)"}.get(kind, "Top methods by self share")
    lines += [f"#### {self_title}", ""]
    lines += table(["#", "method" if kind != "alloc" else "allocation site", cols.self_col,
                    "self share", "± (95%)", "total share"],
                   _hotspot_rows(hotspots(prof, cap.event, top, by="self"), "self", cols), _RANKED)
    lines += ["", "#### Top methods by total share (on the stack)", ""]
    lines += table(["#", "method", cols.total_col, "total share", "± (95%)", "self share"],
                   _hotspot_rows(hotspots(prof, cap.event, top, by="total"), "total", cols), _RANKED)
    if kind in ("alloc", "lock"):
        rows = [[str(i), code(h.name), cols.value(h.self_samples), pct(h.self_share),
                 _pm(h.samples, h.self_share)]
                for i, h in enumerate(allocated_classes(prof, cap.event, top), 1)]
        obj_title = "Top allocated classes" if kind == "alloc" else "Top lock classes"
        lines += ["", f"#### {obj_title}", ""]
        lines += table(["#", "class", cols.obj_col, "share", "± (95%)"], rows, ["r", "l", "r", "r", "r"])
    lines.append("")
    return lines


# --------------------------------------------------------------------------- findings


def _app_sentences(cap: CaptureData, apps: list[Hotspot], pkgs: Sequence[str] | None,
                   who: str, detail: str) -> str:
    prof = cap.profile
    assert prof is not None
    if not apps:
        return (f"No application frame is on any stack of {who} ({detail}): it is all JDK, "
                "JVM or native code.")
    a = apps[0]
    role = {"alloc": "the application site of", "lock": "the application method contending in"}.get(
        event_kind(cap.event), "the application method behind")
    text = f"{code(a.name)} is {role} {pct(a.self_share)} {_pm(prof.samples, a.self_share)} of {who} ({detail})."
    if len(apps) > 1:
        rest = ", ".join(f"{code(x.name)} {pct_min(x.self_share)}" for x in apps[1:])
        text += f" Next application frames: {rest}."
    covered = app_coverage(prof, cap.event, pkgs)
    if 1.0 - covered >= 0.0005:
        text += (f" Stacks without any application frame (only JDK, JVM or native code) "
                 f"hold {pct(1.0 - covered)} of {measure(cap.event, prof.weight)}")
        if covered and 1.0 - covered >= 0.5:
            text += (f"; of the {pct_min(covered)} with one, {code(a.name)} holds "
                     f"{pct(a.self_share / covered)}")
        text += "."
    return text


def _leaf_sentences(cap: CaptureData, apps: list[Hotspot]) -> str:
    prof = cap.profile
    assert prof is not None
    kind = event_kind(cap.event)
    raw = hotspots(prof, cap.event, 3, by="self")
    if not raw:
        return "" if apps else " There are no method frames."
    leaf_word = {"alloc": "raw allocation site", "lock": "raw contending frame"}.get(kind, "raw leaf")
    h = raw[0]
    if apps and h.name == apps[0].name:
        text = f" It is also the top {leaf_word} ({pct(h.self_share)})."
    else:
        text = f" The top {leaf_word} is {code(h.name)} with {pct(h.self_share)} {_pm(prof.samples, h.self_share)}."
    if kind in ("alloc", "lock"):
        classes = allocated_classes(prof, cap.event, 1)
        if classes:
            word = "allocated" if kind == "alloc" else "contended lock"
            text += f" The top {word} class is {code(classes[0].name)} ({pct(classes[0].self_share)})."
    if h.self_share < 0.05 and (not apps or apps[0].self_share < 0.05):
        text += (" No single method dominates (flat profile): look at the total shares "
                 "for the widest call paths.")
    return text


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
    pkgs = app_packages if app_packages is not None else cap.app_packages
    engine = cap.engine or ("wall" if cap.event == "wall" else None)
    n = prof.samples
    detail = f"{n:,} samples" if n else "sample count not recorded"
    if prof.weighted:
        detail += f", {amount(prof.weight, prof.total)}"
    detail += f", {engine}" if engine else ""
    who = f"{cap.service}'s {measure(cap.event, prof.weight)}"
    apps = app_hotspots(prof, cap.event, 3, pkgs)
    text = _app_sentences(cap, apps, pkgs, who, detail) + _leaf_sentences(cap, apps)
    if event_kind(cap.event) == "cpu" and engine and engine.lower() in TIMER_ENGINES:
        text += " These are CPU samples; time spent waiting does not show here."
    if n <= 0:
        text += (" The number of samples was not recorded, so the sampling error of these "
                 "shares is unknown.")
    elif n < MIN_SAMPLES:
        text += (f" With only {n:,} samples every share is uncertain by up to "
                 f"± {worst_case_points(n):.1f} points; capture longer before "
                 "acting on small differences.")
    return text


# --------------------------------------------------------------------------- the report


def _setup_rows(manifest: Mapping, caps: list[CaptureData]) -> list[list[str]]:
    s = mapping(manifest, "settings")
    env = mapping(manifest, "environment")
    services = s.get("services") or sorted({c.service for c in caps})
    events = s.get("events") or sorted({c.event for c in caps})
    cpu_engines = sorted({(c.engine, c.meta.get("kernel_frames")) for c in caps
                          if c.engine and event_kind(c.event) == "cpu" and c.event != "wall"},
                         key=lambda ek: (ek[0], str(ek[1])))
    jvm_versions = sorted({str(get(c.meta, "jvm", "version")) for c in caps if get(c.meta, "jvm", "version")})
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
        ("CPU engine", "; ".join(dict.fromkeys(engine_note(e, k) for e, k in cpu_engines)) if cpu_engines else None),
        ("JVM flags", " ".join(f"`{f}`" for f in flags) if isinstance(flags, list) and flags else None),
        ("JDK", ", ".join(jvm_versions) if jvm_versions else None),
        ("async-profiler", env.get("async_profiler")),
        ("k6", env.get("k6")),
        ("container engine", env.get("engine")),
        ("host", env.get("host")),
        ("host CPUs", env.get("cpus")),
    ]
    return [[k, cell(v)] for k, v in rows if v not in (None, "")]


def _load_rows(load: Mapping, settings: Mapping) -> list[list[str]]:
    target = load.get("target_tps", settings.get("tps"))
    err = error_fraction(load.get("error_rate"))
    return [
        ["TPS (target → achieved)", f"{fig(target)} → {fig(load.get('achieved_tps'))}"],
        ["p50 latency", fig(load.get("p50_ms"), " ms")],
        ["p95 latency", fig(load.get("p95_ms"), " ms")],
        ["p99 latency", fig(load.get("p99_ms"), " ms")],
        ["error rate", "n/a" if err is None else f"{err:.2%}"],
        ["dropped iterations", count(load.get("dropped_iterations"))],
        ["iterations", count(load.get("iterations"))],
        ["HTTP requests", count(load.get("http_reqs"))],
        ["measured window", fig(load.get("duration_s"), " s", 0)],
    ]


def report_markdown(run_dir: Path, manifest: Mapping, caps: list[CaptureData], out_dir: Path,
                    top: int = 10, app_packages: Sequence[str] | None = None) -> str:
    """The analysis report of a run already read (see :func:`write_report`), as text;
    links are relative to ``out_dir``."""
    stamp = str(manifest.get("stamp") or run_dir.name)
    summary = build(manifest, caps)
    lines = [f"# Flame graph analysis: {stamp}", "", summary.paragraph, ""]
    lines += ranked_markdown(summary, out_dir)
    lines += services_markdown(summary, out_dir)
    lines += [f"Generated by flamekit from run [{stamp}]({link(run_dir, out_dir)}/). "
              "Below, shares are of each capture's samples (of allocated bytes or lock wait time "
              "where the capture recorded weights); ± is the 95% binomial sampling error, "
              "from the number of samples, in percentage points.", ""]
    lines += ["## Run set-up", ""]
    lines += table(["item", "value"], _setup_rows(manifest, caps)) + [""]
    lines += ["## Load", ""]
    load = manifest.get("load") if isinstance(manifest.get("load"), Mapping) else None
    if load:
        lines += table(["figure", "value"], _load_rows(load, mapping(manifest, "settings")), ["l", "r"]) + [""]
    else:
        lines += ["No load figures were recorded.", ""]
    lines += ["## Hotspots", ""]
    if not caps:
        lines += ["No captures.", ""]
    for cap in caps:
        lines += _capture_section(cap, out_dir, top, app_packages)
    warnings = summary.warnings
    lines += ["## Validity", ""]
    lines += [f"- {cell(w)}" for w in warnings] if warnings else ["none"]
    lines += ["", "## Findings", ""]
    for cap in caps:
        lines += [f"**{cap.service} {cap.event}.** {finding(cap, app_packages)}", ""]
    if not caps:
        lines += ["Nothing was captured.", ""]
    return "\n".join(lines).rstrip() + "\n"


def write_report(run_dir: str | os.PathLike[str], out_path: str | os.PathLike[str] | None = None,
                 repo_root: str | os.PathLike[str] | None = None, top: int = 10,
                 app_packages: Sequence[str] | None = None) -> Path:
    """Write the analysis markdown of one run and return its path.

    Default ``out_path`` is ``<repo_root>/docs/perf/flamegraph-analysis-<stamp>.md``;
    ``repo_root`` defaults to the repository holding ``docs/perf/runs/<stamp>``.
    Links are relative to the report's directory. ``app_packages`` (prefixes) overrides
    the manifest's ``settings.app_packages``; with neither, application frames are those
    outside the JDK/JVM packages. ReportError when the run or its manifest is missing.
    """
    run_dir = Path(run_dir)
    manifest = read_manifest(run_dir)
    repo = Path(repo_root) if repo_root else repo_root_for(run_dir)
    stamp = str(manifest.get("stamp") or run_dir.name)
    out = Path(out_path) if out_path else report_path(repo / "docs" / "perf", stamp)
    caps = load_captures(run_dir, manifest, repo)
    atomic_write(out, report_markdown(run_dir, manifest, caps, out.parent, top, app_packages))
    log.info("wrote report %s", out)
    return out


# --------------------------------------------------------------------------- comparison


def _delta_rows(items: list[MethodDelta], by: str) -> list[list[str]]:
    if by == "total":
        return [[code(d.name), pct(d.total_a), pct(d.total_b), pts(d.total_delta),
                 "yes" if d.significant else "no", pts(d.self_delta)] for d in items]
    return [[code(d.name), pct(d.self_a), pct(d.self_b), pts(d.self_delta), pts(d.total_delta)]
            for d in items]


def _load_delta_row(d: LoadDelta) -> list[str]:
    if d.metric == "error rate":
        a = "n/a" if d.a is None else f"{d.a:.2%}"
        b = "n/a" if d.b is None else f"{d.b:.2%}"
        return [d.metric, a, b, "n/a" if d.delta is None else f"{d.delta * 100:+.2f} points"]
    digits = 0 if d.metric == "dropped iterations" else 1
    if d.delta is None:
        delta = "n/a"
    else:
        rel = f" ({d.delta / d.a:+.0%})" if d.a else ""
        delta = f"{d.delta:+,.{digits}f}{rel}"
    return [d.metric, fig(d.a, digits=digits), fig(d.b, digits=digits), delta]


_DELTA_TABLES = (("Hotter by total share", "hotter_total", "total"),
                 ("Cooler by total share", "cooler_total", "total"),
                 ("Hotter by self share", "hotter_self", "self"),
                 ("Cooler by self share", "cooler_self", "self"))


def _capture_changes(c: CaptureComparison) -> list[str]:
    lines = [f"### {c.service}: {c.event}", "",
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
        lines += [f"Shares are of {measure(c.event, c.weight)} in both runs.", ""]
    for title, attr, by in _DELTA_TABLES:
        items = getattr(c, attr)
        lines += [f"#### {title}", ""]
        if not items:
            lines += ["none", ""]
        elif by == "total":
            lines += table(["method", "total A", "total B", "Δ total", "beyond noise", "Δ self"],
                           _delta_rows(items, by), ["l", "r", "r", "r", "l", "r"]) + [""]
        else:
            lines += table(["method", "self A", "self B", "Δ self", "Δ total"],
                           _delta_rows(items, by), ["l", "r", "r", "r", "r"]) + [""]
    return lines


def comparison_markdown(cmp: Comparison) -> str:
    """The comparison as markdown: load deltas, then per capture the methods that got
    hotter and cooler by total and by self share (in percentage points, B - A)."""
    lines = [f"# Run comparison: {cmp.stamp_a} → {cmp.stamp_b}", "",
             f"A = `{cmp.stamp_a}`, B = `{cmp.stamp_b}`. Deltas are B − A; shares in percentage points.", "",
             "## Load", ""]
    lines += table(["figure", "A", "B", "Δ"], [_load_delta_row(d) for d in cmp.load],
                   ["l", "r", "r", "r"]) + [""]
    lines += ["## Hotspot changes", ""]
    if not cmp.captures:
        lines += ["No service and event was captured in both runs.", ""]
    for c in cmp.captures:
        lines += _capture_changes(c)
    if cmp.only_in_a or cmp.only_in_b:
        lines += ["## Not in both runs", ""]
        lines += [f"- only in A: {s} {e}" for s, e in cmp.only_in_a]
        lines += [f"- only in B: {s} {e}" for s, e in cmp.only_in_b]
        lines.append("")
    lines += ["## Validity", ""]
    for label, warns in (("A", cmp.warnings_a), ("B", cmp.warnings_b)):
        lines += [f"- {label}: {cell(w)}" for w in warns] if warns else [f"- {label}: none"]
    lines.append("")
    return "\n".join(lines)
