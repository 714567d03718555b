#!/usr/bin/env python3
"""Does flamekit find the planted hotspots, and with the shares they were designed to have?

For each hotspot of the demo stack (docker/demo/README.md) this script profiles the service with
`inv profile` at the default 25 TPS and reads back, from the run directory, what flamekit
reports:

  cpu    order-service      self share of demo.order.PricingEngine.priceOrder
  alloc  order-service      application-site share of demo.order.OrderJson.write
  lock   inventory-service  application share of demo.inventory.StockLedger.reserve
  wall   payment-service    application share of demo.payment.CardAuthorizer.authorize

next to the designed share, over 5 repeated runs (quick: 2 short ones): mean, spread, and how
often the planted method is the top application frame. Then it doubles PRICING_COST (compose
recreates order-service), profiles once more, restores the cost (recreating it again) and profiles
a cost-1 baseline on that equally fresh JVM, and checks the priceOrder share moved up, next to
what the simple model 2s/(1+s) predicts.

Each capture is also checked against the ground truth: the demo services' own counters of what
the planted code cost (GET /debug/ground-truth/<service> through the gateway), read every 0.5 s
while `inv profile` runs and interpolated at the capture's profiler start and stop times, beside
flamekit's total share and cost per call for the same window.

One repeat is four `inv profile` runs, one event each (a single event per capture, so the cpu
share is not inflated by the signal handlers of wall-clock profiling): order-service cpu,
order-service alloc, inventory-service lock, payment-service wall.
"""
from __future__ import annotations

import datetime as dt
import json
import math
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common as c  # noqa: E402

README = c.ROOT / "docker" / "demo" / "README.md"


@dataclass(frozen=True)
class Designed:
    """What docker/demo/README.md says the hotspot's share is, and which flamekit figure that
    number is comparable with. ``quote`` must still appear in the README (whitespace-normalised)
    or the figure is reported as no longer documented."""

    low: float
    high: float
    compare: str      # "share" (the primary figure), "total" (total share), "of_app" (share of app stacks)
    text: str
    quote: str


@dataclass(frozen=True)
class Planted:
    key: str          # cpu / alloc / lock / wall
    service: str
    event: str
    method: str
    measure: str      # "self": share_of self share; "app": application-frame (deepest app frame) share
    designed: Designed

    @property
    def short(self) -> str:
        return ".".join(self.method.split(".")[-2:])


PLANTED = (
    Planted("cpu", "order-service", "cpu", "demo.order.PricingEngine.priceOrder", "self",
            Designed(0.63, 0.74, "share",
                     "63 % and 74 % of order-service JVM CPU at 25 orders/s (two runs of the ground-truth "
                     "counters)", "63 % and 74 % (two runs)")),
    Planted("alloc", "order-service", "alloc", "demo.order.OrderJson.write", "app",
            Designed(0.84, 0.84, "total",
                     "84 % of order-service's allocated bytes (ThreadMXBean around the call, callees "
                     "included; a JFR check put the site at 60 % of allocation samples)", "84 % (ThreadMXBean)")),
    Planted("lock", "inventory-service", "lock", "demo.inventory.StockLedger.reserve", "app",
            Designed(0.75, 0.75, "share",
                     "75 % of the ledger monitor's wait time (JFR check; `release` the other 25 %)",
                     "`reserve` held 75 % of the monitor-wait time")),
    Planted("wall", "payment-service", "wall", "demo.payment.CardAuthorizer.authorize", "app",
            Designed(1.0, 1.0, "of_app",
                     "nearly all of payment-service's request time (100 % of its `Thread.sleep` time); "
                     "no share of *all* wall samples is designed: idle pool threads dominate those",
                     "100 % of `jdk.ThreadSleep` time in payment-service is under `CardAuthorizer.authorize`")),
)
# one `inv profile` per planted hotspot, one event each
PROFILES = tuple((p.service, p.event) for p in PLANTED)
COMPARE_LABEL = {"share": "the share itself", "total": "its total share (callees included)",
                 "of_app": "its share of the samples that have an application frame"}


# --------------------------------------------------------------------------- ground truth
#: What each planted method really cost, from the services' own counters (GET
#: /debug/ground-truth through the gateway's pass-through, docker/demo/README.md): the counter of
#: the planted cost, its call counter, and what its share is taken of.
GT_COUNTERS = {
    "cpu": {"value": "pricingCpuNanos", "calls": "pricingCalls", "unit": "ns"},
    "alloc": {"value": "orderJsonAllocatedBytes", "calls": "orderJsonCalls", "unit": "bytes"},
    "lock": {"value": "reserveLockWaitNanos", "calls": "reserveCalls", "unit": "ns",
             "others": ("releaseLockWaitNanos",)},
    "wall": {"value": "authorizeSleepNanos", "calls": "authorizeCalls", "unit": "ns", "total": "handlerNanos"},
}
#: What the ground-truth share is a share of (flamekit's: the capture's samples or weight).
GT_SHARE_OF = {
    "cpu": "order-service container CPU (cgroup, the report's service CPU)",
    "alloc": "bytes allocated by order-service's live threads",
    "lock": "wait for the ledger monitor (`reserve` + `release`)",
    "wall": "request-handling wall time of payment-service's pool threads (dispatch to close)",
}
GT_PERIOD_S = 0.5
CPU_INTERVAL_NS = 10_000_000  # async-profiler's default cpu interval (10 ms) when the run names none
WALL_INTERVAL_NS = 20_000_000  # flamekit's wall interval (capture/session.py WALL_INTERVAL)


