#!/usr/bin/env python3
"""What does the harness itself cost: wall time beyond the load it asks for, and memory.

1. `inv profile --service order-service --event cpu` (and, in full mode, `--event all`) with
   warm-up W and capture D: wall time of the command beyond W + D, split into the part before
   the capture starts and the part after it ends (stop, collect, jfrconv, copy-out).
2. `inv profile-all` for one service (order-service) and for all four, same duration: total
   wall time and time per step ([1/8] ... [8/8], from the time-stamped output). Full mode runs
   them cold, each in its own compose project (stack up, sample data, capture, report, stack
   down); quick mode runs them with --keep-up on the already running stack and only the cpu
   event, so stack start-up is mostly skipped (and figures are not comparable to full mode).
3. With ``--replicas N`` (full mode: 3): `inv profile --event cpu` of order-service at N
   compose replicas against one replica, same warm-up and duration (the wall-time ratio), and
   the merged priceOrder share against the replicas' sample-weighted mean.
4. With ``--cold-demo`` (never in quick mode): `make demo` on a clean clone of HEAD after the
   demo and base images are removed and the Docker engine this machine runs is stopped (by
   its PID, and only when no container runs): engine start, base images, profiler download,
   every profile-all step. docker.io stays installed and pip/apt caches stay warm.
5. Every time is also given as a ratio to the load window (warm-up + duration): the window is
   the physical floor, everything above 1.0 is harness.
6. For every command, the harness's peak memory: the inv (Python) process's own peak RSS
   (VmHWM, polled every 0.5 s), the peak of the summed RSS of inv and everything it runs (k6,
   docker CLI), and wait4's ru_maxrss (the largest single process of that tree).
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common as c  # noqa: E402

BANNER_RE = re.compile(r"^==> \[(\d)/(\d)\] (.*)$")


def mem(res: c.InvResult) -> dict:
    return {"inv_peak_mib": _mib(res.inv_hwm_kb), "tree_peak_mib": _mib(res.tree_peak_kb),
            "maxrss_mib": _mib(res.maxrss_kb), "harness_cpu_s": res.cpu_s}


def _mib(kb: int | None) -> float | None:
    return None if not kb else kb / 1024


def profile_run(st: c.BenchStack, event: str, duration: int, warmup: int) -> dict:
    res = st.inv("profile", "--service", "order-service", "--event", event, "--duration", str(duration),
                 "--warmup", str(warmup), check=False, timeout=900)
    out = {"command": f"profile --event {event}", "event": event, "rc": res.returncode, "wall_s": res.wall_s,
           "beyond_s": res.wall_s - warmup - duration, "window_ratio": res.wall_s / (warmup + duration),
           "run_dir": str(res.run_dir() or ""), **mem(res)}
    if not res.ok:
        out["error"] = res.tail(4)
        return out
    t_cap = res.first_line_time(r"^profiling ")
    if t_cap is not None:
        out["before_capture_s"] = t_cap - warmup       # start-up, JVM discovery, k6 start, 1 s lead
        out["after_capture_s"] = res.wall_s - t_cap - duration  # stop, k6 end, collect, convert, exit
    rd = res.run_dir()
    if rd is not None:
        manifest, _ = c.load_run(rd)
        out["manifest_wall_s"] = manifest.get("wall_seconds")
        out["load_issues"] = c.load_issues(manifest.get("load"))[0]
    return out


#: profile-all's steps by banner number (the banner's own title varies with the services).
STEPS = {0: "Python and invoke start-up", 1: "async-profiler check", 2: "engine and base images",
         3: "stack up (compose up --build)", 4: "wait until healthy",
         5: "sample data and profiling checks", 6: "capture (one load window), collect, convert", 7: "report",
         8: "stack down (or left up)"}


def phases(res: c.InvResult) -> dict[str, float]:
    """Seconds per profile-all step, keyed "N name", from the time-stamped banners."""
    marks = []
    for t, line in res.lines:
        m = BANNER_RE.match(line.strip())
        if m:
            marks.append((t, int(m.group(1))))
    out = {}
    if marks:
        out[f"0 {STEPS[0]}"] = marks[0][0]
    for (t, n), nxt in zip(marks, marks[1:] + [(res.wall_s, 9)]):
        out[f"{n} {STEPS.get(n, 'step')}"] = nxt[0] - t
    return out


def profile_all_run(st: c.BenchStack, services: str | None, events: str | None, duration: int, warmup: int,
                    cold: bool, tag: str) -> dict:
    args = ["profile-all", "--duration", str(duration), "--warmup", str(warmup)]
    if services:
        args += ["--services", services]
    if events:
        args += ["--events", events]
    nsvc = len(services.split(",")) if services else 4
    if cold:
        project, port = f"{st.project}{tag}", c.free_port()
        try:
            res = st.inv(*args, check=False, timeout=1800, project=project, port=port)
        finally:
            if st.running_containers(project):
                st.down(project=project)
        left = st.running_containers(project)
    else:
        res = st.inv(*args, "--keep-up", check=False, timeout=1800)
        left = []
    out = {"command": f"profile-all {nsvc} service(s)", "services": nsvc, "cold": cold, "rc": res.returncode,
           "wall_s": res.wall_s, "beyond_s": res.wall_s - warmup - duration,
           "window_ratio": res.wall_s / (warmup + duration), "phases": phases(res),
           "containers_left": len(left), **mem(res)}
    if not res.ok:
        out["error"] = res.tail(4)
    m = re.search(r"^profile-all took (\d+)s", res.stdout, re.M)
    if m:
        out["reported_s"] = int(m.group(1))
    return out


SPREAD = "-Dsun.net.inetaddr.ttl=0,-Djdk.httpclient.connectionPoolSize=1"  # docs/scaling.md


def replicas_run(st: c.BenchStack, n: int, duration: int, warmup: int, repeats: int) -> dict:
    """`inv profile --event cpu` at one replica and at n, alternating; the merged share."""
    from flamekit import config as fkconfig
    from flamekit.analysis import replicas as rp
    flags = {"INVOKE_FLAMEKIT_JVM_FLAGS": fkconfig.DEFAULT_JVM_FLAGS + "," + SPREAD}
    out: dict = {"n": n, "one": [], "many": [], "merged_share": [], "weighted_mean_share": []}
    for i in range(repeats):
        for scale in (1, n):
            st.inv("up", "--profiling", "--scale", f"order-service={scale}", extra_env=flags, timeout=600)
            st.inv("sample-data")
            c.prime(st, 10)
            c.say(f"inv profile --event cpu at {scale} replica(s) ({i + 1}/{repeats})")
            r = profile_run(st, "cpu", duration, warmup)
            out["one" if scale == 1 else "many"].append(r["wall_s"])
            rd = r.get("error") is None and r.get("run_dir")
            if scale > 1 and rd:
                [(merged, table)] = rp.merge_run(Path(rd))
                price = "demo.order.PricingEngine.priceOrder"
                if table.method == price:  # service_share: each replica's share of the merged top method
                    out["merged_share"].append(table.merged_share)
                    out["weighted_mean_share"].append(sum(r.samples * r.service_share for r in table.rows)
                                                      / max(1, sum(r.samples for r in table.rows)))
    st.inv("up", "--profiling", "--scale", "order-service=1", timeout=600)  # back to the shape others expect
    st.inv("sample-data")
    one, many = c.summary(out["one"]), c.summary(out["many"])
    out["ratio"] = c.ratio(many["mean"], one["mean"])
    c.say(f"{n} replicas / 1 replica wall time: x{c.fmt_num(out['ratio'], 3)}; merged share "
          f"{out['merged_share']} vs weighted mean {out['weighted_mean_share']}")
    return out


def replicas_only(args, duration: int, warmup: int, repeats: int, n: int) -> int:
    bench = c.Bench("harness_replicas", "Replicas: profile time and the merge (`bench/harness.py --only-replicas`)", args)
    with bench, c.demo_stack(args, "harness", bench.workdir, bench) as st:
        c.prime(st, 15)
        f = replicas_run(st, n, duration, warmup, repeats)
    diffs = [abs(a - b) * 100 for a, b in zip(f["merged_share"], f["weighted_mean_share"])]
    if f["ratio"] is None:
        bench.problems.append("no replica timing")
    body = "\n".join([
        f"`inv profile --service order-service --event cpu` (warm-up {warmup} s, capture {duration} s, 25 TPS), "
        f"at 1 replica and at {n} compose replicas, alternating, {repeats} time(s) each; the JVMs get "
        f"`{SPREAD}` so the gateway spreads its calls over the replicas (docs/scaling.md).",
        "",
        c.md_table(["figure", "value"], [
            ["wall time, 1 replica", c.fmt_spread(c.summary(f["one"]), 1, " s")],
            [f"wall time, {n} replicas", c.fmt_spread(c.summary(f["many"]), 1, " s")],
            [f"{n} replicas / 1", f"x{c.fmt_num(f['ratio'], 3)}"],
            ["merged priceOrder share", ", ".join(f"{x * 100:.2f}%" for x in f["merged_share"]) or "-"],
            ["replicas' sample-weighted mean", ", ".join(f"{x * 100:.2f}%" for x in f["weighted_mean_share"]) or "-"],
            ["largest difference", f"{max(diffs):.3f} points" if diffs else "-"],
        ]),
    ])
    return bench.finish({"replicas": f}, [], body, {"duration": duration, "warmup": warmup, "repeats": repeats, "n": n})


#: `make demo` milestones: (name, the first output line that starts it; make echoes each command).
DEMO_MARKS = (("make setup (venv, pip)", r"^"), ("engine (start dockerd)", r"^\S*inv engine$"),
              ("base images (debootstrap), profiler download alongside", r"^\S*inv download-profiler "),
              ("profile-all (images build, stack, 75 s window, report, down)", r"^\S*inv profile-all"))


def _engine_pid() -> int | None:
    try:
        return int(Path("/var/run/docker.pid").read_text().strip())
    except (OSError, ValueError):
        return None


def cold_make_demo(bench: c.Bench) -> dict:
    """`make demo` in a clean clone of HEAD with no engine running and no demo or base images."""
    import os
    import shutil
    import signal
    import subprocess
    import tempfile
    import time
    ps = subprocess.run(["docker", "ps", "-q"], capture_output=True, text=True)
    if ps.returncode == 0 and ps.stdout.strip():
        bench.problems.append("--cold-demo skipped: containers are running (stop them first)")
        return {}
    if ps.returncode == 0:
        imgs = subprocess.run(["docker", "images", "--format", "{{.Repository}}:{{.Tag}}"], capture_output=True,
                              text=True).stdout.split()
        mine = [i for i in imgs if i.startswith("flamekit")]
        if mine:
            subprocess.run(["docker", "rmi", "-f", *mine], capture_output=True)
        pid = _engine_pid()
        if pid:
            c.say(f"stopping the Docker engine (pid {pid}) for a cold start")
            os.kill(pid, signal.SIGTERM)
            for _ in range(300):
                if not Path(f"/proc/{pid}").exists():
                    break
                time.sleep(0.1)
    tmp = Path(tempfile.mkdtemp(prefix="flamekit-cold-"))
    try:
        subprocess.run(["git", "clone", "-q", str(c.ROOT), str(tmp / "clone")], check=True)
        c.say("cold `make demo` on a clean clone (engine stopped, no images, no profiler)")
        res = c.run_command(["make", "demo"], dict(os.environ), cwd=tmp / "clone", timeout=3600)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
            c.say("the engine is down after the cold run: starting it again (`inv engine`)")
            subprocess.run([*c.INV, "engine"], cwd=c.ROOT)
    out: dict = {"rc": res.returncode, "wall_s": res.wall_s, "window_s": 75, "window_ratio": res.wall_s / 75}
    marks = []
    for name, pattern in DEMO_MARKS:
        t = 0.0 if pattern == "^" else res.first_line_time(pattern)
        if t is not None:
            marks.append((t, name))
    marks.sort()
    out["phases"] = {name: nxt - t for (t, name), nxt in zip(marks, [m[0] for m in marks[1:]] + [res.wall_s])}
    out["profile_all_steps"] = phases(res)
    if res.returncode != 0:
        bench.problems.append(f"cold make demo failed: {res.tail(4)}")
    c.say(f"  cold make demo: {res.wall_s:.0f} s (x{res.wall_s / 75:.2f} the 75 s load window)")
    return out


def cold_demo_section(d: dict) -> str:
    rows = [[name, c.fmt_num(v, 1, " s"), c.fmt_num(v / d["window_s"], 2)] for name, v in d["phases"].items()]
    rows += [[f"  profile-all [{k.split(' ', 1)[0]}/8] {k.split(' ', 1)[1]}", c.fmt_num(v, 1, " s"),
              c.fmt_num(v / d["window_s"], 2)] for k, v in sorted(d["profile_all_steps"].items()) if not k.startswith("0 ")]
    return (f"Cold `make demo` (clean clone of HEAD, engine stopped, demo and base images removed, no "
            f"profiler; docker.io installed and pip/apt caches warm): **{d['wall_s']:.0f} s** to the report, "
            f"x{d['window_ratio']:.2f} its 75 s load window (15 s warm-up + 60 s).\n\n"
            + c.md_table(["phase", "time", "x window"], rows))


def main(argv: list[str] | None = None) -> int:
    ap = c.parser(__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=None, help="runs of each command (default 3/2, quick 1)")
    ap.add_argument("--duration", type=int, default=None, help="capture seconds (default 30, quick 3)")
    ap.add_argument("--warmup", type=int, default=None, help="warm-up seconds (default 10, quick 1)")
    ap.add_argument("--replicas", type=int, default=None,
                    help="also time `inv profile` at N order-service replicas against one (default 3; quick 0: skipped)")
    ap.add_argument("--only-replicas", action="store_true", help="run only the replica comparison")
    ap.add_argument("--cold-demo", action="store_true",
                    help="also time `make demo` on a clean clone with the engine stopped and the images removed "
                         "(refused while any container runs; not in quick mode)")
    args = ap.parse_args(argv)
    c.check_args(ap, args)
    quick = args.quick
    duration = args.duration or (3 if quick else 30)
    warmup = args.warmup if args.warmup is not None else (1 if quick else 10)
    n_profile = args.repeats or (1 if quick else 3)
    n_all = args.repeats or (1 if quick else 2)
    profile_events = ("cpu",) if quick else ("cpu", "all")
    pa_events = "cpu" if quick else None  # None: profile-all's default, all four events
    cold = not quick

    if args.only_replicas:
        return replicas_only(args, duration, warmup, args.repeats or 2, args.replicas or 3)
    if args.cold_demo and quick:
        ap.error("--cold-demo measures a full `make demo`: not with --quick")
    bench = c.Bench("harness", "Harness cost (`bench/harness.py`)", args)
    runs: list[dict] = []
    cold_demo: dict = {}
    n_replicas = args.replicas if args.replicas is not None else (0 if quick else 3)
    replica_figures: dict = {}
    with bench, c.demo_stack(args, "harness", bench.workdir, bench) as st:
        c.prime(st, 3 if quick else 15)
        if n_replicas > 1:
            replica_figures = replicas_run(st, n_replicas, duration, warmup, n_profile)
        for i in range(n_profile):
            for ev in profile_events:
                c.say(f"inv profile --event {ev} ({i + 1}/{n_profile}): warm-up {warmup} s + capture {duration} s")
                r = profile_run(st, ev, duration, warmup)
                runs.append(r)
                c.say(f"  {r['wall_s']:.1f} s wall, {r['beyond_s']:.1f} s beyond warm-up + duration; "
                      f"inv peak {c.fmt_num(r['inv_peak_mib'])} MiB, tree {c.fmt_num(r['tree_peak_mib'])} MiB")
                if r.get("error"):
                    bench.problems.append(f"inv profile --event {ev} failed: {r['error']}")
        for i in range(n_all):
            for services in ("order-service", None):
                nsvc = 1 if services else 4
                c.say(f"inv profile-all, {nsvc} service(s) ({i + 1}/{n_all}, "
                      f"{'cold: own project, up and down' if cold else 'on the running stack, --keep-up'})")
                r = profile_all_run(st, services, pa_events, duration, warmup, cold, f"all{i}{nsvc}")
                runs.append(r)
                c.say(f"  {r['wall_s']:.1f} s wall; steps: "
                      + ", ".join(f"[{k.split(' ', 1)[0]}] {v:.1f}" for k, v in sorted(r["phases"].items()))
                      + f"; inv peak {c.fmt_num(r['inv_peak_mib'])} MiB, tree {c.fmt_num(r['tree_peak_mib'])} MiB")
                if r.get("error"):
                    bench.problems.append(f"inv profile-all ({nsvc} services) failed: {r['error']}")
                if r["containers_left"]:
                    bench.problems.append(f"inv profile-all ({nsvc} services) left {r['containers_left']} containers")

    if args.cold_demo:
        cold_demo = cold_make_demo(bench)
    figures: dict = {"profile": {}, "profile_all": {}, "replicas": replica_figures}
    rows = []
    keys = (("wall_s", "wall time", " s"), ("window_ratio", "wall time / load window (warm-up + duration)", ""),
            ("beyond_s", "beyond warm-up + duration", " s"),
            ("before_capture_s", "  of which before the capture", " s"),
            ("after_capture_s", "  of which after the capture", " s"),
            ("inv_peak_mib", "inv process peak RSS", " MiB"), ("tree_peak_mib", "inv + children peak RSS", " MiB"),
            ("maxrss_mib", "largest process (ru_maxrss)", " MiB"), ("harness_cpu_s", "harness CPU (inv + k6 + docker CLI)", " s"))
    cols = []
    for ev in profile_events:
        rs = [r for r in runs if r.get("event") == ev and not r.get("error")]
        figures["profile"][ev] = {k: c.summary(r.get(k) for r in rs) for k, _, _ in keys}
        cols.append((f"`inv profile --event {ev}`", figures["profile"][ev]))
    for nsvc in (1, 4):
        rs = [r for r in runs if r.get("services") == nsvc and not r.get("error")]
        f = {k: c.summary(r.get(k) for r in rs) for k, _, _ in keys}
        names = sorted({p for r in rs for p in r["phases"]})
        f["phases"] = {p: c.summary(r["phases"].get(p) for r in rs) for p in names}
        figures["profile_all"][str(nsvc)] = f
        cols.append((f"`inv profile-all`, {nsvc} service{'s' if nsvc > 1 else ''}", f))
    for k, label, unit in keys:
        rows.append([label] + [c.fmt_spread(f[k], 1, unit) for _, f in cols])
    one, four = figures["profile_all"]["1"], figures["profile_all"]["4"]
    figures["profile_all_four_over_one"] = c.ratio(four["wall_s"]["mean"], one["wall_s"]["mean"])
    window = warmup + duration
    phase_rows = []
    for p in sorted(set(one.get("phases", {})) | set(four.get("phases", {})), key=lambda x: int(x.split()[0])):
        m1, m4 = one["phases"].get(p, {}).get("mean"), four["phases"].get(p, {}).get("mean")
        phase_rows.append([f"[{p.split(' ', 1)[0]}/8] {p.split(' ', 1)[1]}" if not p.startswith("0 ")
                           else p.split(" ", 1)[1],
                           c.fmt_spread(one["phases"].get(p, {}), 1, " s"),
                           c.fmt_num(None if m1 is None else m1 / window, 2),
                           c.fmt_spread(four["phases"].get(p, {}), 1, " s"),
                           c.fmt_num(None if m4 is None else m4 / window, 2)])
    c.say(f"profile-all 4 services / 1 service wall time: x{c.fmt_num(figures['profile_all_four_over_one'], 2)}")
    body = "\n".join([
        f"Warm-up {warmup} s and capture {duration} s for every command, 25 TPS; "
        f"`inv profile` {n_profile} time(s) per event, `inv profile-all` {n_all} time(s) per service count "
        + ("(cold: each in its own compose project -- build check, stack up, sample data, capture of all "
           "four events, report, stack down)." if cold else
           "(quick mode: `--keep-up` on the running stack, cpu event only -- not comparable to a full run).")
        + " *beyond*: wall time minus warm-up minus duration. *before the capture*: from the command's start "
          "to the `profiling ...` line, minus the warm-up (Python and invoke start-up, JVM discovery, k6 "
          "start, a 1 s lead); *after*: from the end of the capture window to exit (stopping asprof, k6's "
          "last seconds, copying out, `jfrconv` in one host JVM per recording, the manifest). Memory: the inv process's "
          "own peak RSS (VmHWM polled every 0.5 s), the peak of the summed RSS of inv and its descendants, "
          "and `ru_maxrss` from wait4 (the largest single process of the tree, usually k6).",
        "",
        c.md_table(["figure"] + [n for n, _ in cols], rows),
        "",
        f"`inv profile-all` with four services took x{c.fmt_num(figures['profile_all_four_over_one'], 2)} "
        "the wall time of one service at the same duration (one load window for all; the extra time is "
        "start-up of more containers and the per-service collection and conversion). Time per step:",
        "",
        c.md_table(["step", "1 service", "x window", "4 services", "x window"], phase_rows),
    ])
    if cold_demo:
        figures["cold_make_demo"] = cold_demo
        body += "\n\n" + cold_demo_section(cold_demo)
    settings = {"duration": duration, "warmup": warmup, "profile_repeats": n_profile, "profile_all_repeats": n_all,
                "profile_events": profile_events, "profile_all_events": pa_events or "cpu,alloc,wall,lock",
                "cold_profile_all": cold}
    return bench.finish(figures, runs, body, settings)


if __name__ == "__main__":
    sys.exit(main())
