"""The HTML analysis report of one run, beside the markdown: summary and the ranked "what to fix
first" tables first (above the fold at 1366x768), then load figures, validity checks and a
section per service with its flame graphs, heatmap, exports, CPU breakdown and hotspots.

One self-contained page (``templates/report.html.j2``, CSS inlined, no script, no network):
it opens offline from the file system; every link is relative to the page. async-profiler's
flame graphs are linked as they are (their own files).
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from ..runs import read_manifest, report_path
from ..util import atomic_write
from ..analysis.captures import CaptureData, load_captures, repo_root_for
from ..analysis.costs import KINDS, UNITS
from ..analysis.events import event_label
from ..analysis.hotspots import app_hotspots
from ..analysis.threads import CATEGORIES
from ..analysis.values import error_fraction, get, mapping
from .format import count, fig, link, pct, profile_amount
from .html import render_page
from .summary import TOP, Summary, build, per_request, share_text

log = logging.getLogger(__name__)


@dataclass
class _Row:
    method: str
    service: str
    cost: str
    share: str
    href: str | None
    note: str = ""


@dataclass
class _Service:
    name: str
    links: list[tuple[str, str]] = field(default_factory=list)     # (text, href)
    figures: list[tuple[str, str]] = field(default_factory=list)   # (label, value)
    breakdown: list[tuple[str, float]] = field(default_factory=list)
    hotspots: list[tuple[str, list[tuple[str, str]]]] = field(default_factory=list)  # (title, [(name, share)])


def _rel(path: Path | None, out_dir: Path) -> str | None:
    return link(path, out_dir) if path is not None else None


def _ranked(summary: Summary, out_dir: Path) -> list[tuple[str, str, list[_Row]]]:
    out = []
    for kind, title in KINDS:
        rows = [_Row(f.method, f.service, per_request(f), share_text(f), _rel(f.flamegraph, out_dir), f.note)
                for f in summary.findings.get(kind, [])[:TOP]]
        out.append((title, UNITS[kind], rows))
    return out


def _ms(v: float | None) -> str:
    return "n/a" if v is None else f"{v:,.2f} ms"


def _services(summary: Summary, caps: list[CaptureData], out_dir: Path) -> list[_Service]:
    by_name: dict[str, _Service] = {}
    for cap in caps:
        svc = by_name.setdefault(cap.service, _Service(cap.service))
        who = cap.label if cap.label != cap.service else ""
        graph = cap.flamegraph or cap.html
        if graph is not None:
            svc.links.append((f"{who} {cap.event} flame graph".strip(), link(graph, out_dir)))
        for key, text in (("heatmap", f"{cap.event} heatmap"), ("pprof", f"{cap.event} pprof"),
                          ("jfr", "JFR (all events)")):
            p = cap.file(key)
            href = link(p, out_dir) if p is not None else None
            if href is not None and href not in {h for _, h in svc.links}:
                svc.links.append((f"{who} {text}".strip(), href))
        if cap.profile is not None and cap.profile.total:
            apps = app_hotspots(cap.profile, cap.event, 5, cap.app_packages)
            title = f"{who} {event_label(cap.event)} ({profile_amount(cap.profile)})".strip()
            svc.hotspots.append((title, [(h.name, pct(h.self_share)) for h in apps]))
    for name, sc in summary.services.items():
        svc = by_name.setdefault(name, _Service(name))
        svc.figures = [("profiled CPU / iteration", _ms(sc.cpu_ms)), ("cgroup CPU / iteration", _ms(sc.cgroup_ms)),
                       ("profile / cgroup", pct(sc.coverage)), ("request time / iteration", _ms(sc.request_ms)),
                       ("of it waiting downstream", _ms(sc.downstream_ms)),
                       ("request threads idle", _ms(sc.idle_ms)), ("other threads", _ms(sc.other_ms))]
        if sc.alloc_mb is not None:
            svc.figures += [("sampled allocation / iteration", fig(sc.alloc_mb, " MB", 2)),
                            ("JVM-counted allocation / iteration", fig(sc.jvm_alloc_mb, " MB", 2)),
                            ("profile / JVM", pct(sc.alloc_coverage))]
        if sc.breakdown is not None:
            svc.breakdown = [(title, sc.breakdown.share(key)) for key, title in CATEGORIES]
    return [by_name[k] for k in sorted(by_name)]


def _load(manifest: Mapping) -> list[tuple[str, str]]:
    load, s = mapping(manifest, "load"), mapping(manifest, "settings")
    err = error_fraction(load.get("error_rate"))
    return [("TPS target → achieved", f"{fig(load.get('target_tps', s.get('tps')))} → {fig(load.get('achieved_tps'))}"),
            ("p50 / p95 latency", f"{fig(load.get('p50_ms'), ' ms')} / {fig(load.get('p95_ms'), ' ms')}"),
            ("error rate", "n/a" if err is None else f"{err:.2%}"),
            ("dropped iterations", count(load.get("dropped_iterations"))),
            ("iterations", count(load.get("iterations"))),
            ("k6 measured phase", fig(load.get("duration_s"), " s", 0)),
            ("profiled / warm-up", f"{fig(s.get('duration'), ' s', 0)} / {fig(s.get('warmup'), ' s', 0)}"),
            ("async-profiler", str(get(manifest, "environment", "async_profiler") or "n/a"))]


def report_html(run_dir: Path, manifest: Mapping, caps: list[CaptureData], out_dir: Path,
                markdown: Path | None = None) -> str:
    """The page of a run already read, links relative to ``out_dir``."""
    summary = build(manifest, caps)
    stamp = str(manifest.get("stamp") or run_dir.name)
    return render_page("report.html.j2", stamp=stamp, summary=summary, ranked=_ranked(summary, out_dir),
                       load=_load(manifest), services=_services(summary, caps, out_dir),
                       run_href=link(run_dir, out_dir) + "/",
                       markdown=link(markdown, out_dir) if markdown is not None else None)


def write_html_report(run_dir: str | os.PathLike[str], out_path: str | os.PathLike[str] | None = None,
                      repo_root: str | os.PathLike[str] | None = None) -> Path:
    """Write ``flamegraph-analysis-<stamp>.html`` (default beside the markdown report in
    ``<repo_root>/docs/perf``) and return its path; links the markdown when it exists."""
    run_dir = Path(run_dir)
    manifest = read_manifest(run_dir)
    repo = Path(repo_root) if repo_root else repo_root_for(run_dir)
    stamp = str(manifest.get("stamp") or run_dir.name)
    out = Path(out_path) if out_path else report_path(repo / "docs" / "perf", stamp, "html")
    md = out.with_suffix(".md")
    caps = load_captures(run_dir, manifest, repo)
    atomic_write(out, report_html(run_dir, manifest, caps, out.parent, md if md.is_file() else None))
    log.info("wrote HTML report %s", out)
    return out


__all__ = ["report_html", "write_html_report"]
