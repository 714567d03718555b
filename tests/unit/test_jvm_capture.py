"""PID discovery, PerfData decoding, flag checks and asprof command building: no Docker."""
from __future__ import annotations

import struct
from pathlib import Path

import pytest

from flamekit import runs
from flamekit.capture import convert
from flamekit.capture import session as capture

from flamekit.capture import jvm
from flamekit.errors import CaptureError, ReportError

PS = "1\tsh\tsh -c java -Xmx256m -jar app.jar\n7\tjava\tjava -Xmx256m -jar app.jar\n42\tbash\tbash\n"


def test_java_is_found_by_name_not_the_sh_wrapper():
    procs = jvm.parse_proc_list(PS)
    assert [p.pid for p in procs] == [1, 7, 42]
    assert jvm.choose_pid("order-service", procs).pid == 7


def test_no_jvm_names_the_service():
    with pytest.raises(CaptureError, match="no JVM .* runs in db"):
        jvm.choose_pid("db", jvm.parse_proc_list("1\tpostgres\tpostgres\n"))


def test_several_jvms_are_listed_unless_pid_given():
    procs = jvm.parse_proc_list(PS + "9\tjava\tjava -cp x Other\n")
    with pytest.raises(CaptureError) as e:
        jvm.choose_pid("svc", procs)
    assert "7:" in str(e.value) and "9:" in str(e.value) and "--pid" in str(e.value)
    assert jvm.choose_pid("svc", procs, pid=9).pid == 9
    with pytest.raises(CaptureError, match="PID 1 is not a JVM"):
        jvm.choose_pid("svc", procs, pid=1)


def perfdata(entries: dict, little=True) -> bytes:
    """Build a PerfData v2 file the way HotSpot lays it out."""
    o = "<" if little else ">"
    body = b""
    for name, value in entries.items():
        nm = name.encode() + b"\0"
        if isinstance(value, int):
            dtype, vec, data = ord("J"), 0, struct.pack(o + "q", value)
        else:
            raw = value.encode() + b"\0"
            dtype, vec, data = ord("B"), len(raw), raw
        name_off = 20
        data_off = (name_off + len(nm) + 7) // 8 * 8
        entry_len = (data_off + len(data) + 7) // 8 * 8
        e = struct.pack(o + "IIIBBBBI", entry_len, name_off, vec, dtype, 0, 0, 0, data_off)
        e += nm + b"\0" * (data_off - 20 - len(nm)) + data
        e += b"\0" * (entry_len - len(e))
        body += e
    header = struct.pack(">I", jvm.PERFDATA_MAGIC) + bytes([1 if little else 0, 2, 0, 1])
    header += struct.pack(o + "IIqII", 32 + len(body), 0, 0, 32, len(entries))
    return header + body


@pytest.mark.parametrize("little", [True, False])
def test_perfdata_roundtrip(little):
    data = perfdata({"java.rt.vmArgs": "-Xmx1g -XX:+DebugNonSafepoints", "sun.os.hrt.frequency": 1000000000,
                     "java.property.java.version": "17.0.15"}, little)
    out = jvm.parse_perfdata(data)
    assert out["java.rt.vmArgs"] == "-Xmx1g -XX:+DebugNonSafepoints"
    assert out["sun.os.hrt.frequency"] == 1000000000
    assert out["java.property.java.version"] == "17.0.15"


def test_perfdata_rejects_garbage():
    with pytest.raises(ValueError):
        jvm.parse_perfdata(b"\0" * 64)


def test_missing_flags_last_occurrence_wins():
    want = ["-XX:+PreserveFramePointer", "-XX:+DebugNonSafepoints", "-XX:MaxInlineLevel=20"]
    args = ["-XX:+PreserveFramePointer", "-XX:+DebugNonSafepoints", "-XX:-DebugNonSafepoints"]
    assert jvm.missing_flags(args, want) == ("-XX:+DebugNonSafepoints", "-XX:MaxInlineLevel=20")
    assert jvm.missing_flags(args + ["-XX:+DebugNonSafepoints", "-XX:MaxInlineLevel=20"], want) == ()


