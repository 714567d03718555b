"""Hotspot arithmetic, application frames, allocated/lock classes."""
from __future__ import annotations


import pytest

from flamekit.analysis.collapsed import parse_collapsed
from flamekit.analysis.hotspots import allocated_classes, app_coverage, app_hotspots, app_package_prefixes, hotspots, is_app_frame, share_of, top_app_frame


def by_name(items):
    return {h.name: h for h in items}


def test_cpu_self_is_leaf_total_is_anywhere_on_stack():
    prof = parse_collapsed("a;b;c 5\na;b 3\na;d;c 2\n")
    hs = by_name(hotspots(prof, "cpu", top=None, by="total"))
    assert {n: (h.self_samples, h.total_samples) for n, h in hs.items()} == {
        "a": (0, 10), "b": (3, 8), "c": (7, 7), "d": (0, 2)}
    assert hs["c"].self_share == pytest.approx(0.7)
    assert hs["b"].total_share == pytest.approx(0.8)
    assert hs["a"].total_share == pytest.approx(1.0)
    # ranked by self: zero-self methods are left out, order by self samples
    assert [h.name for h in hotspots(prof, "cpu")] == ["c", "b"]
    assert [h.name for h in hotspots(prof, "cpu", top=2, by="total")] == ["a", "b"]


def test_recursion_counted_once_per_stack():
    prof = parse_collapsed("a;b;a;b;a 4\na;b 1\n")
    hs = by_name(hotspots(prof, "cpu", top=None, by="total"))
    assert hs["a"].total_samples == 5 and hs["a"].total_share == pytest.approx(1.0)
    assert hs["b"].total_samples == 5
    assert hs["a"].self_samples == 4 and hs["b"].self_samples == 1
    assert all(h.total_share <= 1.0 for h in hs.values())


def test_suffixes_and_slashes_merge_into_one_method():
    prof = parse_collapsed("demo/order/X.y_[j] 2\ndemo.order.X.y_[i] 3\nt;demo/order/X.y_[0] 5\n")
    hs = hotspots(prof, "wall")
    assert hs[0].name == "demo.order.X.y"
    assert hs[0].self_samples == 10 and hs[0].self_share == pytest.approx(1.0)


def test_thread_frames_are_not_methods():
    prof = parse_collapsed("[w-1 tid=3];a;b 2\n[w-2 tid=4];a 1\n")
    names = {h.name for h in hotspots(prof, "cpu", top=None, by="total")}
    assert names == {"a", "b"}
    assert share_of(prof, "a", "cpu") == pytest.approx((1 / 3, 1.0))


def test_alloc_self_is_the_site_and_classes_are_listed_apart():
    prof = parse_collapsed(
        "java/lang/Thread.run;demo/Repo.save;byte[]_[k] 6\n"
        "java/lang/Thread.run;demo/Json.write;java/lang/String_[i] 3\n"
        "java/lang/Thread.run;demo/Repo.save;java.lang.String_[i] 1\n")
    sites = hotspots(prof, "alloc", top=None)
    assert [(h.name, h.self_samples) for h in sites] == [("demo.Repo.save", 7), ("demo.Json.write", 3)]
    totals = by_name(hotspots(prof, "alloc", top=None, by="total"))
    assert "byte[]" not in totals and "java.lang.String" not in totals
    assert totals["java.lang.Thread.run"].total_samples == 10
    classes = allocated_classes(prof, "alloc")
    assert [(h.name, h.self_samples, h.self_share) for h in classes] == [
        ("byte[]", 6, pytest.approx(0.6)), ("java.lang.String", 4, pytest.approx(0.4))]
    assert share_of(prof, "demo/Repo.save", "alloc") == pytest.approx((0.7, 0.7))
    assert share_of(prof, "byte[]", "alloc") == (0.0, 0.0)
    # the same stacks read as cpu would wrongly make the class the hotspot
    assert hotspots(prof, "cpu")[0].name == "byte[]"


def test_lock_self_is_the_contending_method():
    prof = parse_collapsed(
        "[w tid=1];java/lang/Thread.run;demo/Queue.take_[j];java.lang.Object 4\n"
        "[w tid=2];java/lang/Thread.run;demo/Queue.put_[j];java.util.concurrent.locks.ReentrantLock$NonfairSync 1\n")
    top = hotspots(prof, "lock")
    assert [(h.name, h.self_share) for h in top] == [
        ("demo.Queue.take", pytest.approx(0.8)), ("demo.Queue.put", pytest.approx(0.2))]
    assert allocated_classes(prof, "lock")[0].name == "java.lang.Object"


def test_alloc_stack_of_only_a_class_has_unknown_site():
    prof = parse_collapsed("byte[]_[k] 2\n")
    assert [(h.name, h.self_samples, h.total_samples) for h in hotspots(prof, "alloc")] == [
        ("[unknown]", 2, 2)]


def test_share_of_absent_method_and_empty_profile():
    prof = parse_collapsed("a;b 1\n")
    assert share_of(prof, "zzz", "cpu") == (0.0, 0.0)
    assert share_of(parse_collapsed(""), "a", "cpu") == (0.0, 0.0)
    with pytest.raises(ValueError):
        hotspots(prof, "cpu", by="width")


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
    assert is_app_frame(frame) is app


