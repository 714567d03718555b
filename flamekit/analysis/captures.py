"""The captures of one run directory, read back: profiles, sample counts, weights, files.

The run directory is the contract with the capture code (see :mod:`flamekit.runs`)::

    <runs_dir>/<stamp>/manifest.json
    <runs_dir>/<stamp>/<service>/<event>.collapsed          (alloc/lock: maybe weights)
    <runs_dir>/<stamp>/<service>/<event>.samples.collapsed  (the counts behind weights)
    <runs_dir>/<stamp>/<service>/<event>.html
    docs/perf/flamegraphs/<service>-<event>-<stamp>.html     (the seed-compatible copy)

A weighted capture's manifest entry says ``"weight": "bytes"`` / ``"ns"`` (absent or
``"samples"``: counts), ``"samples": N`` (always a count) and ``"weight_total": W``.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ..errors import ReportError
from ..runs import captures as manifest_captures
from ..runs import seed_flamegraph
from .collapsed import SAMPLES_SUFFIX, WEIGHT_SAMPLES, Profile, parse_collapsed
from .events import event_kind
from .hotspots import app_package_prefixes
from .values import get, number

log = logging.getLogger(__name__)


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
    label: str = ""  # the container's directory: the service, or ``service.N`` for replicas
    run_dir: Path | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.label = self.label or self.service

    def file(self, key: str) -> Path | None:
        """A file the manifest entry names under ``key`` (pprof, jfr, heatmap,
        threads_collapsed...), resolved against the run directory; None if absent."""
        path = _rel_or_abs(self.run_dir or Path("."), self.meta.get(key))
        return path if path is not None and path.is_file() else None


def repo_root_for(run_dir: str | os.PathLike[str]) -> Path:
    """``<repo>`` for ``<repo>/docs/perf/runs/<stamp>``; else the run's parent."""
    parts = Path(run_dir).resolve().parts
    if len(parts) >= 4 and parts[-4:-1] == ("docs", "perf", "runs"):
        return Path(*parts[:-4])
    return Path(run_dir).resolve().parent


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


def _entries(run_dir: Path, manifest: Mapping) -> list[dict]:
    """The manifest's capture entries, plus one per ``<service>/<event>.collapsed`` file
    it does not list (``<event>.samples.collapsed``, ``<event>.threads.collapsed`` are not events)."""
    entries = list(manifest_captures(manifest))
    for collapsed in sorted(run_dir.glob("*/*.collapsed")):
        if collapsed.name.endswith(SAMPLES_SUFFIX) or "." in collapsed.stem:
            continue  # x.samples.collapsed, x.threads.collapsed: files of event x, not events
        key = (collapsed.parent.name, collapsed.stem)
        if not any((label_of(c), c.get("event")) == key for c in entries):
            entries.append({"service": key[0], "event": key[1]})
    return entries


def _parse_or_none(path: Path) -> tuple[Profile | None, str | None]:
    if not path.is_file():
        return None, None
    try:
        return parse_collapsed(path), None
    except ReportError as exc:
        log.warning("%s", exc)
        return None, str(exc)


def _flamegraph(cap: Mapping, repo_root: Path, service: str, event: str, stamp: str) -> Path | None:
    fg = _rel_or_abs(repo_root, cap.get("flamegraph"))
    if fg is None or not fg.is_file():
        guess = seed_flamegraph(repo_root / "docs" / "perf" / "flamegraphs", service, event, stamp)
        fg = guess if guess.is_file() else fg
    return fg if fg is not None and fg.is_file() else None


def label_of(cap: Mapping) -> str:
    """The directory of a capture entry's container: ``service``, or ``service.N`` when the
    service ran several replicas (as the capture code names it)."""
    service = str(cap.get("service") or "unknown-service")
    replicas, replica = number(cap.get("replicas")), cap.get("replica")
    return f"{service}.{replica}" if replicas and replicas > 1 and replica is not None else service


def _load_one(cap: Mapping, run_dir: Path, repo_root: Path, stamp: str, interval: Any,
              run_packages: tuple[str, ...] | None) -> CaptureData:
    service = str(cap.get("service") or "unknown-service")
    label = label_of(cap)
    event = str(cap.get("event") or "cpu")
    collapsed = _rel_or_abs(run_dir, cap.get("collapsed")) or run_dir / label / f"{event}.collapsed"
    html_path = _rel_or_abs(run_dir, cap.get("html")) or run_dir / label / f"{event}.html"
    samples_file = _rel_or_abs(run_dir, cap.get("samples_collapsed")) or _samples_path(collapsed)
    profile, read_error = _parse_or_none(collapsed)
    counts, _ = _parse_or_none(samples_file)
    error = cap.get("error") or read_error
    kind = event_kind(event)
    weight = _weight_of(cap, kind, profile, counts)
    given = number(cap.get("samples"))
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
    w_total = number(cap.get("weight_total"))
    weighted_profile = profile is not None and weight != WEIGHT_SAMPLES
    if w_total is not None and weighted_profile and int(w_total) != profile.total:
        log.warning("%s %s: manifest weight_total %s differs from the file's %s",
                    service, event, int(w_total), profile.total)
    if w_total is None and weighted_profile:
        w_total = float(profile.total)
    return CaptureData(
        service=service, event=event,
        engine=cap.get("engine") or None,
        interval=cap.get("interval") or (interval if kind == "cpu" else None),
        samples=samples, profile=profile,
        collapsed=collapsed if collapsed.is_file() else None,
        html=html_path if html_path.is_file() else None,
        flamegraph=_flamegraph(cap, repo_root, label, event, stamp),
        error=str(error) if error else None, meta=dict(cap),
        weight=weight, weight_total=w_total, sample_profile=counts,
        samples_collapsed=samples_file if samples_file.is_file() else None,
        app_packages=app_package_prefixes(cap.get("app_packages")) or run_packages,
        label=label, run_dir=run_dir,
    )


def load_captures(run_dir: str | os.PathLike[str], manifest: Mapping,
                  repo_root: str | os.PathLike[str] | None = None) -> list[CaptureData]:
    """Captures of a run: those in the manifest, plus ``<service>/<event>.collapsed``
    files the manifest does not list (``<event>.samples.collapsed``, the counts of a
    weighted capture, is not an event). Profiles that cannot be read are None.

    A weighted capture (manifest ``weight`` "bytes"/"ns") gets its profile from the
    weighted file, ``sample_profile`` from the ``.samples.collapsed`` file and its
    sample count from the manifest's ``samples`` or, failing that, the samples file."""
    run_dir = Path(run_dir)
    root = Path(repo_root) if repo_root else repo_root_for(run_dir)
    stamp = str(manifest.get("stamp") or run_dir.name)
    interval = get(manifest, "settings", "interval")
    run_packages = app_package_prefixes(get(manifest, "settings", "app_packages"))
    out: list[CaptureData] = []
    seen: set[tuple[str, str]] = set()
    for cap in _entries(run_dir, manifest):
        key = (label_of(cap), str(cap.get("event") or "cpu"))
        if key not in seen:
            seen.add(key)
            out.append(_load_one(cap, run_dir, root, stamp, interval, run_packages))
    return out