def test_info_from_environ_fallback():
    env = "PATH=/bin\0JAVA_TOOL_OPTIONS=-XX:+PreserveFramePointer\0"
    info = jvm.jvm_info_from_environ(7, "java -XX:-UsePerfData -jar a.jar", env, ["-XX:+PreserveFramePointer"])
    assert info.flags_missing == () and info.source == "environ"


def test_asprof_single_event_command():
    args = capture.asprof_start_args("/opt/ap/bin/asprof", ["alloc"], 7, "/tmp/x.jfr", 90)
    assert args == ["/opt/ap/bin/asprof", "start", "-e", "alloc", "--timeout", "90", "-o", "jfr",
                    "-f", "/tmp/x.jfr", "7"]


def test_wall_alone_samples_every_20_ms_as_beside_other_events():
    # alone, asprof's default wall interval (50 ms) applied while the report counted 20 ms a sample:
    # bench/accuracy.py found request time per call at 0.45x the demo's own measurement
    args = capture.asprof_start_args("asprof", ["wall"], 7, "/tmp/x.jfr", 40)
    assert args[2:6] == ["-e", "wall", "-i", "20ms"]
    assert capture.asprof_start_args("asprof", ["wall"], 7, "/tmp/x.jfr", 40, "10ms")[4:6] == ["-i", "10ms"]
    from flamekit.workflow.profile import _interval
    assert _interval("", "wall", ["wall"]) == "20ms" and _interval("10ms", "wall", ["wall"]) == "10ms"
    assert _interval("5ms", "wall", ["cpu", "wall"]) == "20ms" and _interval("", "cpu", ["cpu"]) is None


def test_the_cost_of_a_wall_sample_is_the_captures_own_interval():
    from types import SimpleNamespace
    from flamekit.analysis.costs import unit_ms
    cap = lambda interval: SimpleNamespace(event="wall", interval=interval, meta={})  # noqa: E731
    assert unit_ms(cap("50ms"), {}) == 50.0 and unit_ms(cap("20ms"), {}) == 20.0
    assert unit_ms(cap(None), {}) == 20.0  # runs from before the interval was recorded


def test_asprof_all_events_in_one_session():
    args = capture.asprof_start_args("asprof", ["cpu", "alloc", "wall", "lock"], 7, "/tmp/x.jfr", 40, "5ms")
    assert args[:4] == ["asprof", "start", "-e", "cpu"]
    assert "--alloc" in args and "--wall" in args and "--lock" in args
    assert args[args.index("-i") + 1] == "5ms"
    assert args[-1] == "7" and "--timeout" in args


def test_the_cpu_engine_setting_names_what_minus_e_asks_for():
    alone = capture.asprof_start_args("asprof", ["cpu"], 7, "/tmp/x.jfr", 40, cpu_engine="cpu-clock")
    assert alone[2:4] == ["-e", "cpu-clock"]
    several = capture.asprof_start_args("asprof", ["cpu", "alloc"], 7, "/tmp/x.jfr", 40, "5ms", "ctimer")
    assert several[2:6] == ["-e", "ctimer", "-i", "5ms"] and "--alloc" in several
    # other events are not touched by it
    assert capture.asprof_start_args("asprof", ["alloc"], 7, "/tmp/x.jfr", 40, cpu_engine="itimer")[2:4] == \
        ["-e", "alloc"]


@pytest.mark.parametrize("setting, paranoid, engine", [
    ("auto", 2, "itimer"), ("auto", 3, "itimer"), ("auto", None, "itimer"),
    ("auto", 1, "cpu"), ("auto", -1, "cpu"),
    ("ctimer", 1, "ctimer"), ("cpu-clock", 2, "cpu-clock"), ("cpu", 4, "cpu"),
])
def test_auto_takes_perf_events_only_with_kernel_stacks_else_itimer(setting, paranoid, engine):
    got, why = capture.resolve_cpu_engine(setting, paranoid)
    assert got == engine
    assert ("perf_event_paranoid" in why) == (setting == "auto")


