"""Baselines and the regression gate: `inv baseline save`, `inv baseline list`, `inv gate`,
`inv profile-all --baseline NAME`.

A baseline is a directory ``<baselines_dir>/<name>/`` holding what a later comparison needs,
small enough to commit (well under 2 MB for 4 services x 4 events)::

    baseline.json                    name, source run, saved time, the run's manifest, and per
                                     service-event the per-time-slice method tables
    stacks/<service>-<event>.collapsed.gz   the heaviest stacks (for differential flame graphs)

The run being gated is cut into the same kind of tables by converting its JFR per time slice
with the host's jfrconv (java on the host is needed; see docs/gate.md).
"""
from __future__ import annotations

import datetime as dt
import gzip
import json
import logging
import os
import re
import shutil
import statistics
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

from .. import runs, ui
from ..analysis import gate as fkgate
from ..analysis.captures import CaptureData, load_captures
from ..analysis.collapsed import Profile, parse_collapsed
from ..analysis.costs import unit_ms, window_seconds
from ..analysis.gate_stats import SliceTable, choose_slices
from ..analysis.values import error_fraction, get, number
from ..capture import convert as fkconvert
from ..config import Settings
from ..errors import ConfigError, ReportError
from ..util import atomic_write

log = logging.getLogger(__name__)

BASELINE_FILE = "baseline.json"
BASELINE_FORMAT = 2
#: Format 1 held one run; it is still read.
READABLE_FORMATS = (1, 2)
#: Where baselines live, relative to the project root (committable next to the docs).
DEFAULT_BASELINES = Path("docs/perf/baselines")
#: Bytes of collapsed stacks kept per service-event (before gzip), heaviest stacks first.
STACK_BUDGET = 400_000
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def baselines_dir(settings: Settings) -> Path:
    """``<root>/docs/perf/baselines``, or ``$FLAMEKIT_BASELINES_DIR`` (until a config key exists)."""
    given = os.environ.get("FLAMEKIT_BASELINES_DIR")
    return Path(given) if given else Path(settings.root) / DEFAULT_BASELINES


def check_name(name: str | None) -> str:
    if not name:
        raise ConfigError("no baseline named", "pass --baseline NAME (see `inv baseline list`)")
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ConfigError(f"bad baseline name {name!r}",
                          "use letters, digits, '.', '_' or '-' (e.g. main, release-1.2)")
    return name


def noun_of(manifest: Mapping, settings: Settings | None = None) -> str:
    """What one k6 iteration is called in the verdicts: the first word of the k6 script's name
    (``order-flow.js`` -> ``order``), else "request"."""
    script = get(manifest, "settings", "k6_script") or (str(settings.k6_script) if settings else "")
    stem = Path(str(script)).stem if script else ""
    word = re.split(r"[-_.]", stem)[0] if stem else ""
    return word.lower() if word.isalpha() and len(word) > 2 else "request"


# ------------------------------------------------------------------ tables of a run
def _scale(cap: CaptureData, manifest: Mapping) -> float:
    kind = fkgate.gate_kind(cap.event)
    if kind in ("alloc", "lock"):
        return 1e-6  # bytes -> MB, ns -> ms (slices are converted with --total)
    return unit_ms(cap, manifest)


def _usable(cap: CaptureData, events: Sequence[str] | None) -> bool:
    return (not cap.error and cap.event in fkconvert.SLICE_FLAGS
            and (events is None or cap.event in events))


