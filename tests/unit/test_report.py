"""flamekit.report: hotspot arithmetic, uncertainty, validity, report, index, compare, diff."""
from __future__ import annotations

import copy
import importlib.util
import json
import math
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import pytest

from flamekit.analysis import report as r
from flamekit.errors import ReportError

ROOT = Path(__file__).resolve().parents[2]

STAMP_A = "20261127-081500"
STAMP_B = "20261128-091500"

CLEAN_MANIFEST = {
    "flamekit_version": "0.1.0", "stamp": STAMP_A, "started": "2026-11-27T08:15:00Z",
    "finished": "2026-11-27T08:16:30Z", "status": "ok", "error": None,
    "settings": {"duration": 60, "warmup": 15, "tps": 25, "interval": "10ms", "events": ["cpu"],
                 "services": ["order-service"], "privileges": "seed",
                 "jvm_flags": ["-XX:+PreserveFramePointer", "-XX:+UnlockDiagnosticVMOptions",
                               "-XX:+DebugNonSafepoints"]},
    "environment": {"engine": "dockerd 20.10.24", "host": "box", "cpus": 2,
                    "async_profiler": "4.3", "k6": "v1.1.0"},
    "load": {"target_tps": 25, "achieved_tps": 24.9, "p50_ms": 12.1, "p95_ms": 40.2, "p99_ms": 60.0,
             "error_rate": 0.0, "dropped_iterations": 0, "iterations": 1500, "duration_s": 60,
             "http_reqs": 4500},
    "captures": [{"service": "order-service", "event": "cpu", "engine": "perf_events", "interval": "10ms",
                  "samples": 1000, "collapsed": "order-service/cpu.collapsed",
                  "html": "order-service/cpu.html",
                  "flamegraph": f"docs/perf/flamegraphs/order-service-cpu-{STAMP_A}.html",
                  "jfr": "order-service/profile.jfr",
                  "jvm": {"pid": 7, "version": "17.0.15", "flags_expected": ["-XX:+DebugNonSafepoints"],
                          "flags_missing": []},
                  "image_id": "sha256:abc", "error": None}],
}

THREAD = "[order-worker-1 tid=12];java/lang/Thread.run_[j];demo/order/OrderController.create_[j]"


def cpu_collapsed(price: int, put: int, futex: int) -> str:
    return (f"{THREAD};demo/order/PricingEngine.priceOrder_[j] {price}\n"
            f"{THREAD};demo/order/Repo.save_[i];java/util/HashMap.put_[j] {put}\n"
            f"{THREAD};demo/order/Repo.save_[i];__x64_sys_futex_[k] {futex}\n")


def make_run(repo: Path, stamp: str, manifest: dict | None = None, collapsed: str | None = None,
             seed_copy: bool = True) -> Path:
    """A run directory as the capture code lays it out, inside a fake repository."""
    m = copy.deepcopy(manifest if manifest is not None else CLEAN_MANIFEST)
    m["stamp"] = stamp
    for cap in m.get("captures") or []:
        if cap.get("flamegraph"):
            cap["flamegraph"] = f"docs/perf/flamegraphs/{cap['service']}-{cap['event']}-{stamp}.html"
    run = repo / "docs" / "perf" / "runs" / stamp
    (run / "order-service").mkdir(parents=True)
    (run / "order-service" / "cpu.collapsed").write_text(collapsed or cpu_collapsed(632, 248, 120))
    (run / "order-service" / "cpu.html").write_text("<html><body>flame</body></html>")
    if seed_copy:
        fg = repo / "docs" / "perf" / "flamegraphs"
        fg.mkdir(parents=True, exist_ok=True)
        (fg / f"order-service-cpu-{stamp}.html").write_text("<html><body>flame</body></html>")
    (run / "manifest.json").write_text(json.dumps(m))
    return run


# ----------------------------------------------------------------------------- frames & parsing


@pytest.mark.parametrize("raw, clean", [
    ("demo/order/PricingEngine.priceOrder_[j]", "demo.order.PricingEngine.priceOrder"),
    ("demo/order/PricingEngine.priceOrder_[i]", "demo.order.PricingEngine.priceOrder"),
    ("demo/order/PricingEngine.priceOrder_[0]", "demo.order.PricingEngine.priceOrder"),
    ("demo/order/PricingEngine.priceOrder_[1]", "demo.order.PricingEngine.priceOrder"),
    ("__x64_sys_futex_[k]", "__x64_sys_futex"),
    ("java.lang.String_[i]", "java.lang.String"),
    ("byte[]", "byte[]"),
    ("byte[]_[k]", "byte[]"),
    ("java/lang/String[]_[k]", "java.lang.String[]"),
    ("demo/order/Svc$$Lambda$45/0x0000000800c0b000.apply_[j]", "demo.order.Svc$$Lambda$45.apply"),
    # jfrconv writes the hidden-class address as a `.0x...` segment: keep the method name
    ("demo/order/HttpIo$$Lambda$76.0x00007fe4ed085a70.handle_[j]", "demo.order.HttpIo$$Lambda$76.handle"),
    ("java/lang/invoke/LambdaForm$MH.0x00007fe4ed08e000.invoke_[j]", "java.lang.invoke.LambdaForm$MH.invoke"),
    ("demo/order/Svc$$Lambda$45/0x0000000800c0b000", "demo.order.Svc$$Lambda$45"),
    ("demo/order/Svc$$Lambda$45.0x0000000800c0b000", "demo.order.Svc$$Lambda$45"),
    ("[order-worker-3 tid=123]", "[order-worker-3 tid=123]"),
    ("/usr/lib/x86_64-linux-gnu/libc.so.6", "/usr/lib/x86_64-linux-gnu/libc.so.6"),
    ("JavaThread::thread_main_inner", "JavaThread::thread_main_inner"),
    ("[unknown]", "[unknown]"),
])
def test_clean_frame(raw, clean):
    assert r.clean_frame(raw) == clean


def test_parse_collapsed_text_merges_cleaned_stacks_and_skips_junk(caplog):
    text = ("a/B.c_[j];d/E.f_[j] 3\n"
            "\n"
            "a/B.c_[i];d/E.f_[0] 2\n"
            "no count here\n"
            "a/B.c 5\n")
    prof = r.parse_collapsed(text)
    assert prof.total == 10
    assert prof.stacks == {("a.B.c", "d.E.f"): 5, ("a.B.c",): 5}
    assert "malformed" in caplog.text


def test_parse_collapsed_reads_paths_and_keeps_spaces_in_thread_frames(tmp_path):
    f = tmp_path / "cpu.collapsed"
    f.write_text("[order-worker-3 tid=123];x/Y.z 7\n")
    for arg in (f, str(f)):
        prof = r.parse_collapsed(arg)
        assert prof.stacks == {("[order-worker-3 tid=123]", "x.Y.z"): 7}
        assert prof.source == str(f)


def test_parse_collapsed_missing_file_is_report_error(tmp_path):
    with pytest.raises(ReportError) as exc:
        r.parse_collapsed(tmp_path / "nope.collapsed")
    assert "nope.collapsed" in str(exc.value)


# ----------------------------------------------------------------------------- hotspots


def by_name(items):
    return {h.name: h for h in items}