def parse_interval_ns(text: str | None, default: int | None = CPU_INTERVAL_NS) -> int | None:
    """async-profiler interval text ("10ms", "500us", "1s", or bare ns) -> ns."""
    if not text:
        return default
    t = str(text).strip().lower()
    for suffix, mult in (("ns", 1), ("us", 1_000), ("ms", 1_000_000), ("s", 1_000_000_000)):
        if t.endswith(suffix) and t[:-len(suffix)].replace(".", "", 1).isdigit():
            return int(float(t[:-len(suffix)]) * mult)
    return int(t) if t.isdigit() else default


def iso_epoch(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return dt.datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def flatten_reading(reply: dict) -> tuple[float, dict[str, float]] | None:
    """(the JVM's wall-clock time of the snapshot in epoch seconds, every cumulative value)."""
    if not isinstance(reply, dict) or "epochMicros" not in reply:
        return None
    vals = {k: float(reply[k]) for k in ("processCpuNanos", "allocatedBytes", "uptimeMillis")
            if isinstance(reply.get(k), (int, float))}
    vals.update({k: float(v) for k, v in (reply.get("counters") or {}).items() if isinstance(v, (int, float))})
    return reply["epochMicros"] / 1e6, vals


def interpolate(readings: list[tuple[float, dict[str, float]]], t: float, key: str,
                slack_s: float = 2.0) -> float | None:
    """A cumulative counter at epoch time t, linear between the two readings around t (None when
    t is not inside the readings, give or take ``slack_s`` at the ends)."""
    pts = [(ts, v[key]) for ts, v in readings if key in v]
    if not pts or t < pts[0][0] - slack_s or t > pts[-1][0] + slack_s:
        return None
    if t <= pts[0][0]:
        return pts[0][1]
    for (t0, v0), (t1, v1) in zip(pts, pts[1:]):
        if t0 <= t <= t1:
            return v0 if t1 == t0 else v0 + (v1 - v0) * (t - t0) / (t1 - t0)
    return pts[-1][1]


def window_deltas(readings: list[tuple[float, dict[str, float]]], t0: float, t1: float) -> dict[str, float]:
    """Each counter's growth between epoch times t0 and t1 (interpolated at both edges)."""
    keys = set().union(*(v.keys() for _, v in readings)) if readings else set()
    out = {}
    for k in sorted(keys):
        a, b = interpolate(readings, t0, k), interpolate(readings, t1, k)
        if a is not None and b is not None:
            out[k] = b - a
    return out


class GroundTruthPoller(c.PeriodicPoller):
    """Reads one service's GET /debug/ground-truth (through the gateway's pass-through) every
    ``period`` seconds in a thread while an `inv profile` runs, so its counters can be read at
    the capture window's exact edges afterwards (each reply is stamped by the JVM's own clock)."""

    join_s = 15.0

    def __init__(self, gateway_url: str, service: str, period: float = GT_PERIOD_S):
        super().__init__(period)
        self.url = f"{gateway_url.rstrip('/')}/debug/ground-truth/{service}"
        self.readings: list[tuple[float, dict[str, float]]] = []
        self.errors: list[str] = []

    def poll(self) -> None:
        try:
            with urllib.request.urlopen(self.url, timeout=5) as r:
                got = flatten_reading(json.loads(r.read().decode("utf-8")))
            if got is None:
                self.errors.append(f"{self.url}: not a ground-truth reply")
            else:
                self.readings.append(got)
        except Exception as exc:  # noqa: BLE001 - a missed reading is recorded, the run goes on
            self.errors.append(f"{self.url}: {exc}")


def ground_truth(p_key: str, d: dict[str, float], window_s: float, cgroup_cpu_s: float | None) -> dict:
    """The planted method's real cost over one capture window, from counter growths ``d``."""
    spec = GT_COUNTERS[p_key]
    value, calls = d.get(spec["value"]), d.get(spec["calls"])
    out: dict = {"window_s": window_s, "value": value, "calls": calls, "unit": spec["unit"],
                 "per_call": (value / calls) if value is not None and calls else None,
                 "process_cpu_s": (d["processCpuNanos"] / 1e9) if "processCpuNanos" in d else None,
                 "cgroup_cpu_s": cgroup_cpu_s, "share": None}
    if p_key == "cpu" and value is not None:
        out["share_of_process_cpu"] = c.ratio(value, d.get("processCpuNanos"))
        out["share_of_cgroup_cpu"] = c.ratio(value / 1e9, cgroup_cpu_s)
        # the service's CPU as the report states it: the container's cgroup over the window
        out["share"] = out["share_of_cgroup_cpu"] if cgroup_cpu_s else out["share_of_process_cpu"]
    elif p_key == "alloc" and value is not None:
        out["share"] = c.ratio(value, d.get("allocatedBytes"))
    elif p_key == "lock" and value is not None:
        others = [d.get(k) for k in spec["others"]]
        out["share"] = c.ratio(value, value + sum(x or 0.0 for x in others))
    elif p_key == "wall" and value is not None:
        out["handler_s"] = (d["handlerNanos"] / 1e9) if "handlerNanos" in d else None
        out["share"] = c.ratio(value, d.get("handlerNanos"))  # of the request-handling time
    return out


def flamekit_estimate(p_key: str, m: dict, cap, calls: float | None, cgroup_cpu_s: float | None = None) -> dict:
    """flamekit's figures for the same window: the method's total (self + callees) share, and
    its cost per call from the samples (cpu: samples x interval; alloc/lock: the captured weight;
    wall: the request threads' samples under the method x the wall interval). The cpu share is
    of the container's cgroup CPU, as the report states the service's CPU; the share of the
    profile's own samples is kept as ``sample_share``."""
    total = m.get("total_share")
    out: dict = {"share": total, "sample_share": total, "self_share": m.get("self_share"), "value": None,
                 "per_call": None}
    if p_key == "cpu":
        interval = parse_interval_ns(cap.interval)
        out["interval_ns"] = interval
        out["cpu_s"] = (cap.samples or 0) * interval / 1e9 if interval else None
        if total is not None and interval:
            out["value"] = total * (cap.samples or 0) * interval
            if cgroup_cpu_s:
                out["share"] = out["value"] / (cgroup_cpu_s * 1e9)
    elif p_key == "wall":
        out.update(request_wall_estimate(cap, m))
    elif p_key == "alloc":
        out["share"] = m.get("total_share")
        if total is not None and cap.weight_total:
            out["value"] = total * cap.weight_total
            # the bytes the JVM's threads counted in the window (the report's service table):
            # the sampled total also holds TLAB waste. Shares stay of the profile's own bytes:
            # the method's sampled bytes can read high too (x1.00-1.05), and a share of the
            # counted bytes read +0.3 to +4.9 points where the profile's own read -1.8 to -2.9
            # (2026-12-02); the table keeps the latter, the text gives both
            jvm_bytes = (getattr(cap, "meta", None) or {}).get("jvm_allocated_bytes")
            out["jvm_allocated_bytes"] = jvm_bytes
            out["sampled_over_jvm"] = c.ratio(cap.weight_total, jvm_bytes)
            out["share_of_jvm_counted"] = (out["value"] / jvm_bytes) if jvm_bytes else None
    elif p_key == "lock":
        out["share"] = m.get("total_share")
        if total is not None and cap.weight_total:
            out["value"] = total * cap.weight_total
    if out["value"] is not None and calls:
        out["per_call"] = out["value"] / calls
    return out


def request_wall_estimate(cap, m: dict) -> dict:
    """The planted method's share of the request threads' wall samples (the report's request
    wall view: threads that ran application code, stacks with an application frame) and its
    wall ns (samples x the wall interval; async-profiler's wall sampler spreads its ticks so
    each thread is sampled about once per interval, whatever the thread count)."""
    from flamekit.analysis.collapsed import parse_collapsed
    from flamekit.analysis.hotspots import share_of
    from flamekit.analysis.threads import request_wall
    path = cap.file("threads_collapsed")
    if path is None:
        return {"share": None, "error": "no wall.threads.collapsed in the run"}
    req = request_wall(parse_collapsed(path), cap.app_packages).request
    if not req.total:
        return {"share": None, "error": "no request-thread wall samples"}
    _, total_share = share_of(req, m.get("method") or "demo.payment.CardAuthorizer.authorize", "wall")
    interval = parse_interval_ns(cap.interval, WALL_INTERVAL_NS) or WALL_INTERVAL_NS
    return {"share": total_share, "request_samples": req.total, "interval_ns": interval,
            "value": total_share * req.total * interval, "request_wall_s": req.total * interval / 1e9}


def _norm(text: str) -> str:
    return " ".join(text.split())


def designed_shares(text: str | None, planted=PLANTED) -> dict[str, dict]:
    """The designed figure per hotspot key, if the README still says it (its quote is found)."""
    out: dict[str, dict] = {}
    body = _norm(text) if text else None
    for p in planted:
        d = p.designed
        if body is None:
            out[p.key] = {"share": None, "why": "docker/demo/README.md is missing"}
        elif _norm(d.quote) not in body:
            out[p.key] = {"share": None, "why": f"docker/demo/README.md no longer says \"{d.quote}\""}
        else:
            out[p.key] = {"share": (d.low + d.high) / 2, "low": d.low, "high": d.high, "text": d.text,
                          "compare": d.compare}
    return out


def measure(cap, p: Planted) -> dict:
    """What flamekit reports about the planted method in one capture."""
    from flamekit.analysis.hotspots import app_coverage, app_hotspots, share_of, top_app_frame
    from flamekit.analysis.stats import uncertainty
    prof = cap.profile
    if prof is None or not prof.total:
        return {"share": None, "self_share": None, "top_app_frame": None, "is_top": False,
                "samples": cap.samples, "error": cap.error or "no profile"}
    self_share, total_share = share_of(prof, p.method, p.event)
    app_share = 0.0
    for h in app_hotspots(prof, p.event, None):
        if h.name == p.method:
            app_share = h.self_share
            break
    coverage = app_coverage(prof, p.event)
    top = top_app_frame(prof, p.event)
    share = self_share if p.measure == "self" else app_share
    n = int(cap.samples or 0)
    u = uncertainty(n, share)
    return {"share": share, "self_share": self_share, "app_share": app_share, "total_share": total_share,
            "app_coverage": coverage, "of_app": (app_share / coverage) if coverage else None,
            "top_app_frame": top, "is_top": top == p.method, "samples": n,
            "pm_points": u.points if n else None, "weight": cap.weight, "error": cap.error}


def fmt_cost(v: float | None, unit: str) -> str:
    if v is None:
        return "n/a"
    return f"{v / 1e6:.2f} ms" if unit == "ns" else f"{v / 1024:,.0f} KiB"


def compare_window(p: Planted, m: dict, cap, manifest: dict, poller: GroundTruthPoller, bench: c.Bench,
                   label: str) -> None:
    """Sets m["ground_truth"] and m["flamekit"]: the counters' growth over this capture's
    profiler window (its profiler_started/stopped, else the run's timeline), beside flamekit's
    figures for the same window."""
    meta = cap.meta or {}
    tl = manifest.get("timeline") or {}
    t0 = iso_epoch(meta.get("profiler_started") or tl.get("profilers_started"))
    t1 = iso_epoch(meta.get("profiler_stopped") or tl.get("profilers_stopped"))
    m["ground_truth_readings"] = len(poller.readings)
    if t0 is None or t1 is None or t1 <= t0 or len(poller.readings) < 2:
        why = (f"{len(poller.readings)} readings of {poller.url}" + (f" ({poller.errors[-1]})" if poller.errors else "")
               if len(poller.readings) < 2 else "no profiler window in the manifest")
        bench.problems.append(f"{label} {p.key}: no ground truth for the capture window: {why}")
        return
    d = window_deltas(poller.readings, t0, t1)
    gt = ground_truth(p.key, d, t1 - t0, meta.get("cgroup_cpu_s"))
    m["ground_truth"] = gt
    m["flamekit"] = flamekit_estimate(p.key, dict(m, method=p.method), cap, gt.get("calls"),
                                      meta.get("cgroup_cpu_s"))
    if gt.get("value") is None:
        bench.problems.append(f"{label} {p.key}: {poller.url} has no {GT_COUNTERS[p.key]['value']} counter "
                              "(an image older than the ground-truth endpoint?)")


def profile_once(st: c.BenchStack, bench: c.Bench, label: str, duration: int, warmup: int,
                 only: tuple[str, ...] | None = None) -> dict:
    """One repeat: an `inv profile` per hotspot; returns {hotspot key: measurement}."""
    out: dict = {"label": label, "profiles": [], "hotspots": {}}
    for service, events in PROFILES:
        if only and events not in only:
            continue
        with GroundTruthPoller(st.gateway_url, service) as poller:
            res = st.inv("profile", "--service", service, "--event", events, "--duration", str(duration),
                         "--warmup", str(warmup), "--tps", "25", check=False, timeout=600)
        entry = {"service": service, "events": events, "wall_s": round(res.wall_s, 1), "rc": res.returncode}
        out["profiles"].append(entry)
        rd = res.run_dir()
        if not res.ok or rd is None:
            msg = f"{label}: inv profile --service {service} --event {events} exited {res.returncode}: " \
                  f"{res.tail(3)}"
            bench.problems.append(msg)
            c.say("  " + msg)
            continue
        manifest, caps = c.load_run(rd)
        entry["run_dir"] = str(rd)
        load = manifest.get("load") or {}
        entry["load"] = {k: load.get(k) for k in ("achieved_tps", "p95_ms", "dropped_iterations", "error_rate",
                                                  "outcomes")}
        issues, severe = c.load_issues(load)
        entry["load_issues"] = issues
        if severe:
            bench.problems.append(f"{label} {service} {events}: the load was not served normally "
                                  f"({', '.join(issues)}); its shares are not meaningful")
        entry["image_id"] = next((cap.meta.get("image_id") for cap in caps if cap.meta.get("image_id")), None)
        for p in PLANTED:
            if p.service != service or p.event != events:
                continue
            cap = next((x for x in caps if x.service == service and x.event == p.event), None)
            if cap is None:
                bench.problems.append(f"{label}: no {p.event} capture of {service} in {rd}")
                continue
            m = measure(cap, p)
            m["run_dir"] = str(rd)
            compare_window(p, m, cap, manifest, poller, bench, label)
            out["hotspots"][p.key] = m
            c.say(f"  {label} {p.key:5s} {p.short:26s} share {c.fmt_pct(m['share'])} "
                  f"(± {c.fmt_num(m.get('pm_points'))} pts, {m['samples']:,} samples); "
                  f"top application frame: {m['top_app_frame']}")
            gt, fk = m.get("ground_truth") or {}, m.get("flamekit") or {}
            if gt:
                c.say(f"  {label} {p.key:5s} ground truth over the {c.fmt_num(gt['window_s'])} s window: share "
                      f"{c.fmt_pct(gt.get('share'))} vs flamekit {c.fmt_pct(fk.get('share'))}; per call "
                      f"{fmt_cost(gt.get('per_call'), gt['unit'])} vs flamekit {fmt_cost(fk.get('per_call'), gt['unit'])}"
                      f" ({c.fmt_num(gt.get('calls'), 0)} calls)")
    return out


def _image(run: dict | None) -> str | None:
    for e in (run or {}).get("profiles", []):
        if e.get("image_id"):
            return e["image_id"]
    return None


def predicted_doubled(s: float | None) -> float | None:
    """priceOrder's share when its cost doubles and nothing else changes: 2s / (1 + s)."""
    return None if s is None else 2 * s / (1 + s)


def main(argv: list[str] | None = None) -> int:
    ap = c.parser(__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=None, help="repeated runs (default 5, quick 2)")
    ap.add_argument("--duration", type=int, default=None, help="capture seconds (default 30, quick 4)")
    ap.add_argument("--warmup", type=int, default=None, help="warm-up seconds per run (default 10, quick 1)")
    ap.add_argument("--recreate-prime", type=int, default=None,
                    help="seconds of priming load after each recreation of order-service (default 60, quick 0)")
    ap.add_argument("--only", default=None,
                    help="comma-separated hotspots to measure (cpu, alloc, lock, wall; default all); "
                         "the doubled-cost step runs only with cpu. For experiments: the results file "
                         "then holds only these rows")
    c.cpu_engine_option(ap)
    args = ap.parse_args(argv)
    c.check_args(ap, args)
    only = tuple(x.strip() for x in args.only.split(",") if x.strip()) if args.only else None
    if only and set(only) - {p.key for p in PLANTED}:
        ap.error(f"--only takes {', '.join(p.key for p in PLANTED)}; got {args.only}")
    repeats = args.repeats or (2 if args.quick else 5)
    duration = args.duration or (4 if args.quick else 30)
    warmup = args.warmup if args.warmup is not None else (1 if args.quick else 10)
    prime_s = 3 if args.quick else 20
    recreate_prime_s = args.recreate_prime if args.recreate_prime is not None else (0 if args.quick else 60)

    text = README.read_text(encoding="utf-8") if README.is_file() else None
    designed = designed_shares(text)
    bench = c.Bench("accuracy", "Hotspot accuracy (`bench/accuracy.py`)", args)
    reps: list[dict] = []
    doubled: dict | None = None
    fresh: dict | None = None
    images: dict = {}
    with bench, c.demo_stack(args, "accuracy", bench.workdir, bench) as st:
        if not st.owned:
            costs = {k: st.container_env(svc, k) for svc, k in (("order-service", "PRICING_COST"),
                                                              ("order-service", "ORDER_JSON_COST"),
                                                              ("inventory-service", "LEDGER_LOCK_COST"),
                                                              ("payment-service", "PAYMENT_LATENCY_COST"))}
            if any(v not in ("1", "1.0") for v in costs.values()):
                c.say(f"the stack runs with costs {costs}: recreating it with every cost at 1")
                st.up()
        images = st.image_ids()
        c.prime(st, prime_s)
        for i in range(repeats):
            c.say(f"repeat {i + 1}/{repeats}: {duration} s captures after {warmup} s warm-up, 25 TPS")
            reps.append(profile_once(st, bench, f"run {i + 1}", duration, warmup, only=only))
        # The doubled run is compared with a cost-1 run on an equally fresh JVM: recreating
        # order-service restarts its JIT warm-up, and a young JVM spends far more CPU outside
        # priceOrder (C2 compiling) than the long-running one of the repeats above.
        base_cost = float(st.costs["PRICING_COST"])
        restored = False
        try:
            for label, cost in (("doubled", base_cost * 2), ("fresh cost 1", base_cost)) \
                    if not only or "cpu" in only else ():
                t0 = time.monotonic()
                c.say(f"PRICING_COST -> {cost:g}: recreating order-service")
                st.set_costs(PRICING_COST=cost)
                restored = cost == base_cost
                got = st.container_env("order-service", "PRICING_COST")
                c.say(f"order-service recreated in {time.monotonic() - t0:.0f} s with PRICING_COST={got}; "
                      f"{recreate_prime_s} s of priming load")
                c.prime(st, recreate_prime_s)
                run = profile_once(st, bench, label, duration, warmup, only=("cpu",))
                run["pricing_cost"] = got
                if label == "doubled":
                    doubled = run
                else:
                    fresh = run
        finally:
            if not restored:
                c.say(f"restoring PRICING_COST={base_cost:g}")
                st.set_costs(PRICING_COST=base_cost)

    figures: dict = {"hotspots": {}, "doubled_pricing": {}}
    rows, drows, gtrows = [], [], []
    for p in PLANTED:
        ms = [r["hotspots"][p.key] for r in reps if p.key in r["hotspots"]]
        s = c.summary(m["share"] for m in ms)
        tops = sum(1 for m in ms if m["is_top"])
        samples = c.summary(m["samples"] for m in ms)
        others = sorted({m["top_app_frame"] or "(none)" for m in ms if not m["is_top"]})
        d = designed[p.key]
        comp_key = {"share": "share", "total": "total_share", "of_app": "of_app"}[p.designed.compare]
        comp = c.summary(m.get(comp_key) for m in ms)
        diff = (comp["mean"] - d["share"]) if (comp["mean"] is not None and d["share"] is not None) else None
        within = (d["low"] - 0.05 <= comp["mean"] <= d["high"] + 0.05) if diff is not None else None
        figures["hotspots"][p.key] = {
            "service": p.service, "event": p.event, "method": p.method,
            "measure": "self share" if p.measure == "self" else "application-frame share",
            "share": s, "pm_points_mean": c.summary(m.get("pm_points") for m in ms)["mean"],
            "top_count": tops, "runs": len(ms), "top_fraction": (tops / len(ms)) if ms else None,
            "other_top_frames": others, "samples": samples,
            "total_share": c.summary(m.get("total_share") for m in ms),
            "share_of_app_stacks": c.summary(m.get("of_app") for m in ms),
            "designed_share": d["share"], "designed_low": d.get("low"), "designed_high": d.get("high"),
            "designed_text": d.get("text"), "designed_why_missing": d.get("why"),
            "compared_figure": COMPARE_LABEL[p.designed.compare], "compared": comp,
            "compared_minus_designed": diff, "within_5_points_of_design": within,
        }
        gts = [(m["ground_truth"], m["flamekit"]) for m in ms if m.get("ground_truth") and m.get("flamekit")]
        g = {
            "runs": len(gts), "unit": GT_COUNTERS[p.key]["unit"],
            "share_of": GT_SHARE_OF[p.key],
            "share": c.summary(x.get("share") for x, _ in gts),
            "flamekit_share": c.summary(f.get("share") for _, f in gts),
            "share_diff_points": c.summary((f["share"] - x["share"]) * 100 for x, f in gts
                                           if x.get("share") is not None and f.get("share") is not None),
            "per_call": c.summary(x.get("per_call") for x, _ in gts),
            "flamekit_per_call": c.summary(f.get("per_call") for _, f in gts),
            "per_call_ratio": c.summary(c.ratio(f.get("per_call"), x.get("per_call")) for x, f in gts),
            "calls": c.summary(x.get("calls") for x, _ in gts),
            "window_s": c.summary(x.get("window_s") for x, _ in gts),
        }
        if p.key == "cpu":
            g["share_of_cgroup_cpu"] = c.summary(x.get("share_of_cgroup_cpu") for x, _ in gts)
            g["share_of_process_cpu"] = c.summary(x.get("share_of_process_cpu") for x, _ in gts)
            g["flamekit_sample_share"] = c.summary(f.get("sample_share") for _, f in gts)
            g["sample_share_minus_process_share_points"] = c.summary(
                (f["sample_share"] - x["share_of_process_cpu"]) * 100 for x, f in gts
                if f.get("sample_share") is not None and x.get("share_of_process_cpu") is not None)
            g["sampled_cpu_over_process_cpu"] = c.summary(c.ratio(f.get("cpu_s"), x.get("process_cpu_s"))
                                                          for x, f in gts)
        if p.key == "alloc":
            g["sampled_over_jvm_counted"] = c.summary(f.get("sampled_over_jvm") for _, f in gts)
            g["share_of_jvm_counted"] = c.summary(f.get("share_of_jvm_counted") for _, f in gts)
            g["share_of_jvm_counted_diff_points"] = c.summary(
                (f["share_of_jvm_counted"] - x["share"]) * 100 for x, f in gts
                if x.get("share") is not None and f.get("share_of_jvm_counted") is not None)
        figures["hotspots"][p.key]["ground_truth"] = g
        unit = g["unit"]
        fmt_pc = lambda s_: (fmt_cost(s_["mean"], unit) + (f" ({fmt_cost(s_['min'], unit)}-{fmt_cost(s_['max'], unit)})"
                                                           if s_["n"] > 1 else "")) if s_["n"] else "n/a"  # noqa: E731
        gtrows.append([p.key, f"`{p.short}`", g["share_of"], c.fmt_spread(g["share"], pct=True),
                       c.fmt_spread(g["flamekit_share"], pct=True),
                       c.fmt_num(g["share_diff_points"]["mean"]) if g["share_diff_points"]["n"] else "n/a",
                       fmt_pc(g["per_call"]), fmt_pc(g["flamekit_per_call"]),
                       c.fmt_num(g["per_call_ratio"]["mean"], 2) if g["per_call_ratio"]["n"] else "n/a",
                       c.fmt_num(g["calls"]["mean"], 0)])
        c.say(f"{p.key:5s} ground truth: share {c.fmt_spread(g['share'], pct=True)} vs flamekit "
              f"{c.fmt_spread(g['flamekit_share'], pct=True)}; per call {fmt_pc(g['per_call'])} vs flamekit "
              f"{fmt_pc(g['flamekit_per_call'])}")
        rows.append([p.key, p.service, f"`{p.short}`", "self" if p.measure == "self" else "app frame",
                     c.fmt_spread(s, pct=True), f"± {c.fmt_num(figures['hotspots'][p.key]['pm_points_mean'])}",
                     f"{tops}/{len(ms)}" + (f" (else {', '.join('`' + o.split('.', 2)[-1] + '`' for o in others)})"
                                            if others else ""),
                     c.fmt_num(samples["mean"], 0)])
        if d["share"] is None:
            drows.append([p.key, f"not documented ({d['why']})", "-", "-", "-"])
        else:
            rng = c.fmt_pct(d["low"], 0) + ("" if d["low"] == d["high"] else f"-{c.fmt_pct(d['high'], 0)}")
            drows.append([p.key, f"{rng}: {d['text']}", COMPARE_LABEL[p.designed.compare],
                          c.fmt_spread(comp, pct=True),
                          f"{diff * 100:+.1f}" + ("" if within else " (outside the design ± 5)")])
        c.say(f"{p.key:5s} {p.short:26s} {c.fmt_spread(s, pct=True):36s} top {tops}/{len(ms)}; designed "
              + (f"{c.fmt_pct(d['share'])} vs {COMPARE_LABEL[p.designed.compare]} {c.fmt_pct(comp['mean'])}"
                 if d["share"] is not None else "n/a"))

    warm = figures["hotspots"]["cpu"]["share"]
    dm = (doubled or {}).get("hotspots", {}).get("cpu")
    fm = (fresh or {}).get("hotspots", {}).get("cpu")
    if dm and fm and dm.get("share") is not None and fm.get("share") is not None:
        base = fm["share"]
        pred = predicted_doubled(base)
        moved = dm["share"] - base
        # noise: the binomial ± of both runs, or twice the repeats' stdev, whichever is larger
        pm = math.hypot(dm.get("pm_points") or 0.0, fm.get("pm_points") or 0.0) / 100.0
        noise_band = max(2 * (warm["stdev"] or 0.0), pm)
        figures["doubled_pricing"] = {
            "pricing_cost": doubled.get("pricing_cost"), "baseline_share": base,
            "baseline": "cost-1 run on an equally fresh order-service (same priming)",
            "warm_repeats_share": warm["mean"], "doubled_share": dm["share"], "predicted_share": pred,
            "change": moved, "moved_up": moved > 0, "beyond_noise": moved > noise_band, "noise_band": noise_band,
            "samples": dm["samples"], "baseline_samples": fm["samples"],
            "cpu_samples_ratio": c.ratio(dm["samples"], fm["samples"]),
            "priceorder_samples_ratio": c.ratio(dm["share"] * dm["samples"], fm["share"] * fm["samples"]),
            "pm_points": dm.get("pm_points"), "baseline_pm_points": fm.get("pm_points"), "is_top": dm["is_top"],
            "same_image": _image(doubled) == _image(fresh),
        }
        if _image(doubled) != _image(fresh):
            bench.problems.append("the doubled and the fresh cost-1 run used different order-service images "
                                  "(the shared image tag was rebuilt in between): their comparison mixes code versions")
        verdict = "up, as expected" if moved > 0 else "NOT up"
        c.say(f"PRICING_COST doubled: priceOrder {c.fmt_pct(base)} (fresh cost-1 JVM) -> {c.fmt_pct(dm['share'])} "
              f"({verdict}; model 2s/(1+s) predicts {c.fmt_pct(pred)}); priceOrder samples "
              f"x{c.fmt_num(figures['doubled_pricing']['priceorder_samples_ratio'], 2)}, all CPU samples "
              f"x{c.fmt_num(figures['doubled_pricing']['cpu_samples_ratio'], 2)}")
    else:
        bench.problems.append("the doubled-PRICING_COST comparison gave no priceOrder share")

    dp = figures["doubled_pricing"]
    fresh_note = ""
    if dp:
        fresh_note = (f"The cpu repeats ran on an order-service JVM that had been under load for minutes, where "
                      f"`priceOrder` holds a larger share than in a young JVM still compiling. The cost-1 run on a "
                      f"freshly recreated JVM ({recreate_prime_s} s of priming + {warmup} s warm-up) gave "
                      f"{c.fmt_pct(dp['baseline_share'])}.")
    body = [
        f"{repeats} repeated runs per hotspot, each one `inv profile --service S --event E` at 25 TPS with "
        f"{warmup} s warm-up and a {duration} s capture (one event per capture), after {prime_s} s of "
        "unmeasured priming load. *share*: what flamekit "
        "reports for the planted method -- for cpu its self share; for alloc, lock and wall its "
        "*application-frame* share (the deepest non-JDK frame of each stack, `report.app_hotspots`), "
        "because the leaf there is a JDK/JVM frame (the allocating `StringBuilder`, the monitor, "
        "`Thread.sleep`). Shares are of all the capture's samples (alloc: bytes, lock: wait time); "
        "± is the binomial 95% half-width from the sample count; *top*: runs in which the planted "
        "method was the top application frame.",
        "",
        c.md_table(["hotspot", "service", "method", "share kind", "share: mean (min-max, cv, n)", "± (95%)",
                    "top", "samples"], rows, "llllrrll"),
        "",
        "**Against the ground truth.** The demo services count what their planted code really cost "
        "(`GET /debug/ground-truth`, read through the gateway's `/debug/ground-truth/<service>`; "
        "docker/demo/README.md): thread CPU ns around `priceOrder`, bytes allocated around "
        "`OrderJson.write`, ns blocked acquiring the ledger monitor in `reserve` (and `release`), ns "
        f"around the sleep in `authorize`, each with its call count. **Method:** while each `inv "
        f"profile` runs, the bench reads the profiled service's counters every {GT_PERIOD_S:g} s; each "
        "reply carries the JVM's own wall-clock stamp, and every counter is interpolated linearly at "
        "the capture's `profiler_started` and `profiler_stopped` times from the run manifest (set when "
        "`asprof start`/`stop` returned, so both edges lag the real ones by the exec latency, a few "
        "hundred ms at most). Ground truth = the counters' growth over that window. flamekit's share "
        "is the method's *total* share (self + callees: the counters include callees): for cpu its "
        "samples x the interval over the container's cgroup CPU in the window (the service CPU the "
        "report states; the ground truth's thread CPU over the same cgroup CPU), for alloc of the "
        "profile's bytes, for lock of the lock-wait ns, for wall of the request threads' wall samples "
        "(the report's request view; the ground truth: the sleep over the pool threads' time from "
        "dispatch to close, counter `handlerNanos`). Its cost per call is, for cpu, the method's "
        "samples x the sampling interval (10 ms unless set), for alloc and lock the method's captured "
        "weight, for wall the method's request-thread samples x 20 ms, each divided by the calls the "
        "service counted in the window (one per k6 iteration). Process CPU has a 10 ms resolution, "
        "negligible over a 30 s window but not in quick mode's 4 s. flamekit's lock share is of every "
        "lock-wait in the JVM (pool queues included), the ground truth's of the ledger monitor only.",
        "",
        c.md_table(["hotspot", "method", "ground-truth share of", "ground truth: share", "flamekit: total share",
                    "difference (points)", "ground truth: per call", "flamekit: per call",
                    "flamekit / truth per call", "calls in window"], gtrows, "lllrrrrrrr"),
        "",
        *([f"CPU sampled by flamekit (samples x interval) over the JVM's own process CPU in the same window: "
           f"{c.fmt_spread(figures['hotspots']['cpu']['ground_truth']['sampled_cpu_over_process_cpu'], 2)}. "
           f"Taken as shares of the profile's own samples instead: flamekit "
           f"{c.fmt_spread(figures['hotspots']['cpu']['ground_truth']['flamekit_sample_share'], pct=True)} against "
           f"`priceOrder`'s thread CPU over the JVM's process CPU "
           f"{c.fmt_spread(figures['hotspots']['cpu']['ground_truth']['share_of_process_cpu'], pct=True)}, "
           f"{c.fmt_num(figures['hotspots']['cpu']['ground_truth']['sample_share_minus_process_share_points']['mean'])}"
           " points apart: samples the profiler loses (outside the JVM's Java threads, or during GC) are "
           "missing from the denominator of a sample share, not from a cgroup share.", ""]
          if figures["hotspots"].get("cpu", {}).get("ground_truth", {}).get("runs") else []),
        *([f"Allocation sampled by flamekit over the bytes the JVM's threads counted in the same window: "
           f"{c.fmt_spread(figures['hotspots']['alloc']['ground_truth']['sampled_over_jvm_counted'], 2)} "
           "(`Thread.print -e` after the start and before the stop, the report's service table; the JVM's "
           "heap sampler also counts the unused ends of TLABs, its counters do not). Taken as a share of "
           f"those counted bytes instead of the profile's own, `OrderJson.write` reads "
           f"{c.fmt_spread(figures['hotspots']['alloc']['ground_truth']['share_of_jvm_counted'], pct=True)}, "
           f"{c.fmt_num(figures['hotspots']['alloc']['ground_truth']['share_of_jvm_counted_diff_points']['mean'])}"
           " points from the ground truth (the profile's own share: "
           f"{c.fmt_num(figures['hotspots']['alloc']['ground_truth']['share_diff_points']['mean'])} points). "
           "The report keeps the profile's own share: the method's sampled bytes read high too (x1.00-1.05 "
           "so far), and where they do the excess partly cancels in it.", ""]
          if figures["hotspots"].get("alloc", {}).get("ground_truth", {}).get("sampled_over_jvm_counted", {}).get("n")
          else []),
        *([fresh_note, ""] if fresh_note else []),
    ]
    if dp:
        body += [
            f"**PRICING_COST doubled**: order-service recreated with PRICING_COST={dp['pricing_cost']}, "
            f"{recreate_prime_s} s of priming load, one run; then recreated at cost 1 and measured the same way, "
            "so both runs come from JVMs of the same age (a young JVM spends extra CPU outside `priceOrder` on "
            f"JIT compilation; the long-running JVM of the repeats above gave {c.fmt_pct(dp['warm_repeats_share'])}). "
            "priceOrder's "
            f"self share: {c.fmt_pct(dp['baseline_share'])} at cost 1 (± {c.fmt_num(dp['baseline_pm_points'])}, "
            f"{dp['baseline_samples']:,} samples) -> {c.fmt_pct(dp['doubled_share'])} at cost 2 "
            f"(± {c.fmt_num(dp['pm_points'])}, {dp['samples']:,} samples): "
            + ("**up, as expected**" if dp["moved_up"] else "**not up -- unexpected**")
            + (", beyond the noise" if dp["beyond_noise"] else ", but within the noise")
            + f" (band {c.fmt_num(dp['noise_band'] * 100)} points: the two runs' combined ± or twice the "
              f"repeats' stdev, whichever is larger). If only the pricing loop's CPU doubled, the share would "
              f"be 2s/(1+s) = {c.fmt_pct(dp['predicted_share'])}. In samples (CPU time): priceOrder's went "
              f"x{c.fmt_num(dp['priceorder_samples_ratio'], 2)} (the cost doubled: 2 expected), order-service's "
              f"total x{c.fmt_num(dp['cpu_samples_ratio'], 2)}."
            + ("" if dp["same_image"] else " **Caution: the two runs used different order-service images.**"),
            "",
        ]
    seen: dict[str, set] = {}
    for r in reps + [r for r in (doubled, fresh) if r]:
        for e in r["profiles"]:
            if e.get("image_id"):
                seen.setdefault(e["service"], set()).add(e["image_id"][7:19] if e["image_id"].startswith("sha256:")
                                                         else e["image_id"][:12])
    changed = {k: sorted(v) for k, v in seen.items() if len(v) > 1}
    figures["image_changes"] = changed
    dropped = sum(1 for r in reps + [r for r in (doubled, fresh) if r] for e in r["profiles"]
                  if any("dropped" in i for i in e.get("load_issues") or []))
    nprof = sum(len(r["profiles"]) for r in reps + [r for r in (doubled, fresh) if r])
    figures["runs_with_dropped_iterations"] = dropped
    body.append(f"k6 dropped iterations (the 25 TPS rate not fully held) in {dropped} of {nprof} profile runs.")
    body.append("")
    body.append(f"Service images at the start: {', '.join(f'{k} `{v}`' for k, v in sorted(images.items()))}."
                + (f" **The image of {', '.join(changed)} changed during the run** (rebuilt by someone else "
                   "and picked up when a container was recreated): " + "; ".join(
                       f"{k}: {' -> '.join(v)}" for k, v in changed.items()) if changed else ""))
    settings = {"repeats": repeats, "duration": duration, "warmup": warmup, "tps": 25, "prime_s": prime_s,
                "images": images}
    return bench.finish(figures, reps + [r for r in (doubled, fresh) if r], "\n".join(body), settings)


if __name__ == "__main__":
    sys.exit(main())
