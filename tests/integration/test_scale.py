"""Replicas and Swarm on the real engine: order-service at 3 compose replicas and at 2 Swarm
replicas, every replica profiled in one window, priceOrder on top in each and in the merge;
load from 2 k6 workers holding 50 TPS; `down` leaves nothing of the stack behind.

The gateway reaches order-service by its DNS name, which resolves to every replica (compose's
embedded DNS, Swarm's dnsrr): with the JDK's 30 s DNS cache and a keep-alive pool it would
send everything to one replica (seen: the second Swarm replica got 0.2 CPU-seconds of 15 s).
These tests give the JVMs ``-Dsun.net.inetaddr.ttl=0 -Djdk.httpclient.connectionPoolSize=1``
so each new connection resolves again and the load spreads (docs/scaling.md).
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from flamekit import config as fkconfig
from flamekit.analysis import replicas as rp
from flamekit.load import sample as fksample
from flamekit.load.k6 import LoadPlan
from flamekit.load.workers import run_workers
from flamekit.targets import override as fkoverride
from flamekit.targets.compose import ComposeTarget

from .conftest import ROOT, free_port

PRICE = "demo.order.PricingEngine.priceOrder"
SPREAD_FLAGS = ("-XX:+PreserveFramePointer,-XX:+UnlockDiagnosticVMOptions,-XX:+DebugNonSafepoints,"
                "-Dsun.net.inetaddr.ttl=0,-Djdk.httpclient.connectionPoolSize=1")
JFRCONV = ROOT / "docker" / "profiling" / "async-profiler" / "bin" / "jfrconv"


def _settings(project: str, port: int, out: Path):
    return fkconfig.build_settings({
        "project_name": project, "gateway_url": f"http://127.0.0.1:{port}", "jvm_flags": SPREAD_FLAGS,
        "output_dir": str(out / "output"), "runs_dir": str(out / "runs"),
        "flamegraph_dir": str(out / "flamegraphs"), "reports_dir": str(out / "reports")}, ROOT)


def _profile_and_check(settings, target, replicas: int) -> dict:
    from flamekit.workflow.profile import run_profile
    fksample.load_sample_data(settings.gateway_url, settings.sample_data)
    outcome = run_profile(settings, target, ["order-service"], ["cpu"], duration=15, tps=25, warmup=5)
    caps = [c for c in outcome.captures if c["service"] == "order-service"]
    assert len(caps) == replicas and all(c["replicas"] == replicas for c in caps)
    assert sorted((outcome.run_dir / f"order-service.{i}").is_dir() for i in range(1, replicas + 1)) == [True] * replicas
    [(merged, table)] = rp.merge_run(outcome.run_dir, JFRCONV if JFRCONV.is_file() else None)
    assert merged.collapsed == outcome.run_dir / "order-service" / "cpu.collapsed"
    assert merged.profile.total == sum(c["samples"] for c in caps)
    assert table.method == PRICE, table.markdown()
    assert [r.top_method for r in table.rows] == [PRICE] * replicas, table.markdown()
    return {"table": table.markdown(), "load": outcome.manifest["load"]}


@pytest.fixture(scope="module")
def spread_out(tmp_path_factory):
    return tmp_path_factory.mktemp("scale")


def test_compose_replicas_and_two_k6_workers(images, profiler_installed, spread_out):
    port = free_port()
    s = _settings(f"fkscale{os.getpid()}", port, spread_out)
    env = dict(images.compose_env(), FLAMEKIT_GATEWAY_PORT=str(port))
    path = fkoverride.prepare(s, ComposeTarget(s, env=env))
    target = ComposeTarget(s, override=path, env=env, scale={"order-service": 3})
    try:
        target.up(timeout=300)
        assert [r.label for r in target.replicas("order-service")] == \
            ["order-service.1", "order-service.2", "order-service.3"]
        got = _profile_and_check(s, target, 3)
        print(got["table"])
        # two k6 workers share 50 TPS of plain GETs: together they hold the rate
        plan = LoadPlan(script=ROOT / "scripts/perf/http-get.js", base_url=f"http://127.0.0.1:{port}/health",
                        tps=50, duration_s=10)
        res = run_workers(plan, 2, spread_out / "workers")
        print(res.to_dict())
        assert res.achieved_tps >= 0.95 * 50 and res.dropped_iterations == 0
        assert res.p95_ms is not None and res.http_reqs == res.iterations
    finally:
        target.down()


def test_swarm_single_node(images, profiler_installed, spread_out):
    from flamekit.targets.swarm import SwarmTarget
    port = free_port()
    project = f"fkswarm{os.getpid()}"
    s = _settings(project, port, spread_out)
    target = SwarmTarget(s, env=dict(images.compose_env(), FLAMEKIT_GATEWAY_PORT=str(port)),
                         scale={"order-service": 2}, profiling=True)
    try:
        t0 = time.monotonic()
        target.up(timeout=300)
        print(f"swarm up in {time.monotonic() - t0:.1f}s")
        reps = target.replicas("order-service")
        assert [r.index for r in reps] == [1, 2] and all(r.node for r in reps)
        priv = target.privileges(reps[0], s.profiler.container_path)
        assert "SYS_PTRACE" in priv.cap_add and priv.profiler_mount_ro is True and not priv.security_opt
        got = _profile_and_check(s, target, 2)
        print(got["table"])
    finally:
        try:
            target.down()
            left = target.leftovers()
            assert not any(left.values()), left
        finally:
            target.leave_swarm()