def test_cpu_self_is_leaf_total_is_anywhere_on_stack():
    prof = r.parse_collapsed("a;b;c 5\na;b 3\na;d;c 2\n")
    hs = by_name(r.hotspots(prof, "cpu", top=None, by="total"))
    assert {n: (h.self_samples, h.total_samples) for n, h in hs.items()} == {
        "a": (0, 10), "b": (3, 8), "c": (7, 7), "d": (0, 2)}
    assert hs["c"].self_share == pytest.approx(0.7)
    assert hs["b"].total_share == pytest.approx(0.8)
    assert hs["a"].total_share == pytest.approx(1.0)
    # ranked by self: zero-self methods are left out, order by self samples
    assert [h.name for h in r.hotspots(prof, "cpu")] == ["c", "b"]
    assert [h.name for h in r.hotspots(prof, "cpu", top=2, by="total")] == ["a", "b"]


def test_recursion_counted_once_per_stack():
    prof = r.parse_collapsed("a;b;a;b;a 4\na;b 1\n")
    hs = by_name(r.hotspots(prof, "cpu", top=None, by="total"))
    assert hs["a"].total_samples == 5 and hs["a"].total_share == pytest.approx(1.0)
    assert hs["b"].total_samples == 5
    assert hs["a"].self_samples == 4 and hs["b"].self_samples == 1
    assert all(h.total_share <= 1.0 for h in hs.values())


def test_suffixes_and_slashes_merge_into_one_method():
    prof = r.parse_collapsed("demo/order/X.y_[j] 2\ndemo.order.X.y_[i] 3\nt;demo/order/X.y_[0] 5\n")
    hs = r.hotspots(prof, "wall")
    assert hs[0].name == "demo.order.X.y"
    assert hs[0].self_samples == 10 and hs[0].self_share == pytest.approx(1.0)


def test_thread_frames_are_not_methods():
    prof = r.parse_collapsed("[w-1 tid=3];a;b 2\n[w-2 tid=4];a 1\n")
    names = {h.name for h in r.hotspots(prof, "cpu", top=None, by="total")}
    assert names == {"a", "b"}
    assert r.share_of(prof, "a", "cpu") == pytest.approx((1 / 3, 1.0))


def test_alloc_self_is_the_site_and_classes_are_listed_apart():
    prof = r.parse_collapsed(
        "java/lang/Thread.run;demo/Repo.save;byte[]_[k] 6\n"
        "java/lang/Thread.run;demo/Json.write;java/lang/String_[i] 3\n"
        "java/lang/Thread.run;demo/Repo.save;java.lang.String_[i] 1\n")
    sites = r.hotspots(prof, "alloc", top=None)
    assert [(h.name, h.self_samples) for h in sites] == [("demo.Repo.save", 7), ("demo.Json.write", 3)]
    totals = by_name(r.hotspots(prof, "alloc", top=None, by="total"))
    assert "byte[]" not in totals and "java.lang.String" not in totals
    assert totals["java.lang.Thread.run"].total_samples == 10
    classes = r.allocated_classes(prof, "alloc")
    assert [(h.name, h.self_samples, h.self_share) for h in classes] == [
        ("byte[]", 6, pytest.approx(0.6)), ("java.lang.String", 4, pytest.approx(0.4))]
    assert r.share_of(prof, "demo/Repo.save", "alloc") == pytest.approx((0.7, 0.7))
    assert r.share_of(prof, "byte[]", "alloc") == (0.0, 0.0)
    # the same stacks read as cpu would wrongly make the class the hotspot
    assert r.hotspots(prof, "cpu")[0].name == "byte[]"


def test_lock_self_is_the_contending_method():
    prof = r.parse_collapsed(
        "[w tid=1];java/lang/Thread.run;demo/Queue.take_[j];java.lang.Object 4\n"
        "[w tid=2];java/lang/Thread.run;demo/Queue.put_[j];java.util.concurrent.locks.ReentrantLock$NonfairSync 1\n")
    top = r.hotspots(prof, "lock")
    assert [(h.name, h.self_share) for h in top] == [
        ("demo.Queue.take", pytest.approx(0.8)), ("demo.Queue.put", pytest.approx(0.2))]
    assert r.allocated_classes(prof, "lock")[0].name == "java.lang.Object"


def test_alloc_stack_of_only_a_class_has_unknown_site():
    prof = r.parse_collapsed("byte[]_[k] 2\n")
    assert [(h.name, h.self_samples, h.total_samples) for h in r.hotspots(prof, "alloc")] == [
        ("[unknown]", 2, 2)]


def test_share_of_absent_method_and_empty_profile():
    prof = r.parse_collapsed("a;b 1\n")
    assert r.share_of(prof, "zzz", "cpu") == (0.0, 0.0)
    assert r.share_of(r.parse_collapsed(""), "a", "cpu") == (0.0, 0.0)
    with pytest.raises(ValueError):
        r.hotspots(prof, "cpu", by="width")


# ----------------------------------------------------------------------------- application frames


@pytest.mark.parametrize("frame, app", [
    ("demo/order/OrderJson.write_[j]", True),
    ("demo.order.OrderJson.<init>", True),
    ("demo.order.Main.lambda$main$0", True),           # a lambda's body is application code
    ("Main.main", True),                                # default package
    ("demo.Weather.cold", True),                        # a Java method that happens to be "cold"
    ("java/lang/Thread.run_[j]", False),
    ("javax.net.ssl.SSLSocket.read", False),
    ("jdk/internal/misc/Unsafe.allocateUninitializedArray_[j]", False),
    ("sun.nio.ch.EPollSelectorImpl.clearInterrupt", False),
    ("com/sun/net/httpserver/Filter$Chain.doFilter_[j]", False),
    ("org.w3c.dom.Node.getNodeName", False),
    ("org.xml.sax.XMLReader.parse", False),
    ("org.ietf.jgss.GSSContext.initSecContext", False),
    ("demo/order/HttpIo$$Lambda$76.0x00007fe4ed085a70.handle_[j]", False),  # hidden-class lambda
    ("demo.order.Main$$Lambda$73.handle", False),
    ("pthread_cond_wait", False),
    ("Unsafe_Park", False),
    ("JVM_MonitorWait", False),
    ("Parker::park", False),
    ("/usr/lib/x86_64-linux-gnu/libc.so.6", False),
    ("[unknown]", False),
    ("[order-worker-1 tid=12]", False),
    ("itable stub", False),
    ("finish_task_switch.isra.0_[k]", False),
    ("tcp_v4_rcv.cold_[k]", False),
])
def test_is_app_frame(frame, app):
    assert r.is_app_frame(frame) is app


def test_app_frame_is_the_deepest_non_jdk_java_frame_skipping_lambdas_and_native():
    prof = r.parse_collapsed(
        # app method -> JDK -> native: the app frame is demo.Svc.work, not the leaf
        "java/lang/Thread.run;demo/Svc.handle;demo/Svc.work;java/util/HashMap.put;Unsafe_Park;"
        "pthread_cond_wait;/usr/lib/libc.so.6 5\n"
        # a hidden-class lambda frame below the app method is skipped, look further up
        "java/lang/Thread.run;demo/Svc.handle;demo/Svc$$Lambda$12.0x00007fe4ed085a70.run_[j];"
        "java/lang/String.format 3\n"
        # the leaf itself is an app frame
        "java/lang/Thread.run;demo/Svc.handle;demo/Svc.work 1\n"
        # no app frame at all: idle pool thread
        "java/lang/Thread.run;java/util/concurrent/LinkedBlockingQueue.take;pthread_cond_wait 11\n")
    assert prof.total == 20
    apps = r.app_hotspots(prof, "cpu", top=None)
    assert [(h.name, h.self_samples, h.total_samples) for h in apps] == [
        ("demo.Svc.work", 6, 6), ("demo.Svc.handle", 3, 9)]
    work = apps[0]
    assert work.self_share == pytest.approx(6 / 20) and work.total_share == pytest.approx(6 / 20)
    assert apps[1].total_share == pytest.approx(9 / 20)  # shares of ALL samples
    assert work.samples == 20
    assert r.top_app_frame(prof, "cpu") == "demo.Svc.work"
    assert r.app_coverage(prof, "cpu") == pytest.approx(9 / 20)
    assert r.app_hotspots(prof, "cpu", top=1) == apps[:1]
    # the raw leaf view still sees the native frames
    assert r.hotspots(prof, "cpu")[0].name == "pthread_cond_wait"


