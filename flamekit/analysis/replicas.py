"""Replicas of one service: their profiles merged into one, and compared with each other.

`run_profile` captures every replica of a scaled service in the same window, one directory a
replica (``<run>/<service>.N/``, see :class:`flamekit.targets.base.Replica`). Here:

* :func:`merge_service` sums the replicas' collapsed stacks of one event, line by line on the
  raw stack text (so async-profiler's frame-type suffixes, which colour its flame graphs,
  survive), into ``<run>/<service>/<event>.collapsed`` (and ``<event>.samples.collapsed`` for
  a weighted alloc/lock capture). jfrconv cannot merge recordings, but 4.3 renders a collapsed
  file as its own HTML flame graph (``jfrconv in.collapsed out.html``, checked):
  :func:`render_merged_html` does that with the installed profiler's jfrconv on the host.
* :func:`compare_replicas` builds the per-service table: each replica's samples, its own top
  method and share ± the 95 % sampling error, its share of the *service's* top method (the
  merged profile's), and its CPU per iteration; a replica whose share of that method differs
  from most of the other replicas' shares by more than the combined sampling error (two
  proportions, standard errors from the sample counts) is flagged.
  Samples are autocorrelated (DESIGN.md §5), so a flag means "worth a look", not a proof.
"""
from __future__ import annotations

import logging
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from ..errors import ReportError
from ..runs import captures as manifest_captures
from ..runs import read_manifest
from ..util import atomic_write
from .collapsed import SAMPLES_SUFFIX, WEIGHT_SAMPLES, Profile, parse_collapsed
from .hotspots import hotspots, share_of
from .stats import Uncertainty, beyond_noise, uncertainty

log = logging.getLogger(__name__)

#: what the merge leaves next to the merged files: which replica files it summed
SOURCES_NAME = "replicas.json"


# --------------------------------------------------------------------------- merging

def sum_collapsed(texts: Iterable[str]) -> dict[str, int]:
    """Raw stack text -> summed count over several collapsed files (frames left as written).
    Lines without a count are skipped, like :func:`flamekit.analysis.collapsed.parse_collapsed`."""
    out: dict[str, int] = {}
    for text in texts:
        for line in text.splitlines():
            stack, _, count = line.strip().rpartition(" ")
            if stack and count.isdigit() and int(count) > 0:
                out[stack] = out.get(stack, 0) + int(count)
    return out


def format_collapsed(stacks: Mapping[str, int]) -> str:
    """Collapsed text, heaviest stack first (ties by name: the output is reproducible)."""
    return "".join(f"{s} {c}\n" for s, c in sorted(stacks.items(), key=lambda kv: (-kv[1], kv[0])))


def merge_profiles(profiles: Sequence[Profile]) -> Profile:
    """Several parsed profiles summed stack by stack (same weight unit required)."""
    if not profiles:
        raise ValueError("nothing to merge")
    units = {p.weight for p in profiles}
    if len(units) > 1:
        raise ReportError(f"cannot merge profiles of different units: {', '.join(sorted(units))}")
    stacks: dict[tuple[str, ...], int] = {}
    for p in profiles:
        for k, v in p.stacks.items():
            stacks[k] = stacks.get(k, 0) + v
    counts = [p.sample_count for p in profiles]
    return Profile(stacks=stacks, total=sum(stacks.values()), source="+".join(p.source for p in profiles),
                   weight=profiles[0].weight,
                   sample_count=None if any(c is None for c in counts) else sum(counts))  # type: ignore[arg-type]


@dataclass(frozen=True)
class ReplicaCapture:
    """One replica's capture of one event, as the manifest lists it."""

    service: str
    replica: int
    container: str
    event: str
    collapsed: Path
    samples_collapsed: Path | None
    samples: int
    weight: str
    cgroup_cpu_s: float | None
    window_s: float | None

    @property
    def label(self) -> str:
        return f"{self.service}.{self.replica}"

    def profile(self) -> Profile:
        """Its profile; for a weighted capture the weights, with the sample count behind them."""
        return parse_collapsed(self.collapsed, weight=self.weight, sample_count=self.samples or None)


