#!/usr/bin/env python3
"""Does flamekit's k6 load hold the rate it is asked for? Achieved vs target at 10, 25, 50 TPS.

k6 runs through flamekit.load (constant-arrival-rate, scripts/perf/order-flow.js) against the
demo stack, without a profiler, at each target rate for D seconds, the rates interleaved
(10 25 50 10 25 50 ...; quick: one short round, full: 3 rounds of 30 s). Figures per rate:
achieved TPS (flamekit's figure: iterations over the planned window) and its ratio to the target,
dropped iterations (k6 could not start an iteration on time), whether flamekit calls the rate
held, the VUs k6 needed, p95 latency, error rate, and the CPU k6 itself used (it shares the
host's cores with the stack).
"""
from __future__ import annotations

import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common as c  # noqa: E402

TARGETS = (10.0, 25.0, 50.0)


def children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def one_run(st: c.BenchStack, tps: float, duration: int, tag: str) -> dict:
    from flamekit.load import k6 as fkload
    from flamekit.errors import FlamekitError
    d = st.workdir / "k6" / tag
    plan = fkload.LoadPlan(script=c.K6_SCRIPT, base_url=st.gateway_url, tps=tps, duration_s=duration,
                           phase="measure", summary_path=d / "k6-summary.json")
    cpu0, t0 = children_cpu(), time.monotonic()
    try:
        res = fkload.run_load(plan, log_path=d / "k6.log")
    except FlamekitError as exc:
        return {"target_tps": tps, "error": str(exc), "started": t0, "ended": time.monotonic()}
    t1 = time.monotonic()
    load = res.to_dict()
    return {"target_tps": tps, "started": t0, "ended": t1, "wall_s": t1 - t0,
            "k6_cpu_s": children_cpu() - cpu0, "k6_cpu_cores": (children_cpu() - cpu0) / max(1e-9, t1 - t0),
            "ratio": load["achieved_tps"] / tps, "vus_pre": plan.vus_pair()[0], "load": load}


def main(argv: list[str] | None = None) -> int:
    ap = c.parser(__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=None, help="rounds over the three rates (default 3, quick 1)")
    ap.add_argument("--duration", type=int, default=None, help="seconds per run (default 30, quick 5)")
    args = ap.parse_args(argv)
    c.check_args(ap, args)
    rounds = args.rounds or (1 if args.quick else 3)
    duration = args.duration or (5 if args.quick else 30)
    prime_s = 3 if args.quick else 15

    bench = c.Bench("load_accuracy", "Load accuracy (`bench/load_accuracy.py`)", args)
    runs: list[dict] = []
    with bench, c.demo_stack(args, "load_accuracy", bench.workdir, bench) as st:
        c.prime(st, prime_s)
        for rnd in range(1, rounds + 1):
            for tps in TARGETS:
                c.say(f"round {rnd}/{rounds}: {tps:g} TPS for {duration} s")
                r = one_run(st, tps, duration, f"r{rnd}-{tps:g}")
                r["round"] = rnd
                r["noise"] = bench.noise.window(r["started"], r["ended"]) if bench.noise else {}
                runs.append(r)
                if r.get("error"):
                    bench.problems.append(f"round {rnd} at {tps:g} TPS: {r['error']}")
                    c.say(f"  failed: {r['error']}")
                    continue
                ld = r["load"]
                r["load_issues"], severe = c.load_issues(ld)
                if severe:
                    bench.problems.append(f"round {rnd} at {tps:g} TPS: {', '.join(r['load_issues'])}")
                c.say(f"  achieved {ld['achieved_tps']:.2f} TPS (x{r['ratio']:.3f}), dropped "
                      f"{ld['dropped_iterations']}, VUs {ld['vus_max']}, p95 {c.fmt_num(ld['p95_ms'])} ms, "
                      f"errors {c.fmt_pct(ld['error_rate'], 2)}, k6 CPU {r['k6_cpu_cores']:.2f} cores")

    figures: dict = {"targets": {}}
    rows = []
    for tps in TARGETS:
        rs = [r for r in runs if r["target_tps"] == tps and not r.get("error")]
        get = lambda k: [r["load"].get(k) for r in rs]  # noqa: E731
        f = {
            "achieved_tps": c.summary(get("achieved_tps")),
            "ratio": c.summary(r["ratio"] for r in rs),
            "dropped_iterations": c.summary(get("dropped_iterations")),
            "dropped_total": sum(r["load"]["dropped_iterations"] for r in rs),
            "iterations_total": sum(r["load"]["iterations"] for r in rs),
            "rate_held_runs": sum(1 for r in rs if r["load"]["rate_held"]), "runs": len(rs),
            "vus_max": c.summary(get("vus_max")),
            "p95_ms": c.summary(get("p95_ms")),
            "error_rate": c.summary(get("error_rate")),
            "k6_cpu_cores": c.summary(r["k6_cpu_cores"] for r in rs),
            "other_containers_cores": c.summary((r.get("noise") or {}).get("other_containers_cores") for r in rs),
        }
        figures["targets"][f"{tps:g}"] = f
        rows.append([f"{tps:g}", c.fmt_spread(f["achieved_tps"], 2), c.fmt_spread(f["ratio"], 3),
                     f"{f['dropped_total']} of {f['iterations_total'] + f['dropped_total']:,} "
                     f"({c.fmt_pct(f['dropped_total'] / max(1, f['iterations_total'] + f['dropped_total']), 2)})",
                     f"{f['rate_held_runs']}/{f['runs']}", c.fmt_spread(f["vus_max"], 0),
                     c.fmt_spread(f["p95_ms"], 1, " ms"), c.fmt_spread(f["error_rate"], 2, pct=True),
                     c.fmt_spread(f["k6_cpu_cores"], 2), c.fmt_spread(f["other_containers_cores"], 2)])
        c.say(f"{tps:>4g} TPS: achieved {c.fmt_spread(f['achieved_tps'], 2)}, ratio {c.fmt_spread(f['ratio'], 3)}, "
              f"dropped {f['dropped_total']}, held {f['rate_held_runs']}/{f['runs']}")
    if any(figures["targets"][f"{t:g}"]["runs"] == 0 for t in TARGETS):
        bench.problems.append("a target rate produced no figures")
    body = "\n".join([
        f"{rounds} round(s) over the targets {', '.join(f'{t:g}' for t in TARGETS)} TPS (interleaved), "
        f"{duration} s each, k6 alone through `flamekit.load.run_load` (constant-arrival-rate, "
        f"`scripts/perf/order-flow.js`: stock lookup, order, read-back per iteration), after {prime_s} s of "
        "priming load. *achieved*: flamekit's figure (completed iterations over the planned window); "
        "*held*: runs flamekit counts as holding the rate (no dropped iteration and at least 95% of the "
        "target); *dropped*: iterations k6 could not start on time (a VU was not free), of all scheduled; "
        "*k6 CPU*: cores used by k6 itself; *others*: cores used by other people's containers meanwhile; "
        "*VUs*: the most k6 had allocated (it pre-allocates max(20, 0.75 x TPS)). k6 starts an iteration at "
        "t = 0, so a run completes up to one iteration more than rate x duration (+0.3% at 10 TPS x 30 s).",
        "",
        c.md_table(["target TPS", "achieved TPS", "achieved / target", "dropped iterations", "held", "VUs",
                    "p95 latency", "error rate", "k6 CPU (cores)", "others (cores)"], rows),
    ])
    settings = {"rounds": rounds, "duration": duration, "targets": TARGETS, "prime_s": prime_s}
    return bench.finish(figures, runs, body, settings)


if __name__ == "__main__":
    sys.exit(main())
