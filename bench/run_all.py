#!/usr/bin/env python3
"""Run the five flamekit benchmarks one after the other and write their summary.

    .venv/bin/python bench/run_all.py            # full: each script on a fresh stack of its own
    .venv/bin/python bench/run_all.py --quick    # CI: one shared stack, short runs (~4 minutes)

Order: load_accuracy, overhead, harness, accuracy (accuracy recreates order-service with a
doubled PRICING_COST, so it goes after the figures it could disturb), chaos (kills `inv profile`
at random moments). Each script writes its own section of the Markdown file
and its JSON (bench/out/<script>.json unless --json-dir says otherwise); this script adds the
`summary` section: how long each took and the headline figures.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common as c  # noqa: E402

SCRIPTS = ("load_accuracy", "overhead", "harness", "accuracy", "chaos")


def headlines(name: str, d: dict) -> list[str]:
    """One or two lines of the figures that matter, from a script's JSON."""
    f = d.get("figures") or {}
    g = lambda *keys: _get(f, *keys)  # noqa: E731
    if name == "accuracy":
        parts = []
        for k, h in (f.get("hotspots") or {}).items():
            s = h.get("share") or {}
            designed = ""
            if h.get("designed_share") is not None:
                lo, hi = h["designed_low"], h["designed_high"]
                rng = c.fmt_pct(lo, 0) + ("" if lo == hi else f"-{c.fmt_pct(hi, 0)}")
                designed = (f" (designed {rng}, compared with {h['compared_figure']}: "
                            f"{c.fmt_pct((h.get('compared') or {}).get('mean'))})")
            parts.append(f"{k} {h['method'].split('.', 2)[-1]} {c.fmt_pct(s.get('mean'))}{designed}, "
                         f"top application frame in {h.get('top_count')}/{h.get('runs')} runs")
        dp = f.get("doubled_pricing") or {}
        if dp:
            parts.append(f"PRICING_COST x2 (fresh JVMs): priceOrder {c.fmt_pct(dp.get('baseline_share'))} -> "
                         f"{c.fmt_pct(dp.get('doubled_share'))} ({'up' if dp.get('moved_up') else 'NOT up'}"
                         f"{', beyond the noise' if dp.get('beyond_noise') else ', within the noise'}); "
                         f"its CPU samples x{c.fmt_num(dp.get('priceorder_samples_ratio'), 2)}")
        return parts
    if name == "overhead":
        out = []
        for arm in ("cpu", "all"):
            out.append(f"{arm}: order-service CPU x{c.fmt_num(g('ratios', arm, 'window_cpu_cores', 'mean'), 2)} "
                       f"in the window, x{c.fmt_num(g('ratios', arm, 'command_cpu_s', 'mean'), 2)} over the command; "
                       f"p95 x{c.fmt_num(g('ratios', arm, 'p95_ms', 'mean'), 2)}, "
                       f"TPS x{c.fmt_num(g('ratios', arm, 'achieved_tps', 'mean'), 3)}")
        return out
    if name == "harness":
        return [f"inv profile --event cpu: {c.fmt_num(g('profile', 'cpu', 'beyond_s', 'mean'))} s beyond warm-up + "
                f"duration, inv peak RSS {c.fmt_num(g('profile', 'cpu', 'inv_peak_mib', 'mean'), 0)} MiB",
                f"profile-all: {c.fmt_num(g('profile_all', '1', 'wall_s', 'mean'), 0)} s for 1 service, "
                f"{c.fmt_num(g('profile_all', '4', 'wall_s', 'mean'), 0)} s for 4"]
    if name == "chaos":
        return [f"{f.get('kills')} kills (SIGINT/SIGTERM/SIGKILL at random moments): profilers left "
                f"{f.get('profilers_left')}, k6 left {f.get('k6_left')}, partial files {f.get('partial_files')}, "
                f"next run ok {f.get('next_ok')}/{f.get('next_runs')}"]
    if name == "load_accuracy":
        return ["; ".join(f"{t} TPS -> x{c.fmt_num(_get(v, 'ratio', 'mean'), 3)}, dropped {v.get('dropped_total')}"
                          for t, v in (f.get("targets") or {}).items())]
    return []


