#!/usr/bin/env python3
"""How often does `inv gate` catch a real regression, and how often does it cry wolf?

Pairs of `inv profile --service order-service --event cpu` runs, each on a fresh JVM (order-service
restarted, or recreated when its PRICING_COST changes), the first saved as a baseline and the
second gated against it:

  A/A      PRICING_COST 1 -> 1      any exit 1 is a false alarm
  A/B      PRICING_COST 1 -> 1.25, 1.5, 2   exit 1 naming priceOrder is a detection (power)

Full mode: 10 pairs per arm, 30 s captures after 15 s warm-up. Quick mode: 2 A/A and 2 A/B (cost
2) pairs of 20 s captures. Prints per arm the exit codes, the detection or false-alarm rate, and
the priceOrder cost ratio the gate estimated next to the planted one.
"""
from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common as c  # noqa: E402

from flamekit import config as fkconfig  # noqa: E402
from flamekit.workflow import gate as wg  # noqa: E402

HOT = "demo.order.PricingEngine.priceOrder"


def fresh_jvm(st: c.BenchStack, cost: float) -> None:
    """order-service on a fresh JVM with PRICING_COST=cost: recreated when the cost changes,
    else restarted; then healthy again and its sample data loaded."""
    if st.costs.get("PRICING_COST") != f"{cost:g}":
        st.set_costs(PRICING_COST=cost)
        return
    c._run(["docker", "restart", st.container_id("order-service")])
    st.inv("wait-healthy", timeout=300)
    st.inv("sample-data")


def profile(st: c.BenchStack, duration: int, warmup: int) -> str | None:
    res = st.inv("profile", "--service", "order-service", "--event", "cpu", "--duration", str(duration),
                 "--warmup", str(warmup), "--tps", "25", check=False, timeout=600)
    rd = res.run_dir()
    return rd.name if res.ok and rd is not None else None


def one_pair(st: c.BenchStack, bench: c.Bench, settings, arm: str, cost: float, i: int,
             duration: int, warmup: int) -> dict:
    out: dict = {"arm": arm, "cost": cost, "pair": i}
    fresh_jvm(st, 1.0)
    base = profile(st, duration, warmup)
    fresh_jvm(st, cost)
    run = profile(st, duration, warmup)
    if base is None or run is None:
        bench.problems.append(f"{arm} pair {i}: a profile failed")
        out["error"] = "profile failed"
        return out
    name = f"bench-{arm.replace('/', '')}-{i}".replace(".", "_")
    baselines = bench.workdir / "baselines"
    wg.save_baseline(settings, base, name, baselines=baselines)
    t0 = time.monotonic()
    res = wg.gate(settings, name, run, baselines=baselines, raise_on_fail=False).result
    out.update(base=base, run=run, gate_s=round(time.monotonic() - t0, 1), exit=res.exit_code,
               headline=res.headline(), names_hot=HOT in res.headline())
    hot = next((m for chk in res.checks for m in chk.methods if m.method == HOT), None)
    if hot is not None:
        out.update(ratio=round(hot.est.ratio, 3), lo=round(hot.est.ratio_lo, 3), hi=round(hot.est.ratio_hi, 3),
                   q=hot.q_cost)
    c.say(f"  {arm} pair {i}: exit {res.exit_code}: {res.headline()}")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = c.parser(__doc__.split("\n\n")[0])
    ap.add_argument("--pairs", type=int, default=None, help="pairs per arm (default 10; quick 2)")
    ap.add_argument("--duration", type=int, default=None, help="capture seconds (default 30; quick 20)")
    ap.add_argument("--warmup", type=int, default=None, help="warm-up seconds (default 15; quick 10)")
    args = ap.parse_args(argv)
    c.check_args(ap, args)
    pairs = args.pairs or (2 if args.quick else 10)
    duration = args.duration or (20 if args.quick else 30)
    warmup = args.warmup if args.warmup is not None else (10 if args.quick else 15)
    arms = [("A/A", 1.0), ("A/B", 2.0)] if args.quick else [("A/A", 1.0), ("A/B", 1.25), ("A/B", 1.5), ("A/B", 2.0)]
    bench = c.Bench("gate", "Regression gate: power and false alarms (`bench/gate.py`)", args)
    results: list[dict] = []
    with bench, c.demo_stack(args, "gate", bench.workdir, bench) as st:
        settings = fkconfig.build_settings({"project_name": st.project, "gateway_url": st.gateway_url,
                                            "runs_dir": str(st.workdir / "runs"),
                                            "flamegraph_dir": str(st.workdir / "flamegraphs"),
                                            "reports_dir": str(st.workdir / "reports"),
                                            "output_dir": str(st.workdir / "output")}, c.ROOT)
        try:
            for arm, cost in arms:
                c.say(f"{arm} PRICING_COST 1 -> {cost:g}: {pairs} pair(s) of {duration} s captures, fresh JVMs")
                for i in range(1, pairs + 1):
                    results.append(one_pair(st, bench, settings, arm, cost, i, duration, warmup))
        finally:
            if st.costs.get("PRICING_COST") != "1":
                st.set_costs(PRICING_COST=1)
    rows, figures = [], {}
    for arm, cost in arms:
        rs = [r for r in results if r["arm"] == arm and r["cost"] == cost and "exit" in r]
        codes = [r["exit"] for r in rs]
        hits = sum(1 for r in rs if r["exit"] == 1 and (arm == "A/A" or r["names_hot"]))
        ratios = [r["ratio"] for r in rs if "ratio" in r]
        key = f"{arm} {cost:g}"
        figures[key] = {"pairs": len(rs), "exit0": codes.count(0), "exit1": codes.count(1), "exit2": codes.count(2),
                        "rate": hits / len(rs) if rs else None,
                        "ratio_median": statistics.median(ratios) if ratios else None,
                        "gate_s": statistics.median([r["gate_s"] for r in rs]) if rs else None}
        f = figures[key]
        rate = "n/a" if f["rate"] is None else f"{f['rate']:.0%}"
        rows.append((f"{arm} 1 -> {cost:g}", f["pairs"], f"{f['exit0']} / {f['exit1']} / {f['exit2']}",
                     ("false alarms " if arm == "A/A" else "detected ") + rate,
                     "n/a" if f["ratio_median"] is None else f"x{f['ratio_median']:.2f}",
                     "n/a" if f["gate_s"] is None else f"{f['gate_s']:.1f} s"))
    body = (f"order-service cpu, {duration} s captures after {warmup} s warm-up at 25 TPS, every run on a "
            f"fresh JVM; the first run of a pair is saved as the baseline, the second gated against it.\n\n"
            + c.md_table(("arm (PRICING_COST)", "pairs", "exit 0 / 1 / 2", "rate",
                          "priceOrder cost ratio (median)", "gate time"), rows) + "\n")
    for r in results:
        c.say(f"{r['arm']} {r['cost']:g} #{r['pair']}: exit {r.get('exit')} ratio {r.get('ratio')} "
              f"({r.get('lo')}..{r.get('hi')}) {r.get('headline', r.get('error'))}")
    return bench.finish(figures, results, body, {"pairs": pairs, "duration": duration, "warmup": warmup})


if __name__ == "__main__":
    sys.exit(main())
