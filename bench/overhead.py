#!/usr/bin/env python3
"""What does profiling cost the profiled service? Same fixed-rate load, with and without asprof.

Three arms at 25 TPS against the demo stack, interleaved A B C A B C ... so drifts of a shared
machine hit all three alike (quick: one round of short runs; full: 3 rounds):

  A  none  k6 alone (flamekit.load.run_load): warm-up W s, then a measured run of D+2 s --
           the same k6 schedule `inv profile` uses;
  B  cpu   `inv profile --service order-service --event cpu --duration D --warmup W`;
  C  all   `inv profile --service order-service --event all` (cpu, alloc, wall, lock at once).

Figures per arm: achieved TPS, p50 and p95 latency (k6, over the D+2 s measured run), and
order-service's CPU from its cgroup, two ways:
  window  CPU cores used during the D s capture window (B/C: from the "profiling ..." line on;
          A: the same stretch of its measured run) -- the profiler's cost inside the JVM;
  command CPU-seconds over the whole command (B/C: `inv profile` from start to exit, including
          attach and the jfrconv conversions that run inside the container; A: warm-up plus
          measured run) -- everything profiling costs the container.
Each is given as a ratio to the no-profiler run of the same round.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common as c  # noqa: E402

SERVICE = "order-service"
TPS = 25.0
ARMS = ("none", "cpu", "all")


def run_none(st: c.BenchStack, cpu: c.ContainerCpu, duration: int, warmup: int, tag: str) -> dict:
    from flamekit.load import k6 as fkload
    d = st.workdir / "k6-none" / tag
    with c.CpuSampler(cpu) as smp:
        t0 = time.monotonic()
        if warmup > 0:
            fkload.run_load(fkload.LoadPlan(script=c.K6_SCRIPT, base_url=st.gateway_url, tps=TPS, duration_s=warmup,
                                            phase="warmup", summary_path=d / "k6-warmup-summary.json"),
                            log_path=d / "k6-warmup.log", preflight=False)
        t_meas = time.monotonic()
        res = fkload.run_load(fkload.LoadPlan(script=c.K6_SCRIPT, base_url=st.gateway_url, tps=TPS,
                                              duration_s=duration + 2, phase="measure",
                                              summary_path=d / "k6-summary.json"),
                              log_path=d / "k6.log", preflight=False)
        t1 = time.monotonic()
    w0 = t_meas + 1.0
    load = res.to_dict()
    return {"arm": "none", "started": t0, "ended": t1, "wall_s": t1 - t0,
            "window_cpu_cores": _div(smp.seconds(w0, w0 + duration), duration),
            "command_cpu_s": smp.seconds(t0, t1), "load": load}


def run_profile(st: c.BenchStack, cpu: c.ContainerCpu, event: str, duration: int, warmup: int) -> dict:
    with c.CpuSampler(cpu) as smp:
        res = st.inv("profile", "--service", SERVICE, "--event", event, "--duration", str(duration),
                     "--warmup", str(warmup), "--tps", f"{TPS:g}", check=False, timeout=900)
    out: dict = {"arm": event, "started": res.started, "ended": res.started + res.wall_s, "wall_s": res.wall_s,
                 "rc": res.returncode}
    if not res.ok:
        out["error"] = res.tail(4)
        return out
    t_cap = res.first_line_time(r"^profiling ")
    if t_cap is not None:
        w0 = res.started + t_cap
        out["window_cpu_cores"] = _div(smp.seconds(w0, w0 + duration), duration)
    out["command_cpu_s"] = smp.seconds(res.started, res.started + res.wall_s)
    rd = res.run_dir()
    if rd is not None:
        manifest, caps = c.load_run(rd)
        out["load"] = manifest.get("load") or {}
        out["run_dir"] = str(rd)
        out["samples"] = {cap.event: cap.samples for cap in caps}
        out["engine"] = next((cap.engine for cap in caps if cap.event == "cpu"), None)
    return out


def _div(a: float | None, b: float) -> float | None:
    return None if a is None or not b else a / b


FIGS = (  # key, label, getter, digits, unit
    ("achieved_tps", "achieved TPS", lambda r: (r.get("load") or {}).get("achieved_tps"), 2, ""),
    ("p50_ms", "p50 latency", lambda r: (r.get("load") or {}).get("p50_ms"), 1, " ms"),
    ("p95_ms", "p95 latency", lambda r: (r.get("load") or {}).get("p95_ms"), 1, " ms"),
    ("window_cpu_cores", "order-service CPU in the capture window", lambda r: r.get("window_cpu_cores"), 3,
     " cores"),
    ("command_cpu_s", "order-service CPU over the whole command", lambda r: r.get("command_cpu_s"), 1, " CPU-s"),
    ("wall_s", "command wall time", lambda r: r.get("wall_s"), 1, " s"),
)


def main(argv: list[str] | None = None) -> int:
    ap = c.parser(__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=None, help="A B C rounds (default 3, quick 1)")
    ap.add_argument("--duration", type=int, default=None, help="capture seconds (default 45, quick 5)")
    ap.add_argument("--warmup", type=int, default=None, help="warm-up seconds per run (default 15, quick 1)")
    args = ap.parse_args(argv)
    c.check_args(ap, args)
    rounds = args.rounds or (1 if args.quick else 3)
    duration = args.duration or (5 if args.quick else 45)
    warmup = args.warmup if args.warmup is not None else (1 if args.quick else 15)
    prime_s = 3 if args.quick else 20

    bench = c.Bench("overhead", "Profiling overhead (`bench/overhead.py`)", args)
    runs: list[dict] = []
    how = ""
    with bench, c.demo_stack(args, "overhead", bench.workdir, bench) as st:
        c.prime(st, prime_s)
        cid = st.container_id(SERVICE)
        cpu = c.ContainerCpu(cid)
        how = cpu.how
        c.say(f"{SERVICE} CPU from {how}")
        for rnd in range(1, rounds + 1):
            for arm in ARMS:
                if st.container_id(SERVICE) != cid:
                    bench.problems.append(f"{SERVICE} was recreated during the benchmark; CPU figures after "
                                          "that point use the new container")
                    cid = st.container_id(SERVICE)
                    cpu = c.ContainerCpu(cid)
                c.say(f"round {rnd}/{rounds}, arm {arm}: {warmup} s warm-up + {duration} s at {TPS:g} TPS")
                r = run_none(st, cpu, duration, warmup, f"r{rnd}") if arm == "none" else \
                    run_profile(st, cpu, arm, duration, warmup)
                r["round"] = rnd
                r["noise"] = bench.noise.window(r["started"], r["ended"]) if bench.noise else {}
                issues, severe = c.load_issues(r.get("load"))
                r["load_issues"] = issues
                if r.get("error"):
                    bench.problems.append(f"round {rnd} {arm}: inv profile failed: {r['error']}")
                elif severe:
                    bench.problems.append(f"round {rnd} {arm}: load not served normally ({', '.join(issues)})")
                runs.append(r)
                load = r.get("load") or {}
                c.say(f"  TPS {c.fmt_num(load.get('achieved_tps'), 2)}, p50 {c.fmt_num(load.get('p50_ms'))} ms, "
                      f"p95 {c.fmt_num(load.get('p95_ms'))} ms, window CPU {c.fmt_num(r.get('window_cpu_cores'), 3)} "
                      f"cores, command CPU {c.fmt_num(r.get('command_cpu_s'))} s in {r['wall_s']:.0f} s"
                      + (f"; others' containers {r['noise'].get('other_containers_cores'):.2f} cores"
                         if r["noise"].get("other_containers_cores") is not None else "")
                      + (f" [{', '.join(issues)}]" if issues else ""))

    figures: dict = {"arms": {}, "ratios": {}, "extra_cpu_cores": {}}
    by_round: dict[int, dict[str, dict]] = {}
    for r in runs:
        by_round.setdefault(r["round"], {})[r["arm"]] = r
    for arm in ARMS:
        rs = [r for r in runs if r["arm"] == arm and not r.get("error")]
        figures["arms"][arm] = {key: c.summary(get(r) for r in rs) for key, _, get, _, _ in FIGS}
    for arm in ARMS[1:]:
        figures["ratios"][arm] = {}
        for key, _, get, _, _ in FIGS:
            per_round = [c.ratio(get(rr[arm]), get(rr["none"])) for rr in by_round.values()
                         if arm in rr and "none" in rr and not rr[arm].get("error")]
            figures["ratios"][arm][key] = c.summary(per_round)
        extra = [(rr[arm].get("window_cpu_cores") - rr["none"]["window_cpu_cores"])
                 for rr in by_round.values() if arm in rr and "none" in rr
                 and rr[arm].get("window_cpu_cores") is not None and rr["none"].get("window_cpu_cores") is not None]
        figures["extra_cpu_cores"][arm] = c.summary(extra)
    if any(figures["arms"][a]["achieved_tps"]["n"] == 0 for a in ARMS):
        bench.problems.append("an arm produced no figures")

    # the tables
    rows = []
    for key, label, _, digits, unit in FIGS:
        row = [label]
        for arm in ARMS:
            row.append(c.fmt_spread(figures["arms"][arm][key], digits, unit))
        for arm in ARMS[1:]:
            row.append(c.fmt_spread(figures["ratios"][arm][key], 3))
        rows.append(row)
    for arm in ARMS[1:]:
        rt = figures["ratios"][arm]
        c.say(f"{arm:4s} vs none: window CPU x{c.fmt_num(rt['window_cpu_cores']['mean'], 3)}, command CPU "
              f"x{c.fmt_num(rt['command_cpu_s']['mean'], 2)}, p50 x{c.fmt_num(rt['p50_ms']['mean'], 2)}, "
              f"p95 x{c.fmt_num(rt['p95_ms']['mean'], 2)}, TPS x{c.fmt_num(rt['achieved_tps']['mean'], 3)}")
    noise_rows = []
    for r in runs:
        n = r.get("noise") or {}
        load = r.get("load") or {}
        noise_rows.append([str(r["round"]), r["arm"], c.fmt_num(r.get("window_cpu_cores"), 3),
                           c.fmt_num(r.get("command_cpu_s"), 1), c.fmt_num(load.get("p95_ms"), 1),
                           c.fmt_num(n.get("host_busy_cores"), 2),
                           c.fmt_num(n.get("other_containers_cores"), 2), c.fmt_num(n.get("load1"), 1),
                           ", ".join(r.get("load_issues") or []) or "-"])
    ec = figures["extra_cpu_cores"]
    body = "\n".join([
        f"{rounds} round(s) of three arms, run in the order none, cpu, all, at {TPS:g} TPS: each arm "
        f"{warmup} s of warm-up load then a {duration} s capture window (k6 runs {duration + 2} s around it), "
        f"after {prime_s} s of unmeasured priming load. *none*: k6 alone (`flamekit.load.run_load`, same "
        "schedule); *cpu* / *all*: `inv profile --service order-service --event cpu` / `--event all`. "
        f"order-service CPU comes from its cgroup ({'cgroup tree on the host' if how.startswith('host') else how}), "
        "*window*: during the capture window only (the profiler inside the JVM); *whole command*: from "
        "the start of the warm-up to the end of the command, which for cpu/all includes attaching, "
        "stopping and the `jfrconv` conversions that run inside the container. Ratios are per round "
        "(arm / none of the same round), then mean (min-max, cv). Latencies are k6's `http_req_duration` "
        "over all requests (three per iteration: two fast GETs and the order POST, so p50 is a GET).",
        "",
        c.md_table(["figure", "none", "cpu", "all", "cpu / none", "all / none"], rows),
        "",
        f"Profiling's extra CPU in the capture window: cpu {c.fmt_spread(ec['cpu'], 3, ' cores')}, "
        f"all {c.fmt_spread(ec['all'], 3, ' cores')} (arm minus none of the same round).",
        "",
        "Each run, in the order it ran, with how busy the machine was meanwhile (cores in use by "
        "everything / by other people's containers, 1-minute load average) and what k6 said about the load:",
        "",
        c.md_table(["round", "arm", "window CPU (cores)", "command CPU-s", "p95 (ms)", "host busy (cores)",
                    "others' containers (cores)", "load avg", "load notes"], noise_rows, "llrrrrrrl"),
    ])
    settings = {"rounds": rounds, "duration": duration, "warmup": warmup, "tps": TPS, "service": SERVICE,
                "prime_s": prime_s, "cpu_source": how}
    return bench.finish(figures, runs, body, settings)


if __name__ == "__main__":
    sys.exit(main())
