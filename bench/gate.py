#!/usr/bin/env python3
"""How often does `inv gate` catch a real regression, and how often does it cry wolf?

Rounds of `inv profile --service order-service --event cpu,alloc` runs, every run on a fresh
order-service JVM (restarted, or recreated when a cost variable changes). Each round saves the
newest R runs with all costs 1 as one baseline (`inv baseline save --run ... --run ...`: the gate
learns from them how much each method moves between runs), then profiles one run per arm and
gates it against that baseline:

  A/A        PRICING_COST 1 -> 1                  any exit 1 is a false alarm
  cpu x1.25  PRICING_COST 1 -> 1.25, 1.5, 2       exit 1 naming priceOrder is a detection
  alloc x2   ORDER_JSON_COST 1 -> 2               exit 1 naming OrderJson.write (alloc) is one

The A/A run of a round joins the pool of cost-1 runs, so the next round's baseline is the R
newest of them (R cost-1 runs are profiled before round 1): a baseline is always older than the
runs gated against it, as in CI. Arms share their round's baseline and consecutive baselines
share R-1 runs, so rounds are not fully independent. With `--repeats S` (full mode: 2) each arm profiles S
runs per round and gates them pooled (`inv gate --run A --run B`), as a CI job that profiles a
pull request S times; `--regate DIR --repeats 2` pools the runs of consecutive rounds of an
earlier single-run bench instead. Full mode: 10 rounds, R = 5, S = 2, 30 s captures after 15 s
warm-up (about 100 minutes). Quick mode (CI): 2 rounds of the A/A and the PRICING_COST 2 arms,
R = 2, S = 1, 15 s captures. Prints per arm the exit codes, the detection or false-alarm rate,
and the cost ratio the gate estimated next to the planted one.
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
JSON = "demo.order.OrderJson.write"

#: (arm, cost variable, planted cost, event whose method should be named, method).
FULL_ARMS = [("A/A", "PRICING_COST", 1.0, "cpu", HOT), ("cpu x1.25", "PRICING_COST", 1.25, "cpu", HOT),
             ("cpu x1.5", "PRICING_COST", 1.5, "cpu", HOT), ("cpu x2", "PRICING_COST", 2.0, "cpu", HOT),
             ("alloc x2", "ORDER_JSON_COST", 2.0, "alloc", JSON)]
QUICK_ARMS = [FULL_ARMS[0], FULL_ARMS[3]]


def fresh_jvm(st: c.BenchStack, **costs: float) -> None:
    """order-service on a fresh JVM with these costs (the others 1): recreated when a cost
    changes, else restarted; then healthy again and its sample data loaded."""
    want = {k: f"{float(costs.get(k, 1.0)):g}" for k in ("PRICING_COST", "ORDER_JSON_COST")}
    if any(st.costs.get(k) != v for k, v in want.items()):
        st.set_costs(**{k: float(v) for k, v in want.items()})
        return
    c._run(["docker", "restart", st.container_id("order-service")])
    st.inv("wait-healthy", timeout=300)
    st.inv("sample-data")


def profile(st: c.BenchStack, duration: int, warmup: int) -> str | None:
    res = st.inv("profile", "--service", "order-service", "--event", "cpu,alloc", "--duration", str(duration),
                 "--warmup", str(warmup), "--tps", "25", check=False, timeout=600)
    rd = res.run_dir()
    return rd.name if res.ok and rd is not None else None


def _find(res, event: str, method: str):
    return next((m for chk in res.checks if chk.event == event for m in chk.methods if m.method == method), None)


def gate_one(bench: c.Bench, settings, baseline: list[str], run: str | list[str], arm: tuple, i: int,
             base_round: int | None = None) -> dict:
    """Gate one run, or the repeats in ``run`` pooled, against round ``base_round``'s baseline
    (default: round ``i``'s)."""
    name, var, cost, event, method = arm
    out: dict = {"arm": name, "var": var, "cost": cost, "round": i, "baseline_runs": baseline,
                 "run": run if isinstance(run, str) else run[-1], "runs": [run] if isinstance(run, str) else run}
    t0 = time.monotonic()
    res = wg.gate(settings, f"round-{base_round or i}", run, baselines=bench.workdir / "baselines",
                  raise_on_fail=False).result
    line = res.headline()
    worst = res.regressions[0] if res.regressions else None
    out.update(gate_s=round(time.monotonic() - t0, 1), exit=res.exit_code, headline=line,
               regressions=[f"{m.service} {m.event}: {m.method}" for m in res.regressions],
               # the planted method named first, in its event or another (a JSON change costs CPU too)
               names_planted=bool(worst and worst.method == method), named_event=worst.event if worst else None)
    m = _find(res, event, method)
    if m is not None:
        out.update(ratio=round(m.est.ratio, 3), lo=round(m.est.ratio_lo, 3), hi=round(m.est.ratio_hi, 3),
                   q=m.q_cost, tau=round(m.est.tau_log, 3))
    c.say(f"  round {i} {name}: exit {res.exit_code}: {line}")
    return out


def fill_pool(st: c.BenchStack, bench: c.Bench, pool: list[str], want: int, duration: int, warmup: int) -> None:
    """Profile cost-1 runs on fresh JVMs until the pool holds ``want`` of them."""
    tries = 0
    while len(pool) < want and tries < want + 2:
        tries += 1
        fresh_jvm(st)
        run = profile(st, duration, warmup)
        if run is None:
            bench.problems.append("a baseline profile failed")
            continue
        c.say(f"  baseline pool: run {run} ({len(pool) + 1}/{want})")
        pool.append(run)


def one_round(st: c.BenchStack, bench: c.Bench, settings, arms: list, i: int, duration: int,
              warmup: int, pool: list[str], r: int, repeats: int = 1) -> list[dict]:
    base = pool[-r:]
    if len(base) < r:
        bench.problems.append(f"round {i}: only {len(base)} of {r} baseline runs")
        return [{"arm": a[0], "var": a[1], "cost": a[2], "round": i, "error": "baseline runs missing"}
                for a in arms]
    wg.save_baseline(settings, base, f"round-{i}", baselines=bench.workdir / "baselines")
    out = []
    for arm in arms:
        got: list[str] = []
        for _ in range(repeats):  # each repeat on its own fresh JVM, as CI would run the build again
            fresh_jvm(st, **{arm[1]: arm[2]})
            run = profile(st, duration, warmup)
            if run is not None:
                got.append(run)
        if len(got) < repeats:
            bench.problems.append(f"round {i} {arm[0]}: a profile failed")
            out.append({"arm": arm[0], "var": arm[1], "cost": arm[2], "round": i, "error": "profile failed"})
            continue
        out.append(gate_one(bench, settings, base, got[0] if repeats == 1 else got, arm, i))
        if arm[2] == 1.0:
            pool.extend(got)  # cost-1 runs: part of the next round's baseline
    return out


def summarise(arms: list, results: list[dict]) -> tuple[list[tuple], dict]:
    rows, figures = [], {}
    for name, var, cost, event, method in arms:
        rs = [r for r in results if r["arm"] == name and "exit" in r]
        codes = [r["exit"] for r in rs]
        hits = sum(1 for r in rs if r["exit"] == 1 and (name == "A/A" or r["names_planted"]))
        ratios = [r["ratio"] for r in rs if "ratio" in r]
        figures[name] = {"var": var, "cost": cost, "event": event, "method": method, "pairs": len(rs),
                         "exit0": codes.count(0), "exit1": codes.count(1), "exit2": codes.count(2),
                         "rate": hits / len(rs) if rs else None,
                         "ratio_median": statistics.median(ratios) if ratios else None,
                         "ratio_min": min(ratios) if ratios else None, "ratio_max": max(ratios) if ratios else None,
                         "gate_s": statistics.median([r["gate_s"] for r in rs]) if rs else None}
        f = figures[name]
        rate = "n/a" if f["rate"] is None else f"{f['rate']:.0%}"
        spread = ("n/a" if f["ratio_median"] is None else
                  f"x{f['ratio_median']:.2f} (x{f['ratio_min']:.2f}..x{f['ratio_max']:.2f})")
        rows.append((f"{name}: {var} 1 -> {cost:g}", f"{event} {method.rsplit('.', 2)[-2]}.{method.rsplit('.', 1)[-1]}",
                     f["pairs"], f"{f['exit0']} / {f['exit1']} / {f['exit2']}",
                     ("false alarms " if name == "A/A" else "detected ") + rate, spread,
                     "n/a" if f["gate_s"] is None else f"{f['gate_s']:.1f} s"))
    return rows, figures


def regate(args, arms: list, workdir: Path) -> int:
    """Judge the pairs of an earlier run again with this checkout's gate (no new captures): the
    runs and the baselines stay in that run's work directory."""
    import json
    src = workdir / "partial.json"
    if not src.is_file():
        c.say(f"error: no {src}: pass the work directory of a bench/gate.py run")
        return 2
    old = json.loads(src.read_text())
    bench = c.Bench("gate", "Regression gate: power and false alarms (`bench/gate.py`)", args)
    settings = fkconfig.build_settings({"runs_dir": str(workdir / "runs"), "reports_dir": str(bench.workdir / "reports"),
                                        "flamegraph_dir": str(bench.workdir / "flamegraphs"),
                                        "output_dir": str(bench.workdir / "output")}, c.ROOT)
    by_name = {a[0]: a for a in arms}
    results = []
    repeats = max(1, args.repeats or 1)
    with bench:
        bench.workdir.joinpath("baselines").mkdir(parents=True, exist_ok=True)
        for rnd in sorted({r["round"] for r in old["runs"]}):
            link = bench.workdir / "baselines" / f"round-{rnd}"
            if not link.exists():
                link.symlink_to(workdir / "baselines" / f"round-{rnd}")
        done = [r for r in old["runs"] if r.get("arm") in by_name and "run" in r]
        if repeats == 1:
            for r in done:
                base = r.get("baseline_runs") or [r["baseline_run"]]
                results.append(gate_one(bench, settings, base, r["run"], by_name[r["arm"]], r["round"]))
        else:
            # repeats from consecutive rounds (1+2, 3+4, ...), against the first one's baseline:
            # it holds neither run (a round's cost-1 run joins the pool after its baseline is saved)
            for name, arm in by_name.items():
                mine = sorted((r for r in done if r["arm"] == name), key=lambda r: r["round"])
                for k in range(0, len(mine) - repeats + 1, repeats):
                    group = mine[k:k + repeats]
                    if any(g["round"] != group[0]["round"] + j for j, g in enumerate(group)):
                        continue
                    base = group[0].get("baseline_runs") or [group[0]["baseline_run"]]
                    results.append(gate_one(bench, settings, base, [g["run"] for g in group], arm,
                                            group[-1]["round"], base_round=group[0]["round"]))
    rows, figures = summarise(arms, results)
    body = (f"The pairs of {workdir.name} judged again with this checkout's gate (same captures"
            + (f"; the runs of {repeats} consecutive rounds pooled as repeats of one build" if repeats > 1 else "")
            + ").\n\n"
            + c.md_table(("arm", "planted in", "pairs", "exit 0 / 1 / 2", "rate",
                          "estimated cost ratio, median (min..max)", "gate time"), rows) + "\n")
    return bench.finish(figures, results, body, {"regate_of": str(workdir), **old.get("settings", {})})


def engines_used(runs_dir: Path) -> list[str]:
    """The CPU engines the captures under ``runs_dir`` ran with, as their manifests record them."""
    from flamekit.errors import ReportError
    from flamekit.runs import read_manifest
    seen: set[str] = set()
    for mf in runs_dir.glob("*/manifest.json"):
        try:
            caps = read_manifest(mf.parent).get("captures") or []
        except ReportError:  # an interrupted run's manifest: it names no engine worth reporting
            continue
        seen.update(str(cp["engine"]) for cp in caps if cp.get("event") == "cpu" and cp.get("engine"))
    return sorted(seen)


def main(argv: list[str] | None = None) -> int:
    ap = c.parser(__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=None, help="rounds, i.e. pairs per arm (default 10; quick 2)")
    ap.add_argument("--duration", type=int, default=None, help="capture seconds (default 30; quick 15)")
    ap.add_argument("--warmup", type=int, default=None, help="warm-up seconds (default 15; quick 8)")
    ap.add_argument("--baseline-runs", type=int, default=None, metavar="R",
                    help="cost-1 runs pooled in each round's baseline (default 5; quick 2)")
    ap.add_argument("--regate", type=Path, default=None, metavar="WORKDIR",
                    help="judge the pairs of an earlier run (its work directory) again with this checkout's gate")
    ap.add_argument("--repeats", type=int, default=None, metavar="S",
                    help="runs per arm and round, on fresh JVMs, gated pooled as repeats of one build "
                         "(`inv gate --run A --run B`; default 2, quick 1)")
    c.cpu_engine_option(ap)
    args = ap.parse_args(argv)
    c.check_args(ap, args)
    if args.regate:
        return regate(args, FULL_ARMS, args.regate.resolve())
    rounds = args.rounds or (2 if args.quick else 10)
    duration = args.duration or (15 if args.quick else 30)
    warmup = args.warmup if args.warmup is not None else (8 if args.quick else 15)
    arms = QUICK_ARMS if args.quick else FULL_ARMS
    r = args.baseline_runs or (2 if args.quick else 5)
    if r < 1:
        ap.error("--baseline-runs must be 1 or more")
    repeats = args.repeats or (1 if args.quick else 2)
    if repeats < 1:
        ap.error("--repeats must be 1 or more")
    bench = c.Bench("gate", "Regression gate: power and false alarms (`bench/gate.py`)", args)
    results: list[dict] = []
    with bench, c.demo_stack(args, "gate", bench.workdir, bench) as st:
        settings = fkconfig.build_settings({"project_name": st.project, "gateway_url": st.gateway_url,
                                            "runs_dir": str(st.workdir / "runs"),
                                            "flamegraph_dir": str(st.workdir / "flamegraphs"),
                                            "reports_dir": str(st.workdir / "reports"),
                                            "output_dir": str(st.workdir / "output")}, c.ROOT)
        c.say(f"{r} baseline run(s), then {rounds} round(s) of {len(arms)} runs ({duration} s captures after "
              f"{warmup} s warm-up, fresh JVMs): {', '.join(a[0] for a in arms)}")
        pool: list[str] = []
        try:
            fill_pool(st, bench, pool, r, duration, warmup)
            for i in range(1, rounds + 1):
                c.say(f"round {i}/{rounds}")
                results.extend(one_round(st, bench, settings, arms, i, duration, warmup, pool, r, repeats))
                # what is measured so far survives an interrupted full run
                c.write_json(bench.workdir / "partial.json", {"rounds_done": i, "runs": results,
                                                                "figures": summarise(arms, results)[1]})
        finally:
            if any(st.costs.get(k) != "1" for k in ("PRICING_COST", "ORDER_JSON_COST")):
                st.set_costs(PRICING_COST=1, ORDER_JSON_COST=1)
    rows, figures = summarise(arms, results)
    engine = args.cpu_engine or f"{fkconfig.DEFAULTS['cpu_engine']} (the default)"
    used = engines_used(bench.workdir / "runs")
    if used:
        engine += f", {' and '.join(used)} as async-profiler recorded it"
    judged = ("one run" if repeats == 1 else
              f"{repeats} runs of the arm (each on its own fresh JVM), pooled as repeats of one build "
              f"(`inv gate --run A --run B`)")
    body = (f"order-service cpu and alloc in one recording, {duration} s captures after {warmup} s warm-up at "
            f"25 TPS, every run on a fresh JVM, flamekit's `cpu_engine` {engine}; each pair gates {judged}. "
            f"Each round saves the {r} newest runs with all costs 1 as one baseline (the A/A runs of a round "
            f"join the next round's) and gates every arm's runs against it; "
            f"a detection is exit 1 whose first line names the planted "
            f"method in its event. The gate judges 2 service-events per pair (cpu, alloc), every method in them.\n\n"
            + c.md_table(("arm", "planted in", "pairs", "exit 0 / 1 / 2", "rate",
                          "estimated cost ratio, median (min..max)", "gate time"), rows) + "\n")
    for r in results:
        c.say(f"round {r['round']} {r['arm']}: exit {r.get('exit')} ratio {r.get('ratio')} "
              f"({r.get('lo')}..{r.get('hi')}) {r.get('headline', r.get('error'))}")
    return bench.finish(figures, results, body, {"rounds": rounds, "duration": duration, "warmup": warmup,
                                                "baseline_runs": r, "cpu_engine": args.cpu_engine,
                                                "repeats": repeats})


if __name__ == "__main__":
    sys.exit(main())
