"""Cost per iteration, CPU by kind of thread, request-thread wall, and the checks built on them.

``demo_run`` builds a run directory shaped like a profile-all of the demo (four services,
cpu/alloc/lock/wall, per-thread stacks, timeline, cgroup CPU); the render tests share it."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from flamekit.analysis.captures import load_captures
from flamekit.analysis.costs import analyse, interval_ms, iterations, window_seconds
from flamekit.analysis.threads import cpu_breakdown, cpu_category, request_wall
from flamekit.analysis.collapsed import parse_collapsed
from flamekit.analysis.validity import run_warnings, validity_warnings
from flamekit.render.markdown import write_report

STAMP = "20261201-101500"
T0 = "2026-12-01T10:15:{:02d}.000+00:00"
W = "[pool-1-thread-1 tid=21];java/lang/Thread.run_[j];demo/common/HttpIo$1.handle_[j]"
IDLE = ("[pool-1-thread-1 tid=21];java/lang/Thread.run_[j];java/util/concurrent/ThreadPoolExecutor.getTask_[j];"
        "jdk/internal/misc/Unsafe.park_[j]")

CPU_THREADS = {
    "order-service": (f"{W};demo/order/PricingEngine.priceOrder_[j] 600\n"
                      f"{W};demo/order/OrderJson.write_[j];java/lang/String.concat_[j] 100\n"
                      "[C2 CompilerThread0 tid=12];Compile::Compile;PhaseIdealLoop::build 100\n"
                      "[VM Thread tid=9];VM_Operation::evaluate;GenCollectedHeap::do_collection 120\n"
                      f"{W};demo/order/PricingEngine.priceOrder_[j];WallClock::signalHandler 40\n"
                      "[HTTP-Dispatcher tid=30];sun/nio/ch/EPoll.wait_[j];epoll_wait_[k] 40\n"),
    "inventory-service": f"{W};demo/inventory/StockLedger.reserve_[j];java/util/HashMap.put_[j] 200\n",
    "payment-service": f"{W};demo/payment/CardAuthorizer.authorize_[j];java/util/UUID.randomUUID_[j] 100\n",
    "gateway": f"{W};demo/gateway/Router.forward_[j];java/net/http/HttpClient.send_[j] 100\n",
}
ALLOC = ("demo/order/OrderJson.write_[j];java/lang/StringConcatHelper.newArray_[j];byte[]_[k] 3000000000\n"
         "demo/order/Main.handle_[j];demo/common/Json.quote_[j];java.lang.String_[k] 30000000\n")
ALLOC_SAMPLES = ("demo/order/OrderJson.write_[j];java/lang/StringConcatHelper.newArray_[j];byte[]_[k] 2900\n"
                 "demo/order/Main.handle_[j];demo/common/Json.quote_[j];java.lang.String_[k] 100\n")
LOCK = "demo/inventory/StockLedger.reserve_[j];java.lang.Object 24000000000\n"
LOCK_SAMPLES = "demo/inventory/StockLedger.reserve_[j];java.lang.Object 1200\n"
WALL = {
    "payment-service": (f"{W};demo/payment/CardAuthorizer.authorize_[j];java/lang/Thread.sleep_[j] 400\n"
                        f"{W};demo/payment/Main.handle_[j];sun/nio/ch/NioSocketImpl.write_[j] 100\n"
                        f"{IDLE} 500\n"
                        "[Signal Dispatcher tid=5];[unknown] 1000\n"),
    "gateway": (f"{W};demo/gateway/Router.forward_[j];jdk/internal/net/http/HttpClientImpl.send_[j];"
                "jdk/internal/misc/Unsafe.park_[j] 900\n"
                f"{W};demo/gateway/Router.route_[j] 100\n{IDLE} 300\n"),
}


def _cap(svc: str, event: str, **extra) -> dict:
    base = {"service": svc, "replica": 1, "replicas": 1, "container": f"demo-{svc}-1", "event": event,
            "engine": "ctimer" if event == "cpu" else event, "interval": None,
            "collapsed": f"{svc}/{event}.collapsed", "html": f"{svc}/{event}.html",
            "flamegraph": f"docs/perf/flamegraphs/{svc}-{event}-{STAMP}.html",
            "pprof": f"{svc}/{event}.pb.gz", "jfr": f"{svc}/profile.jfr",
            "profiler_started": T0.format(10), "profiler_stopped": T0.format(30), "error": None,
            "jvm": {"version": "17.0.15", "flags_missing": []}}
    base.update(extra)
    return base


MANIFEST = {
    "flamekit_version": "0.2.0", "stamp": STAMP, "status": "ok", "error": None,
    "settings": {"duration": 20, "warmup": 10, "tps": 25, "interval": None,
                 "events": ["cpu", "alloc", "lock", "wall"],
                 "services": ["gateway", "order-service", "inventory-service", "payment-service"]},
    "environment": {"async_profiler": "4.3"},
    "timeline": {"warmup_started": T0.format(0), "warmup_ended": T0.format(9), "load_started": T0.format(9),
                 "profilers_started": T0.format(10), "profilers_stopped": T0.format(30),
                 "load_ended": T0.format(33)},
    "load": {"target_tps": 25, "achieved_tps": 25.0, "iterations": 575, "dropped_iterations": 0,
             "p50_ms": 30.0, "p95_ms": 60.0, "error_rate": 0.0, "duration_s": 23},
}


def demo_run(repo: Path, manifest: dict | None = None, cgroup: dict | None = None,
             jvm_alloc: dict | None = None) -> Path:
    """A demo-shaped run in ``repo/docs/perf/runs/STAMP`` (20 s window, 25 TPS: 500 iterations)."""
    m = copy.deepcopy(manifest or MANIFEST)
    run = repo / "docs" / "perf" / "runs" / STAMP
    fg = repo / "docs" / "perf" / "flamegraphs"
    fg.mkdir(parents=True, exist_ok=True)
    cgroup = cgroup or {"order-service": 10.5, "inventory-service": 2.2, "payment-service": 1.1, "gateway": 1.1}
    caps = []

    def put(svc: str, event: str, collapsed: str, **extra) -> None:
        d = run / svc
        d.mkdir(parents=True, exist_ok=True)
        (d / f"{event}.collapsed").write_text(collapsed)
        (d / f"{event}.html").write_text("<!DOCTYPE html><html><body>flame</body></html>")
        (d / f"{event}.pb.gz").write_bytes(b"\x1f\x8b")
        (d / "profile.jfr").write_bytes(b"FLR\x00")
        (fg / f"{svc}-{event}-{STAMP}.html").write_text("<!DOCTYPE html><html><body>flame</body></html>")
        counts = sum(int(line.rsplit(" ", 1)[1]) for line in collapsed.splitlines())
        caps.append(_cap(svc, event, samples=extra.pop("samples", counts), **extra))

    for svc, text in CPU_THREADS.items():
        plain = "\n".join(line.split(";", 1)[1] for line in text.splitlines()) + "\n"
        (run / svc).mkdir(parents=True, exist_ok=True)
        (run / svc / "cpu.threads.collapsed").write_text(text)
        (run / svc / "cpu.heatmap.html").write_text("<!DOCTYPE html><html><body>heat</body></html>")
        put(svc, "cpu", plain, cgroup_cpu_s=cgroup[svc], threads_collapsed=f"{svc}/cpu.threads.collapsed",
            heatmap=f"{svc}/cpu.heatmap.html")
    (run / "order-service" / "alloc.samples.collapsed").write_text(ALLOC_SAMPLES)
    put("order-service", "alloc", ALLOC, samples=3000, weight="bytes", weight_total=3030000000,
        samples_collapsed="order-service/alloc.samples.collapsed", **(jvm_alloc or {}))
    (run / "inventory-service" / "lock.samples.collapsed").write_text(LOCK_SAMPLES)
    put("inventory-service", "lock", LOCK, samples=1200, weight="ns", weight_total=24000000000,
        samples_collapsed="inventory-service/lock.samples.collapsed")
    for svc, text in WALL.items():
        (run / svc / "wall.threads.collapsed").write_text(text)
        plain = "\n".join(line.split(";", 1)[1] for line in text.splitlines()) + "\n"
        put(svc, "wall", plain, threads_collapsed=f"{svc}/wall.threads.collapsed")
    m["captures"] = caps
    (run / "manifest.json").write_text(json.dumps(m))
    return run


def loaded(run: Path):
    m = json.loads((run / "manifest.json").read_text())
    return m, load_captures(run, m, run.parents[3])


def test_interval_parsing_and_the_default():
    assert interval_ms(None) == 10.0 and interval_ms("10ms") == 10.0 and interval_ms("500us") == 0.5
    assert interval_ms(20_000_000) == 20.0 and interval_ms("1s") == 1000.0 and interval_ms("junk") == 10.0


def test_window_and_iterations(tmp_path):
    m, caps = loaded(demo_run(tmp_path))
    assert window_seconds(caps[0], m) == 20.0
    assert iterations(caps[0], m) == 500.0
    m2 = {**m, "timeline": {}}
    c = caps[0]
    c.meta.pop("profiler_started")
    assert window_seconds(c, m2) == 20  # settings.duration


def test_cost_per_iteration_of_each_kind(tmp_path):
    m, caps = loaded(demo_run(tmp_path))
    findings, services = analyse(m, caps)
    top = {k: v[0] for k, v in findings.items()}
    # 640 samples x 10 ms (interval null: async-profiler's default) / 500 iterations
    assert (top["cpu"].method, top["cpu"].service) == ("demo.order.PricingEngine.priceOrder", "order-service")
    assert top["cpu"].per_request == pytest.approx(640 * 10 / 500)
    assert top["cpu"].share == pytest.approx(640 / 1000) and top["cpu"].samples == 1000
    assert top["alloc"].method == "demo.order.OrderJson.write"
    assert top["alloc"].per_request == pytest.approx(3000.0 / 500)  # MB
    assert top["alloc"].samples == 3000  # the count, never the byte total
    assert top["lock"].method == "demo.inventory.StockLedger.reserve"
    assert top["lock"].per_request == pytest.approx(24000.0 / 500)  # ms
    # wall: gateway waits in the HTTP client (not ranked); payment's authorize leads
    assert (top["wall"].method, top["wall"].service) == ("demo.payment.CardAuthorizer.authorize",
                                                         "payment-service")
    assert top["wall"].per_request == pytest.approx(400 * 20 / 500)
    assert top["wall"].share == pytest.approx(400 / 500)  # of request time, not of all threads
    assert "demo.gateway.Router.forward" not in [f.method for f in findings["wall"]]
    gw = services["gateway"]
    assert gw.request_ms == pytest.approx(1000 * 20 / 500) and gw.downstream_ms == pytest.approx(900 * 20 / 500)
    pay = services["payment-service"]
    assert pay.idle_ms == pytest.approx(500 * 20 / 500) and pay.other_ms == pytest.approx(1000 * 20 / 500)
    assert pay.request_threads == ["pool-1-thread-1"]
    order = services["order-service"]
    assert order.cpu_ms == pytest.approx(10000 / 500) and order.cgroup_ms == pytest.approx(10500 / 500)
    assert order.coverage == pytest.approx(10000 / 10500)


def test_cpu_categories():
    assert cpu_category(("[C1 CompilerThread3 tid=4]", "Compile::x")) == "jit"
    assert cpu_category(("[VM Thread tid=4]", "VM_Operation::evaluate")) == "gc"
    assert cpu_category(("[GC Thread#1 tid=4]", "x")) == "gc"
    assert cpu_category(("[Service Thread tid=4]", "x")) == "jvm"
    assert cpu_category(("[w tid=4]", "demo.A.b", "WallClock::signalHandler")) == "profiler"
    assert cpu_category(("[w tid=4]", "demo.A.b", "java.util.HashMap.put")) == "app"
    assert cpu_category(("[w tid=4]", "sun.nio.ch.EPoll.wait", "epoll_wait")) == "native"
    assert cpu_category(("[w tid=4]", "java.lang.Thread.run", "java.util.HashMap.put")) == "jdk"
    b = cpu_breakdown(parse_collapsed(CPU_THREADS["order-service"]))
    assert b.samples == {"app": 700, "jdk": 0, "native": 40, "jit": 100, "gc": 120, "jvm": 0, "profiler": 40}


def test_request_wall_without_thread_frames_uses_app_stacks():
    rw = request_wall(parse_collapsed("java.lang.Thread.run;demo.A.b 3\njava.lang.Thread.run 5\n"))
    assert rw.request.total == 3 and rw.other == 5 and rw.idle == 0


def test_gc_over_10_percent_is_a_cpu_finding_and_jit_over_15_warns(tmp_path):
    m, caps = loaded(demo_run(tmp_path))
    findings, _ = analyse(m, caps)
    gc = [f for f in findings["cpu"] if f.method == "[garbage collection]"]
    assert len(gc) == 1 and gc[0].service == "order-service" and gc[0].share == pytest.approx(0.12)
    assert not [w for w in run_warnings(m, caps) if "JIT" in w]
    threads = tmp_path / "docs/perf/runs" / STAMP / "order-service" / "cpu.threads.collapsed"
    threads.write_text(threads.read_text().replace("PhaseIdealLoop::build 100", "PhaseIdealLoop::build 300"))
    m, caps = loaded(tmp_path / "docs/perf/runs" / STAMP)
    jit = [w for w in run_warnings(m, caps) if "JIT" in w]
    assert len(jit) == 1 and "order-service" in jit[0] and "raise --warmup" in jit[0]


def test_cgroup_coverage_under_80_percent_warns(tmp_path):
    m, caps = loaded(demo_run(tmp_path, cgroup={"order-service": 20.0, "inventory-service": 2.0,
                                                 "payment-service": 1.0, "gateway": 1.0}))
    warns = [w for w in run_warnings(m, caps) if "cgroup" in w]
    assert len(warns) == 1 and "order-service" in warns[0] and "50%" in warns[0]


def test_sampled_bytes_stand_beside_the_bytes_the_jvm_counted(tmp_path):
    # 3.03 GB sampled over 500 iterations (6.06 MB each); the JVM's threads counted 2.85 GB
    m, caps = loaded(demo_run(tmp_path, jvm_alloc={"jvm_allocated_bytes": 2_850_000_000, "jvm_threads_ended": 1}))
    _, services = analyse(m, caps)
    sc = services["order-service"]
    assert sc.alloc_mb == pytest.approx(6.06) and sc.jvm_alloc_mb == pytest.approx(5.7)
    assert sc.alloc_coverage == pytest.approx(3.03 / 2.85) and sc.jvm_threads_ended == 1
    assert not [w for w in run_warnings(m, caps) if "allocation profile" in w]  # TLAB waste: in range
    text = write_report(tmp_path / "docs/perf/runs" / STAMP, repo_root=tmp_path).read_text()
    assert any(x.startswith("| order-service |") and "| 6.06 | 5.70 | 106.3% | 1 |" in x for x in text.splitlines())
    # the profile holding half of what the JVM counted is a warning that names the service
    m, caps = loaded(demo_run(tmp_path / "b", jvm_alloc={"jvm_allocated_bytes": 6_060_000_000}))
    warns = [w for w in run_warnings(m, caps) if "allocation profile" in w]
    assert len(warns) == 1 and "order-service" in warns[0] and "50%" in warns[0] and "lost" in warns[0]
    # runs from before the counters were read: no figure, no warning
    m, caps = loaded(demo_run(tmp_path / "c"))
    assert analyse(m, caps)[1]["order-service"].jvm_alloc_mb is None
    assert analyse(m, caps)[1]["order-service"].alloc_coverage is None


def test_profiler_window_outside_the_load_window_warns(tmp_path):
    m = copy.deepcopy(MANIFEST)
    assert not [w for w in validity_warnings({**m, "captures": [_cap("gateway", "cpu", samples=5000)]})
                if "window" in w]
    late = _cap("gateway", "cpu", samples=5000, profiler_stopped=T0.format(35))
    early = _cap("order-service", "cpu", samples=5000, profiler_started=T0.format(5))
    warns = [w for w in validity_warnings({**m, "captures": [late, early]}) if "load window" in w]
    assert len(warns) == 2
    assert "stopped 2.0 s after the load ended" in warns[0] and "started 4.0 s before" in warns[1]


def test_report_opens_with_the_planted_methods_and_their_cost(tmp_path):
    run = demo_run(tmp_path)
    out = write_report(run, repo_root=tmp_path)
    head = out.read_text().splitlines()[:40]
    text = "\n".join(head)
    for method, cost in (("demo.order.PricingEngine.priceOrder", "| 12.80 |"),
                         ("demo.order.OrderJson.write", "| 6.00 |"),
                         ("demo.inventory.StockLedger.reserve", "| 48.00 |"),
                         ("demo.payment.CardAuthorizer.authorize", "| 16.00 |")):
        assert any(method in x and cost in x for x in head), method
    assert "64.0% ± 3.0" in text
    assert head[2].startswith(f"Run `{STAMP}`")
    full = out.read_text()
    assert "[pprof](runs/" in full and "[jfr](runs/" in full and "[heatmap](runs/" in full
