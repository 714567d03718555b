"""Faults during a run: each ends in one clear line, a non-zero exit and nothing partial.

(a) a container killed mid-capture (three services at once, python API): the others' profiles
    are kept and the manifest says which one failed;
(b) the JVM restarted mid-capture: the error says it restarted;
(c) the runs directory on a full disk (a 200 kB tmpfs);
(d) the gateway port already taken at `inv up`;
(e) the gateway stopped during the load: the report's validity section says so;
(f) a second `inv profile` of a service already being profiled: refused, the first finishes ok.

One module stack of its own (own compose project and port); the destructive faults bring the
stack back with `inv up --profiling` before the next test.
"""
from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from tests.integration.conftest import INV, ROOT, DemoStack, free_port, stack_env

SHORT = ("--duration", "6", "--warmup", "1", "--tps", "15")


@pytest.fixture(scope="module")
def stack(docker_engine, images, profiler_installed, tmp_path_factory):
    project = f"fkfault{os.getpid()}"
    port = free_port()
    out = tmp_path_factory.mktemp("faults")
    st = DemoStack(project, port, stack_env(project, port, out), out)
    try:
        st.inv("up", "--profiling", "--build")
        st.inv("sample-data")
        yield st
    finally:
        st.inv("down", check=False)


def containers(st: DemoStack, service: str) -> list[str]:
    p = subprocess.run(["docker", "ps", "-q", "--filter", f"label=com.docker.compose.project={st.project}",
                        "--filter", f"label=com.docker.compose.service={service}"],
                       capture_output=True, text=True, timeout=60)
    ids = p.stdout.split()
    assert ids, service
    return ids


def container(st: DemoStack, service: str) -> str:
    return containers(st, service)[0]


def restore(st: DemoStack) -> None:
    """Bring every service back, healthy, with its sample data."""
    st.inv("up", "--profiling", timeout=600)
    st.inv("sample-data")


def one_error_line(p: subprocess.CompletedProcess) -> str:
    assert p.returncode != 0, p.stdout[-2000:]
    assert "Traceback" not in p.stderr, p.stderr
    lines = p.stderr.strip().splitlines()
    assert lines, p.stdout[-2000:]
    assert lines[-1].startswith("error:"), p.stderr
    return lines[-1]


def seed_files(st: DemoStack, stamp: str) -> list[Path]:
    return sorted((st.out / "flamegraphs").glob(f"*-{stamp}.html"))


def assert_whole(files) -> None:
    for f in files:
        data = f.read_bytes()
        assert data and data.rstrip().endswith(b"</html>"), f


def runs_now(st: DemoStack) -> set[str]:
    d = st.out / "runs"
    return {p.name for p in d.iterdir()} if d.is_dir() else set()


def new_run(st: DemoStack, before: set[str]) -> Path:
    new = sorted(runs_now(st) - before)
    assert len(new) == 1, new
    return st.out / "runs" / new[0]


def manifest(run_dir: Path) -> dict:
    return json.loads((run_dir / "manifest.json").read_text())


