"""From a recording to files: copy the JFR out, and convert it per event with jfrconv run by
the container's own JVM (its JRE is guaranteed; the host's is not).

All conversions of a container write into one directory in the container's /tmp, run in
parallel (each is a short JVM start), and come out with one copy. Per event:
``<event>.collapsed`` (alloc/lock weighted by bytes/ns with ``--total``, plus
``<event>.samples.collapsed`` with sample counts), ``<event>.html`` (the flame graph),
``<event>.pb.gz`` (pprof, for `go tool pprof`, Pyroscope, Grafana); for cpu and wall
``<event>.threads.collapsed`` (stacks rooted at thread names); for cpu also
``cpu.heatmap.html`` (time on the x axis: warm-up and steady state are visible).

With a java on the host, every conversion of a recording runs in one host JVM (run_batch:
about 0.7 s for the 17 files of 4 events, where 17 jfrconv processes took 2.3 s).
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
#: async-profiler's annotation of a kernel frame in collapsed stacks
KERNEL_FRAME = "_[k]"
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
        _convert_on_host(host_jfrconv, todo, jfr_local, dest, title, sess.label, errors)
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


def _convert_on_host(jfrconv: Path, todo: list[Conversion], jfr: Path, dest: Path, title: str, label: str,
                     errors: dict) -> None:
    """Every conversion of one recording in one host JVM (see run_batch); what the batch could
    not do (no javac/java source launcher, a JVM that died) one jfrconv process each."""
    outs = [dest / f"{conv.event}.{conv.suffix}" for conv in todo]
    jobs = [jfrconv_args("", conv, str(jfr), str(out), f"{title} {conv.event}")[1:] for conv, out in zip(todo, outs)]
    status = run_batch(jfrconv, jobs, heap=HEATMAP_HEAP)
    rest = []
    for conv, out, st in zip(todo, outs, status):
        if st is not None:  # never run, or failed in the shared JVM (its heap, say): once more on its own
            out.unlink(missing_ok=True)
            rest.append(conv)

    def run_here(conv: Conversion) -> None:
        problem = _run_host(jfrconv, conv, jfr, dest / f"{conv.event}.{conv.suffix}", f"{title} {conv.event}")
        if problem and conv.fmt != "heatmap":
            errors.setdefault(conv.event, f"{problem} ({label})")
    if rest:
        with ThreadPoolExecutor(max_workers=PARALLEL, thread_name_prefix="jfrconv") as pool:
            list(pool.map(run_here, rest))


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


# One JVM runs many conversions: jfrconv's Main converts one input per call and returns (it does
# not exit), so a tiny launcher calls it once per job line and prints a status line per job.
# Own code because jfrconv has no batch mode. Compiled once with the host's javac into a cache
# directory; without javac it runs as a single-file source program (`java Batch.java`, which
# compiles it in memory each time); with neither, the callers run one jfrconv per job.
_BATCH_CLASS = "FlamekitJfrconvBatch"
_BATCH_MARK = "@@flamekit-job"
_BATCH_JAVA = """
import java.nio.file.*;
import java.util.*;
public class %(cls)s {
    public static void main(String[] a) throws Exception {
        List<String> lines = Files.readAllLines(Paths.get(a[0]));
        for (int i = 0; i < lines.size(); i++) {
            if (lines.get(i).isEmpty()) continue;
            String[] args = lines.get(i).split("\\t");
            try {
                one.converter.Main.main(args);
                System.out.println("\\n%(mark)s " + i + " ok");
            } catch (Throwable t) {
                System.out.println("\\n%(mark)s " + i + " failed " + String.valueOf(t).replace('\\n', ' '));
            }
        }
    }
}
""" % {"cls": _BATCH_CLASS, "mark": _BATCH_MARK}

#: A job the batch never reached (it could not start, or its JVM died): run it on its own.
MISSING = object()


def _cache_dir() -> Path:
    import os
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "flamekit"


def batch_command(jar: Path, java: str | None = None) -> list[str] | None:
    """The java command line (before the job file) that runs the batch launcher with ``jar``:
    the compiled class when javac is here, else the source launcher; None without java."""
    import hashlib
    import shutil
    import subprocess
    import tempfile
    java = java or _java()
    if java is None or not Path(jar).is_file():
        return None
    javac = Path(java).with_name("javac") if Path(java).with_name("javac").is_file() else shutil.which("javac")
    try:
        cache = _cache_dir()
    except (OSError, RuntimeError) as exc:  # no home directory
        log.info("no cache directory for the jfrconv batch launcher (%s)", exc)
        return None
    if javac:
        digest = hashlib.sha256((_BATCH_JAVA + "--release 11").encode()).hexdigest()[:12]
        classes = cache / f"jfrconv-batch-{digest}"
        if not (classes / f"{_BATCH_CLASS}.class").is_file():
            try:
                classes.parent.mkdir(parents=True, exist_ok=True)
                with tempfile.TemporaryDirectory(prefix="batch-", dir=classes.parent) as tmp:
                    src = Path(tmp) / f"{_BATCH_CLASS}.java"
                    src.write_text(_BATCH_JAVA, encoding="utf-8")
                    # --release 11: any java that can run the source launcher can load the class
                    subprocess.run([str(javac), "--release", "11", "-cp", str(jar), "-d", str(Path(tmp) / "out"),
                                    str(src)],
                                   capture_output=True, text=True, timeout=120, check=True)
                    Path(tmp, "out").replace(classes)  # atomic: a concurrent compile loses the race harmlessly
            except (OSError, subprocess.SubprocessError) as exc:
                log.info("could not compile the jfrconv batch launcher (%s); using the source launcher", exc)
        if (classes / f"{_BATCH_CLASS}.class").is_file():
            return [java, "-cp", f"{jar}:{classes}", _BATCH_CLASS]
    src = cache / f"{_BATCH_CLASS}.java"
    try:
        src.parent.mkdir(parents=True, exist_ok=True)
        if not src.is_file() or src.read_text(encoding="utf-8") != _BATCH_JAVA:
            from ..util import atomic_write
            atomic_write(src, _BATCH_JAVA)
    except OSError as exc:
        log.info("no place for the jfrconv batch launcher (%s)", exc)
        return None
    return [java, "-cp", str(jar), str(src)]


def batch_status(stdout: str, n: int) -> list:
    """Per job of ``n``, from the launcher's status lines: None (ok), the error, or MISSING."""
    status: list = [MISSING] * n
    for line in stdout.splitlines():
        if line.startswith(_BATCH_MARK + " "):
            parts = line.split(" ", 3)
            if len(parts) >= 3 and parts[1].isdigit() and int(parts[1]) < n:
                status[int(parts[1])] = None if parts[2] == "ok" else (parts[3] if len(parts) > 3 else "failed")
    return status


