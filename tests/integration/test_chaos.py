"""`bench/chaos.py --quick`: six `inv profile --event all` runs killed at random moments (SIGINT,
SIGTERM, SIGKILL in turn) on a stack of the module's own; nothing may be left running or
partial, and the next run must succeed every time. Output goes to tmp, never to docs/."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.integration.conftest import ROOT, DemoStack, free_port, stack_env

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def chaos_stack(docker_engine, images, profiler_installed, tmp_path_factory):
    project = f"fkchaos{os.getpid()}"
    port = free_port()
    out = tmp_path_factory.mktemp("chaos-stack")
    st = DemoStack(project, port, stack_env(project, port, out), out)
    try:
        st.inv("up", "--profiling", "--build")
        st.inv("sample-data")
        yield st
    finally:
        st.inv("down", check=False)


def test_chaos_quick_leaves_nothing_behind(chaos_stack, tmp_path):
    doc = ROOT / "docs" / "perf" / "benchmarks.md"
    doc_before = doc.read_bytes() if doc.is_file() else None
    out_json = tmp_path / "chaos-quick.json"
    cmd = [sys.executable, str(ROOT / "bench" / "chaos.py"), "--quick", "--out", str(tmp_path / "chaos.md"),
           "--json", str(out_json), "--workdir", str(tmp_path / "work"),
           "--project", chaos_stack.project, "--port", str(chaos_stack.port)]
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert out_json.is_file(), p.stdout[-3000:] + p.stderr[-3000:]
    data = json.loads(out_json.read_text())
    f = data["figures"]
    detail = json.dumps([{k: r.get(k) for k in ("n", "signal", "phase", "rc", "status_after_kill", "status_final",
                                                 "profilers_left_detail", "k6_left", "partial_files", "next_error")}
                         for r in data["runs"]], indent=1)
    assert f["kills"] == 6, detail
    assert f["profilers_left"] == 0, detail
    assert f["k6_left"] == 0, detail
    assert f["partial_files"] == 0, detail
    assert f["next_ok"] == f["next_runs"] == 6, detail
    assert f["manifest_wrong"] == 0, detail
    assert f["hung"] == 0, detail
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert (doc.read_bytes() if doc.is_file() else None) == doc_before
