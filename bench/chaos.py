#!/usr/bin/env python3
"""Nothing left running, nothing lost: `inv profile --event all` killed at random moments.

N runs (default 50, --quick 6) of `inv profile --event all --duration D --warmup W --tps T`
against the demo stack, each killed at a moment drawn uniformly over 0..the command's expected
wall time (seeded RNG, --seed), with SIGINT, SIGTERM and SIGKILL in turn (sent to the inv
process only, by its PID). After each kill:

  profilers  every JVM's `asprof status <pid>` (docker exec into each service) says not active:
             within ~2 s after the command exited for SIGINT/SIGTERM; for SIGKILL within the
             profiler's own --timeout margin (duration + 30 s after it started), polled;
  k6         no k6 process started for this stack is alive (found by PID in /proc: its
             environment names our gateway URL or its summary path lies in our runs dir);
             at once for SIGINT/SIGTERM, within its planned end + 30 s for SIGKILL;
  manifest   the killed run's manifest says `failed` (`ok` when it had finished); after a
             SIGKILL the next command marks it `abandoned`;
  files      no seed-named flame graph (<flamegraph_dir>/<service>-<event>-<stamp>.html) is
             empty or truncated (non-empty, ends with </html>);
  next run   the stack is healthy and a clean `inv profile --event cpu` succeeds.

The phase at kill time comes from the lines the killed command had printed: prepare (nothing
yet, or only the "JVM pid" line), warm-up, start (warm-up over, no "profiling" line yet),
capture, stop (window over, no "converting" line yet), convert, copy (a seed flame graph of
the run already exists), finish (results being printed).

    .venv/bin/python bench/chaos.py              # 50 kills, section `chaos` of docs/perf/benchmarks.md
    .venv/bin/python bench/chaos.py --quick      # 6 kills (CI); bench/out/chaos-quick.{json,md}
"""
from __future__ import annotations

import contextlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common as c  # noqa: E402

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGKILL)
PHASES = ("prepare", "warm-up", "start", "capture", "stop", "convert", "copy", "finish", "exited")
SERVICE = "order-service"
PROFILER_MARGIN_S = 30      # flamekit.capture.session.MARGIN_S: asprof start --timeout = duration + 30
LOAD_MARGIN_S = 2           # flamekit.workflow.profile.LOAD_MARGIN_S
INTERRUPT_WAIT_S = 120      # SIGINT/SIGTERM: the command must exit (after its cleanup) within this
QUICK_EXPECTED_S = 24.0     # `inv profile --event all --duration 6 --warmup 2` on 2 shared cores: 24-27 s
SETTLE_S = 2.0              # SIGINT/SIGTERM: profilers and k6 must be gone this soon after the exit


# =========================================================================== probes
def containers(project: str) -> dict[str, str]:
    out = subprocess.run(["docker", "ps", "--no-trunc", "--filter", f"label=com.docker.compose.project={project}",
                          "--format", '{{.ID}} {{.Label "com.docker.compose.service"}}'],
                         capture_output=True, text=True, timeout=60).stdout
    return {svc: cid for cid, _, svc in (ln.partition(" ") for ln in out.splitlines()) if svc}


def health(project: str) -> dict[str, str]:
    out = subprocess.run(["docker", "ps", "-a", "--filter", f"label=com.docker.compose.project={project}",
                          "--format", '{{.Label "com.docker.compose.service"}}|{{.Status}}'],
                         capture_output=True, text=True, timeout=60).stdout
    return dict(ln.split("|", 1) for ln in out.splitlines() if "|" in ln)


_PROBE = ('for p in $(pgrep -x java); do echo "pid $p: $({asprof} status $p 2>&1 | tail -n 1)"; done; '
          'for f in /tmp/flamekit-*; do [ -e "$f" ] && echo "left $f"; done; true')


