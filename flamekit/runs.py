"""The run store: one directory per run, its manifest, its names, and the seed's flame-graph names.

    <runs_dir>/<stamp>/
        manifest.json                        what ran, with what, what came out (written atomically)
        k6-summary.json, k6.log, k6-warmup*  the load
        <service>/profile.jfr                the recording (all events of one window)
        <service>/<event>.collapsed          stacks (alloc/lock: weights; .samples.collapsed: counts)
        <service>/<event>.html               the flame graph
    <flamegraph_dir>/<service>-<event>-<stamp>.html   the seed's name, an exclusive copy

A run never overwrites another (stamps get -2, -3... and copies use O_EXCL). A run whose
process died without finishing (SIGKILL, power loss) is marked ``abandoned`` by the next
command that opens the store. Only this module knows these names.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import platform
import re
import shutil
from pathlib import Path
from typing import Any, Iterable, Mapping

from . import __version__
from .errors import ReportError
from .util import atomic_write

RUN_HINT = "run `inv profile` or `inv profile-all` first"
MANIFEST = "manifest.json"
STATUSES = ("running", "ok", "failed", "abandoned")
# a 60 s run of four services writes about 10-20 MB (recordings, flame graphs, pprof, heatmaps)
MIN_FREE_BYTES = 20 << 20
_STAMP_RE = re.compile(r"^\d{8}-\d{6}")


def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")


def new_stamp(now: dt.datetime | None = None) -> str:
    return (now or dt.datetime.now()).strftime("%Y%m%d-%H%M%S")


def make_run_dir(runs_dir: Path, stamp: str | None = None) -> tuple[Path, str]:
    """A fresh run directory: never reuse one (a second run in the same second gets -2, -3...)."""
    runs_dir = Path(runs_dir)
    runs_dir.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(runs_dir).free
    if free < MIN_FREE_BYTES:
        raise ReportError(f"only {free / 1e6:.1f} MB free in {runs_dir}",
                          f"a run needs about {MIN_FREE_BYTES >> 20} MB: free space or point flamekit.runs_dir elsewhere")
    sweep_abandoned(runs_dir)
    stamp = stamp or new_stamp()
    n = 1
    while True:
        name = stamp if n == 1 else f"{stamp}-{n}"
        path = runs_dir / name
        try:
            path.mkdir()
            return path, name
        except FileExistsError:
            n += 1


def base_manifest(stamp: str, settings: Mapping[str, Any], environment: Mapping[str, Any]) -> dict:
    """A new run's manifest: status ``running`` until the run records how it ended."""
    return {
        "flamekit_version": __version__,
        "stamp": stamp,
        "started": now_iso(),
        "finished": None,
        "status": "running",
        "error": None,
        "owner": {"host": platform.node(), "pid": os.getpid()},
        "settings": dict(settings),
        "environment": dict(environment),
        "timeline": {},
        "load": None,
        "captures": [],
    }


def write_manifest(run_dir: Path, manifest: Mapping) -> Path:
    return atomic_write(Path(run_dir) / MANIFEST, json.dumps(manifest, indent=2, default=str) + "\n")


def read_manifest(run_dir: str | os.PathLike[str]) -> dict:
    """The run's manifest.json as a dict; ReportError if missing or not JSON."""
    run_dir = Path(run_dir)
    path = run_dir / MANIFEST
    if not run_dir.is_dir():
        raise ReportError(f"no run directory {run_dir}", RUN_HINT)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ReportError(f"no manifest.json in {run_dir}", RUN_HINT) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReportError(f"unreadable manifest {path}: {exc}",
                          "the run may have been interrupted; re-run the capture") from None
    if not isinstance(data, dict):
        raise ReportError(f"unreadable manifest {path}: not a JSON object",
                          "the run may have been interrupted; re-run the capture")
    return data


def captures(manifest: Mapping) -> list[dict]:
    caps = manifest.get("captures") if isinstance(manifest, Mapping) else None
    return [c for c in caps if isinstance(c, dict)] if isinstance(caps, list) else []


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_abandoned(manifest: Mapping) -> bool:
    """Still ``running`` but its process is gone (on this host): it can never finish."""
    if manifest.get("status") != "running":
        return False
    owner = manifest.get("owner") or {}
    if owner.get("host") != platform.node() or not isinstance(owner.get("pid"), int):
        return False
    return not _pid_alive(owner["pid"])