def popen_inv(st: DemoStack, *args: str) -> subprocess.Popen:
    env = dict(os.environ)
    env.update(st.env)
    return subprocess.Popen(INV + list(args), cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def wait_line(proc: subprocess.Popen, pattern: str, timeout: float = 120) -> list[str]:
    """Read proc's stdout until a line matches; return the lines read."""
    got: list[str] = []
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        got.append(line.rstrip("\n"))
        if re.search(pattern, line):
            return got
    raise AssertionError(f"no line matching {pattern!r}: {got}")


def finish(proc: subprocess.Popen, before: list[str], timeout: float = 300) -> subprocess.CompletedProcess:
    out, err = proc.communicate(timeout=timeout)
    return subprocess.CompletedProcess(proc.args, proc.returncode, "\n".join(before) + "\n" + out, err)


# ---------------------------------------------------------------------------------------- (f)
def test_second_profile_of_a_busy_service_is_refused(stack):
    before = runs_now(stack)
    # a long first window: the second command needs a few seconds to start on a busy machine
    first = popen_inv(stack, "profile", "--service", "order-service", "--event", "cpu", "--duration", "25",
                      "--warmup", "1", "--tps", "15")
    head = wait_line(first, r"^profiling ")
    second = stack.inv("profile", "--service", "order-service", "--event", "cpu", *SHORT, check=False)
    line = one_error_line(second)
    assert "already being profiled" in line, line
    done = finish(first, head)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr
    # the refused run: its manifest says failed, it left no flame graph
    dirs = sorted(runs_now(stack) - before)
    statuses = {d: manifest(stack.out / "runs" / d)["status"] for d in dirs}
    assert sorted(statuses.values()) == ["failed", "ok"], statuses
    for d, status in statuses.items():
        files = seed_files(stack, d)
        assert (len(files) == 1) if status == "ok" else (files == []), (d, files)
        assert_whole(files)


# ---------------------------------------------------------------------------------------- (c)
def test_full_disk_runs_dir_fails_in_one_line(stack, tmp_path):
    mnt = Path(tempfile.mkdtemp(prefix="fkfull-", dir=tmp_path))
    m = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", str(mnt)], capture_output=True, text=True)
    if m.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {m.stderr.strip()}")
    fg = tmp_path / "fg-full"
    try:
        p = stack.inv("profile", "--service", "order-service", "--event", "all", *SHORT, check=False,
                      extra_env={"INVOKE_FLAMEKIT_RUNS_DIR": str(mnt / "runs"),
                                 "INVOKE_FLAMEKIT_FLAMEGRAPH_DIR": str(fg)}, timeout=300)
        line = one_error_line(p)
        assert re.search(r"space|disk|full|No space", line, re.I), line
        # nothing partial: no seed flame graph that is not whole, no half-written run files
        assert_whole(sorted(fg.glob("*.html")) if fg.is_dir() else [])
        for run_dir in (mnt / "runs").iterdir():
            assert not (run_dir / "order-service" / ".incoming").exists(), run_dir
            for f in run_dir.rglob("*.html"):
                assert_whole([f])
        # nothing left running
        st = subprocess.run(["docker", "exec", container(stack, "order-service"), "sh", "-c",
                             "/opt/async-profiler/bin/asprof status $(pgrep -x java)"],
                            capture_output=True, text=True, timeout=60)
        assert "not active" in (st.stdout + st.stderr).lower(), st.stdout + st.stderr
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


# ---------------------------------------------------------------------------------------- (e)
def test_gateway_stopped_during_the_load_is_reported(stack):
    before = runs_now(stack)
    proc = popen_inv(stack, "profile", "--service", "order-service", "--event", "cpu", *SHORT)
    head = wait_line(proc, r"^profiling ")
    try:
        time.sleep(1.5)
        subprocess.run(["docker", "stop", "-t", "1", *containers(stack, "gateway")], check=True,
                       capture_output=True, timeout=120)
        done = finish(proc, head)
    finally:
        restore(stack)
    run_dir = new_run(stack, before)
    m = manifest(run_dir)
    load = m.get("load") or {}
    assert load, m
    # the run itself may be ok (order-service's profile is whole), but its load must say it broke
    rep = stack.inv("report", "--run", str(run_dir), check=False)
    if done.returncode != 0:
        one_error_line(done)
    assert rep.returncode == 0, rep.stdout + rep.stderr
    path = Path(re.search(r"report: (.+\.md)", rep.stdout).group(1).strip())
    text = path.read_text()
    validity = text[text.lower().index("validity"):] if "validity" in text.lower() else ""
    assert validity, text[:3000]
    assert re.search(r"error|fail", validity[:4000], re.I), validity[:4000]


# ---------------------------------------------------------------------------------------- (d)
def test_gateway_port_taken_at_up(stack, tmp_path):
    project = f"fkport{os.getpid()}"
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", 0))
        s.listen(1)
        port = s.getsockname()[1]
        other = DemoStack(project, port, stack_env(project, port, tmp_path), tmp_path)
        try:
            p = other.inv("up", "--profiling", check=False, timeout=600)
            line = one_error_line(p)
            assert re.search(rf"{port}|port", line, re.I), line
            assert len(line) < 600, line
        finally:
            other.inv("down", check=False)


# ---------------------------------------------------------------------------------------- (a)
def test_container_killed_mid_capture_keeps_the_others(stack, monkeypatch):
    from flamekit import config as fkconfig
    from flamekit.errors import FlamekitError
    from flamekit.workflow import chain, profile as fkprofile
    for k, v in stack.env.items():
        monkeypatch.setenv(k, v)
    s = fkconfig.build_settings({"project_name": stack.project, "gateway_url": stack.gateway_url,
                                 "runs_dir": str(stack.out / "runs"),
                                 "flamegraph_dir": str(stack.out / "flamegraphs")}, ROOT)
    services = ["order-service", "inventory-service", "payment-service"]
    victim = container(stack, "payment-service")
    before = runs_now(stack)
    killed = threading.Event()

    def kill_when_capturing():
        deadline = time.monotonic() + 120
        runs = stack.out / "runs"
        while time.monotonic() < deadline:
            for d in (runs.iterdir() if runs.is_dir() else []):
                if d.name in before:
                    continue
                try:
                    started = json.loads((d / "manifest.json").read_text())["timeline"].get("profilers_started")
                except (OSError, ValueError, KeyError):
                    started = None
                if started:
                    time.sleep(1.0)
                    subprocess.run(["docker", "kill", victim], capture_output=True, timeout=60)
                    killed.set()
                    return
            time.sleep(0.2)

    t = threading.Thread(target=kill_when_capturing, daemon=True)
    t.start()
    try:
        with pytest.raises(FlamekitError) as info:
            fkprofile.run_profile(s, chain.compose_target(s), services, ["cpu"], duration=6, tps=15, warmup=1)
        t.join(10)
        assert killed.is_set()
        msg = str(info.value)
        assert "\n" not in msg.strip(), msg
        assert "captures failed" in msg, msg
        run_dir = new_run(stack, before)
        m = manifest(run_dir)
        assert m["status"] == "failed", m["status"]
        caps = {c["service"]: c for c in m["captures"]}
        assert caps.get("payment-service", {}).get("error"), caps.keys()
        assert re.search(r"went away|restarted|payment-service", caps["payment-service"]["error"])
        failed = sorted(c["service"] for c in m["captures"] if c.get("error"))
        assert failed == ["payment-service"], [(c["service"], c.get("error")) for c in m["captures"]]
        for svc in ("order-service", "inventory-service"):
            assert svc in caps and not caps[svc].get("error") and caps[svc]["samples"] > 0, caps.get(svc)
        files = seed_files(stack, run_dir.name)
        assert {f.name.split("-cpu-")[0] for f in files} == {"order-service", "inventory-service"}, files
        assert_whole(files)
    finally:
        restore(stack)


# ---------------------------------------------------------------------------------------- (b)
def test_jvm_restarted_mid_capture_says_so(stack):
    before = runs_now(stack)
    proc = popen_inv(stack, "profile", "--service", "order-service", "--event", "cpu", *SHORT)
    head = wait_line(proc, r"^profiling ")
    try:
        time.sleep(1.0)
        subprocess.run(["docker", "restart", "-t", "1", container(stack, "order-service")], check=True,
                       capture_output=True, timeout=120)
        done = finish(proc, head)
    finally:
        restore(stack)
    line = one_error_line(done)
    assert re.search(r"restart|pid \d+ -> \d+|went away", line, re.I), line
    run_dir = new_run(stack, before)
    m = manifest(run_dir)
    assert m["status"] == "failed"
    assert seed_files(stack, run_dir.name) == []