def _seconds(a: Any, b: Any) -> float | None:
    import datetime as dt
    try:
        t0, t1 = dt.datetime.fromisoformat(str(a)), dt.datetime.fromisoformat(str(b))
    except (TypeError, ValueError):
        return None
    s = (t1 - t0).total_seconds()
    return s if s > 0 else None


def replica_captures(run_dir: Path, manifest: Mapping | None, service: str, event: str) -> list[ReplicaCapture]:
    """The successful captures of ``service``/``event`` made from more than one replica, in
    replica order (empty when the service ran a single container)."""
    run_dir = Path(run_dir)
    manifest = manifest if manifest is not None else read_manifest(run_dir)
    out = []
    for cap in manifest_captures(manifest):
        if cap.get("service") != service or cap.get("event") != event or int(cap.get("replicas") or 1) < 2:
            continue
        if cap.get("error") or not cap.get("collapsed"):
            continue
        path = run_dir / cap["collapsed"]
        counts = run_dir / cap["samples_collapsed"] if cap.get("samples_collapsed") else None
        cpu = cap.get("cgroup_cpu_s")
        out.append(ReplicaCapture(service, int(cap.get("replica") or 0), str(cap.get("container") or ""), event,
                                  path, counts, int(cap.get("samples") or 0),
                                  str(cap.get("weight") or WEIGHT_SAMPLES),
                                  float(cpu) if isinstance(cpu, (int, float)) else None,
                                  _seconds(cap.get("profiler_started"), cap.get("profiler_stopped"))))
    return sorted(out, key=lambda c: c.replica)


@dataclass
class Merged:
    service: str
    event: str
    collapsed: Path
    samples_collapsed: Path | None
    profile: Profile
    replicas: list[ReplicaCapture] = field(default_factory=list)
    html: Path | None = None


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise ReportError(f"cannot read {path}: {exc.strerror or exc}") from None