def test_app_frames_of_alloc_and_lock_never_are_the_leaf_object():
    alloc = r.parse_collapsed(
        "java/lang/Thread.run;demo/order/Repo.save;java/util/Arrays.copyOf;demo.order.Order_[i] 4\n"
        "java/lang/Thread.run;java/util/TimerThread.run;byte[]_[k] 1\n")
    assert [(h.name, h.self_samples) for h in r.app_hotspots(alloc, "alloc")] == [("demo.order.Repo.save", 4)]
    # read as cpu, the allocated class would wrongly be the deepest app frame
    assert r.top_app_frame(alloc, "cpu") == "demo.order.Order"
    lock = r.parse_collapsed("[w tid=1];demo/Queue.take_[j];java/util/concurrent/locks/LockSupport.park;demo.Lock 2\n")
    assert r.top_app_frame(lock, "lock") == "demo.Queue.take"
    assert r.top_app_frame(r.parse_collapsed("java/lang/Thread.run;byte[] 3\n"), "alloc") is None
    assert r.app_hotspots(r.parse_collapsed(""), "cpu") == []


def test_app_packages_override_the_jdk_rule():
    prof = r.parse_collapsed(
        "java/lang/Thread.run;demo/order/Api.call;demo/lib/Util.copy;java/util/HashMap.put 6\n"
        "java/lang/Thread.run;demonstration/Other.x 2\n"
        "java/lang/Thread.run;demo/order/Api$Inner.go;demo/order/Api$$Lambda$9.run 2\n")
    assert r.top_app_frame(prof, "cpu") == "demo.lib.Util.copy"
    names = lambda pk: [(h.name, h.self_samples) for h in r.app_hotspots(prof, "cpu", None, pk)]  # noqa: E731
    assert names(["demo.order"]) == [("demo.order.Api.call", 6), ("demo.order.Api$Inner.go", 2)]
    assert names(["demo/order/"]) == names(["demo.order"])            # slashes and a trailing dot
    assert names("demo.order, demonstration") == [("demo.order.Api.call", 6), ("demo.order.Api$Inner.go", 2),
                                                  ("demonstration.Other.x", 2)]
    assert ("demonstration.Other.x", 2) not in names(["demo"])       # a package boundary, not a substring
    # naming a JDK package makes its frames application frames; lambdas stay skipped
    assert names(["java.util"]) == [("java.util.HashMap.put", 6)]
    assert r.is_app_frame("java/util/HashMap.put", ["java.util"])
    assert not r.is_app_frame("demo/order/Api$$Lambda$9.run", ["demo"])
    assert names([]) == names(None)                                   # empty: the default rule
    assert r.app_package_prefixes(["demo/order", " ", "demo.order"]) == ("demo.order",)


def test_lambda_addresses_do_not_split_a_method_across_runs():
    a = r.parse_collapsed("demo/A$$Lambda$7.0x00007fe4ed085a70.run_[j];demo/A.work 3\n")
    b = r.parse_collapsed("demo/A$$Lambda$7.0x00007f4e19001c50.run_[j];demo/A.work 3\n")
    assert a.stacks == b.stacks == {("demo.A$$Lambda$7.run", "demo.A.work"): 3}


# Copied from docs/perf/runs/20261127-073750/order-service/alloc.collapsed (trimmed to 4 lines).
_HTTP = ("java/lang/Thread.run_[j];java/util/concurrent/ThreadPoolExecutor$Worker.run_[j];"
         "java/util/concurrent/ThreadPoolExecutor.runWorker_[j];sun/net/httpserver/ServerImpl$Exchange.run_[j];"
         "com/sun/net/httpserver/Filter$Chain.doFilter_[j];sun/net/httpserver/ServerImpl$Exchange$LinkHandler.handle_[j];"
         "com/sun/net/httpserver/Filter$Chain.doFilter_[j];sun/net/httpserver/AuthFilter.doFilter_[j];"
         "com/sun/net/httpserver/Filter$Chain.doFilter_[j];demo/order/HttpIo$$Lambda$76.0x00007fe4ed085a70.handle_[j];"
         "demo/order/HttpIo.lambda$start$1_[j];demo/order/HttpIo.dispatch_[j];"
         "demo/order/Main$$Lambda$73.0x00007fe4ed085620.handle_[j];demo/order/Main.lambda$main$0_[j];"
         "demo/order/Main.route_[j]")
REAL_ALLOC = (
    f"{_HTTP};demo/order/OrderJson.write_[j];java/lang/invoke/Invokers$Holder.linkToTargetMethod_[j];"
    "java/lang/invoke/LambdaForm$MH.0x00007fe4ed08e000.invoke_[j];java/lang/invoke/DirectMethodHandle$Holder.invokeStatic_[j];"
    "java/lang/StringConcatHelper.newArray_[j];jdk/internal/misc/Unsafe.allocateUninitializedArray_[j];byte[]_[i] 91\n"
    f"{_HTTP};demo/order/OrderJson.write_[j];java/lang/String.getBytes_[j];java/lang/String.encode_[j];"
    "java/lang/String.encodeUTF8_[j];java/util/Arrays.copyOf_[j];byte[]_[i] 8\n"
    f"{_HTTP};demo/order/OrderJson.write_[j];demo/order/Json.quote_[j];java/lang/StringBuilder.toString_[j];"
    "java/lang/StringLatin1.newString_[j];java/util/Arrays.copyOfRange_[j];byte[]_[i] 5\n"
    "jdk/internal/net/http/HttpClientImpl$SelectorManager.run_[j];sun/nio/ch/SelectorImpl.select_[j];"
    "sun/nio/ch/SelectorImpl.lockAndDoSelect_[j];java.lang.Object[]_[i] 6\n")