def probe_container(cid: str, asprof: str) -> dict:
    """{"active": [pids with a running profiler], "left": [flamekit files in /tmp], "error": str|None}."""
    try:
        p = subprocess.run(["docker", "exec", cid, "sh", "-c", _PROBE.format(asprof=asprof)],
                           capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return {"active": [], "left": [], "error": "docker exec timed out"}
    active, left = [], []
    for ln in p.stdout.splitlines():
        if ln.startswith("pid ") and "running" in ln.lower():
            active.append(ln)
        elif ln.startswith("left "):
            left.append(ln[5:])
    return {"active": active, "left": left, "error": None if p.returncode == 0 else (p.stderr.strip() or None)}


def probe_profilers(project: str, asprof: str) -> dict[str, dict]:
    cs = containers(project)
    with ThreadPoolExecutor(max_workers=max(1, len(cs))) as pool:
        return dict(zip(cs, pool.map(lambda cid: probe_container(cid, asprof), cs.values())))


def active_profilers(probe: dict[str, dict]) -> list[str]:
    return [f"{svc}: {a}" for svc, r in probe.items() for a in r["active"]]


def _proc_text(pid: str, name: str) -> str:
    try:
        return Path(f"/proc/{pid}/{name}").read_bytes().replace(b"\0", b"\n").decode(errors="replace")
    except OSError:
        return ""


def k6_processes(gateway_url: str, runs_dir: Path) -> list[int]:
    """k6 processes of this stack, by PID from /proc (never by name alone): k6's command line
    holds only the script, so its environment tells them apart (FK_BASE_URL = our gateway, or
    FK_SUMMARY inside our runs dir)."""
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        if _proc_text(d.name, "comm").strip() != "k6":
            continue
        text = _proc_text(d.name, "cmdline") + "\n" + _proc_text(d.name, "environ")
        if re.search(rf"^FK_BASE_URL={re.escape(gateway_url)}/?$", text, re.M) or str(runs_dir) in text:
            found.append(int(d.name))
    return found


def bad_html(path: Path) -> str | None:
    """Why a seed flame graph is partial, or None when it is whole."""
    try:
        size = path.stat().st_size
        if size == 0:
            return "empty"
        with open(path, "rb") as f:
            f.seek(max(0, size - 64))
            tail = f.read().rstrip()
    except OSError as exc:
        return f"unreadable: {exc}"
    return None if tail.endswith(b"</html>") else f"truncated ({size} bytes, no </html> at the end)"


# =========================================================================== one killed run
class Killed:
    """`inv profile` in its own session, its stdout lines time-stamped, killed at ``at_s``."""

    def __init__(self, cmd: list[str], env: dict[str, str]):
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen(cmd, cwd=c.ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, bufsize=1, start_new_session=True)
        self.lines: list[tuple[float, str]] = []
        self.err: list[str] = []
        self._readers = [threading.Thread(target=self._read, args=(self.proc.stdout, self.lines), daemon=True),
                         threading.Thread(target=self._read, args=(self.proc.stderr, None), daemon=True)]
        for r in self._readers:
            r.start()

    def _read(self, stream, into) -> None:
        for line in stream:
            if into is None:
                self.err.append(line.rstrip("\n"))
            else:
                into.append((time.monotonic() - self.t0, line.rstrip("\n")))

    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def wait(self, timeout: float) -> int | None:
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        for r in self._readers:
            r.join(10)
        return rc

    def signal(self, sig: signal.Signals) -> bool:
        if self.proc.poll() is not None:
            return False
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, sig)   # the inv (python) process only
            return True
        return False


def phase_of(lines: list[tuple[float, str]], now_s: float, warmup: int, duration: int, seed_files: bool) -> str:
    """The phase of `inv profile` from the lines it printed by ``now_s``."""
    if seed_files:
        return "copy"
    seen = [(t, ln) for t, ln in lines if t <= now_s]
    last = lambda rx: next((t for t, ln in reversed(seen) if re.search(rx, ln)), None)  # noqa: E731
    if last(r"^(load: |run directory: )") is not None or last(r"^\S+ (cpu|alloc|wall|lock): ") is not None:
        return "finish"
    if last(r"^converting ") is not None:
        return "convert"
    t_prof = last(r"^profiling ")
    if t_prof is not None:
        return "capture" if now_s - t_prof < duration else "stop"
    t_warm = next((t for t, ln in seen if ln.startswith("warm-up:")), None)
    if t_warm is not None:
        return "warm-up" if now_s - t_warm < warmup + 1.0 else "start"
    return "prepare"