def merge_service(run_dir: Path, service: str, event: str, manifest: Mapping | None = None) -> Merged:
    """Sum the replicas' ``<event>.collapsed`` into ``<run>/<service>/<event>.collapsed``
    (plus the ``.samples.collapsed`` counts of a weighted capture) and say what was summed in
    ``<run>/<service>/replicas.json``. ReportError when the service has no replica captures."""
    import json
    run_dir = Path(run_dir)
    caps = replica_captures(run_dir, manifest, service, event)
    if not caps:
        raise ReportError(f"no {event} captures of replicas of {service} in {run_dir}",
                          "profile a scaled service (compose --scale, or a Swarm service with replicas)")
    out_dir = run_dir / service
    merged_path = out_dir / f"{event}.collapsed"
    atomic_write(merged_path, format_collapsed(sum_collapsed(_read(c.collapsed) for c in caps)))
    samples_path = None
    if all(c.samples_collapsed is not None and c.samples_collapsed.is_file() for c in caps):
        samples_path = out_dir / f"{event}{SAMPLES_SUFFIX}"
        atomic_write(samples_path, format_collapsed(sum_collapsed(_read(c.samples_collapsed) for c in caps)))  # type: ignore[arg-type]
    sources_path = out_dir / SOURCES_NAME
    try:
        sources = json.loads(sources_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        sources = {}
    sources[event] = {"replicas": [c.label for c in caps],
                      "files": [os.path.relpath(c.collapsed, out_dir) for c in caps],
                      "samples": sum(c.samples for c in caps)}
    atomic_write(sources_path, json.dumps(sources, indent=2) + "\n")
    profile = parse_collapsed(merged_path, weight=caps[0].weight, sample_count=sum(c.samples for c in caps) or None)
    log.info("merged %d replicas of %s %s into %s", len(caps), service, event, merged_path)
    return Merged(service, event, merged_path, samples_path, profile, caps)


def render_merged_html(jfrconv: Path, collapsed: Path, out: Path | None = None, title: str | None = None,
                       timeout_s: float = 120.0) -> Path:
    """async-profiler's own flame graph of a (merged) collapsed file: ``jfrconv in.collapsed
    out.html`` on the host (needs a java on PATH, like the host heatmap conversion)."""
    out = out or collapsed.with_suffix(".html")
    cmd = [str(jfrconv), "--inverted"] + (["--title", title] if title else []) + [str(collapsed), str(out)]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ReportError(f"jfrconv could not render {collapsed}: {exc}",
                          "jfrconv needs a java on the host's PATH") from None
    if p.returncode != 0 or not out.is_file() or out.stat().st_size == 0:
        last = (p.stderr or p.stdout).strip().splitlines()
        raise ReportError(f"jfrconv could not render {collapsed}: {last[-1] if last else f'exit code {p.returncode}'}")
    return out


# --------------------------------------------------------------------------- comparing

@dataclass(frozen=True)
class ReplicaRow:
    """One line of the replica table. Shares are fractions; ``cpu_ms_per_iteration`` is the
    replica's cgroup CPU over the k6 iterations of its window (all replicas share the load, so
    the service's figure is the sum of its replicas')."""

    label: str
    replica: int
    container: str
    samples: int
    top_method: str | None
    top_share: float
    top_error: Uncertainty
    service_method: str | None
    service_share: float
    service_error: Uncertainty
    others_share: float
    cpu_ms_per_iteration: float | None
    flagged: bool
    note: str = ""


@dataclass
class ReplicaTable:
    service: str
    event: str
    method: str | None           # the merged profile's top method: what the flag compares
    merged_share: float
    merged_samples: int
    rows: list[ReplicaRow]

    @property
    def flagged(self) -> list[ReplicaRow]:
        return [r for r in self.rows if r.flagged]

    def markdown(self) -> str:
        """The table as markdown (what a report section shows)."""
        head = (f"{self.service} {self.event}: {len(self.rows)} replicas, merged top method "
                f"`{self.method}` {self.merged_share * 100:.1f}% of {self.merged_samples:,} samples\n\n")
        lines = ["| replica | container | samples | top method | share | share of merged top | CPU ms/iteration | |",
                 "|---|---|---:|---|---:|---:|---:|---|"]
        for r in self.rows:
            cpu = f"{r.cpu_ms_per_iteration:.2f}" if r.cpu_ms_per_iteration is not None else "?"
            lines.append(f"| {r.label} | {r.container} | {r.samples:,} | `{r.top_method}` | "
                         f"{r.top_share * 100:.1f}% {r.top_error.text} | "
                         f"{r.service_share * 100:.1f}% {r.service_error.text} | {cpu} | "
                         f"{'**differs** ' if r.flagged else ''}{r.note} |")
        return head + "\n".join(lines) + "\n"


def _iterations(manifest: Mapping, window_s: float | None) -> float | None:
    load = manifest.get("load") if isinstance(manifest.get("load"), Mapping) else {}
    tps = load.get("achieved_tps") if load else None
    if isinstance(tps, (int, float)) and tps > 0 and window_s:
        return tps * window_s
    return None


def compare_replicas(run_dir: Path, service: str, event: str = "cpu",
                     manifest: Mapping | None = None) -> ReplicaTable:
    """The replica table of ``service``/``event`` (see :class:`ReplicaRow`). A replica is
    flagged when its share of the merged top method differs from more than half of the other
    replicas' shares beyond the combined 95 % sampling error (two proportions, standard error
    from the sample counts: :func:`flamekit.analysis.stats.beyond_noise`). With two replicas a
    difference flags both: which one is odd cannot be told. ``others_share`` is the pooled
    share of the other replicas, for the table."""
    run_dir = Path(run_dir)
    manifest = manifest if manifest is not None else read_manifest(run_dir)
    caps = replica_captures(run_dir, manifest, service, event)
    if len(caps) < 2:
        raise ReportError(f"{service} {event}: {len(caps)} replica capture(s), nothing to compare")
    profiles = [c.profile() for c in caps]
    merged = merge_profiles(profiles)
    top = hotspots(merged, event, top=1)
    method = top[0].name if top else None
    shares = [share_of(p, method, event)[0] if method else 0.0 for p in profiles]
    ns = [p.samples for p in profiles]
    rows = []
    for i, (c, p) in enumerate(zip(caps, profiles)):
        own = hotspots(p, event, top=1)
        n_rest = sum(ns) - ns[i]
        # pooled share of the other replicas: their samples of the method over their samples
        rest = (sum(s * n for j, (s, n) in enumerate(zip(shares, ns)) if j != i) / n_rest) if n_rest else 0.0
        # pairwise against each other replica, flagged when it differs from most of them: a
        # single odd replica then flags only itself (against the pooled rest, its pull on the
        # pool would flag the normal ones too); with two replicas both are flagged
        differs = sum(1 for j in range(len(caps)) if j != i and method
                      and beyond_noise(shares[j], ns[j], shares[i], ns[i]))
        flagged = differs > (len(caps) - 1) / 2
        iters = _iterations(manifest, c.window_s)
        note = ""
        if own and method and own[0].name != method:
            note = f"own top method is not the service's ({method})"
        if ns[i] < 1000:
            note = (note + "; " if note else "") + "under 1,000 samples: shares uncertain by several points"
        rows.append(ReplicaRow(
            label=c.label, replica=c.replica, container=c.container, samples=ns[i],
            top_method=own[0].name if own else None, top_share=own[0].self_share if own else 0.0,
            top_error=uncertainty(ns[i], own[0].self_share if own else 0.0),
            service_method=method, service_share=shares[i], service_error=uncertainty(ns[i], shares[i]),
            others_share=rest,
            cpu_ms_per_iteration=(c.cgroup_cpu_s * 1000 / iters) if (c.cgroup_cpu_s is not None and iters) else None,
            flagged=flagged, note=note))
    return ReplicaTable(service, event, method, top[0].self_share if top else 0.0, merged.samples, rows)


def scaled_services(manifest: Mapping) -> list[tuple[str, str]]:
    """(service, event) pairs of a run that were captured from more than one replica."""
    seen: dict[tuple[str, str], None] = {}
    for cap in manifest_captures(manifest):
        if int(cap.get("replicas") or 1) > 1 and cap.get("service") and cap.get("event"):
            seen[(cap["service"], cap["event"])] = None
    return list(seen)


def merge_run(run_dir: Path, jfrconv: Path | None = None) -> list[tuple[Merged, ReplicaTable | None]]:
    """Every scaled service/event of a run: merged files (and a flame graph when ``jfrconv`` is
    given) with its replica table. What the lead's report step calls after a run."""
    run_dir = Path(run_dir)
    manifest = read_manifest(run_dir)
    out = []
    for service, event in scaled_services(manifest):
        try:
            merged = merge_service(run_dir, service, event, manifest)
        except ReportError as exc:
            log.warning("%s", exc)
            continue
        if jfrconv is not None:
            try:
                merged.html = render_merged_html(jfrconv, merged.collapsed,
                                                 title=f"{service} {event} ({len(merged.replicas)} replicas merged)")
            except ReportError as exc:
                log.warning("%s", exc)
        table = compare_replicas(run_dir, service, event, manifest) if len(merged.replicas) > 1 else None
        out.append((merged, table))
    return out


__all__ = ["sum_collapsed", "format_collapsed", "merge_profiles", "replica_captures", "merge_service",
           "render_merged_html", "compare_replicas", "scaled_services", "merge_run", "ReplicaCapture",
           "ReplicaRow", "ReplicaTable", "Merged"]