# Copied from docs/perf/runs/20261127-073841/payment-service/wall.collapsed.
REAL_WALL = (
    "java/lang/Thread.run_[0];java/util/concurrent/ThreadPoolExecutor$Worker.run_[0];"
    "java/util/concurrent/ThreadPoolExecutor.runWorker_[0];java/util/concurrent/ThreadPoolExecutor.getTask_[1];"
    "java/util/concurrent/LinkedBlockingQueue.take_[1];java/util/concurrent/locks/AbstractQueuedSynchronizer$ConditionObject.await_[1];"
    "java/util/concurrent/ForkJoinPool.managedBlock_[1];java/util/concurrent/ForkJoinPool.unmanagedBlock_[i];"
    "java/util/concurrent/locks/AbstractQueuedSynchronizer$ConditionNode.block_[i];java/util/concurrent/locks/LockSupport.park_[i];"
    "jdk/internal/misc/Unsafe.park_[j];Unsafe_Park;Parker::park;pthread_cond_wait;/usr/lib/x86_64-linux-gnu/libc.so.6 6420\n"
    "/usr/lib/x86_64-linux-gnu/libc.so.6;/usr/lib/x86_64-linux-gnu/libc.so.6;thread_native_entry;Thread::call_run;"
    "JavaThread::thread_main_inner;CompileBroker::compiler_thread_loop;CompileQueue::get;Monitor::wait;"
    "os::PlatformMonitor::wait;pthread_cond_timedwait;/usr/lib/x86_64-linux-gnu/libc.so.6 412\n"
    "java/lang/Thread.run_[0];java/util/concurrent/ThreadPoolExecutor$Worker.run_[0];"
    "java/util/concurrent/ThreadPoolExecutor.runWorker_[0];sun/net/httpserver/ServerImpl$Exchange.run_[1];"
    "com/sun/net/httpserver/Filter$Chain.doFilter_[1];demo/payment/HttpIo$$Lambda$7.0x00007fb4ed001c50.handle_[1];"
    "demo/payment/HttpIo.lambda$start$1_[i];demo/payment/HttpIo.dispatch_[1];"
    "demo/payment/Main$$Lambda$1.0x00007fb4ed001800.handle_[i];demo/payment/Main.lambda$main$0_[i];"
    "demo/payment/Main.route_[1];demo/payment/CardAuthorizer.authorize_[1];java/lang/Thread.sleep_[1];"
    "java/lang/Thread.sleep_[j];JVM_Sleep;JavaThread::sleep;os::PlatformEvent::park;pthread_cond_timedwait;"
    "/usr/lib/x86_64-linux-gnu/libc.so.6 200\n")


def test_real_alloc_lines_app_site_is_order_json_not_unsafe():
    prof = r.parse_collapsed(REAL_ALLOC)
    assert prof.total == 110
    raw = r.hotspots(prof, "alloc", top=1)[0]
    assert raw.name == "jdk.internal.misc.Unsafe.allocateUninitializedArray"
    assert raw.self_share == pytest.approx(91 / 110)
    assert r.top_app_frame(prof, "alloc") == "demo.order.OrderJson.write"
    apps = {h.name: h for h in r.app_hotspots(prof, "alloc", top=None)}
    assert set(apps) == {"demo.order.OrderJson.write", "demo.order.Json.quote"}
    assert apps["demo.order.OrderJson.write"].self_samples == 99
    assert apps["demo.order.Json.quote"].self_samples == 5
    assert r.app_coverage(prof, "alloc") == pytest.approx(104 / 110)
    # the hidden-class frames are normalised, and never app frames
    frames = {f for stack in prof.stacks for f in stack}
    assert "demo.order.HttpIo$$Lambda$76.handle" in frames
    assert "java.lang.invoke.LambdaForm$MH.invoke" in frames
    assert not any("0x" in f for f in frames)
    # with the run's packages named, the same answer
    assert r.top_app_frame(prof, "alloc", ["demo.order"]) == "demo.order.OrderJson.write"


def test_real_wall_lines_idle_pool_threads_do_not_hide_card_authorizer():
    prof = r.parse_collapsed(REAL_WALL)
    assert r.hotspots(prof, "wall", top=1)[0].name == "/usr/lib/x86_64-linux-gnu/libc.so.6"
    [top] = r.app_hotspots(prof, "wall", top=1)
    assert top.name == "demo.payment.CardAuthorizer.authorize"
    assert top.self_share == pytest.approx(200 / 7032)
    assert r.app_coverage(prof, "wall") == pytest.approx(200 / 7032)


def test_report_leads_with_application_frames_and_uses_manifest_app_packages(tmp_path):
    m = copy.deepcopy(CLEAN_MANIFEST)
    m["captures"][0]["samples"] = None
    run = make_run(tmp_path, STAMP_A, m, collapsed=REAL_WALL.replace("demo/payment", "demo/order"))
    m["settings"]["events"] = ["wall"]
    (run / "order-service" / "cpu.collapsed").rename(run / "order-service" / "wall.collapsed")
    m["captures"][0].update(event="wall", engine="wall", collapsed="order-service/wall.collapsed",
                            html="order-service/cpu.html")
    (run / "manifest.json").write_text(json.dumps(m))
    text = r.write_report(run, repo_root=tmp_path).read_text()
    section = text.split("### order-service: wall")[1].split("## Validity")[0]
    assert section.index("#### Top application frames") < section.index("#### Top methods by self share")
    assert "| 1 | `demo.order.CardAuthorizer.authorize` | 200 | 2.8% | ± 0.4 | 2.8% |" in section
    findings = text.split("## Findings")[1]
    assert ("`demo.order.CardAuthorizer.authorize` is the application method behind 2.8% ± 0.4 of "
            "order-service's wall-clock samples (7,032 samples, wall).") in findings
    assert "hold 97.2% of wall-clock samples; of the 2.8% with one, `demo.order.CardAuthorizer.authorize` holds 100.0%" in findings
    assert "The top raw leaf is `/usr/lib/x86_64-linux-gnu/libc.so.6` with 100.0% ± 0.0." in findings
    # settings.app_packages narrows the application frames; an explicit argument wins over it
    m["settings"]["app_packages"] = ["demo.order.Main"]
    (run / "manifest.json").write_text(json.dumps(m))
    text = r.write_report(run, repo_root=tmp_path).read_text()
    assert "`demo.order.Main.route` is the application method behind 2.8%" in text
    assert "| application packages | `demo.order.Main` |" in text
    assert "the deepest Java method under `demo.order.Main`" in text
    text = r.write_report(run, repo_root=tmp_path, app_packages=["demo.order.CardAuthorizer"]).read_text()
    assert "`demo.order.CardAuthorizer.authorize` is the application method behind 2.8%" in text


def test_finding_without_any_application_frame():
    prof = r.parse_collapsed("java/lang/Thread.run;sun/nio/ch/EPollSelectorImpl.clearInterrupt;java.lang.Object 1000\n")
    cap = r.CaptureData("svc", "lock", "lock", None, 1000, prof, None, None, None, None)
    text = r.finding(cap)
    assert text.startswith("No application frame is on any stack of svc's lock-contention samples")
    assert "The top raw contending frame is `sun.nio.ch.EPollSelectorImpl.clearInterrupt` with 100.0%" in text
    assert r.finding(cap, ["sun.nio"]).startswith("`sun.nio.ch.EPollSelectorImpl.clearInterrupt` is the "
                                                  "application method contending in 100.0%")


# ----------------------------------------------------------------------------- uncertainty


def test_uncertainty_binomial_math():
    u = r.uncertainty(1000, 0.5)
    assert u.stderr == pytest.approx(math.sqrt(0.25 / 1000))
    assert u.margin == pytest.approx(1.96 * math.sqrt(0.25 / 1000))
    assert u.points == pytest.approx(3.099, abs=1e-3)
    assert u.text == "± 3.1 points"
    assert u.reliable
    big = r.uncertainty(4321, 0.632)
    assert big.points == pytest.approx(100 * 1.96 * math.sqrt(0.632 * 0.368 / 4321))
    assert big.text == "± 1.4 points"
    assert r.uncertainty(100, 0.0).points == 0.0


def test_uncertainty_under_1000_samples_says_several_points():
    u = r.uncertainty(400, 0.2)
    assert not u.reliable
    assert "several points" in u.note and "400" in u.note
    assert r.worst_case_points(400) == pytest.approx(4.9, abs=0.01)
    none = r.uncertainty(0, 0.3)
    assert not none.reliable and "no samples" in none.text and math.isinf(none.points)


# ----------------------------------------------------------------------------- validity


