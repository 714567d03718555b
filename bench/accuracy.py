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

One repeat is four `inv profile` runs, one event each (a single event per capture, so the cpu
share is not inflated by the signal handlers of wall-clock profiling): order-service cpu,
order-service alloc, inventory-service lock, payment-service wall.
"""
from __future__ import annotations

import math
import sys
import time
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


def profile_once(st: c.BenchStack, bench: c.Bench, label: str, duration: int, warmup: int,
                 only: tuple[str, ...] | None = None) -> dict:
    """One repeat: an `inv profile` per hotspot; returns {hotspot key: measurement}."""
    out: dict = {"label": label, "profiles": [], "hotspots": {}}
    for service, events in PROFILES:
        if only and events not in only:
            continue
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
            out["hotspots"][p.key] = m
            c.say(f"  {label} {p.key:5s} {p.short:26s} share {c.fmt_pct(m['share'])} "
                  f"(± {c.fmt_num(m.get('pm_points'))} pts, {m['samples']:,} samples); "
                  f"top application frame: {m['top_app_frame']}")
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
    args = ap.parse_args(argv)
    c.check_args(ap, args)
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
            reps.append(profile_once(st, bench, f"run {i + 1}", duration, warmup))
        # The doubled run is compared with a cost-1 run on an equally fresh JVM: recreating
        # order-service restarts its JIT warm-up, and a young JVM spends far more CPU outside
        # priceOrder (C2 compiling) than the long-running one of the repeats above.
        base_cost = float(st.costs["PRICING_COST"])
        restored = False
        try:
            for label, cost in (("doubled", base_cost * 2), ("fresh cost 1", base_cost)):
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
    rows, drows = [], []
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
    if dp and designed["cpu"].get("share") is not None:
        fresh_note = (f"The cpu repeats ran on an order-service JVM that had been under load for minutes; the "
                      f"README's figures come from seconds 20-70 after start and it notes that profiles after a "
                      f"longer warm-up show a larger `priceOrder` share. The cost-1 run on a freshly recreated "
                      f"JVM ({recreate_prime_s} s of priming + {warmup} s warm-up) gave "
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
        "Against the design: `docker/demo/README.md` states each hotspot's share as measured by the "
        "services' own ground-truth counters or a JFR check, not always in the unit flamekit reports, "
        "so each designed figure is set next to the flamekit figure that measures the same thing "
        "(the README's sentence is checked to be still there on every run):",
        "",
        c.md_table(["hotspot", "designed (README)", "flamekit figure compared", "flamekit: mean (min-max, cv, n)",
                    "difference (points)"], drows, "lllrr"),
        "",
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