def new_run_dirs(runs_dir: Path, before: set[str]) -> list[Path]:
    if not runs_dir.is_dir():
        return []
    return sorted(p for p in runs_dir.iterdir() if p.is_dir() and p.name not in before)


def read_status(run_dir: Path | None) -> str | None:
    if run_dir is None:
        return None
    try:
        return json.loads((run_dir / "manifest.json").read_text()).get("status")
    except (OSError, ValueError):
        return "unreadable"


def one_kill(st: c.BenchStack, n: int, sig: signal.Signals, at_s: float, a: dict) -> dict:
    runs_dir = st.workdir / "runs"
    fg_dir = st.workdir / "flamegraphs"
    before = {p.name for p in runs_dir.iterdir()} if runs_dir.is_dir() else set()
    cmd = c.INV + ["profile", "--service", SERVICE, "--event", "all", "--duration", str(a["duration"]),
                   "--warmup", str(a["warmup"]), "--tps", f"{a['tps']:g}"]
    k = Killed(cmd, st.env())
    rec: dict = {"n": n, "signal": sig.name, "kill_at_s": round(at_s, 2)}
    rc = k.wait(max(0.0, at_s - k.elapsed()))
    if rc is None:
        dirs = new_run_dirs(runs_dir, before)
        stamp = dirs[0].name if dirs else None
        seeds = bool(stamp and list(fg_dir.glob(f"*-{stamp}.html")))
        rec["phase"] = phase_of(k.lines, k.elapsed(), a["warmup"], a["duration"], seeds)
        rec["sent"] = k.signal(sig)
        t_kill = time.monotonic()
    else:
        rec["phase"], rec["sent"], t_kill = "exited", False, time.monotonic()
    if rec["phase"] == "exited" or not rec["sent"]:
        rec["phase"] = "exited"
    rc = k.wait(INTERRUPT_WAIT_S if sig != signal.SIGKILL else 30)
    if rc is None:  # a command that does not end after SIGINT/SIGTERM is itself a finding
        rec["hung"] = True
        k.signal(signal.SIGKILL)
        rc = k.wait(30)
    rec["rc"] = rc
    rec["exit_s"] = round(time.monotonic() - t_kill, 2)
    rec["stderr_last"] = k.err[-1] if k.err else ""
    rec["stdout_tail"] = [ln for _, ln in k.lines[-3:]]
    dirs = new_run_dirs(runs_dir, before)
    run_dir = dirs[0] if dirs else None
    rec["run_dir"] = str(run_dir) if run_dir else None
    rec["status_after_kill"] = read_status(run_dir)

    # k6 first (it ends by itself soon after a SIGKILL), then the profilers, polled together
    k6_at_exit = k6_processes(st.gateway_url, runs_dir)
    rec["k6_alive_at_exit"] = len(k6_at_exit)
    asprof = a["asprof"]
    first = probe_profilers(st.project, asprof)
    rec["profilers_active_at_exit"] = len(active_profilers(first))
    kill_bound = sig == signal.SIGKILL
    prof_bound = (a["duration"] + PROFILER_MARGIN_S + 5) if kill_bound else SETTLE_S
    k6_bound = (a["warmup"] + a["duration"] + LOAD_MARGIN_S + 30) if kill_bound else SETTLE_S
    t_exit = time.monotonic()
    prof_left, k6_left = active_profilers(first), k6_at_exit
    prof_gone = 0.0 if not prof_left else None
    k6_gone = 0.0 if not k6_left else None
    while True:
        waited = time.monotonic() - t_exit
        if k6_left and waited < k6_bound:
            k6_left = k6_processes(st.gateway_url, runs_dir)
            if not k6_left:
                k6_gone = waited
        if prof_left and waited < prof_bound:
            prof_left = active_profilers(probe_profilers(st.project, asprof))
            if not prof_left:
                prof_gone = time.monotonic() - t_exit
        if (not k6_left or waited >= k6_bound) and (not prof_left or waited >= prof_bound):
            break
        time.sleep(0.5)
    rec["profilers_left"] = len(prof_left)
    rec["profilers_left_detail"] = prof_left
    rec["profilers_gone_after_s"] = round(prof_gone, 1) if prof_gone is not None else None
    rec["k6_left"] = len(k6_left)
    rec["k6_gone_after_s"] = round(k6_gone, 1) if k6_gone is not None else None
    if k6_left:  # never leave them to the next run: stop exactly these PIDs (ours, by environment)
        for pid in k6_left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    # recordings left in the containers' /tmp (informative: a SIGKILLed harness cannot remove them)
    rec["container_files_left"] = sorted(f"{svc}:{f}" for svc, r in probe_profilers(st.project, asprof).items()
                                         for f in r["left"])

    # next run: healthy stack, a clean cpu profile; it also opens the run store
    rec["health"] = health(st.project)
    rec["healthy"] = bool(rec["health"]) and all("(healthy)" in s for s in rec["health"].values())
    nxt = st.inv("profile", "--service", SERVICE, "--event", "cpu", "--duration", str(a["next_duration"]),
                 "--warmup", str(a["next_warmup"]), "--tps", f"{a['tps']:g}", check=False, timeout=600)
    rec["next_rc"] = nxt.returncode
    rec["next_ok"] = nxt.ok
    if not nxt.ok:
        rec["next_error"] = nxt.tail(3)
    rec["status_final"] = read_status(run_dir)
    rec["manifest_ok"] = manifest_ok(rec["phase"], sig, run_dir, rec["status_after_kill"], rec["status_final"])
    # partial seed flame graphs: this run's, and every one in the directory
    partial = {}
    for f in sorted(fg_dir.glob("*.html")) if fg_dir.is_dir() else []:
        if f.name == "index.html":
            continue
        why = bad_html(f)
        if why:
            partial[f.name] = why
    rec["partial_files"] = partial
    rec["seed_files"] = len(list(fg_dir.glob(f"*-{run_dir.name}.html"))) if run_dir and fg_dir.is_dir() else 0
    return rec