def run_tables(run_dir: Path, manifest: Mapping, jfrconv: Path, *, slices: int = 10,
               services: Sequence[str] | None = None, events: Sequence[str] | None = None,
               work: Path | None = None, cfg: fkgate.GateConfig = fkgate.DEFAULT,
               runner=None) -> dict[tuple[str, str], SliceTable]:
    """Per service-event tables of a run: its JFRs converted per time slice (K = ``slices``,
    fewer for short windows) with the host's jfrconv."""
    tps = number(get(manifest, "load", "achieved_tps"))
    if not tps:
        raise ReportError(f"run {run_dir.name} has no achieved TPS", "the gate needs a run with load (k6)")
    caps = [c for c in load_captures(run_dir, manifest)
            if _usable(c, events) and (services is None or c.service in services)]
    tmp = Path(tempfile.mkdtemp(prefix="flamekit-slices-", dir=work))
    try:
        plans = []
        for n, cap in enumerate(caps):
            jfr = cap.file("jfr") or (run_dir / cap.label / "profile.jfr")
            window = window_seconds(cap, manifest) or 0.0
            if not jfr.is_file() or window <= 0:
                log.warning("%s %s: no JFR or no window in %s, not gated", cap.label, cap.event, run_dir)
                continue
            k = choose_slices(window, slices)
            jobs = fkconvert.slice_jobs(jfr, cap.event, fkconvert.slice_bounds(window, k), tmp / f"{n:03d}")
            plans.append((cap, window, k, jobs))
        fkconvert.run_slice_jobs(jfrconv, [j for *_, jobs in plans for j in jobs], runner=runner)
        tables: dict[tuple[str, str], SliceTable] = {}
        for cap, window, k, jobs in plans:
            profiles = [parse_collapsed(j.out) if j.out.is_file() else Profile({}, 0) for j in jobs]
            samples = int(cap.samples or 0)
            total_w = cap.weight_total if cap.weight_total else (cap.profile.total if cap.profile else 0)
            weighted = fkgate.gate_kind(cap.event) in ("alloc", "lock")
            per_sample = (float(total_w) / samples) if samples and weighted else 1.0
            t = fkgate.build_table(cap.service, cap.event, profiles, [window / k] * k, scale=_scale(cap, manifest),
                                   tps=tps, samples=samples, per_sample=per_sample or 1.0,
                                   app_packages=cap.app_packages, top=cfg.top_methods)
            key = (cap.service, cap.event)
            # replicas of one service: add slice by slice (same window and k)
            tables[key] = _merge(tables[key], t) if key in tables else t
        return tables
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _merge(a: SliceTable, b: SliceTable) -> SliceTable:
    k = min(a.k, b.k)
    names = set(a.methods) | set(b.methods)
    methods = {n: [a.series(n)[i] + b.series(n)[i] for i in range(k)] for n in names}
    return SliceTable(a.service, a.event, a.unit, a.scale, a.tps, a.samples + b.samples, a.seconds[:k],
                      [a.totals[i] + b.totals[i] for i in range(k)], methods, a.per_sample)


# ------------------------------------------------------------------ baselines
@dataclass
class Baseline:
    name: str
    path: Path
    data: dict

    @property
    def runs(self) -> list[str]:
        return [str(r) for r in self.data.get("runs") or [self.data.get("run")]]

    @property
    def manifest(self) -> dict:
        """The pooled manifest the gate compares with: the first run's, with the load figures
        (p95, error rate, achieved TPS) the median over the baseline's runs."""
        return dict(self.data.get("manifest") or {})

    @property
    def tables(self) -> dict[tuple[str, str], list[SliceTable]]:
        """Per service-event, one table per baseline run that has it."""
        out: dict[tuple[str, str], list[SliceTable]] = {}
        for run_tables in _table_sets(self.data):
            for key, t in fkgate.tables_from_json(run_tables).items():
                out.setdefault(key, []).append(t)
        return out

    def profile(self, service: str, event: str) -> Profile | None:
        f = self.path / "stacks" / f"{service}-{event}.collapsed.gz"
        if not f.is_file():
            return None
        return parse_collapsed(gzip.decompress(f.read_bytes()).decode("utf-8", "replace"))


def _table_sets(data: Mapping) -> list[list]:
    """The per-run table lists of a baseline.json (format 1 held one run's list)."""
    tables = data.get("tables") or []
    if data.get("format") == 1:
        return [tables]
    return [t for t in tables if isinstance(t, list)]


def _top_stacks(collapsed: Path, budget: int = STACK_BUDGET) -> bytes:
    """The heaviest lines of a collapsed file, up to ``budget`` bytes (a flame graph's shape
    comes from the heavy stacks; the light tail is what gets cut)."""
    lines = []
    for line in collapsed.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            lines.append((int(count), line))
    lines.sort(key=lambda x: -x[0])
    out, size = [], 0
    for _, line in lines:
        size += len(line) + 1
        if size > budget:
            break
        out.append(line)
    return gzip.compress(("\n".join(out) + "\n").encode("utf-8"), mtime=0)


def _finished(manifest: Mapping) -> bool:
    """A run that ended ok (runs from before statuses were recorded count as ok)."""
    return manifest.get("status") in ("ok", None)