def test_clean_manifest_gives_no_warning():
    assert r.validity_warnings(CLEAN_MANIFEST) == []


def mutate(path, value):
    m = copy.deepcopy(CLEAN_MANIFEST)
    obj = m
    for key in path[:-1]:
        obj = obj[key]
    obj[path[-1]] = value
    return m


@pytest.mark.parametrize("path, value, expected", [
    (("load", "dropped_iterations"), 3, "rate not held: 3 dropped iterations"),
    (("load", "achieved_tps"), 20.0, "rate not held: achieved 20.0 TPS of 25 target"),
    (("load", "error_rate"), 0.02, "error rate 2.00% is over 1%"),
    (("load",), None, "no load figures"),
    (("status",), "failed", "run status is failed"),
    (("settings", "warmup"), 0, "no warm-up"),
    (("captures", 0, "samples"), 400, "order-service cpu: only 400 samples (under ~1,000); "
                                      "shares uncertain by ±4.9 points"),
    (("captures", 0, "error"), "asprof exited 1", "order-service cpu: capture failed: asprof exited 1"),
    (("captures", 0, "jvm", "flags_missing"), ["-XX:+DebugNonSafepoints"],
     "order-service: JVM flags missing: -XX:+DebugNonSafepoints (without -XX:+DebugNonSafepoints"),
    (("captures", 0, "engine"), "ctimer",
     "CPU time sampled by a timer (ctimer) because perf_events is unavailable; it is CPU time, "
     "not wall-clock; use -e wall for off-CPU time"),
    (("captures", 0, "engine"), "itimer", "CPU time sampled by a timer (itimer)"),
    (("captures",), [], "no captures recorded"),
])
def test_each_validity_warning_triggers(path, value, expected):
    warnings = r.validity_warnings(mutate(path, value))
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith(expected), warnings


@pytest.mark.parametrize("path, value", [
    (("load", "achieved_tps"), 23.75),   # exactly 95 % of 25: held
    (("load", "error_rate"), 0.01),      # exactly 1 %: not over
    (("captures", 0, "samples"), 1000),  # exactly the threshold
    (("captures", 0, "engine"), "cpu"),
])
def test_boundaries_do_not_warn(path, value):
    assert r.validity_warnings(mutate(path, value)) == []


def test_status_error_text_is_included_and_partial_manifests_do_not_crash():
    m = mutate(("status",), "failed")
    m["error"] = "k6 exited 99"
    assert "k6 exited 99" in r.validity_warnings(m)[0]
    assert r.validity_warnings(None)  # says something, does not crash
    sparse = {"status": None, "load": {"achieved_tps": None, "target_tps": None},
              "settings": None, "captures": [None, {"service": None, "jvm": None, "samples": None,
                                                    "engine": "perf_events"}]}
    assert r.validity_warnings(sparse) == []


def test_ctimer_is_never_called_wall_clock():
    m = mutate(("captures", 0, "engine"), "ctimer")
    text = " ".join(r.validity_warnings(m)) + r.engine_note("ctimer") + r.engine_note("itimer")
    assert "wall-clock" in text
    assert all(text[max(0, i - 4):i] == "not " for i in (m.start() for m in re.finditer("wall-clock", text)))


# ----------------------------------------------------------------------------- report


class LinkParser(HTMLParser):
    def __init__(self):
        super().__init__()
        self.hrefs, self.srcs = [], []

    def handle_starttag(self, tag, attrs):
        d = dict(attrs)
        if "href" in d:
            self.hrefs.append(d["href"])
        if "src" in d:
            self.srcs.append(d["src"])


def md_links(text):
    return re.findall(r"\]\(([^)]+)\)", text)


def test_report_contents_links_and_findings(tmp_path):
    run = make_run(tmp_path, STAMP_A)
    out = r.write_report(run, repo_root=tmp_path)
    assert out == tmp_path / "docs" / "perf" / f"flamegraph-analysis-{STAMP_A}.md"
    text = out.read_text()
    headings = [line for line in text.splitlines() if line.startswith("## ")]
    assert headings == ["## Run set-up", "## Load", "## Hotspots", "## Validity", "## Findings"]
    assert text.startswith(f"# Flame graph analysis: {STAMP_A}")
    for figure in ("25.0 → 24.9", "12.1 ms", "40.2 ms", "60.0 ms", "| error rate | 0.00% |",
                   "| dropped iterations | 0 |", "-XX:+DebugNonSafepoints", "4.3", "v1.1.0", "17.0.15"):
        assert figure in text, figure
    assert "## Validity\n\nnone\n" in text
    assert ("`demo.order.PricingEngine.priceOrder` is the application method behind 63.2% ± 3.0 of "
            "order-service's CPU samples (1,000 samples, perf_events). Next application frames: "
            "`demo.order.Repo.save` 36.8%. It is also the top raw leaf (63.2%).") in text
    section = text.split("### order-service: cpu")[1]
    assert section.index("#### Top application frames") < section.index("#### Top methods by self share")
    assert "| 1 | `demo.order.PricingEngine.priceOrder` | 632 | 63.2% | ± 3.0 | 63.2% |" in section
    assert "| 2 | `demo.order.Repo.save` | 368 | 36.8% | ± 3.0 | 36.8% |" in section
    assert "| 1 | `demo.order.PricingEngine.priceOrder` | 632 | 63.2% | ± 3.0 | 63.2% |" in text
    # every link resolves relative to the report, and both flame graphs are linked
    links = md_links(text)
    for link in links:
        assert (out.parent / unquote(link)).exists(), link
    targets = {(out.parent / unquote(link)).resolve() for link in links}
    assert (tmp_path / f"docs/perf/flamegraphs/order-service-cpu-{STAMP_A}.html").resolve() in targets
    assert (run / "order-service" / "cpu.html").resolve() in targets


def test_report_elsewhere_keeps_relative_links(tmp_path):
    run = make_run(tmp_path, STAMP_A)
    out = r.write_report(run, tmp_path / "reports" / "deep" / "analysis.md", tmp_path)
    links = md_links(out.read_text())
    assert links and all(link.startswith("../../") for link in links)
    assert all((out.parent / unquote(link)).exists() for link in links)


def test_report_ctimer_small_sample_run_warns_and_never_says_wall_clock(tmp_path):
    m = mutate(("captures", 0, "engine"), "ctimer")
    m["captures"][0]["samples"] = None  # filled from the collapsed file
    run = make_run(tmp_path, STAMP_A, m, collapsed=cpu_collapsed(200, 50, 50))
    text = r.write_report(run, repo_root=tmp_path).read_text()
    validity = text.split("## Validity")[1].split("## Findings")[0]
    assert "only 300 samples" in validity and "±5.7 points" in validity
    assert "CPU time sampled by a timer (ctimer)" in validity
    assert "several points" in text
    hits = [mm.start() for mm in re.finditer("wall-clock", text)]
    assert hits and all(text[i - 4:i] == "not " for i in hits)


def test_report_discovers_unlisted_captures_and_alloc_sections(tmp_path):
    m = copy.deepcopy(CLEAN_MANIFEST)
    m["captures"] = None
    m["load"] = None
    run = make_run(tmp_path, STAMP_A, m, seed_copy=False)
    (run / "order-service" / "alloc.collapsed").write_text(
        "java/lang/Thread.run;demo/Repo.save;byte[]_[k] 700\n"
        "java/lang/Thread.run;demo/Json.write;java.lang.String_[i] 300\n")
    text = r.write_report(run, repo_root=tmp_path).read_text()
    assert "### order-service: alloc" in text and "### order-service: cpu" in text
    assert "#### Top allocation sites (self)" in text and "#### Top allocated classes" in text
    assert "`demo.Repo.save` is the application site of 70.0% ± 2.8 of order-service's allocation samples" in text
    assert "It is also the top raw allocation site (70.0%)" in text
    assert "No load figures were recorded." in text
    validity = text.split("## Validity")[1]
    assert "no captures recorded" not in validity  # the discovered files are captures
    assert "- order-service cpu: profiling engine not recorded" in validity
    assert "- no load figures recorded" in validity