def manifest_ok(phase: str, sig: signal.Signals, run_dir: Path | None, after_kill: str | None,
                final: str | None) -> bool:
    """failed (or ok when it had finished) after SIGINT/SIGTERM; abandoned (or ok/failed) once the
    next command opened the store after SIGKILL; no run directory only when killed before it."""
    if run_dir is None:
        return phase == "prepare"
    if phase == "exited":
        return final == "ok"
    if sig == signal.SIGKILL:
        return final in ("abandoned", "ok", "failed") and not (after_kill == "running" and final != "abandoned")
    return after_kill in ("failed", "ok") and final == after_kill


# =========================================================================== figures
def tally(records: list[dict]) -> dict:
    by = {}
    for r in records:
        by.setdefault(r["phase"], {}).setdefault(r["signal"], 0)
        by[r["phase"]][r["signal"]] += 1
    seen_partial: set[str] = set()
    for r in records:
        seen_partial.update(r["partial_files"])
    return {
        "kills": len(records),
        "by_phase_signal": by,
        "profilers_left": sum(r["profilers_left"] for r in records),
        "k6_left": sum(r["k6_left"] for r in records),
        "partial_files": len(seen_partial),
        "partial_file_names": sorted(seen_partial),
        "manifest_wrong": sum(1 for r in records if not r["manifest_ok"]),
        "hung": sum(1 for r in records if r.get("hung")),
        "unhealthy": sum(1 for r in records if not r["healthy"]),
        "next_ok": sum(1 for r in records if r["next_ok"]),
        "next_runs": len(records),
        "sigkill_profiler_gone_s": c.summary([r["profilers_gone_after_s"] for r in records
                                              if r["signal"] == "SIGKILL" and r["profilers_active_at_exit"]]),
        "sigkill_k6_gone_s": c.summary([r["k6_gone_after_s"] for r in records
                                        if r["signal"] == "SIGKILL" and r["k6_alive_at_exit"]]),
        "interrupt_exit_s": c.summary([r["exit_s"] for r in records if r["signal"] != "SIGKILL" and r["sent"]]),
        "container_files_left": len({f for r in records for f in r["container_files_left"]}),
    }