def _get(d, *keys):
    for k in keys:
        if not isinstance(d, dict):
            return None
        d = d.get(k)
    return d


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="short runs on one shared stack (CI)")
    ap.add_argument("--out", type=Path, default=c.DOC, help="Markdown file to update (default docs/perf/benchmarks.md)")
    ap.add_argument("--json-dir", type=Path, default=c.OUT_DIR, help="directory for the scripts' JSON files")
    ap.add_argument("--workdir", type=Path, default=None, help="work directory (default bench/out/run_all-<stamp>)")
    ap.add_argument("--only", default=None, help=f"comma-separated subset of {','.join(SCRIPTS)}")
    ap.add_argument("--project", default=None, help="with --quick: use this running stack (needs --port)")
    ap.add_argument("--port", type=int, default=None)
    args = ap.parse_args(argv)
    chosen = [s for s in SCRIPTS if not args.only or s in args.only.split(",")]
    workdir = args.workdir or c.OUT_DIR / f"run_all-{c.stamp()}"
    workdir.mkdir(parents=True, exist_ok=True)
    mode = "quick" if args.quick else "full"
    started = c.now_utc()
    t0 = time.monotonic()
    results: dict[str, dict] = {}

    def run(name: str, stack: c.BenchStack | None) -> None:
        cmd = [sys.executable, str(c.BENCH_DIR / f"{name}.py"), "--out", str(args.out),
               "--json", str(args.json_dir / f"{name}.json"), "--workdir", str(workdir / name)]
        if args.quick:
            cmd.append("--quick")
        if stack is not None:
            cmd += ["--project", stack.project, "--port", str(stack.port)]
        c.say(f"\n######## {name}: {' '.join(cmd[1:])}")
        t = time.monotonic()
        rc = subprocess.run(cmd, cwd=c.ROOT, check=False).returncode
        results[name] = {"rc": rc, "seconds": time.monotonic() - t}

    if args.quick:
        shared_args = argparse.Namespace(project=args.project, port=args.port)
        with c.demo_stack(shared_args, "runall", workdir / "stack") as st:
            results["stack"] = {"rc": 0, "seconds": time.monotonic() - t0}
            for name in chosen:
                run(name, st)
    else:
        for name in chosen:
            run(name, None)
    total = time.monotonic() - t0

    rows, lines = [], []
    for name in chosen:
        r = results.get(name, {})
        data = {}
        jp = args.json_dir / f"{name}.json"
        if jp.is_file():
            data = json.loads(jp.read_text())
        ok = "ok" if r.get("rc") == 0 else f"exit {r.get('rc')}"
        rows.append([f"`bench/{name}.py`", c.hms(r.get("seconds", 0)), ok,
                     "shared" if (data.get("noise") or {}).get("shared") else "no"])
        for h in headlines(name, data):
            lines.append(f"- **{name}**: {h}")
    facts = c.machine_facts()
    body = "\n".join([
        "## Summary (`bench/run_all.py`)", "",
        f"_{mode.capitalize()} mode, {started.strftime('%Y-%m-%d %H:%M')} UTC, all scripts together took "
        f"{c.hms(total)}. Machine: {c.facts_line(facts)}._", "",
        c.md_table(["script", "took", "result", "machine shared"], rows, "lrll"), "",
        "Headlines (details and spreads in the sections below):", "",
        *lines,
    ])
    c.write_section(args.out, "summary", body)
    c.say(f"\nall benchmarks ({mode}) took {c.hms(total)}:")
    for name in chosen:
        r = results.get(name, {})
        c.say(f"  {name:14s} {c.hms(r.get('seconds', 0)):>12s}  rc {r.get('rc')}")
    for ln in lines:
        c.say(ln)
    return 0 if all(results.get(n, {}).get("rc") == 0 for n in chosen) else 1


if __name__ == "__main__":
    sys.exit(main())