def test_report_missing_manifest_and_run(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ReportError, match="no manifest.json"):
        r.write_report(tmp_path / "empty", repo_root=tmp_path)
    with pytest.raises(ReportError, match="no run directory"):
        r.write_report(tmp_path / "gone", repo_root=tmp_path)
    (tmp_path / "empty" / "manifest.json").write_text("{not json")
    with pytest.raises(ReportError, match="unreadable manifest"):
        r.write_report(tmp_path / "empty", repo_root=tmp_path)


# ----------------------------------------------------------------------------- weights


def weighted_run(repo: Path, stamp: str = STAMP_A, weight_in_manifest: bool = True,
                 samples_in_manifest: bool = True, listed: bool = True) -> Path:
    """A run as the capture contract lays out a weighted alloc capture: alloc.collapsed
    in bytes (1.2 GB over 400 samples), alloc.samples.collapsed with the counts."""
    m = copy.deepcopy(CLEAN_MANIFEST)
    m["settings"]["events"] = ["cpu", "alloc"]
    if listed:
        entry = {"service": "order-service", "event": "alloc", "engine": "alloc",
                 "collapsed": "order-service/alloc.collapsed", "html": "order-service/cpu.html",
                 "jvm": {"flags_missing": []}, "error": None}
        if weight_in_manifest:
            entry.update(weight="bytes", weight_total=1_200_000_000)
        if samples_in_manifest:
            entry["samples"] = 400
        m["captures"].append(entry)
    run = make_run(repo, stamp, m)
    svc = run / "order-service"
    # bytes: OrderJson.write's stack has few, big samples; Repo.save's many small ones
    (svc / "alloc.collapsed").write_text(
        f"{THREAD};demo/order/OrderJson.write_[j];jdk/internal/misc/Unsafe.allocateUninitializedArray_[j];byte[]_[i] 900000000\n"
        f"{THREAD};demo/order/Repo.save_[j];java.lang.String_[i] 300000000\n")
    (svc / "alloc.samples.collapsed").write_text(
        f"{THREAD};demo/order/OrderJson.write_[j];jdk/internal/misc/Unsafe.allocateUninitializedArray_[j];byte[]_[i] 100\n"
        f"{THREAD};demo/order/Repo.save_[j];java.lang.String_[i] 300\n")
    return run


def test_weighted_alloc_capture_shares_from_bytes_uncertainty_from_count(tmp_path):
    run = weighted_run(tmp_path)
    caps = {c.event: c for c in r.load_captures(run, r.read_manifest(run), tmp_path)}
    assert set(caps) == {"cpu", "alloc"}  # alloc.samples.collapsed is not an event
    cap = caps["alloc"]
    assert (cap.weight, cap.samples, cap.weight_total) == ("bytes", 400, 1_200_000_000)
    assert cap.samples_collapsed == run / "order-service" / "alloc.samples.collapsed"
    prof = cap.profile
    assert prof.weighted and prof.total == 1_200_000_000 and prof.samples == 400
    assert cap.sample_profile.total == 400 and not cap.sample_profile.weighted
    [app] = r.app_hotspots(prof, "alloc", top=1)
    assert app.name == "demo.order.OrderJson.write"
    assert app.self_share == pytest.approx(0.75)          # of bytes, not of samples (25 %)
    assert app.samples == 400                             # the count, never 1.2e9
    u = app.self_uncertainty()
    assert u.points == pytest.approx(100 * 1.96 * math.sqrt(0.75 * 0.25 / 400))
    assert not u.reliable                                 # 400 samples: under the ~1,000 rule
    assert r.allocated_classes(prof, "alloc")[0].samples == 400

    text = r.write_report(run, repo_root=tmp_path).read_text()
    section = text.split("### order-service: alloc")[1].split("## Validity")[0]
    assert "400 allocation samples, 1.2 GB allocated (alloc); only 400 samples (under ~1,000)" in section
    assert "up to ± 4.9 points at 95%" in section
    assert "Shares are of allocated bytes; their ± comes from the number of samples." in section
    assert "| # | application frame | MB | app share | ± (95%) | total share |" in section
    assert "| 1 | `demo.order.OrderJson.write` | 900.0 | 75.0% | ± 4.2 | 75.0% |" in section
    assert "| # | allocation site | self MB | self share | ± (95%) | total share |" in section
    assert "| 1 | `jdk.internal.misc.Unsafe.allocateUninitializedArray` | 900.0 | 75.0% | ± 4.2 | 75.0% |" in section
    assert "| # | method | total MB | total share | ± (95%) | self share |" in section
    assert "| # | class | MB | share | ± (95%) |" in section
    assert "[sample counts](" in section
    assert "site samples" not in section
    findings = text.split("## Findings")[1]
    assert ("`demo.order.OrderJson.write` is the application site of 75.0% ± 4.2 of order-service's "
            "allocated bytes (400 samples, 1.2 GB allocated, alloc).") in findings
    assert "The top raw allocation site is `jdk.internal.misc.Unsafe.allocateUninitializedArray` with 75.0% ± 4.2." in findings
    assert "With only 400 samples every share is uncertain by up to ± 4.9 points" in findings
    validity = text.split("## Validity")[1].split("## Findings")[0]
    assert "order-service alloc: only 400 samples (under ~1,000)" in validity


def test_weighted_capture_count_from_samples_file_and_weight_inferred(tmp_path):
    run = weighted_run(tmp_path, samples_in_manifest=False)
    cap = next(c for c in r.load_captures(run, r.read_manifest(run), tmp_path) if c.event == "alloc")
    assert cap.samples == 400 and cap.profile.samples == 400 and cap.weight == "bytes"
    text = r.write_report(run, repo_root=tmp_path).read_text()
    assert "order-service alloc: only 400 samples" in text.split("## Validity")[1]
    # an unlisted capture with a samples file of other totals: weights, in bytes for alloc
    run2 = weighted_run(tmp_path / "b", listed=False)
    caps = {c.event: c for c in r.load_captures(run2, r.read_manifest(run2), tmp_path / "b")}
    assert set(caps) == {"cpu", "alloc"}
    assert (caps["alloc"].weight, caps["alloc"].samples, caps["alloc"].profile.samples) == ("bytes", 400, 400)
    # listed without a weight key and without a samples file: counts, as before
    run3 = weighted_run(tmp_path / "c", weight_in_manifest=False)
    (run3 / "order-service" / "alloc.samples.collapsed").unlink()
    cap3 = next(c for c in r.load_captures(run3, r.read_manifest(run3), tmp_path / "c") if c.event == "alloc")
    assert cap3.weight == "samples" and not cap3.profile.weighted and cap3.samples == 400