def sweep_abandoned(runs_root: Path) -> list[Path]:
    """Mark every run whose process died mid-run as ``abandoned``; return those directories."""
    marked = []
    for run_dir in _run_dirs(Path(runs_root)):
        try:
            m = json.loads((run_dir / MANIFEST).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(m, dict) and is_abandoned(m):
            m["status"] = "abandoned"
            m["error"] = m.get("error") or "the flamekit process ended without finishing this run (killed?)"
            m["finished"] = m.get("finished") or now_iso()
            write_manifest(run_dir, m)
            marked.append(run_dir)
    return marked


def _is_run_dir(path: Path) -> bool:
    return path.is_dir() and (bool(_STAMP_RE.match(path.name)) or (path / MANIFEST).is_file())


def _run_dirs(root: Path) -> list[Path]:
    if not root.is_dir():
        return []
    return sorted((p for p in root.iterdir() if _is_run_dir(p)), key=lambda p: p.name, reverse=True)


def list_runs(runs_root: str | os.PathLike[str]) -> list[Path]:
    """Run directories under ``runs_root``, newest first (stamps sort by time)."""
    root = Path(runs_root)
    sweep_abandoned(root)
    return _run_dirs(root)


def latest_run(runs_root: str | os.PathLike[str]) -> Path:
    """The newest run directory; ReportError if there is none."""
    runs = list_runs(runs_root)
    if not runs:
        raise ReportError(f"no runs in {runs_root}", RUN_HINT)
    return runs[0]


def resolve_run(runs_root: str | os.PathLike[str], name_or_path: str | os.PathLike[str] | None) -> Path:
    """A run directory from a path, a stamp (or unique stamp prefix) or "latest"/None."""
    if name_or_path is None or str(name_or_path) in ("", "latest"):
        return latest_run(runs_root)
    given = Path(name_or_path)
    if given.is_file() and given.name == MANIFEST:
        return given.parent
    if given.is_dir():
        return given
    candidate = Path(runs_root) / str(name_or_path)
    if candidate.is_dir():
        return candidate
    if not given.is_absolute() and len(given.parts) == 1:
        matches = [p for p in list_runs(runs_root) if p.name.startswith(str(name_or_path))]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise ReportError(f"{name_or_path} matches {len(matches)} runs in {runs_root}",
                              "give the full stamp")
    missing = given if (given.is_absolute() or len(given.parts) > 1) else candidate
    raise ReportError(f"no run directory {missing}", RUN_HINT)


# ------------------------------------------------------------------ names inside a run
def service_dir(run_dir: Path, service: str) -> Path:
    return Path(run_dir) / service


def capture_file(run_dir: Path, service: str, name: str) -> Path:
    """``<run>/<service>/<name>``: profile.jfr, cpu.collapsed, alloc.samples.collapsed, cpu.html..."""
    return service_dir(run_dir, service) / name


def seed_flamegraph(flamegraph_dir: Path, service: str, event: str, stamp: str) -> Path:
    """The seed's name: ``docs/perf/flamegraphs/<service>-<event>-<stamp>.html``."""
    return Path(flamegraph_dir) / f"{service}-{event}-{stamp}.html"


def report_path(reports_dir: Path, stamp: str, suffix: str = "md") -> Path:
    return Path(reports_dir) / f"flamegraph-analysis-{stamp}.{suffix}"


def exclusive_copy(src: Path, dest: Path) -> Path:
    """Copy without ever overwriting (O_EXCL); a partial copy (disk full) is removed."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        fo = open(dest, "xb")
    except FileExistsError:
        raise ReportError(f"{dest} already exists", "a run never overwrites another; remove it by hand") from None
    try:
        with open(src, "rb") as fi, fo:
            shutil.copyfileobj(fi, fo)
    except BaseException:
        dest.unlink(missing_ok=True)
        raise
    return dest


def relative(p: Path, root: Path) -> Path:
    try:
        return Path(p).resolve().relative_to(Path(root).resolve())
    except ValueError:
        return Path(p)


def flamegraphs_of(manifest: Mapping, root: Path) -> Iterable[Path]:
    for cap in captures(manifest):
        if cap.get("flamegraph"):
            yield Path(root) / cap["flamegraph"]