@pytest.mark.parametrize("paranoid, engine", [("2", "itimer"), ("1", "cpu"), (None, "itimer"), ("x", "itimer")])
def test_profilers_resolve_auto_per_container_from_its_perf_event_paranoid(paranoid, engine):
    from tests.unit.fakes import FakeTarget
    t = FakeTarget()
    t.paranoid = paranoid
    profs = capture.Profilers(t, "/opt/async-profiler", "s1", [], cpu_engine="auto")
    r = t.replicas("order-service")[0]
    sess = profs.prepare(r, ("cpu", "alloc"))
    assert sess.cpu_engine == engine and "perf_event_paranoid" in sess.cpu_engine_why
    profs.start(sess, 5)
    args = t.start_args[r.label]
    assert args[args.index("-e") + 1] == engine
    profs.stop(sess)
    # an engine named in the settings is used as it is, without asking the kernel
    t2 = FakeTarget()
    t2.paranoid = None
    sess2 = capture.Profilers(t2, "/opt/async-profiler", "s2", [], cpu_engine="ctimer").prepare(
        t2.replicas("order-service")[0], ("cpu",))
    assert (sess2.cpu_engine, sess2.cpu_engine_why) == ("ctimer", "set by cpu_engine")
    # a session without cpu does not ask either
    assert capture.Profilers(t, "/opt/async-profiler", "s3", [], cpu_engine="auto").prepare(
        r, ("alloc",)).cpu_engine_why == ""


def test_asprof_without_cpu_picks_a_chosen_event():
    args = capture.asprof_start_args("asprof", ["alloc", "lock"], 7, "/tmp/x.jfr", 40)
    assert args[args.index("-e") + 1] == "alloc"


def test_parse_events():
    assert capture.parse_events("all") == ("cpu", "alloc", "wall", "lock")
    assert capture.parse_events("cpu, lock,cpu") == ("cpu", "lock")
    with pytest.raises(CaptureError, match="unknown event 'heap'"):
        capture.parse_events("cpu,heap")


def test_detect_engine_from_jfr_setting():
    blob = b"\x00\x03\x06engine\x03\x06ctimer\x03\x07version\x03\x034.3"
    assert convert.detect_engine(blob) == "ctimer"
    assert convert.detect_engine(b"...engine...perf_events") == "perf_events"
    assert convert.detect_engine(b"nothing", "[WARN] falling back to itimer") == "itimer"
    assert convert.detect_engine(b"nothing") == "unknown"


def test_run_dirs_never_collide(tmp_path):
    a, na = runs.make_run_dir(tmp_path, "20261127-080000")
    b, nb = runs.make_run_dir(tmp_path, "20261127-080000")
    assert a != b and na == "20261127-080000" and nb == "20261127-080000-2"


def test_exclusive_copy_never_overwrites_and_says_so_in_one_line(tmp_path):
    """g: an existing destination is a clear error, not a FileExistsError traceback."""
    src = tmp_path / "a.html"
    src.write_text("x")
    dest = tmp_path / "out" / "b.html"
    runs.exclusive_copy(src, dest)
    with pytest.raises(ReportError, match="already exists"):
        runs.exclusive_copy(src, dest)
    assert dest.read_text() == "x"


