"""From a recording to files: copy the JFR out, and convert it per event with jfrconv run by
the container's own JVM (its JRE is guaranteed; the host's is not).

All conversions of a container write into one directory in the container's /tmp, run in
parallel (each is a short JVM start), and come out with one copy. Per event:
``<event>.collapsed`` (alloc/lock weighted by bytes/ns with ``--total``, plus
``<event>.samples.collapsed`` with sample counts), ``<event>.html`` (the flame graph),
``<event>.pb.gz`` (pprof, for `go tool pprof`, Pyroscope, Grafana); for cpu and wall
``<event>.threads.collapsed`` (stacks rooted at thread names); for cpu also
``cpu.heatmap.html`` (time on the x axis: warm-up and steady state are visible).
"""
from __future__ import annotations

import logging
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from ..errors import CaptureError
from ..util import last_line

log = logging.getLogger(__name__)

ENGINES = ("perf_events", "ctimer", "itimer", "cpu-clock", "perf")
# alloc and lock are weighed by what matters (bytes allocated, time waited), not by
# sample count; their sample counts are kept in a second collapsed file for the statistics
WEIGHTS = {"alloc": "bytes", "lock": "ns"}
PARALLEL = 3  # host conversions at a time (each a short JVM)


@dataclass(frozen=True)
class Conversion:
    event: str
    suffix: str           # output file name after "<event>."
    total: bool = False   # jfrconv --total: weights instead of counts
    fmt: str = ""         # jfrconv -o; "" = from the suffix
    threads: bool = False  # jfrconv --threads: each stack rooted at its thread's name


def conversions(event: str, heatmap: bool = False) -> list[Conversion]:
    out = [Conversion(event, "collapsed", event in WEIGHTS)]
    if event in WEIGHTS:
        out.append(Conversion(event, "samples.collapsed", False))
    out += [Conversion(event, "html", event in WEIGHTS),
            Conversion(event, "pb.gz", event in WEIGHTS, "pprof")]
    if event in ("cpu", "wall"):
        # per-thread stacks: where the CPU goes (JIT, GC, app) and the wall time of request threads
        out.append(Conversion(event, "threads.collapsed", False, "collapsed", threads=True))
    if heatmap and event == "cpu":
        out.append(Conversion(event, "heatmap.html", False, "heatmap"))
    return out


HEATMAP_HEAP = "-Xmx1g"


def jfrconv_args(jfrconv: str, conv: Conversion, jfr: str, out: str, title: str | None = None) -> list[str]:
    args = [jfrconv, f"--{conv.event}"]
    if conv.total:
        args.append("--total")
    if conv.threads:
        args.append("--threads")
    if conv.fmt:
        args += ["-o", conv.fmt]
    if conv.suffix == "html":
        # icicle layout: the widest frames open at the top of the page, in view at 1366x768
        # (the default layout opened a deep JVM cpu graph on blank space, its base below the fold)
        args.append("--inverted")
        if title:
            args += ["--title", title]
    return args + [jfr, out]


def detect_engine(jfr_bytes: bytes, asprof_output: str = "") -> str:
    """The CPU engine async-profiler used: from the JFR's "engine" setting, else asprof's output."""
    for m in re.finditer(rb"engine", jfr_bytes):
        window = jfr_bytes[m.end():m.end() + 48]
        for name in ENGINES:
            if name.encode() in window:
                return "perf_events" if name in ("perf", "cpu-clock") else name
    text = asprof_output.lower()
    for name in ("ctimer", "itimer"):
        if name in text:
            return name
    return "unknown"


def host_converter(jfrconv: Path | None) -> Path | None:
    """The installed jfrconv, when this machine has a java to run it: converting on the host
    takes ~0.15 s a file, uses no memory of the service's container, and needs no docker exec."""
    import shutil
    if jfrconv is None or not Path(jfrconv).is_file() or not shutil.which("java"):
        return None
    return Path(jfrconv)