def tables(f: dict, records: list[dict]) -> str:
    sigs = [s.name for s in SIGNALS]
    rows = []
    for ph in PHASES:
        counts = f["by_phase_signal"].get(ph, {})
        if not counts:
            continue
        sub = [r for r in records if r["phase"] == ph]
        rows.append([ph, *[counts.get(s, 0) for s in sigs], sum(counts.values()),
                     sum(r["profilers_left"] for r in sub), sum(r["k6_left"] for r in sub),
                     sum(len(r["partial_files"]) > 0 for r in sub),
                     sum(not r["manifest_ok"] for r in sub),
                     f"{sum(r['next_ok'] for r in sub)}/{len(sub)}"])
    rows.append(["**all**", *[sum(v.get(s, 0) for v in f["by_phase_signal"].values()) for s in sigs], f["kills"],
                 f["profilers_left"], f["k6_left"], f["partial_files"], f["manifest_wrong"],
                 f"{f['next_ok']}/{f['next_runs']}"])
    return c.md_table(["phase at kill", *sigs, "kills", "profilers left", "k6 left", "partial files",
                       "manifest wrong", "next run ok"], rows)


def describe(f: dict, a: dict) -> str:
    lines = [
        f"{f['kills']} runs of `inv profile --service {SERVICE} --event all --duration {a['duration']} "
        f"--warmup {a['warmup']} --tps {a['tps']:g}`, each killed at a moment drawn uniformly over "
        f"0..{a['expected_s']:.1f} s (the command's measured wall time; seed {a['seed']}), with SIGINT, SIGTERM "
        f"and SIGKILL in turn. After each kill: every JVM's `asprof status`, k6 processes of this stack "
        f"(by PID from /proc), the run's manifest, every seed flame graph, the stack's health, then a clean "
        f"`inv profile --event cpu --duration {a['next_duration']} --warmup {a['next_warmup']}`.",
        "",
        tables(f, a["records"]),
        "",
        f"- Profilers left running: **{f['profilers_left']}** (SIGINT/SIGTERM: checked within {SETTLE_S:g} s of "
        f"the exit; SIGKILL: within the profiler's own `--timeout` of duration + {PROFILER_MARGIN_S} s).",
        f"- k6 processes left: **{f['k6_left']}**.",
        f"- Partial (empty or truncated) seed flame graphs: **{f['partial_files']}**.",
        f"- Manifests with the wrong status: **{f['manifest_wrong']}**; commands that did not exit after "
        f"SIGINT/SIGTERM: **{f['hung']}**; unhealthy stack after a kill: **{f['unhealthy']}**.",
        f"- Next `inv profile --event cpu` succeeded: **{f['next_ok']}/{f['next_runs']}**.",
        f"- SIGINT/SIGTERM: the command exited (cleanup done) after "
        f"{c.fmt_spread(f['interrupt_exit_s'], 1, ' s')}.",
        f"- SIGKILL: a profiler still active at the kill stopped by its own `--timeout` after "
        f"{c.fmt_spread(f['sigkill_profiler_gone_s'], 1, ' s')}; k6 (its own session) ran on for "
        f"{c.fmt_spread(f['sigkill_k6_gone_s'], 1, ' s')} until its planned end; recordings left in the "
        f"containers' /tmp (nobody removes them after a SIGKILL): {f['container_files_left']}.",
    ]
    return "\n".join(lines)