def run_batch(jfrconv: Path, jobs: list[list[str]], heap: str = "-Xmx512m", timeout: float = 600) -> list:
    """Run every job (jfrconv's arguments, without the program) in one host JVM. Per job: None
    (done), an error message, or :data:`MISSING` (never run: no java or jar, or the JVM died)."""
    import subprocess
    import tempfile
    status: list = [MISSING] * len(jobs)
    if not jobs:
        return status
    jar = Path(jfrconv).resolve().parent.parent / "lib" / "converter.jar"
    cmd = batch_command(jar)
    if cmd is None:
        return status
    with tempfile.TemporaryDirectory(prefix="flamekit-batch-") as tmp:
        jobfile = Path(tmp) / "jobs.txt"
        jobfile.write_text("\n".join("\t".join(j) for j in jobs) + "\n", encoding="utf-8")
        try:
            p = subprocess.run([cmd[0], heap, *cmd[1:], str(jobfile)], capture_output=True, text=True,
                               errors="replace", timeout=timeout)
        except (OSError, subprocess.TimeoutExpired) as exc:
            log.info("jfrconv batch failed (%s)", exc)
            return status
    status = batch_status(p.stdout, len(jobs))
    if any(st is MISSING for st in status):
        log.info("jfrconv batch exited %s before every job ran (%s)", p.returncode, last_line(p.stdout + p.stderr))
    return status


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
    """Run every slice conversion on the host: in one JVM (run_batch), the rest (or all, with a
    ``runner``) one jfrconv per slice, ``parallel`` at a time. A slice without samples of its
    event gets an empty file. CaptureError when jfrconv or java is missing or a job fails."""
    import subprocess
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
    rest = list(jobs)
    if runner is None:
        status = run_batch(jfrconv, [j.args() for j in jobs])
        for job, st in zip(jobs, status):
            if st is None and not job.out.is_file():
                job.out.write_text("")  # a slice without any sample of this event
        rest = [j for j, st in zip(jobs, status) if st is not None]
    if rest:
        _run_one_by_one(jfrconv, rest, parallel, runner or subprocess.run)


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