def _run_host(jfrconv: Path, conv: Conversion, jfr: Path, out: Path, title: str) -> str | None:
    """One conversion on the host; an error message, or None."""
    import os
    import subprocess
    env = dict(os.environ, JAVA_TOOL_OPTIONS=HEATMAP_HEAP) if conv.fmt == "heatmap" else None
    try:
        p = subprocess.run(jfrconv_args(str(jfrconv), conv, str(jfr), str(out), title), capture_output=True,
                           text=True, timeout=300, env=env)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"jfrconv --{conv.event} -> {conv.suffix} failed: {exc}"
    if p.returncode != 0:
        out.unlink(missing_ok=True)
        return f"jfrconv --{conv.event} -> {conv.suffix} failed: {last_line(p.stdout + p.stderr)}"
    return None


def collect(target, sess, dest: Path, title: str, host_jfrconv: Path | None = None) -> dict:
    """Copy the session's JFR to ``dest/profile.jfr``, convert it per event into ``dest``: on the
    host when ``host_jfrconv`` is given (see host_converter), else inside the container.

    Returns {"engine", "jfr", "files": {event: {suffix: Path}}, "errors": {event: message}, "notes"}.
    Raises CaptureError only when no recording came back at all.
    """
    dest.mkdir(parents=True, exist_ok=True)
    jfr_local = dest / "profile.jfr"
    try:
        target.copy_from(sess.replica, sess.jfr_in_container, jfr_local)
    except Exception as exc:
        raise CaptureError(f"no profile came back from {sess.label}: {exc}",
                           "the JVM must be able to write its /tmp; is the container still running?") from None
    if not jfr_local.is_file() or jfr_local.stat().st_size == 0:
        jfr_local.unlink(missing_ok=True)
        raise CaptureError(f"the profile of {sess.label} is empty",
                           "the JVM wrote nothing; check `docker logs` of the service")
    engine = detect_engine(jfr_local.read_bytes(), sess.start_output)
    todo = [c for e in sess.events for c in conversions(e, heatmap=host_jfrconv is not None)]
    errors: dict[str, str] = {}
    if host_jfrconv is not None:
        def run_here(conv: Conversion) -> None:
            problem = _run_host(host_jfrconv, conv, jfr_local, dest / f"{conv.event}.{conv.suffix}",
                                f"{title} {conv.event}")
            if problem and conv.fmt != "heatmap":
                errors.setdefault(conv.event, f"{problem} ({sess.label})")
        with ThreadPoolExecutor(max_workers=PARALLEL, thread_name_prefix="jfrconv") as pool:
            list(pool.map(run_here, todo))
    else:
        _convert_in_container(target, sess, todo, dest, title, errors)
    for leftover in dest.iterdir():  # a conversion cut short (full disk, killed JVM) leaves nothing behind
        if leftover.is_file() and leftover.stat().st_size == 0:
            leftover.unlink()
    files: dict[str, dict[str, Path]] = {}
    for conv in todo:
        out = dest / f"{conv.event}.{conv.suffix}"
        if out.is_file() and out.stat().st_size > 0:
            files.setdefault(conv.event, {})[conv.suffix] = out
        elif conv.event not in errors and conv.suffix in ("collapsed", "html"):
            errors[conv.event] = f"jfrconv wrote no {conv.suffix} for {conv.event} in {sess.label}"
    notes = [] if host_jfrconv is not None else ["no heatmap: no java on this machine to run jfrconv"]
    return {"engine": engine, "jfr": jfr_local, "files": files, "errors": errors, "notes": notes}