def pooled_manifest(manifests: Sequence[Mapping]) -> dict:
    """The first manifest, its load figures replaced by the median over all (a p95 of one run
    moves by several percent between runs; the median of three does not follow one outlier)."""
    first = json.loads(json.dumps(manifests[0], default=str))
    load = first.get("load")
    if len(manifests) > 1 and isinstance(load, dict):
        for key in ("p95_ms", "achieved_tps", "error_rate"):
            conv = error_fraction if key == "error_rate" else number
            vals = [v for v in (conv(get(m, "load", key)) for m in manifests) if v is not None]
            if vals:
                load[key] = statistics.median(vals)
    first["baseline_runs"] = [str(m.get("stamp")) for m in manifests]
    return first


def _poolable(manifests: Sequence[Mapping], names: Sequence[str], services: Sequence[str],
              what: str = "in one baseline") -> None:
    """Every run pooled (a baseline's, or the repeats under test) must be one the gate could
    compare with the first."""
    for m, name in zip(manifests, names):
        if not _finished(m):
            raise ReportError(f"run {name} did not finish ok ({m.get('status')}): it cannot be pooled {what}",
                              "pool runs that finished")
        problem = fkgate.rate_problem(m, f"run {name}")
        if problem:
            raise ReportError(f"cannot pool run {name} {what}: {problem}", "pool runs that held their rate")
    for m, name in zip(manifests[1:], names[1:]):
        reasons = fkgate.comparability(manifests[0], m, services)
        if reasons:
            raise ReportError(f"runs {names[0]} and {name} cannot be pooled {what}: {reasons[0]}",
                              "pool runs with the same settings, flags and versions")


def save(run_dirs: str | os.PathLike[str] | Sequence[str | os.PathLike[str]], name: str,
         baselines: str | os.PathLike[str], jfrconv: Path, *, slices: int = 10, runner=None) -> Path:
    """Store one run, or several runs of the same settings, as baseline ``name`` (replacing an
    older one of that name atomically). With several runs the gate also learns how much each
    method moves between runs (see docs/gate.md)."""
    check_name(name)
    dirs = [Path(run_dirs)] if isinstance(run_dirs, (str, os.PathLike)) else [Path(d) for d in run_dirs]
    if not dirs:
        raise ReportError("no run to keep as a baseline", runs.RUN_HINT)
    manifests = []
    for run_dir in dirs:
        manifest = runs.read_manifest(run_dir)
        if not _finished(manifest):
            raise ReportError(f"run {run_dir.name} did not finish ok ({manifest.get('status')})",
                              "save a baseline from a complete run")
        manifests.append(manifest)
    names = [str(m.get("stamp") or d.name) for m, d in zip(manifests, dirs)]
    if len(set(names)) < len(names):
        raise ReportError(f"a run is named twice: {', '.join(names)}", "name each run once")
    if len(dirs) > 1:
        services = sorted({str(c.get("service")) for m in manifests for c in runs.captures(m)})
        _poolable(manifests, names, services)
    table_sets = []
    for run_dir, manifest in zip(dirs, manifests):
        tables = run_tables(run_dir, manifest, jfrconv, slices=slices, runner=runner)
        if not tables:
            raise ReportError(f"run {run_dir.name} has no capture to keep as a baseline", runs.RUN_HINT)
        table_sets.append(tables)
    root = Path(baselines)
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=root))
    try:
        (tmp / "stacks").mkdir()
        for cap in load_captures(dirs[0], manifests[0]):
            if (cap.service, cap.event) in table_sets[0] and cap.collapsed is not None:
                (tmp / "stacks" / f"{cap.label}-{cap.event}.collapsed.gz").write_bytes(_top_stacks(cap.collapsed))
        data = {"format": BASELINE_FORMAT, "name": name, "run": names[0], "runs": names,
                "saved": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                "manifest": pooled_manifest(manifests),
                "tables": [fkgate.tables_to_json(t) for t in table_sets]}
        (tmp / BASELINE_FILE).write_text(json.dumps(data, separators=(",", ":"), default=str) + "\n",
                                         encoding="utf-8")
        dest = root / name
        old = root / f".{name}.old"
        shutil.rmtree(old, ignore_errors=True)
        if dest.exists():
            dest.rename(old)
        tmp.rename(dest)
        shutil.rmtree(old, ignore_errors=True)
        return dest
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def load(name: str, baselines: str | os.PathLike[str]) -> Baseline:
    check_name(name)
    path = Path(baselines) / name
    f = path / BASELINE_FILE
    try:
        data = json.loads(f.read_text(encoding="utf-8"))
    except FileNotFoundError:
        known = ", ".join(b["name"] for b in list_all(baselines)) or "none"
        raise ReportError(f"no baseline {name!r} in {baselines}",
                          f"save one with `inv baseline save --name {name}` (known: {known})") from None
    except (OSError, ValueError) as exc:
        raise ReportError(f"unreadable baseline {f}: {exc}", "save it again") from None
    if not isinstance(data, dict) or data.get("format") not in READABLE_FORMATS:
        raise ReportError(f"baseline {f} has an unknown format", "save it again with this flamekit")
    return Baseline(name, path, data)