def test_app_frame_is_the_deepest_non_jdk_java_frame_skipping_lambdas_and_native():
    prof = parse_collapsed(
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
    apps = app_hotspots(prof, "cpu", top=None)
    assert [(h.name, h.self_samples, h.total_samples) for h in apps] == [
        ("demo.Svc.work", 6, 6), ("demo.Svc.handle", 3, 9)]
    work = apps[0]
    assert work.self_share == pytest.approx(6 / 20) and work.total_share == pytest.approx(6 / 20)
    assert apps[1].total_share == pytest.approx(9 / 20)  # shares of ALL samples
    assert work.samples == 20
    assert top_app_frame(prof, "cpu") == "demo.Svc.work"
    assert app_coverage(prof, "cpu") == pytest.approx(9 / 20)
    assert app_hotspots(prof, "cpu", top=1) == apps[:1]
    # the raw leaf view still sees the native frames
    assert hotspots(prof, "cpu")[0].name == "pthread_cond_wait"


def test_app_frames_of_alloc_and_lock_never_are_the_leaf_object():
    alloc = parse_collapsed(
        "java/lang/Thread.run;demo/order/Repo.save;java/util/Arrays.copyOf;demo.order.Order_[i] 4\n"
        "java/lang/Thread.run;java/util/TimerThread.run;byte[]_[k] 1\n")
    assert [(h.name, h.self_samples) for h in app_hotspots(alloc, "alloc")] == [("demo.order.Repo.save", 4)]
    # read as cpu, the allocated class would wrongly be the deepest app frame
    assert top_app_frame(alloc, "cpu") == "demo.order.Order"
    lock = parse_collapsed("[w tid=1];demo/Queue.take_[j];java/util/concurrent/locks/LockSupport.park;demo.Lock 2\n")
    assert top_app_frame(lock, "lock") == "demo.Queue.take"
    assert top_app_frame(parse_collapsed("java/lang/Thread.run;byte[] 3\n"), "alloc") is None
    assert app_hotspots(parse_collapsed(""), "cpu") == []


def test_app_packages_override_the_jdk_rule():
    prof = parse_collapsed(
        "java/lang/Thread.run;demo/order/Api.call;demo/lib/Util.copy;java/util/HashMap.put 6\n"
        "java/lang/Thread.run;demonstration/Other.x 2\n"
        "java/lang/Thread.run;demo/order/Api$Inner.go;demo/order/Api$$Lambda$9.run 2\n")
    assert top_app_frame(prof, "cpu") == "demo.lib.Util.copy"
    names = lambda pk: [(h.name, h.self_samples) for h in app_hotspots(prof, "cpu", None, pk)]  # noqa: E731
    assert names(["demo.order"]) == [("demo.order.Api.call", 6), ("demo.order.Api$Inner.go", 2)]
    assert names(["demo/order/"]) == names(["demo.order"])            # slashes and a trailing dot
    assert names("demo.order, demonstration") == [("demo.order.Api.call", 6), ("demo.order.Api$Inner.go", 2),
                                                  ("demonstration.Other.x", 2)]
    assert ("demonstration.Other.x", 2) not in names(["demo"])       # a package boundary, not a substring
    # naming a JDK package makes its frames application frames; lambdas stay skipped
    assert names(["java.util"]) == [("java.util.HashMap.put", 6)]
    assert is_app_frame("java/util/HashMap.put", ["java.util"])
    assert not is_app_frame("demo/order/Api$$Lambda$9.run", ["demo"])
    assert names([]) == names(None)                                   # empty: the default rule
    assert app_package_prefixes(["demo/order", " ", "demo.order"]) == ("demo.order",)


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
    prof = parse_collapsed(REAL_ALLOC)
    assert prof.total == 110
    raw = hotspots(prof, "alloc", top=1)[0]
    assert raw.name == "jdk.internal.misc.Unsafe.allocateUninitializedArray"
    assert raw.self_share == pytest.approx(91 / 110)
    assert top_app_frame(prof, "alloc") == "demo.order.OrderJson.write"
    apps = {h.name: h for h in app_hotspots(prof, "alloc", top=None)}
    assert set(apps) == {"demo.order.OrderJson.write", "demo.order.Json.quote"}
    assert apps["demo.order.OrderJson.write"].self_samples == 99
    assert apps["demo.order.Json.quote"].self_samples == 5
    assert app_coverage(prof, "alloc") == pytest.approx(104 / 110)
    # the hidden-class frames are normalised, and never app frames
    frames = {f for stack in prof.stacks for f in stack}
    assert "demo.order.HttpIo$$Lambda$76.handle" in frames
    assert "java.lang.invoke.LambdaForm$MH.invoke" in frames
    assert not any("0x" in f for f in frames)
    # with the run's packages named, the same answer
    assert top_app_frame(prof, "alloc", ["demo.order"]) == "demo.order.OrderJson.write"


def test_real_wall_lines_idle_pool_threads_do_not_hide_card_authorizer():
    prof = parse_collapsed(REAL_WALL)
    assert hotspots(prof, "wall", top=1)[0].name == "/usr/lib/x86_64-linux-gnu/libc.so.6"
    [top] = app_hotspots(prof, "wall", top=1)
    assert top.name == "demo.payment.CardAuthorizer.authorize"
    assert top.self_share == pytest.approx(200 / 7032)
    assert app_coverage(prof, "wall") == pytest.approx(200 / 7032)