def _convert_in_container(target, sess, todo: list[Conversion], dest: Path, title: str, errors: dict) -> None:
    """All conversions into one directory of the container's /tmp, two at a time (each is a JVM
    inside the service's memory limit), then one copy out."""
    remote_dir = sess.jfr_in_container.removesuffix(".jfr") + ".out"
    target.exec_result(sess.replica, ["mkdir", "-p", remote_dir])

    def run(conv: Conversion) -> None:
        out = f"{remote_dir}/{conv.event}.{conv.suffix}"
        rc, so, se = target.exec_result(sess.replica, jfrconv_args(sess.jfrconv, conv, sess.jfr_in_container,
                                                                    out, f"{title} {conv.event}"))
        if rc != 0:
            errors.setdefault(conv.event, f"jfrconv --{conv.event} -> {conv.suffix} failed in {sess.label}: "
                                          f"{last_line(so + se)}")

    staging = dest / ".incoming"
    _remove_tree(staging)
    try:
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="jfrconv") as pool:
            list(pool.map(run, todo))
        target.copy_from(sess.replica, remote_dir, staging)
    finally:
        target.exec_result(sess.replica, ["rm", "-rf", remote_dir])
    for f in staging.iterdir() if staging.is_dir() else []:
        f.replace(dest / f.name)
    _remove_tree(staging)


def _remove_tree(path: Path) -> None:
    import shutil
    shutil.rmtree(path, ignore_errors=True)


# ------------------------------------------------------------------ time slices (the gate)
#: jfrconv flag and --total per event, for the gate's per-slice collapsed stacks.
SLICE_FLAGS = {"cpu": ("--cpu",), "wall": ("--wall",), "alloc": ("--alloc", "--total"),
               "lock": ("--lock", "--total")}
#: JVM options of one host jfrconv: it only streams a JFR, a small heap is enough.
SLICE_JAVA_OPTS = "-Xmx256m -XX:TieredStopAtLevel=1 -Xshare:auto"


def slice_bounds(window_s: float, k: int) -> list[tuple[int, int]]:
    """``k`` equal (from, to) ranges in ms relative to the recording's start; the last one is
    left open at the end (``to`` far beyond the window) so no late sample is lost."""
    step = window_s * 1000.0 / k
    bounds = [(round(i * step), round((i + 1) * step)) for i in range(k)]
    bounds[-1] = (bounds[-1][0], bounds[-1][1] + 3_600_000)
    return bounds


def slice_args(jfrconv: str, event: str, jfr: str, start_ms: int, end_ms: int, out: str) -> list[str]:
    """``jfrconv --cpu --from 0 --to 2000 -o collapsed x.jfr out`` (jfrconv 4.3 takes plain
    milliseconds, relative to the recording's start; "2s" is rejected)."""
    flags = SLICE_FLAGS.get(event, (f"--{event}",))
    return [jfrconv, *flags, "--from", str(start_ms), "--to", str(end_ms), "-o", "collapsed", jfr, out]


# One JVM converts every slice: jfrconv's Main converts one input per call and returns (it does
# not exit), so a tiny launcher calls it once per job line. Run as a single-file source program
# (`java Batch.java`, JDK 11+ with jdk.compiler); a JRE without a compiler falls back to one
# jfrconv process per slice. Own code because jfrconv has no batch mode.
_BATCH_JAVA = """
import java.nio.file.*;
import java.util.*;
public class SliceBatch {
    public static void main(String[] a) throws Exception {
        int failed = 0;
        for (String line : Files.readAllLines(Paths.get(a[0]))) {
            if (line.isEmpty()) continue;
            String[] args = line.split("\\t");
            try {
                one.converter.Main.main(args);
                System.out.println();
            } catch (Throwable t) {
                failed++;
                System.out.println("\\nFAILED " + String.join(" ", args) + ": " + t);
            }
        }
        System.exit(failed == 0 ? 0 : 3);
    }
}
"""


@dataclass(frozen=True)
class SliceJob:
    event: str
    jfr: Path
    start_ms: int
    end_ms: int
    out: Path

    def args(self) -> list[str]:
        return slice_args("", self.event, str(self.jfr), self.start_ms, self.end_ms, str(self.out))[1:]


