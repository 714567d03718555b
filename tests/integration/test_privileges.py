"""Each privileges mode profiles all four events for real on this engine (issue: `--privileges
minimal` failed on dockerd 20.10 with `unknown capability: "CAP_PERFMON"`)."""
from __future__ import annotations

import json
import os

import pytest

from tests.integration.conftest import DemoStack, free_port, stack_env


@pytest.fixture(scope="module")
def priv_stack(docker_engine, images, profiler_installed, tmp_path_factory):
    project = f"fkpriv{os.getpid()}"
    port = free_port()
    out = tmp_path_factory.mktemp("privileges")
    st = DemoStack(project, port, stack_env(project, port, out), out)
    try:
        yield st
    finally:
        st.inv("down", check=False)


@pytest.mark.parametrize("mode", ["none", "minimal"])
def test_mode_starts_and_captures_every_event(priv_stack, mode):
    mode_env = {"INVOKE_FLAMEKIT_PRIVILEGES": mode}  # the flag for `up`; config for the capture's manifest
    up = priv_stack.inv("up", "--profiling", "--build", "--privileges", mode)
    assert f"order-service: profiler ok" in up.stdout and f"privileges {mode} ok" in up.stdout, up.stdout
    if mode == "minimal":
        assert "CAP_PERFMON" in up.stdout or "PERFMON" in up.stdout  # said either way: added, or not known
    if not (priv_stack.out / "sampled").exists():
        priv_stack.inv("sample-data")
        (priv_stack.out / "sampled").touch()
    p = priv_stack.inv("profile", "--service", "order-service", "--event", "all", "--duration", "8",
                       "--warmup", "3", "--tps", "20", extra_env=mode_env)
    run = sorted((priv_stack.out / "runs").iterdir())[-1]
    m = json.loads((run / "manifest.json").read_text())
    assert m["status"] == "ok", m.get("error")
    assert m["settings"]["privileges"] == mode
    by_event = {c["event"]: c for c in m["captures"]}
    assert set(by_event) == {"cpu", "alloc", "wall", "lock"}
    assert all(c["samples"] > 0 for c in by_event.values()), {e: c["samples"] for e, c in by_event.items()}
    # cpu_engine auto: itimer wherever perf_events may not sample kernel stacks, whatever the mode
    cpu = by_event["cpu"]
    assert cpu["engine"] in ("ctimer", "itimer", "perf_events"), p.stdout
    assert cpu["engine_asked"] in ("cpu", "itimer") and "perf_event_paranoid" in cpu["engine_why"], cpu
    if cpu["engine_asked"] == "itimer":
        assert cpu["engine"] == "itimer", cpu