def test_jfrconv_weighs_alloc_and_lock_but_counts_samples_too():
    cpu = convert.conversions("cpu")
    assert [c.suffix for c in cpu] == ["collapsed", "html", "pb.gz", "threads.collapsed"]
    alloc = convert.conversions("alloc")
    assert convert.Conversion("alloc", "samples.collapsed", False) in alloc
    assert convert.Conversion("lock", "html", True) in convert.conversions("lock")
    args = convert.jfrconv_args("jfrconv", convert.Conversion("alloc", "html", True), "/tmp/x.jfr", "/tmp/a.html",
                                "svc alloc")
    assert args == ["jfrconv", "--alloc", "--total", "--inverted", "--title", "svc alloc", "/tmp/x.jfr", "/tmp/a.html"]
    pprof = convert.jfrconv_args("jfrconv", convert.Conversion("cpu", "pb.gz", False, "pprof"), "x.jfr", "x.pb.gz")
    assert pprof == ["jfrconv", "--cpu", "-o", "pprof", "x.jfr", "x.pb.gz"]

DUMP_A = '''2026-12-02 09:40:00
Full thread dump OpenJDK 64-Bit Server VM (17.0.15+6-Debian-1deb12u1 mixed mode, sharing):

"main" #1 prio=5 os_prio=0 cpu=812.50ms elapsed=300.10s allocated=41M defined_classes=2100 tid=0x1 nid=0x7 waiting on condition
"http-nio-8080-exec-1" #25 daemon prio=5 os_prio=0 cpu=9.2s elapsed=290.00s allocated=29227K defined_classes=3 tid=0x2 nid=0x20 runnable
"worker \\"quoted\\" #9" #26 daemon prio=5 os_prio=0 cpu=1ms elapsed=20s allocated=512B defined_classes=0 tid=0x3 nid=0x21 waiting
"VM Thread" os_prio=0 cpu=40.10ms elapsed=300.12s tid=0x4 nid=0x9 runnable
"C2 CompilerThread0" #7 daemon prio=9 os_prio=0 cpu=20.5s elapsed=300.00s allocated=3G defined_classes=0 tid=0x5 nid=0xa waiting
'''


def test_a_thread_dump_gives_each_java_threads_allocated_bytes_in_exact_units():
    got = capture.thread_allocations(DUMP_A)
    assert got == {1: 41 << 20, 25: 29227 << 10, 26: 512, 7: 3 << 30}  # "VM Thread" is no Java thread
    assert capture.thread_allocations("Thread.print: unknown option -e") == {}


def test_allocated_between_two_dumps_counts_new_threads_and_names_ended_ones():
    start = {1: 1000, 25: 5000, 26: 700}
    stop = {1: 1500, 25: 9000, 30: 250}       # 26 ended in the window, 30 started in it
    assert capture.allocated_between(start, stop) == (500 + 4000 + 250, 1)
    # a counter that went backwards (a reused id would be a JVM bug) is not counted negative
    assert capture.allocated_between({1: 10}, {1: 5}) == (0, 0)


def test_a_normal_stop_reads_the_allocation_counters_an_interrupts_cleanup_does_not():
    from tests.unit.fakes import FakeTarget
    t = FakeTarget()
    profs = capture.Profilers(t, "/opt/async-profiler", "s1", [], cpu_engine="auto")
    r = t.replicas("order-service")[0]
    sess = profs.prepare(r, ("cpu", "alloc"))
    profs.start(sess, 5)
    assert sess.alloc_threads_start == {20: 1 << 20, 21: 2 << 20}
    profs.stop(sess, count_allocations=True)
    # two threads, 1 MiB and 2 MiB a dump further on
    assert sess.jvm_allocated == (3 << 20, 0)
    cut = profs.prepare(r, ("alloc",))
    profs.sessions.append(cut)
    profs.start(cut, 5)
    assert profs.stop_all() == [] and cut.state == "stopped"
    assert cut.alloc_threads_stop is None and cut.jvm_allocated is None
    cpu_only = profs.prepare(r, ("cpu",))
    profs.start(cpu_only, 5)
    profs.stop(cpu_only, count_allocations=True)
    assert cpu_only.alloc_threads_start is None and cpu_only.jvm_allocated is None
