"""The opening of a run's report, shared by the markdown and the HTML: one paragraph on the
run, what to fix first (ranked per kind by cost per k6 iteration), cost per iteration and
where the CPU goes per service, request-thread wall time, and the exported files.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from ..analysis.captures import CaptureData
from ..analysis.costs import KINDS, UNITS, Finding, ServiceCosts, analyse, iterations, window_seconds
from ..analysis.threads import CATEGORIES
from ..analysis.validity import run_warnings
from ..analysis.values import error_fraction, mapping
from .format import code, fig, link, pct, table

#: Rows per ranked table: four kinds x four rows keep the tables in a report's first 40 lines.
TOP = 4


@dataclass
class Summary:
    """Everything the opening of a report shows; computed once per report."""

    paragraph: str
    findings: dict[str, list[Finding]]
    services: dict[str, ServiceCosts]
    warnings: list[str]
    exports: list[tuple[str, str, dict[str, Path]]] = field(default_factory=list)  # (label, event, files)


def _paragraph(manifest: Mapping, caps: list[CaptureData], n_warnings: int) -> str:
    s, load = mapping(manifest, "settings"), mapping(manifest, "load")
    stamp = manifest.get("stamp") or "this run"
    services = ", ".join(dict.fromkeys(c.label for c in caps)) or "no service"
    events = ", ".join(dict.fromkeys(c.event for c in caps)) or "no event"
    engines = sorted({c.engine for c in caps if c.event == "cpu" and c.engine})
    secs = [w for w in (window_seconds(c, manifest) for c in caps) if w]
    iters = [i for i in (iterations(c, manifest) for c in caps) if i]
    err = error_fraction(load.get("error_rate"))
    text = (f"Run `{stamp}` (status {manifest.get('status') or 'unknown'}) profiled {services} "
            f"({events}{'; cpu engine ' + ', '.join(engines) if engines else ''})")
    if secs:
        text += f" for {max(secs):.1f} s"
    if load:
        text += (f" while k6 held {fig(load.get('achieved_tps'))} of {fig(load.get('target_tps', s.get('tps')))} "
                 f"TPS (p50 {fig(load.get('p50_ms'), ' ms')}, p95 {fig(load.get('p95_ms'), ' ms')}, "
                 f"errors {'n/a' if err is None else f'{err:.2%}'}, dropped iterations "
                 f"{fig(load.get('dropped_iterations'), digits=0)})")
    else:
        text += " with no load figures recorded"
    if iters:
        text += f", about {max(iters):,.0f} iterations in the profiler window"
    text += "." + (f" {n_warnings} validity warning(s): see Validity." if n_warnings
                   else " No validity warnings.")
    return text


def _exports(caps: list[CaptureData]) -> list[tuple[str, str, dict[str, Path]]]:
    out = []
    for c in caps:
        files = {k: p for k, p in ((k, c.file(k)) for k in ("pprof", "jfr", "heatmap", "threads_collapsed"))
                 if p is not None}
        if files:
            out.append((c.label, c.event, files))
    return out


def build(manifest: Mapping, caps: list[CaptureData]) -> Summary:
    findings, services = analyse(manifest, caps)
    warnings = run_warnings(manifest, caps)
    return Summary(_paragraph(manifest, caps, len(warnings)), findings, services, warnings, _exports(caps))


def per_request(f: Finding) -> str:
    if f.per_request is None:
        return "n/a"
    digits = 3 if f.per_request < 0.1 else 2
    return f"{f.per_request:,.{digits}f}"


def share_text(f: Finding) -> str:
    u = f.uncertainty
    pm = "± ?" if f.samples <= 0 else f"± {u.points:.1f}"
    return f"{pct(f.share)} {pm}"


def _ms(v: float | None) -> str:
    return "n/a" if v is None else f"{v:,.2f}"


def ranked_markdown(summary: Summary, out_dir: Path, top: int = TOP) -> list[str]:
    """The "What to fix first" section: one ranked table per kind (heading, table, blank)."""
    lines = ["## What to fix first", ""]
    for kind, title in KINDS:
        rows = []
        for i, f in enumerate(summary.findings.get(kind, [])[:top], 1):
            fg = f"[flame graph]({link(f.flamegraph, out_dir)})" if f.flamegraph else "n/a"
            rows.append([str(i), code(f.method), f.service, per_request(f), share_text(f), fg])
        lines.append(f"### {title}: {UNITS[kind]} per iteration")
        if rows:
            lines += table(["#", "method", "service", f"{UNITS[kind]} / iter", "share of service (95%)",
                            "graph"], rows, ["r", "l", "l", "r", "r", "l"])
        else:
            lines.append("No capture of this kind.")
        lines.append("")
    lines += [
        "Cost per iteration: the method's self cost (as the deepest application frame of each stack) "
        "in the profiler's window, divided by the k6 iterations completed in it (achieved TPS x "
        "window seconds); CPU is samples x interval; allocation is bytes from `jfrconv --total`; "
        "request latency is wall time of request threads (below). Share: of the service's CPU, "
        "allocated bytes, lock wait or request time; ± is the 95% sampling error from the number "
        "of samples. Replicas of a service are summed.", ""]
    down = [f"{s.service} {s.downstream_ms:.2f} ms" for s in summary.services.values() if s.downstream_ms]
    if down:
        lines += ["Not ranked: request time spent waiting in blocking HTTP client calls, which is the "
                  "called service's time (per iteration): " + ", ".join(down) + ".", ""]
    return lines


def _section(title: str, rows: list[list[str]], header: list[str], note: str, empty: str) -> list[str]:
    """A heading, then a table (first column left, the others right) and its note, or ``empty``."""
    lines = [f"## {title}", ""]
    if not rows:
        return lines + [empty, ""]
    return lines + table(header, rows, ["l"] + ["r"] * (len(header) - 1)) + ["", note, ""]


def services_markdown(summary: Summary, out_dir: Path) -> list[str]:
    """Cost per iteration per service, where the CPU goes, request threads, exports."""
    svcs = sorted(summary.services.values(), key=lambda s: s.service)
    lines = ["## Cost per iteration by service", ""]
    rows = [[s.service, _ms(s.cpu_ms), _ms(s.cgroup_ms), pct(s.coverage), _ms(s.request_ms),
             _ms(s.downstream_ms)] for s in svcs]
    lines += table(["service", "profiled CPU ms", "cgroup CPU ms", "profile / cgroup", "request time ms",
                    "of it downstream ms"], rows, ["l", "r", "r", "r", "r", "r"]) + [""]
    lines += ["Profiled CPU is all CPU samples x interval; cgroup CPU is the container's CPU time over "
              "the same window (under 80% coverage is a validity warning).", ""]
    with_a = [s for s in svcs if s.alloc_mb is not None]
    if with_a:
        lines += table(["service", "sampled MB allocated", "JVM-counted MB", "profile / JVM", "threads ended"],
                       [[s.service, fig(s.alloc_mb, digits=2), fig(s.jvm_alloc_mb, digits=2), pct(s.alloc_coverage),
                         str(s.jvm_threads_ended) if s.jvm_alloc_mb is not None else "n/a"] for s in with_a],
                       ["l", "r", "r", "r", "r"]) + [""]
        lines += ["Sampled MB is the allocation profile's bytes per iteration; JVM-counted MB is what the "
                  "JVM's per-thread allocation counters (`Thread.print -e`, as ThreadMXBean reads them) grew "
                  "by over the same window. The heap sampler also counts the unused ends of TLABs, so the "
                  "profile reads a few percent high (outside 80-125% is a validity warning); bytes of "
                  "threads that ended in the window are not in the JVM's count.", ""]
    with_b = [s for s in svcs if s.breakdown is not None]
    lines += _section(
        "Where the CPU goes", [[s.service] + [pct(s.breakdown.share(k)) for k, _ in CATEGORIES]  # type: ignore
                               + [f"{s.breakdown.total:,}"] for s in with_b],  # type: ignore[union-attr]
        ["service"] + [t for _, t in CATEGORIES] + ["samples"],
        "From the per-thread CPU stacks: JIT is `C1/C2 CompilerThread*`; GC is `VM Thread` "
        "(Serial GC collects there), `GC Thread*` and collector workers; the profiler is its "
        "signal handlers (`WallClock::signalHandler`), `Profiler::` frames and its own threads. "
        "JIT over 15% is a validity warning; GC over 10% is ranked as a CPU finding.",
        "No per-thread CPU stacks (`cpu.threads.collapsed`) in this run.")
    with_w = [s for s in svcs if s.request_ms is not None]
    lines += _section(
        "Request threads (wall)",
        [[s.service, _ms(s.request_ms), _ms(s.downstream_ms), _ms(s.idle_ms), _ms(s.other_ms),
          ", ".join(s.request_threads[:3]) + (" ..." if len(s.request_threads) > 3 else "")] for s in with_w],
        ["service", "request time ms", "waiting downstream ms", "request threads idle ms", "other threads ms",
         "request threads"],
        "Per iteration. A thread serves requests when it ran application code in the window; "
        "request time is its samples with an application frame on the stack, idle its other "
        "samples (waiting for work). Wall shares in the ranked table are of request time; the "
        "all-thread figures are in the per-capture sections below.",
        "No wall capture (`-e wall`) in this run.")
    lines += ["## Exports", ""]
    if summary.exports:
        for label, event, files in summary.exports:
            lines.append(f"- {label} {event}: " + " · ".join(
                f"[{k}]({link(p, out_dir)})" for k, p in files.items()))
    else:
        lines.append("No pprof or JFR file recorded.")
    return lines + [""]


__all__ = ["Summary", "TOP", "build", "per_request", "ranked_markdown", "services_markdown", "share_text"]
