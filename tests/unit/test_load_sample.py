"""flamekit.load.sample: which sample-data calls are retried, against a local HTTP server."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from flamekit.errors import ConfigError, StackError
from flamekit.load import sample
from tests.unit.test_load_k6 import closed_port, serve  # noqa: F401  (fixtures)

SAMPLE = Path(__file__).resolve().parents[2] / "scripts" / "perf" / "sample-data.json"


class Gateway(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, failures: dict[str, int]):
        super().__init__(("127.0.0.1", 0), Handler)
        self.failures = dict(failures)   # path -> how many 503s before answering
        self.posts: list[dict] = []
        self.lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        pass

    def do_POST(self) -> None:
        gw: Gateway = self.server  # type: ignore[assignment]
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
        with gw.lock:
            gw.posts.append({"path": self.path, "body": body})
            fail = gw.failures.get(self.path, 0) > 0
            if fail:
                gw.failures[self.path] -= 1
        if fail:
            code, answer = 503, {"error": "upstream starting"}
        elif self.path == "/api/orders":
            code, answer = 201, {"orderId": f"ord-{len(gw.posts)}", "status": "CONFIRMED"}
        else:
            code, answer = 200, {"updated": len(body)}
        data = json.dumps(answer).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch):
    real = sample.retrying_session
    monkeypatch.setattr(sample, "retrying_session", lambda post_is_idempotent: real(post_is_idempotent, backoff_s=0))
    return real


@pytest.fixture
def gateway(serve):
    def make(**failures):
        gw = Gateway({k.replace("_", "/"): v for k, v in failures.items()})
        return gw, serve(gw)

    return make


def paths(gw) -> list[str]:
    return [p["path"] for p in gw.posts]


def test_idempotent_posts_are_retried_through_503s(gateway):
    gw, url = gateway(**{"_api_inventory_stock_bulk": 2, "_api_orders": 1})
    summary = sample.load_sample_data(url, SAMPLE)
    assert paths(gw).count("/api/inventory/stock/bulk") == 3      # set stock: safe to resend
    assert paths(gw).count("/api/orders") == 4                     # 3 orders with a ref, one resent
    assert [o["ref"] for o in summary.orders] == ["sample-1", "sample-2", "sample-3"]
    assert all(o["http"] == 201 for o in summary.orders)


def test_an_order_without_ref_is_not_resent(gateway, tmp_path):
    data = json.loads(SAMPLE.read_text())
    for order in data["orders"]:
        order.pop("ref")
    f = tmp_path / "sample.json"
    f.write_text(json.dumps(data))
    gw, url = gateway(**{"_api_orders": 1})
    with pytest.raises(StackError, match="answered 503"):
        sample.load_sample_data(url, f)
    assert paths(gw).count("/api/orders") == 1


def test_nothing_listening_is_a_stack_error(closed_port):
    with pytest.raises(StackError, match="failed: ConnectionError"):
        sample.load_sample_data(f"http://127.0.0.1:{closed_port}", SAMPLE)


def test_retry_policy_allows_post_only_where_idempotent(no_backoff):
    with no_backoff(post_is_idempotent=True) as s:
        retry = s.get_adapter("http://x").max_retries
        assert "POST" in retry.allowed_methods and set(retry.status_forcelist) == {502, 503, 504}
    with no_backoff(post_is_idempotent=False) as s:
        retry = s.get_adapter("http://x").max_retries
        assert "POST" not in retry.allowed_methods and retry.connect > 0


def test_read_sample_rejects_bad_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        sample.read_sample(tmp_path / "none.json")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"products": []}))
    with pytest.raises(ConfigError, match="no list 'orders'"):
        sample.read_sample(bad)
