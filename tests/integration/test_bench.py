"""The benchmark scripts (bench/*.py) in --quick mode against a real demo stack.

Each script runs once with its output redirected into tmp (--out, --json, --workdir), so
docs/perf/benchmarks.md is never touched. The checks are about the figures being produced and
sane -- a ratio is a positive number, a share lies between 0 and 1, a rate is positive -- never
about how fast anything was: the CI machine's timing is not under test.

load_accuracy runs on a stack of its own (the script starts it and must tear it down); the
others share one module stack, as bench/run_all.py --quick does. accuracy runs last: it
recreates order-service twice (PRICING_COST doubled, then back to 1).
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.conftest import ROOT, DemoStack, free_port, stack_env

pytestmark = pytest.mark.slow

DOC = ROOT / "docs" / "perf" / "benchmarks.md"


@pytest.fixture(scope="module")
def doc_before():
    return DOC.read_bytes() if DOC.is_file() else None


@pytest.fixture(scope="module")
def bench_stack(docker_engine, images, profiler_installed, tmp_path_factory, doc_before):
    project = f"fkbenchci{os.getpid()}"
    port = free_port()
    out = tmp_path_factory.mktemp("bench-stack")
    st = DemoStack(project, port, stack_env(project, port, out), out)
    try:
        st.inv("up", "--profiling", "--build")
        st.inv("sample-data")
        yield st
    finally:
        st.inv("down", check=False)


def running(project: str) -> list[str]:
    p = subprocess.run(["docker", "ps", "-q", "--filter", f"label=com.docker.compose.project={project}"],
                       capture_output=True, text=True, timeout=60)
    return p.stdout.split()


def run_script(name: str, tmp_path: Path, *extra: str, stack: DemoStack | None = None) -> tuple[dict, str]:
    out_md = tmp_path / "benchmarks.md"
    out_json = tmp_path / f"{name}.json"
    cmd = [sys.executable, str(ROOT / "bench" / f"{name}.py"), "--quick", "--out", str(out_md),
           "--json", str(out_json), "--workdir", str(tmp_path / "work"), *extra]
    if stack is not None:
        cmd += ["--project", stack.project, "--port", str(stack.port)]
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=1200)
    assert p.returncode == 0, f"{name} exited {p.returncode}\n{p.stdout[-4000:]}\n{p.stderr[-4000:]}"
    data = json.loads(out_json.read_text())
    md = out_md.read_text()
    assert f"<!-- bench:{name} -->" in md and f"<!-- /bench:{name} -->" in md
    section = md.split(f"<!-- bench:{name} -->")[1].split(f"<!-- /bench:{name} -->")[0]
    assert section.strip().startswith("## ") and "Machine:" in section
    assert data["bench"] == name and data["mode"] == "quick" and data["ok"] is True, data["problems"]
    assert data["machine"]["cores"] >= 1 and data["machine"]["k6"] and data["machine"]["async_profiler"]
    assert isinstance(data["noise"].get("shared"), bool)
    return data, section


def number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def positive(v) -> bool:
    return number(v) and v > 0


def share(v) -> bool:
    return number(v) and 0.0 <= v <= 1.0


def test_load_accuracy_on_its_own_stack(docker_engine, images, profiler_installed, tmp_path, doc_before):
    data, section = run_script("load_accuracy", tmp_path)
    targets = data["figures"]["targets"]
    assert set(targets) == {"10", "25", "50"}
    for t, f in targets.items():
        assert f["runs"] >= 1
        assert positive(f["achieved_tps"]["mean"]), t
        assert positive(f["ratio"]["mean"]), t
        assert isinstance(f["dropped_total"], int) and f["dropped_total"] >= 0
        assert 0 <= f["rate_held_runs"] <= f["runs"]
        assert positive(f["p95_ms"]["mean"])
        assert share(f["error_rate"]["mean"])
    assert "| target TPS |" in section
    stack = data["stack"]
    assert stack["owned"] is True
    assert running(stack["project"]) == [], "the script left its stack running"


def test_overhead(bench_stack, tmp_path):
    data, section = run_script("overhead", tmp_path, stack=bench_stack)
    f = data["figures"]
    for arm in ("none", "cpu", "all"):
        assert positive(f["arms"][arm]["achieved_tps"]["mean"]), arm
        assert positive(f["arms"][arm]["p95_ms"]["mean"]), arm
        assert positive(f["arms"][arm]["window_cpu_cores"]["mean"]), arm
        assert positive(f["arms"][arm]["command_cpu_s"]["mean"]), arm
    for arm in ("cpu", "all"):
        for key in ("achieved_tps", "p50_ms", "p95_ms", "window_cpu_cores", "command_cpu_s"):
            assert positive(f["ratios"][arm][key]["mean"]), (arm, key)
        assert number(f["extra_cpu_cores"][arm]["mean"])
    rounds = {r["round"] for r in data["runs"]}
    assert len(data["runs"]) == 3 * len(rounds)
    assert "| figure | none | cpu | all |" in section


def test_harness(bench_stack, tmp_path):
    data, section = run_script("harness", tmp_path, stack=bench_stack)
    f = data["figures"]
    prof = f["profile"]["cpu"]
    for key in ("wall_s", "beyond_s", "inv_peak_mib", "tree_peak_mib", "maxrss_mib"):
        assert number(prof[key]["mean"]), key
    assert positive(prof["wall_s"]["mean"]) and positive(prof["inv_peak_mib"]["mean"])
    for n in ("1", "4"):
        pa = f["profile_all"][n]
        assert positive(pa["wall_s"]["mean"]) and positive(pa["inv_peak_mib"]["mean"])
        assert pa["phases"], n
    assert positive(f["profile_all_four_over_one"])
    assert all(r.get("containers_left", 0) == 0 for r in data["runs"])
    assert running(bench_stack.project), "profile-all --keep-up must leave the shared stack up"


def test_accuracy(bench_stack, tmp_path):
    data, section = run_script("accuracy", tmp_path, stack=bench_stack)
    f = data["figures"]
    assert set(f["hotspots"]) == {"cpu", "alloc", "lock", "wall"}
    for key, h in f["hotspots"].items():
        assert h["runs"] == 2, key
        assert share(h["share"]["mean"]) and share(h["share"]["min"]) and share(h["share"]["max"]), key
        assert isinstance(h["top_count"], int) and 0 <= h["top_count"] <= h["runs"]
        assert share(h["top_fraction"])
        assert h["designed_share"] is None or share(h["designed_share"])
        assert positive(h["samples"]["mean"])
        g = h["ground_truth"]  # every planted method against the demo's own counters, wall included
        assert g["runs"] == 2 and share(g["share"]["mean"]) and share(g["flamekit_share"]["mean"]), (key, g)
        assert positive(g["per_call_ratio"]["mean"]), (key, g)
    dp = f["doubled_pricing"]
    assert share(dp["baseline_share"]) and share(dp["doubled_share"]) and share(dp["predicted_share"])
    assert isinstance(dp["moved_up"], bool) and dp["pricing_cost"] == "2"
    assert positive(dp["cpu_samples_ratio"]) and positive(dp["priceorder_samples_ratio"])
    assert share(dp["warm_repeats_share"])
    assert "PRICING_COST doubled" in section


def test_docs_benchmarks_md_untouched(doc_before):
    now = DOC.read_bytes() if DOC.is_file() else None
    assert now == doc_before