def test_weighted_capture_without_any_count_says_the_error_is_unknown(tmp_path):
    run = weighted_run(tmp_path, samples_in_manifest=False)
    (run / "order-service" / "alloc.samples.collapsed").unlink()
    cap = next(c for c in r.load_captures(run, r.read_manifest(run), tmp_path) if c.event == "alloc")
    assert cap.samples is None and cap.profile.samples == 0
    assert r.app_hotspots(cap.profile, "alloc")[0].self_uncertainty().text.startswith("± ?")
    text = r.write_report(run, repo_root=tmp_path).read_text()
    assert "weighted by bytes but the number of samples was not recorded" in text
    assert "75.0% ± ? of order-service's allocated bytes" in text
    assert "1,200,000,000" not in text


def test_weighted_lock_labels_in_ms_of_wait():
    prof = r.parse_collapsed(
        "[w tid=1];demo/inventory/StockLedger.reserve_[j];java.lang.Object_[i] 30000000\n"
        "[w tid=2];sun/net/httpserver/ServerImpl$Dispatcher.run_[j];java.lang.Object_[i] 10000000\n",
        weight="ns", sample_count=1500)
    cap = r.CaptureData("inventory-service", "lock", "lock", None, 1500, prof, None, None, None, None,
                        weight="ns")
    lines = "\n".join(r._capture_section(cap, Path("."), 10))
    assert "1,500 lock-contention samples, 40.0 ms of lock wait (lock); every share below is within ± 2.5 points" in lines
    assert "| # | application frame | wait ms | app share | ± (95%) | total share |" in lines
    assert "| 1 | `demo.inventory.StockLedger.reserve` | 30.0 | 75.0% | ± 2.2 | 75.0% |" in lines
    assert "| # | method | wait ms | self share | ± (95%) | total share |" in lines
    assert "| # | method | total wait ms | total share | ± (95%) | self share |" in lines
    assert "contention samples |" not in lines
    assert r.finding(cap).startswith(
        "`demo.inventory.StockLedger.reserve` is the application method contending in 75.0% ± 2.2 of "
        "inventory-service's lock wait time (1,500 samples, 40.0 ms of lock wait, lock).")


def test_compare_weighted_runs_and_mixed_runs(tmp_path):
    a = weighted_run(tmp_path, STAMP_A)
    b = weighted_run(tmp_path, STAMP_B)
    (b / "order-service" / "alloc.collapsed").write_text(
        f"{THREAD};demo/order/OrderJson.write_[j];byte[]_[i] 300000000\n"
        f"{THREAD};demo/order/Repo.save_[j];java.lang.String_[i] 900000000\n")
    cmp = r.compare_runs(a, b)
    cap = next(c for c in cmp.captures if c.event == "alloc")
    assert cap.weight == "bytes" and (cap.samples_a, cap.samples_b) == (400, 400)
    assert cap.profile_a.weighted and cap.profile_b.weighted
    d = {x.name: x for x in cap.cooler_total}["demo.order.OrderJson.write"]
    assert d.total_delta == pytest.approx(-0.5)  # 75 % -> 25 % of bytes
    assert "Shares are of allocated bytes in both runs." in r.comparison_markdown(cmp)
    # an older run of counts against a weighted run: both sides' sample counts are compared
    (a / "order-service" / "alloc.collapsed").write_text(
        (a / "order-service" / "alloc.samples.collapsed").read_text())
    (a / "order-service" / "alloc.samples.collapsed").unlink()
    m = r.read_manifest(a)
    for c in m["captures"]:
        c.pop("weight", None)
        c.pop("weight_total", None)
    (a / "manifest.json").write_text(json.dumps(m))
    cap = next(c for c in r.compare_runs(a, b).captures if c.event == "alloc")
    assert cap.weight == "samples"
    assert not cap.profile_a.weighted and not cap.profile_b.weighted
    assert cap.profile_b.total == 400
    assert not cap.cooler_total or "demo.order.OrderJson.write" not in {x.name for x in cap.cooler_total}


def test_diff_flamegraph_names_weighted_units(tmp_path):
    a = r.parse_collapsed("root;hot 600\n", weight="bytes", sample_count=3)
    b = r.parse_collapsed("root;hot 300\nroot;cold 300\n", weight="bytes", sample_count=4)
    page = r.write_diff_flamegraph(a, b, tmp_path / "d.html", event="alloc").read_text()
    assert "600 bytes allocated, 3 samples" in page and "share of allocated bytes" in page
    data = embedded_data(page)
    assert (data["unit_a"], data["unit_b"]) == ("bytes", "bytes")


# ----------------------------------------------------------------------------- index


def test_index_lists_runs_newest_first_with_working_links(tmp_path):
    run_a = make_run(tmp_path, STAMP_A)
    failed = mutate(("status",), "failed")
    make_run(tmp_path, STAMP_B, failed)
    r.write_report(run_a, repo_root=tmp_path)
    fg_dir = tmp_path / "docs" / "perf" / "flamegraphs"
    (fg_dir / "legacy-cpu-20260217-100000.html").write_text("<html></html>")
    out = r.write_index(tmp_path / "docs/perf/runs", fg_dir, tmp_path / "docs" / "perf")
    assert out == fg_dir / "index.html"
    page = out.read_text()
    assert page.index(STAMP_B) < page.index(STAMP_A)
    assert ">failed<" in page and ">ok<" in page and "24.9 / 25" in page
    assert "<script" not in page and "http://" not in page and "https://" not in page
    parser = LinkParser()
    parser.feed(page)
    assert not parser.srcs
    for href in parser.hrefs:
        assert (fg_dir / unquote(href)).is_file(), href
    assert f"order-service-cpu-{STAMP_A}.html" in parser.hrefs
    assert f"order-service-cpu-{STAMP_B}.html" in parser.hrefs
    assert f"../flamegraph-analysis-{STAMP_A}.md" in parser.hrefs
    assert "legacy-cpu-20260217-100000.html" in parser.hrefs


def test_index_without_runs(tmp_path):
    page = r.write_index(tmp_path / "runs", tmp_path / "fg", tmp_path).read_text()
    assert "No runs yet" in page


# ----------------------------------------------------------------------------- compare


def two_runs(tmp_path):
    a = make_run(tmp_path, STAMP_A, collapsed=cpu_collapsed(600, 240, 160))
    m = copy.deepcopy(CLEAN_MANIFEST)
    m["load"].update(achieved_tps=24.5, p95_ms=30.0, error_rate=0.004)
    b = make_run(tmp_path, STAMP_B, m, collapsed=cpu_collapsed(300, 420, 280))
    return a, b


def test_compare_runs_finds_hotter_and_cooler(tmp_path):
    a, b = two_runs(tmp_path)
    cmp = r.compare_runs(a, b)
    assert (cmp.stamp_a, cmp.stamp_b) == (STAMP_A, STAMP_B)
    [cap] = cmp.captures
    assert (cap.service, cap.event, cap.samples_a, cap.samples_b) == ("order-service", "cpu", 1000, 1000)
    cooler = cap.cooler_total[0]
    assert cooler.name == "demo.order.PricingEngine.priceOrder"
    assert cooler.total_delta == pytest.approx(-0.30) and cooler.self_delta == pytest.approx(-0.30)
    assert cooler.significant
    assert cap.cooler_self[0].name == "demo.order.PricingEngine.priceOrder"
    hot_total = {d.name: d.total_delta for d in cap.hotter_total}
    assert hot_total["demo.order.Repo.save"] == pytest.approx(0.30)
    assert hot_total["java.util.HashMap.put"] == pytest.approx(0.18)
    assert cap.hotter_self[0].name == "java.util.HashMap.put"
    assert "demo.order.Repo.save" not in {d.name for d in cap.hotter_self}  # no self samples
    assert "java.lang.Thread.run" not in hot_total  # 100 % in both
    load = {d.metric: d for d in cmp.load}
    assert load["achieved TPS"].delta == pytest.approx(-0.4)
    assert load["p95 ms"].delta == pytest.approx(-10.2)
    assert load["error rate"].delta == pytest.approx(0.004)

    md = r.comparison_markdown(cmp)
    assert f"# Run comparison: {STAMP_A} → {STAMP_B}" in md
    assert "| `demo.order.PricingEngine.priceOrder` | 63.2%" not in md
    assert "| `demo.order.PricingEngine.priceOrder` | 60.0% | 30.0% | -30.0 | yes | -30.0 |" in md
    assert "| `demo.order.Repo.save` | 40.0% | 70.0% | +30.0 | yes | +0.0 |" in md
    assert "| p95 ms | 40.2 | 30.0 | -10.2 (-25%) |" in md
    assert "| error rate | 0.00% | 0.40% | +0.40 points |" in md