def list_all(baselines: str | os.PathLike[str]) -> list[dict]:
    """Every baseline: name, source run, saved time, services/events, size in bytes."""
    root = Path(baselines)
    out = []
    for d in sorted(root.iterdir()) if root.is_dir() else []:
        f = d / BASELINE_FILE
        if d.name.startswith(".") or not f.is_file():
            continue
        try:
            data = json.loads(f.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        size = sum(p.stat().st_size for p in d.rglob("*") if p.is_file())
        tables = [t for ts in _table_sets(data) for t in ts if isinstance(t, dict)]
        svcs = sorted({str(t.get("service")) for t in tables})
        evs = sorted({str(t.get("event")) for t in tables})
        out.append({"name": d.name, "run": ", ".join(map(str, data.get("runs") or [data.get("run")])),
                    "saved": data.get("saved"),
                    "captures": f"{', '.join(svcs)}: {', '.join(evs)}",
                    "tps": get(data, "manifest", "load", "achieved_tps"), "bytes": size})
    return out


# ------------------------------------------------------------------ the gate
@dataclass
class GateOutputs:
    result: fkgate.GateResult
    out_dir: Path
    junit: Path
    summary: Path
    diffs: list[Path]


def gate(settings: Settings, baseline: str, run: str | Sequence[str] | None = None, *, slices: int = 10,
         cfg: fkgate.GateConfig = fkgate.DEFAULT, baselines: Path | None = None, runner=None,
         raise_on_fail: bool = True, last: int = 0) -> GateOutputs:
    """Compare a run (default: the newest), or several repeats of one build (``run`` a list, or
    the newest ``last`` runs, pooled), with baseline ``baseline``; write the JUnit XML, the
    markdown summary and a differential flame graph per regressed service-event under
    ``<reports_dir>/gate/<run>-vs-<baseline>/``; print the verdict; raise GateRegression (exit
    1) or GateUndecided (exit 2) unless it passed (or ``raise_on_fail`` is False)."""
    from ..render import gate as fkrender
    from ..render.html import write_diff_flamegraph
    base = load(baseline, baselines or baselines_dir(settings))
    dirs = _resolve_runs(settings, run, last)
    manifests = [runs.read_manifest(d) for d in dirs]
    base_tables = base.tables
    services = sorted({s for s, _ in base_tables})
    events = sorted({e for _, e in base_tables})
    if len(dirs) > 1:
        _poolable(manifests, [d.name for d in dirs], services, "as repeats of one build")
    label = dirs[-1].name if len(dirs) == 1 else f"{dirs[-1].name} (+{len(dirs) - 1} repeat(s))"
    ui.say(f"gate: run(s) {', '.join(d.name for d in dirs)} against baseline {baseline} "
           f"(run(s) {', '.join(base.runs)}); slicing {', '.join(events)} of {', '.join(services)}")
    tables: dict[tuple[str, str], list] = {}
    for run_dir, manifest in zip(dirs, manifests):
        one = run_tables(run_dir, manifest, settings.profiler.dir / "bin" / "jfrconv", slices=slices,
                         services=services, events=events, runner=runner)
        for key, t in one.items():
            tables.setdefault(key, []).append(t)
    if len(dirs) > 1:  # a service-event missing from one repeat is missing from the run
        tables = {k: v for k, v in tables.items() if len(v) == len(dirs)}
    manifest = pooled_manifest(manifests)
    result = fkgate.judge(base.manifest, base_tables, manifest, tables, baseline=baseline,
                          run=label, noun=noun_of(manifest, settings), cfg=cfg)
    newest = dirs[-1]
    out_dir = Path(settings.reports_dir) / "gate" / (
        f"{newest.name}-vs-{baseline}" if len(dirs) == 1 else f"{newest.name}-x{len(dirs)}-vs-{baseline}")
    out_dir.mkdir(parents=True, exist_ok=True)
    diffs: list[Path] = []
    caps = {(c.service, c.event): c for c in load_captures(newest, manifests[-1])}
    for check in result.checks:
        cap = caps.get((check.service, check.event))
        if not check.regressions or cap is None or cap.profile is None:
            continue
        prof_a = base.profile(check.service, check.event)
        if prof_a is None:
            continue
        html = out_dir / f"diff-{check.service}-{check.event}.html"
        write_diff_flamegraph(prof_a, cap.profile, html, title=f"{check.service} {check.event}: "
                              f"baseline {baseline} -> {newest.name}", label_a=f"baseline {baseline}",
                              label_b=newest.name, event=check.event)
        diffs.append(html)
    junit = atomic_write(out_dir / "junit.xml", fkrender.junit_xml(result))
    summary = atomic_write(out_dir / "summary.md", fkrender.summary_markdown(result, out_dir, diffs))
    for line in fkrender.verdict_lines(result):
        (ui.warn if result.exit_code else ui.say)(line)
    ui.say(f"junit: {junit}")
    ui.say(f"summary: {summary}")
    for d in diffs:
        ui.say(f"differential flame graph: {d}")
    err = result.error()
    if err is not None and raise_on_fail:
        raise err
    return GateOutputs(result, out_dir, junit, summary, diffs)


def _complete(run_dir: Path) -> bool:
    try:
        return _finished(runs.read_manifest(run_dir))
    except ReportError:
        return False


def _resolve_runs(settings: Settings, run: str | Sequence[str] | None, last: int) -> list[Path]:
    """The runs named (default: the newest), or the newest ``last`` complete ones; oldest first."""
    given = [run] if isinstance(run, str) else list(run or [])
    if last and given:
        raise ConfigError("both --run and --last given", "name the runs, or ask for the newest N, not both")
    if last:
        if last < 1:
            raise ConfigError(f"--last {last}: not a number of runs", "pass --last 3 for the newest three runs")
        complete = [d for d in runs.list_runs(settings.runs_dir) if _complete(d)]  # newest first
        if len(complete) < last:
            raise ReportError(f"--last {last}: only {len(complete)} complete run(s) in {settings.runs_dir}",
                              "profile more runs first, or ask for fewer")
        return complete[:last][::-1]
    return [runs.resolve_run(settings.runs_dir, r) for r in given] or [runs.resolve_run(settings.runs_dir, None)]


def save_baseline(settings: Settings, run: str | Sequence[str] | None, name: str, slices: int = 10, runner=None,
                  baselines: Path | None = None, last: int = 0) -> Path:
    """`inv baseline save`: store a run (default: the newest), the runs given, or the newest
    ``last`` runs, as baseline ``name``."""
    dirs = _resolve_runs(settings, run, last)
    what = f"run {dirs[0].name}" if len(dirs) == 1 else f"{len(dirs)} runs ({', '.join(d.name for d in dirs)})"
    ui.say(f"saving {what} as baseline {name} (slicing their JFRs with jfrconv)")
    path = save(dirs, name, baselines or baselines_dir(settings), settings.profiler.dir / "bin" / "jfrconv",
                slices=slices, runner=runner)
    size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    ui.ok(f"baseline {name}: {path} ({size / 1024:.0f} kB)")
    return path


def list_baselines(settings: Settings, baselines: Path | None = None) -> list[dict]:
    """`inv baseline list`: a table of the saved baselines."""
    root = baselines or baselines_dir(settings)
    items = list_all(root)
    if not items:
        ui.say(f"no baselines in {root}; `inv baseline save --name main` stores one")
        return items
    rows = [(b["name"], str(b["run"]), str(b["saved"]), f"{b['tps']}", f"{b['bytes'] / 1024:.0f} kB", b["captures"])
            for b in items]
    ui.say(ui.table(rows, ("name", "run", "saved", "TPS", "size", "captures")))
    return items


def profile_all_gated(settings: Settings, services: Sequence[str], events: Sequence[str] | str,
                      baseline: str, keep_up: bool = False, baselines: Path | None = None) -> GateOutputs:
    """`inv profile-all --baseline NAME`: the whole chain, then the gate on the new run. The
    baseline is loaded first, so a missing one fails before the stack starts."""
    from .chain import profile_all
    load(baseline, baselines or baselines_dir(settings))
    report = profile_all(settings, services, events, keep_up=keep_up)
    stamp = report.stem.removeprefix("flamegraph-analysis-") if report is not None else None
    return gate(settings, baseline, stamp, baselines=baselines)


__all__ = ["Baseline", "DEFAULT_BASELINES", "GateOutputs", "baselines_dir", "check_name", "gate", "list_all",
           "list_baselines", "load", "noun_of", "pooled_manifest", "profile_all_gated", "run_tables", "save",
           "save_baseline"]