def slice_jobs(jfr: Path, event: str, bounds: list[tuple[int, int]], out_dir: Path) -> list[SliceJob]:
    return [SliceJob(event, Path(jfr), a, b, Path(out_dir) / f"{event}.slice{i:02d}.collapsed")
            for i, (a, b) in enumerate(bounds)]


def _java() -> str | None:
    import os
    import shutil
    home = os.environ.get("JAVA_HOME")
    if home and Path(home, "bin", "java").is_file():
        return str(Path(home, "bin", "java"))
    return shutil.which("java")


def run_slice_jobs(jfrconv: Path, jobs: list[SliceJob], parallel: int = PARALLEL, runner=None) -> None:
    """Run every slice conversion on the host: in one JVM when the host java can run a source
    file, else one jfrconv per slice (``parallel`` at a time). A slice without samples of its
    event gets an empty file. CaptureError when jfrconv or java is missing or a job fails."""
    import subprocess
    import tempfile
    if not jobs:
        return
    if runner is None:
        if not Path(jfrconv).is_file():
            raise CaptureError(f"no jfrconv at {jfrconv}", "run `inv download-profiler`")
        if _java() is None:
            raise CaptureError("no java on this machine to run jfrconv for the time slices",
                               "install a JDK or JRE (e.g. apt-get install openjdk-17-jdk-headless) or set JAVA_HOME")
    for job in jobs:
        job.out.parent.mkdir(parents=True, exist_ok=True)
    jar = Path(jfrconv).resolve().parent.parent / "lib" / "converter.jar"
    if runner is None and jar.is_file():
        with tempfile.TemporaryDirectory(prefix="flamekit-batch-") as tmp:
            src, jobfile = Path(tmp) / "SliceBatch.java", Path(tmp) / "jobs.txt"
            src.write_text(_BATCH_JAVA, encoding="utf-8")
            jobfile.write_text("\n".join("\t".join(j.args()) for j in jobs) + "\n", encoding="utf-8")
            try:
                p = subprocess.run([_java() or "java", "-Xmx512m", "-cp", str(jar), str(src), str(jobfile)],
                                   capture_output=True, text=True, timeout=600)
            except (OSError, subprocess.TimeoutExpired) as exc:
                p = None
                log.info("batch slice conversion failed (%s); one jfrconv per slice", exc)
        if p is not None and p.returncode == 0:
            for job in jobs:
                if not job.out.is_file():
                    job.out.write_text("")
            return
        if p is not None:
            log.info("batch slice conversion exited %s (%s); one jfrconv per slice", p.returncode,
                     last_line(p.stdout + p.stderr))
    _run_one_by_one(jfrconv, jobs, parallel, runner or subprocess.run)


def _run_one_by_one(jfrconv: Path, jobs: list[SliceJob], parallel: int, runner) -> None:
    import os
    import subprocess
    env = dict(os.environ, JFRCONV_JAVA_OPTS=SLICE_JAVA_OPTS)

    def one(job: SliceJob) -> str | None:
        try:
            p = runner([str(jfrconv), *job.args()], capture_output=True, text=True, timeout=120, env=env)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"{exc}"
        if p.returncode != 0:
            return f"exited {p.returncode}: {last_line((p.stdout or '') + (p.stderr or ''))}"
        if not job.out.is_file():
            job.out.write_text("")  # a slice without any sample of this event
        return None

    with ThreadPoolExecutor(max_workers=max(1, parallel), thread_name_prefix="jfrconv-slice") as pool:
        problems = [(j, p) for j, p in zip(jobs, pool.map(one, jobs)) if p]
    if problems:
        j, p = problems[0]
        raise CaptureError(f"jfrconv --{j.event} --from {j.start_ms} --to {j.end_ms} {j.jfr} {p}",
                           "check the JFR is complete (`jfrconv --cpu` on it by hand)")
