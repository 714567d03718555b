"""`inv profile` for real: planted hotspots found, every event, one window for all, Ctrl-C safe."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from flamekit import config as fkconfig
from flamekit.analysis import hotspots as report
from flamekit.targets import compose as fkstack
from tests.integration.conftest import INV, ROOT

SHORT = ["--duration", "10", "--warmup", "4"]


def newest_run(demo_stack) -> Path:
    runs = sorted((demo_stack.out / "runs").iterdir(), key=lambda p: p.stat().st_mtime)
    return runs[-1]


def capture_of(run: Path, service: str, event: str) -> dict:
    m = json.loads((run / "manifest.json").read_text())
    assert m["status"] == "ok", m.get("error")
    return next(c for c in m["captures"] if c["service"] == service and c["event"] == event)


def profile(demo_stack, service: str, event: str, *extra: str):
    p = demo_stack.inv("profile", "--service", service, "--event", event, *SHORT, *extra)
    return p, newest_run(demo_stack)


def test_cpu_on_order_service_finds_pricing_engine(demo_stack):
    p, run = profile(demo_stack, "order-service", "cpu")
    cap = capture_of(run, "order-service", "cpu")
    html = (demo_stack.out / "flamegraphs" / f"order-service-cpu-{run.name}.html")
    assert html.is_file() and html.read_text().lstrip().lower().startswith("<!doctype html")
    assert "async-profiler" in html.read_text().lower() or "flame" in html.read_text().lower()
    prof = report.parse_collapsed(run / "order-service" / "cpu.collapsed")
    top = report.hotspots(prof, "cpu", top=1)[0]
    assert top.name == "demo.order.PricingEngine.priceOrder", [h.name for h in report.hotspots(prof, "cpu", 5)]
    assert cap["engine"] in ("ctimer", "itimer", "perf_events")
    # cpu_engine auto: perf_events where it may sample kernel stacks, else itimer (the host's
    # perf_event_paranoid, which the containers see too)
    paranoid = int(Path("/proc/sys/kernel/perf_event_paranoid").read_text())
    assert cap["engine_asked"] == ("cpu" if paranoid <= 1 else "itimer"), cap
    assert f"perf_event_paranoid {paranoid}" in cap["engine_why"]
    if cap["engine_asked"] == "itimer":
        assert cap["engine"] == "itimer"
    assert cap["samples"] == prof.total > 0
    m = json.loads((run / "manifest.json").read_text())
    assert m["load"]["target_tps"] == 25 and m["load"]["achieved_tps"] > 20
    assert m["environment"]["async_profiler"] == "4.3"
    # the pprof export opens in a real pprof reader (Go's), with the planted method in it
    go = shutil.which("go") or ("/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").is_file() else None)
    if go:
        top = subprocess.run([go, "tool", "pprof", "-top", str(run / cap["pprof"])], capture_output=True,
                             text=True, timeout=180)
        assert top.returncode == 0, top.stderr
        assert "PricingEngine.priceOrder" in top.stdout, top.stdout[:2000]
    assert cap["jvm"]["flags_missing"] == [] and cap["jvm"]["version"].startswith("17")
    assert "engine" in p.stdout or "samples" in p.stdout


def test_cpu_clock_engine_samples_user_mode_only_and_the_report_says_so(demo_stack):
    # seccomp:unconfined lets perf_event_open through; perf_event_paranoid 2 (the default
    # here) allows no kernel sampling, so the profile must hold no kernel frame
    p = demo_stack.inv("profile", "--service", "order-service", "--event", "cpu", *SHORT,
                       extra_env={"INVOKE_FLAMEKIT_CPU_ENGINE": "cpu-clock"})
    run = newest_run(demo_stack)
    cap = capture_of(run, "order-service", "cpu")
    m = json.loads((run / "manifest.json").read_text())
    assert m["settings"]["cpu_engine"] == "cpu-clock"
    assert cap["engine"] == "perf_events", p.stdout
    text = (run / "order-service" / "cpu.collapsed").read_text()
    paranoid = Path("/proc/sys/kernel/perf_event_paranoid")
    if paranoid.is_file() and int(paranoid.read_text()) >= 2:
        assert cap["kernel_frames"] is False and "_[k]" not in text
    else:
        assert cap["kernel_frames"] == ("_[k]" in text)
    prof = report.parse_collapsed(run / "order-service" / "cpu.collapsed")
    assert report.hotspots(prof, "cpu", top=1)[0].name == "demo.order.PricingEngine.priceOrder"
    rep = demo_stack.inv("report", "--run", run.name)
    md = next((demo_stack.out / "reports").glob(f"flamegraph-analysis-{run.name}.md"))
    if cap["kernel_frames"] is False:
        assert "perf_events, user mode only" in md.read_text(), rep.stdout


def test_one_host_jvm_converts_many_recordings_and_names_the_failed_job(demo_stack, tmp_path):
    from flamekit.capture import convert
    _, run = profile(demo_stack, "order-service", "cpu")
    jfr = run / "order-service" / "profile.jfr"
    jfrconv = ROOT / "docker" / "profiling" / "async-profiler" / "bin" / "jfrconv"
    jobs = [["--cpu", str(jfr), str(tmp_path / "cpu.collapsed")],
            ["--cpu", str(tmp_path / "absent.jfr"), str(tmp_path / "absent.collapsed")],
            ["--cpu", "--inverted", str(jfr), str(tmp_path / "cpu.html")]]
    status = convert.run_batch(jfrconv, jobs)
    assert status[0] is None and status[2] is None, status
    assert isinstance(status[1], str) and "absent.jfr" in status[1], status
    # the same stacks as the capture's own conversion
    assert (tmp_path / "cpu.collapsed").read_text() == (run / "order-service" / "cpu.collapsed").read_text()
    assert (tmp_path / "cpu.html").read_text().lstrip().lower().startswith("<!doctype html")


def test_alloc_on_order_service_finds_order_json(demo_stack):
    _, run = profile(demo_stack, "order-service", "alloc")
    cap = capture_of(run, "order-service", "alloc")
    assert cap["weight"] == "bytes" and cap["samples"] > 0
    prof = report.parse_collapsed(run / "order-service" / "alloc.collapsed")
    assert report.top_app_frame(prof, "alloc") == "demo.order.OrderJson.write"
    # the JVM's own per-thread counters over the same window: the sampled bytes are close to
    # them (a few percent over: the heap sampler counts TLAB waste too)
    assert cap["jvm_allocated_bytes"] > 0 and cap["jvm_threads_ended"] >= 0
    assert 0.8 <= cap["weight_total"] / cap["jvm_allocated_bytes"] <= 1.25, cap


def test_lock_on_inventory_shows_stock_ledger(demo_stack):
    _, run = profile(demo_stack, "inventory-service", "lock")
    prof = report.parse_collapsed(run / "inventory-service" / "lock.collapsed")
    names = {h.name for h in report.app_hotspots(prof, "lock", top=5)}
    assert "demo.inventory.StockLedger.reserve" in names, names


def test_wall_on_payment_shows_card_authorizer(demo_stack):
    _, run = profile(demo_stack, "payment-service", "wall")
    prof = report.parse_collapsed(run / "payment-service" / "wall.collapsed")
    assert report.top_app_frame(prof, "wall") == "demo.payment.CardAuthorizer.authorize"


def test_event_all_gives_four_flame_graphs_from_one_window(demo_stack):
    p, run = profile(demo_stack, "order-service", "all")
    m = json.loads((run / "manifest.json").read_text())
    assert sorted(c["event"] for c in m["captures"]) == ["alloc", "cpu", "lock", "wall"]
    assert all(c["error"] is None and c["samples"] > 0 for c in m["captures"])
    assert len({c["jfr"] for c in m["captures"]}) == 1  # one recording, one load window
    for ev in ("cpu", "alloc", "wall", "lock"):
        assert (demo_stack.out / "flamegraphs" / f"order-service-{ev}-{run.name}.html").is_file()
    assert (run / "k6-summary.json").is_file()


def test_interrupt_leaves_no_profiler_running(demo_stack):
    env = dict(os.environ)
    env.update(demo_stack.env)
    proc = subprocess.Popen(INV + ["profile", "--service", "order-service", "--event", "cpu",
                                   "--duration", "60", "--warmup", "0"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        seen = ""
        deadline = time.monotonic() + 120
        while "profiling order-service" not in seen and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            seen += line
        assert "profiling order-service" in seen, seen
        time.sleep(3)
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0
    assert "interrupted" in (seen + rest).lower()
    s = fkconfig.build_settings({"project_name": demo_stack.project}, ROOT)
    st = fkstack.ComposeTarget(s)
    from flamekit.capture.jvm import jvm_of
    pid = jvm_of(st, "order-service", ()).pid
    status = st.exec("order-service", ["/opt/async-profiler/bin/asprof", "status", str(pid)])
    assert "not active" in status.lower(), status
    # what was captured is kept, and the run says it failed
    run = newest_run(demo_stack)
    m = json.loads((run / "manifest.json").read_text())
    assert m["status"] == "failed" and "interrupt" in (m["error"] or "").lower()


@pytest.mark.parametrize("args,needle", [
    (["--service", "billing"], "error: unknown service 'billing'"),
    (["--event", "heap"], "error: unknown event 'heap'"),
])
def test_bad_arguments_are_one_line_and_write_nothing(demo_stack, args, needle):
    before = sorted((demo_stack.out / "runs").glob("*")) if (demo_stack.out / "runs").exists() else []
    p = demo_stack.inv("profile", *args, check=False)
    assert p.returncode != 0
    assert p.stderr.strip().splitlines()[-1].startswith(needle), p.stderr
    assert "Traceback" not in p.stderr
    after = sorted((demo_stack.out / "runs").glob("*")) if (demo_stack.out / "runs").exists() else []
    assert after == before


def test_profiler_not_downloaded_is_one_line(demo_stack, tmp_path):
    p = demo_stack.inv("profile", check=False, extra_env={"INVOKE_FLAMEKIT_PROFILER_DIR": str(tmp_path / "nothing"),
                                                         "INVOKE_FLAMEKIT_RUNS_DIR": str(tmp_path / "runs")})
    assert p.returncode != 0
    assert p.stderr.strip().splitlines()[-1].startswith("error: async-profiler is not installed")
    assert not (tmp_path / "runs").exists()