def test_compare_accepts_stamps_and_reports_unshared_captures(tmp_path):
    a, b = two_runs(tmp_path)
    (b / "payment-service").mkdir()
    (b / "payment-service" / "cpu.collapsed").write_text("x;y 5\n")
    cmp = r.compare_runs(STAMP_A, STAMP_B[:8], runs_root=tmp_path / "docs/perf/runs")
    assert cmp.run_a == a and cmp.run_b == b
    assert cmp.only_in_b == [("payment-service", "cpu")] and cmp.only_in_a == []
    assert "only in B: payment-service cpu" in r.comparison_markdown(cmp)
    with pytest.raises(ReportError, match="no run directory"):
        r.compare_runs(STAMP_A, "20990101-000000", runs_root=tmp_path / "docs/perf/runs")


# ----------------------------------------------------------------------------- diff flame graph


def embedded_data(page: str) -> dict:
    m = re.search(r'<script type="application/json" id="flamekit-data">(.*?)</script>', page, re.S)
    assert m, "no embedded data"
    return json.loads(m.group(1))


def test_diff_flamegraph_is_self_contained_with_embedded_data(tmp_path):
    a = r.parse_collapsed("root;hot 60\nroot;cold 40\nroot;</script><b>x 1\n")
    b = r.parse_collapsed("root;hot 30\nroot;cold 70\nroot;new 5\n")
    out = r.write_diff_flamegraph(a, b, tmp_path / "sub" / "diff.html", "cpu: A vs B & <more>")
    page = out.read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert "http://" not in page and "https://" not in page and "//cdn" not in page
    parser = LinkParser()
    parser.feed(page)
    assert not parser.srcs and not parser.hrefs
    assert page.count("</script>") == 2  # the hostile frame name cannot close a script
    assert "cpu: A vs B &amp; &lt;more&gt;" in page
    data = embedded_data(page)
    assert (data["total_a"], data["total_b"]) == (101, 105)
    names = data["names"]

    def find(node, path):
        if not path:
            return node
        for kid in node[3] if len(node) > 3 else []:
            if names[kid[0]] == path[0]:
                return find(kid, path[1:])
        return None

    assert find(data["root"], ["root", "hot"])[1:3] == [60, 30]
    assert find(data["root"], ["root", "new"])[1:3] == [0, 5]
    assert find(data["root"], ["root", "</script><b>x"]) is None  # absent from B: no width
    assert "cooler in B" in page and "<code>hot</code>" in page


# ----------------------------------------------------------------------------- run resolution


def test_latest_and_resolve_run(tmp_path):
    runs = tmp_path / "docs" / "perf" / "runs"
    a = make_run(tmp_path, STAMP_A)
    b = make_run(tmp_path, STAMP_B)
    (runs / "notes").mkdir()  # neither a stamp nor a manifest: ignored
    assert r.latest_run(runs) == b
    assert r.resolve_run(runs, None) == b
    assert r.resolve_run(runs, "latest") == b
    assert r.resolve_run(runs, STAMP_A) == a
    assert r.resolve_run(runs, str(a)) == a
    assert r.resolve_run(runs, a / "manifest.json") == a
    assert r.resolve_run(runs, "20261128") == b
    with pytest.raises(ReportError, match="matches 2 runs"):
        r.resolve_run(runs, "202611")


def test_resolve_run_errors_name_the_path_and_hint(tmp_path):
    runs = tmp_path / "runs"
    with pytest.raises(ReportError) as exc:
        r.latest_run(runs)
    assert str(runs) in str(exc.value) and "\n" not in str(exc.value)
    assert exc.value.hint == "run `inv profile` or `inv profile-all` first"
    runs.mkdir()
    with pytest.raises(ReportError) as exc:
        r.resolve_run(runs, "20261127-081500")
    assert exc.value.message == f"no run directory {runs / '20261127-081500'}"
    assert "inv profile" in str(exc.value) and "\n" not in str(exc.value)
    with pytest.raises(ReportError, match=re.escape(str(tmp_path / "x" / "y"))):
        r.resolve_run(runs, tmp_path / "x" / "y")


# ----------------------------------------------------------------------------- core rules


def test_report_module_does_not_import_invoke_or_print():
    src = (ROOT / "flamekit" / "analysis" / "report.py").read_text()
    assert not re.search(r"^\s*(import|from)\s+invoke\b", src, re.M)
    assert not re.search(r"(?<![\w.])print\(", src)


# ----------------------------------------------------------------------------- browser


def load_browser_helper():
    spec = importlib.util.spec_from_file_location("flamekit_test_browser",
                                                  ROOT / "tests" / "integration" / "browser.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.browser
def test_generated_pages_load_in_chromium_without_errors(tmp_path):
    browser = load_browser_helper()
    try:
        browser.find_chromium()
    except browser.ChromiumMissing as exc:
        pytest.skip(str(exc))
    a, b = two_runs(tmp_path)
    r.write_report(b, repo_root=tmp_path)
    fg_dir = tmp_path / "docs" / "perf" / "flamegraphs"
    index = r.write_index(tmp_path / "docs/perf/runs", fg_dir, tmp_path / "docs" / "perf")
    cmp = r.compare_runs(a, b)
    diff = r.write_diff_flamegraph(cmp.captures[0].profile_a, cmp.captures[0].profile_b,
                                   fg_dir / "diff.html", "order-service cpu")
    broken = tmp_path / "broken.html"
    broken.write_text("<!DOCTYPE html><html><head></head><body><script>nope();</script></body></html>")
    for page in (index, diff):
        errors, png = browser.load_in_chromium(page, tmp_path / f"{page.stem}.png")
        assert errors == [], errors
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 2000
    errors, _ = browser.load_in_chromium(broken, tmp_path / "broken.png")
    assert any("nope is not defined" in e for e in errors), errors
    assert not list(tmp_path.glob(".probe-*")) and not list(fg_dir.glob(".probe-*"))
    shutil.rmtree(tmp_path / "docs")


def test_failed_checks_are_a_validity_warning():
    from flamekit.analysis import report as fkreport
    base = {"status": "ok", "settings": {"warmup": 5},
            "load": {"target_tps": 25, "achieved_tps": 25, "dropped_iterations": 0, "error_rate": 0.0}}
    quiet = [w for w in fkreport.validity_warnings({**base, "load": {**base["load"], "checks_failed_rate": 0.0}})
             if "checks failed" in w]
    assert quiet == []
    loud = fkreport.validity_warnings({**base, "load": {**base["load"], "checks_failed_rate": 0.2}})
    assert any("20.00% of the k6 checks failed" in w for w in loud)
