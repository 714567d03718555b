"""The demo stack for real: healthy, java behind `sh -c`, the saga with its compensation,
idempotent sample data, and a base compose file free of profiling settings."""
from __future__ import annotations

import json
import subprocess

import requests

from flamekit.capture import jvm
from tests.integration.conftest import ROOT

PROFILING_MARKERS = ("cap_add", "security_opt", "async-profiler", "JAVA_TOOL_OPTIONS",
                     "PreserveFramePointer", "DebugNonSafepoints", "SYS_PTRACE", "seccomp")


def test_base_compose_file_is_valid_and_free_of_profiling_settings(docker_engine):
    p = subprocess.run(["docker", "compose", "-f", str(ROOT / "docker" / "docker-compose.yml"),
                        "config", "--format", "json"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    cfg = json.loads(p.stdout)
    assert set(cfg["services"]) == {"gateway", "order-service", "inventory-service", "payment-service"}
    for marker in PROFILING_MARKERS:
        assert marker not in p.stdout, f"base compose file holds {marker}"
    published = {name for name, svc in cfg["services"].items() if svc.get("ports")}
    assert published == {"gateway"}
    for name, svc in cfg["services"].items():
        assert svc.get("healthcheck"), f"{name} has no health check"
        assert svc.get("mem_limit"), f"{name} has no memory limit"
        assert "-Xmx" in svc["environment"]["JAVA_OPTS"], f"{name} has no heap cap"


def test_status_shows_healthy_services_and_the_gateway_port(demo_stack):
    out = demo_stack.inv("status").stdout
    for svc in ("gateway", "order-service", "inventory-service", "payment-service"):
        line = next(ln for ln in out.splitlines() if ln.startswith(svc + " "))
        assert "running" in line and "healthy" in line, line
    assert f":{demo_stack.port}->8080" in out


def test_java_is_not_pid_1(demo_stack):
    for svc in ("gateway", "order-service"):
        out = subprocess.run(["docker", "compose", "-p", demo_stack.project, "exec", "-T", svc]
                             + jvm.PROC_LIST_COMMAND, capture_output=True, text=True, timeout=60).stdout
        procs = {p.pid: p for p in jvm.parse_proc_list(out)}
        # Docker's init (compose `init: true`) is PID 1, sh its child, java the grandchild
        assert procs[1].comm == "docker-init", procs[1]
        assert any(p.comm == "sh" and "java" in p.cmdline for p in procs.values()), procs
        javas = jvm.java_processes(procs.values())
        assert len(javas) == 1 and javas[0].pid != 1


def stock(url: str, sku: str) -> int:
    r = requests.get(f"{url}/api/inventory/stock/{sku}", timeout=10)
    assert r.status_code == 200, r.text
    body = r.json()
    return int(body.get("available", body.get("qty", body.get("stock", -1))))


def test_orders_through_the_gateway_with_saga_and_compensation(demo_stack):
    url = demo_stack.gateway_url
    # set the stock this test needs itself: other tests may have recreated the containers
    r = requests.post(f"{url}/api/inventory/stock/bulk", json=[{"sku": "SKU-7", "qty": 100}], timeout=10)
    assert r.status_code < 300, r.text
    before = stock(url, "SKU-7")
    assert before == 100
    # the demo's issuer declines a good card 10 % of the time (PAYMENT_DECLINE_RATE): a declined
    # order must have released its reservation; five declines in a row would be a bug (1e-5)
    for _ in range(5):
        ok = requests.post(f"{url}/api/orders", json={"customerId": "c-1", "cardNumber": "4111-1111-1111-1111",
                                                       "items": [{"sku": "SKU-7", "qty": 2, "unitPrice": 3.5}]},
                           timeout=30)
        assert ok.status_code in (201, 402), ok.text
        order = ok.json()
        if order["status"] == "CONFIRMED":
            break
        assert order["status"] == "FAILED" and stock(url, "SKU-7") == before, order
    assert order["status"] == "CONFIRMED", order
    assert stock(url, "SKU-7") == before - 2
    got = requests.get(f"{url}/api/orders/{order['orderId']}", timeout=10)
    assert got.status_code == 200 and got.json()["orderId"] == order["orderId"]

    mid = stock(url, "SKU-7")
    declined = requests.post(f"{url}/api/orders", json={"customerId": "c-2", "cardNumber": "4000-0000-0000-0002",
                                                         "items": [{"sku": "SKU-7", "qty": 3, "unitPrice": 3.5}]},
                             timeout=30)
    assert declined.status_code in (201, 402), declined.text
    assert declined.json()["status"] == "FAILED"
    # the reservation was released: the compensation is visible in inventory
    assert stock(url, "SKU-7") == mid
    assert requests.get(f"{url}/api/orders/does-not-exist", timeout=10).status_code == 404


def test_sample_data_is_idempotent(demo_stack):
    first = demo_stack.inv("sample-data").stdout
    second = demo_stack.inv("sample-data").stdout
    assert "products with stock: 50" in first
    ids = lambda out: [ln for ln in out.splitlines() if ln.startswith("order sample-")]  # noqa: E731
    assert ids(first) == ids(second), (first, second)
    assert any("FAILED" in ln for ln in ids(first))
