"""Sample data for the demo stack, loaded through the gateway with requests.

Idempotent: stock is *set* (not added) per SKU, and each sample order carries a
``ref`` that order-service uses as an idempotency key, so a second load
returns the orders of the first instead of placing new ones.
"""
from __future__ import annotations

import contextlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from ..errors import ConfigError, StackError

log = logging.getLogger(__name__)

# The gateway answers 502/503/504 while a service behind it is still starting or timed out.
RETRY_STATUSES = (502, 503, 504)


@dataclass
class SampleSummary:
    products: int = 0
    units: int = 0
    customers: int = 0
    orders: list[dict] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"products with stock: {self.products} ({self.units:,} units)",
               f"customers: {self.customers}"]
        for o in self.orders:
            out.append(f"order {o.get('ref')}: id {o.get('id')} status {o.get('status')}")
        return out


def read_sample(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"sample data file not found: {path}", "check flamekit.sample_data") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"sample data file {path} is not valid JSON: {exc}", "fix the file") from None
    for key in ("products", "orders"):
        if not isinstance(data.get(key), list):
            raise ConfigError(f"sample data file {path} has no list {key!r}", "see scripts/perf/sample-data.json")
    return data


def retrying_session(post_is_idempotent: bool, retries: int = 4, backoff_s: float = 0.5) -> requests.Session:
    """A Session that retries connection errors, and -- for the methods it may repeat -- lost
    answers and 502/503/504, with exponential backoff.

    Connection errors are retried for every method: the request never left. POST is not in
    urllib3's default ``allowed_methods`` because a POST in general is not idempotent; here it
    is allowed only where the demo makes it so: POST /api/inventory/stock/bulk *sets* stock,
    and POST /api/orders with a ``ref`` is placed at most once (order-service claims the ref
    before anything else and answers a repeat with the first order, or 409 while it runs).
    An order without a ref is never resent after it may have reached the service.
    """
    methods = {"GET", "HEAD", "PUT"} | ({"POST"} if post_is_idempotent else set())
    retry = Retry(total=retries, connect=retries, read=retries, status=retries,
                  backoff_factor=backoff_s, status_forcelist=RETRY_STATUSES,
                  allowed_methods=frozenset(methods),
                  raise_on_status=False)  # the last 5xx answer is returned, and reported below
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def _call(session: requests.Session, method: str, url: str, **kw) -> requests.Response:
    try:
        return session.request(method, url, timeout=30, **kw)
    except requests.RequestException as exc:
        raise StackError(f"{method} {url} failed: {exc.__class__.__name__}",
                         "is the stack up and healthy? run `inv up` then `inv wait-healthy`") from None


def load_sample_data(gateway_url: str, path: Path, session: requests.Session | None = None) -> SampleSummary:
    """Set the sample stock and place the sample orders. ``session`` (tests) replaces both
    retrying sessions."""
    data = read_sample(path)
    summary = SampleSummary()
    with contextlib.ExitStack() as stack:
        idempotent = session or stack.enter_context(retrying_session(post_is_idempotent=True))
        once = session or stack.enter_context(retrying_session(post_is_idempotent=False))
        stock = [{"sku": p["sku"], "qty": int(p["qty"])} for p in data["products"]]
        url = f"{gateway_url}/api/inventory/stock/bulk"
        r = _call(idempotent, "POST", url, json=stock)
        if r.status_code >= 300:
            raise StackError(f"POST {url} answered {r.status_code}: {r.text[:200]}",
                             "see `inv status` and the service logs")
        summary.products = len(stock)
        summary.units = sum(p["qty"] for p in stock)
        summary.customers = len(data.get("customers") or [])
        url = f"{gateway_url}/api/orders"
        for order in data["orders"]:
            r = _call(idempotent if order.get("ref") else once, "POST", url, json=order)
            if r.status_code not in (200, 201, 409):
                raise StackError(f"POST {url} answered {r.status_code}: {r.text[:200]}",
                                 "see `docker compose logs order-service`")
            try:
                body = r.json()
            except ValueError:
                body = {}
            summary.orders.append({"ref": order.get("ref"), "id": body.get("orderId", body.get("id")),
                                   "status": body.get("status"), "http": r.status_code})
    return summary