# =========================================================================== main
def main(argv: list[str] | None = None) -> int:
    ap = c.parser(__doc__.split("\n\n")[0])
    ap.set_defaults(out=None, json=None)
    ap.add_argument("--runs", type=int, default=None, help="killed runs (default 50, quick 6)")
    ap.add_argument("--seed", type=int, default=20261201, help="seed of the kill moments")
    ap.add_argument("--duration", type=int, default=6, help="capture seconds of each killed run (default 6)")
    ap.add_argument("--warmup", type=int, default=2, help="warm-up seconds of each killed run (default 2)")
    ap.add_argument("--tps", type=float, default=20.0, help="k6 rate (default 20)")
    ap.add_argument("--next-duration", type=int, default=None, help="capture seconds of the clean run after "
                                                                    "each kill (default: --duration, quick 2)")
    ap.add_argument("--next-warmup", type=int, default=None, help="warm-up of the clean run (default --warmup, quick 0)")
    ap.add_argument("--expected", type=float, default=None,
                    help="the command's expected wall time in s (default: measured by one uncounted run; "
                         f"quick: {QUICK_EXPECTED_S:g} s, what it took on a 2-core machine)")
    args = ap.parse_args(argv)
    c.check_args(ap, args)
    if args.out is None:
        args.out = c.OUT_DIR / "chaos-quick.md" if args.quick else c.DOC
    if args.json is None:
        args.json = c.OUT_DIR / ("chaos-quick.json" if args.quick else "chaos.json")
    n_runs = args.runs or (6 if args.quick else 50)
    from flamekit import config as fkconfig
    s = fkconfig.build_settings({}, c.ROOT)
    a = {"duration": args.duration, "warmup": args.warmup, "tps": args.tps, "seed": args.seed,
         "next_duration": args.next_duration or (2 if args.quick else args.duration),
         "next_warmup": args.next_warmup if args.next_warmup is not None else (0 if args.quick else args.warmup),
         "asprof": f"{s.profiler.container_path.rstrip('/')}/bin/asprof", "records": []}
    rng = random.Random(args.seed)
    bench = c.Bench("chaos", "Killed mid-run (`bench/chaos.py`)", args)
    records: list[dict] = a["records"]
    with bench, c.demo_stack(args, "chaos", bench.workdir, bench) as st:
        if args.expected or args.quick:
            a["expected_s"] = args.expected or QUICK_EXPECTED_S
        else:
            cal = st.inv("profile", "--service", SERVICE, "--event", "all", "--duration", str(a["duration"]),
                         "--warmup", str(a["warmup"]), "--tps", f"{a['tps']:g}", timeout=600)
            a["expected_s"] = cal.wall_s
            c.say(f"calibration: `inv profile --event all` took {cal.wall_s:.1f} s")
        for i in range(n_runs):
            sig = SIGNALS[i % len(SIGNALS)]
            at = rng.uniform(0.0, a["expected_s"])
            rec = one_kill(st, i + 1, sig, at, a)
            records.append(rec)
            c.say(f"[{i + 1}/{n_runs}] {sig.name:7s} at {at:5.1f} s ({rec['phase']:8s}) rc {rec['rc']}, "
                  f"manifest {rec['status_after_kill']} -> {rec['status_final']}, profilers left "
                  f"{rec['profilers_left']}, k6 left {rec['k6_left']}, partial {len(rec['partial_files'])}, "
                  f"next run {'ok' if rec['next_ok'] else 'FAILED'}")
            if not rec["manifest_ok"]:
                bench.problems.append(f"run {i + 1} ({sig.name}, {rec['phase']}): manifest {rec['status_after_kill']}"
                                      f" -> {rec['status_final']}")
            if rec.get("hung"):
                bench.problems.append(f"run {i + 1} ({sig.name}, {rec['phase']}): did not exit within "
                                      f"{INTERRUPT_WAIT_S} s")
            if rec["profilers_left"]:
                bench.problems.append(f"run {i + 1} ({sig.name}, {rec['phase']}): profilers left: "
                                      f"{rec['profilers_left_detail']}")
            if rec["k6_left"]:
                bench.problems.append(f"run {i + 1} ({sig.name}, {rec['phase']}): {rec['k6_left']} k6 left")
            if not rec["next_ok"]:
                bench.problems.append(f"run {i + 1} ({sig.name}, {rec['phase']}): next run failed: "
                                      f"{rec.get('next_error')}")
    figures = tally(records)
    if figures["partial_files"]:
        bench.problems.append(f"partial seed flame graphs: {figures['partial_file_names']}")
    body = describe(figures, a)
    c.say("\n" + tables(figures, records))
    settings = {k: v for k, v in a.items() if k != "records"}
    settings.update({"runs": n_runs})
    return bench.finish(figures, records, body, settings)


if __name__ == "__main__":
    sys.exit(main())
