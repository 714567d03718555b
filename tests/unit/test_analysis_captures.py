"""Run directories read back: captures, weights, sample counts; run resolution.

The run builders here (make_run, weighted_run, two_runs...) are shared by the other analysis and render tests."""
from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest

from flamekit.analysis.captures import load_captures
from flamekit.render.markdown import write_report
from flamekit.runs import latest_run, read_manifest, resolve_run
from flamekit.errors import ReportError


ROOT = Path(__file__).resolve().parents[2]


STAMP_A = "20261127-081500"


STAMP_B = "20261128-091500"


CLEAN_MANIFEST = {
    "flamekit_version": "0.1.0", "stamp": STAMP_A, "started": "2026-11-27T08:15:00Z",
    "finished": "2026-11-27T08:16:30Z", "status": "ok", "error": None,
    "settings": {"duration": 60, "warmup": 15, "tps": 25, "interval": "10ms", "events": ["cpu"],
                 "services": ["order-service"], "privileges": "seed",
                 "jvm_flags": ["-XX:+PreserveFramePointer", "-XX:+UnlockDiagnosticVMOptions",
                               "-XX:+DebugNonSafepoints"]},
    "environment": {"engine": "dockerd 20.10.24", "host": "box", "cpus": 2,
                    "async_profiler": "4.3", "k6": "v1.1.0"},
    "load": {"target_tps": 25, "achieved_tps": 24.9, "p50_ms": 12.1, "p95_ms": 40.2, "p99_ms": 60.0,
             "error_rate": 0.0, "dropped_iterations": 0, "iterations": 1500, "duration_s": 60,
             "http_reqs": 4500},
    "captures": [{"service": "order-service", "event": "cpu", "engine": "perf_events", "interval": "10ms",
                  "samples": 1000, "collapsed": "order-service/cpu.collapsed",
                  "html": "order-service/cpu.html",
                  "flamegraph": f"docs/perf/flamegraphs/order-service-cpu-{STAMP_A}.html",
                  "jfr": "order-service/profile.jfr",
                  "jvm": {"pid": 7, "version": "17.0.15", "flags_expected": ["-XX:+DebugNonSafepoints"],
                          "flags_missing": []},
                  "image_id": "sha256:abc", "error": None}],
}


THREAD = "[order-worker-1 tid=12];java/lang/Thread.run_[j];demo/order/OrderController.create_[j]"


def cpu_collapsed(price: int, put: int, futex: int) -> str:
    return (f"{THREAD};demo/order/PricingEngine.priceOrder_[j] {price}\n"
            f"{THREAD};demo/order/Repo.save_[i];java/util/HashMap.put_[j] {put}\n"
            f"{THREAD};demo/order/Repo.save_[i];__x64_sys_futex_[k] {futex}\n")


def make_run(repo: Path, stamp: str, manifest: dict | None = None, collapsed: str | None = None,
             seed_copy: bool = True) -> Path:
    """A run directory as the capture code lays it out, inside a fake repository."""
    m = copy.deepcopy(manifest if manifest is not None else CLEAN_MANIFEST)
    m["stamp"] = stamp
    for cap in m.get("captures") or []:
        if cap.get("flamegraph"):
            cap["flamegraph"] = f"docs/perf/flamegraphs/{cap['service']}-{cap['event']}-{stamp}.html"
    run = repo / "docs" / "perf" / "runs" / stamp
    (run / "order-service").mkdir(parents=True)
    (run / "order-service" / "cpu.collapsed").write_text(collapsed or cpu_collapsed(632, 248, 120))
    (run / "order-service" / "cpu.html").write_text("<html><body>flame</body></html>")
    if seed_copy:
        fg = repo / "docs" / "perf" / "flamegraphs"
        fg.mkdir(parents=True, exist_ok=True)
        (fg / f"order-service-cpu-{stamp}.html").write_text("<html><body>flame</body></html>")
    (run / "manifest.json").write_text(json.dumps(m))
    return run


def mutate(path, value):
    m = copy.deepcopy(CLEAN_MANIFEST)
    obj = m
    for key in path[:-1]:
        obj = obj[key]
    obj[path[-1]] = value
    return m


def weighted_run(repo: Path, stamp: str = STAMP_A, weight_in_manifest: bool = True,
                 samples_in_manifest: bool = True, listed: bool = True) -> Path:
    """A run as the capture contract lays out a weighted alloc capture: alloc.collapsed
    in bytes (1.2 GB over 400 samples), alloc.samples.collapsed with the counts."""
    m = copy.deepcopy(CLEAN_MANIFEST)
    m["settings"]["events"] = ["cpu", "alloc"]
    if listed:
        entry = {"service": "order-service", "event": "alloc", "engine": "alloc",
                 "collapsed": "order-service/alloc.collapsed", "html": "order-service/cpu.html",
                 "jvm": {"flags_missing": []}, "error": None}
        if weight_in_manifest:
            entry.update(weight="bytes", weight_total=1_200_000_000)
        if samples_in_manifest:
            entry["samples"] = 400
        m["captures"].append(entry)
    run = make_run(repo, stamp, m)
    svc = run / "order-service"
    # bytes: OrderJson.write's stack has few, big samples; Repo.save's many small ones
    (svc / "alloc.collapsed").write_text(
        f"{THREAD};demo/order/OrderJson.write_[j];jdk/internal/misc/Unsafe.allocateUninitializedArray_[j];byte[]_[i] 900000000\n"
        f"{THREAD};demo/order/Repo.save_[j];java.lang.String_[i] 300000000\n")
    (svc / "alloc.samples.collapsed").write_text(
        f"{THREAD};demo/order/OrderJson.write_[j];jdk/internal/misc/Unsafe.allocateUninitializedArray_[j];byte[]_[i] 100\n"
        f"{THREAD};demo/order/Repo.save_[j];java.lang.String_[i] 300\n")
    return run


def two_runs(tmp_path):
    a = make_run(tmp_path, STAMP_A, collapsed=cpu_collapsed(600, 240, 160))
    m = copy.deepcopy(CLEAN_MANIFEST)
    m["load"].update(achieved_tps=24.5, p95_ms=30.0, error_rate=0.004)
    b = make_run(tmp_path, STAMP_B, m, collapsed=cpu_collapsed(300, 420, 280))
    return a, b


def test_weighted_capture_count_from_samples_file_and_weight_inferred(tmp_path):
    run = weighted_run(tmp_path, samples_in_manifest=False)
    cap = next(c for c in load_captures(run, read_manifest(run), tmp_path) if c.event == "alloc")
    assert cap.samples == 400 and cap.profile.samples == 400 and cap.weight == "bytes"
    text = write_report(run, repo_root=tmp_path).read_text()
    assert "order-service alloc: only 400 samples" in text.split("## Validity")[1]
    # an unlisted capture with a samples file of other totals: weights, in bytes for alloc
    run2 = weighted_run(tmp_path / "b", listed=False)
    caps = {c.event: c for c in load_captures(run2, read_manifest(run2), tmp_path / "b")}
    assert set(caps) == {"cpu", "alloc"}
    assert (caps["alloc"].weight, caps["alloc"].samples, caps["alloc"].profile.samples) == ("bytes", 400, 400)
    # listed without a weight key and without a samples file: counts, as before
    run3 = weighted_run(tmp_path / "c", weight_in_manifest=False)
    (run3 / "order-service" / "alloc.samples.collapsed").unlink()
    cap3 = next(c for c in load_captures(run3, read_manifest(run3), tmp_path / "c") if c.event == "alloc")
    assert cap3.weight == "samples" and not cap3.profile.weighted and cap3.samples == 400


def test_latest_and_resolve_run(tmp_path):
    runs = tmp_path / "docs" / "perf" / "runs"
    a = make_run(tmp_path, STAMP_A)
    b = make_run(tmp_path, STAMP_B)
    (runs / "notes").mkdir()  # neither a stamp nor a manifest: ignored
    assert latest_run(runs) == b
    assert resolve_run(runs, None) == b
    assert resolve_run(runs, "latest") == b
    assert resolve_run(runs, STAMP_A) == a
    assert resolve_run(runs, str(a)) == a
    assert resolve_run(runs, a / "manifest.json") == a
    assert resolve_run(runs, "20261128") == b
    with pytest.raises(ReportError, match="matches 2 runs"):
        resolve_run(runs, "202611")


def test_resolve_run_errors_name_the_path_and_hint(tmp_path):
    runs = tmp_path / "runs"
    with pytest.raises(ReportError) as exc:
        latest_run(runs)
    assert str(runs) in str(exc.value) and "\n" not in str(exc.value)
    assert exc.value.hint == "run `inv profile` or `inv profile-all` first"
    runs.mkdir()
    with pytest.raises(ReportError) as exc:
        resolve_run(runs, "20261127-081500")
    assert exc.value.message == f"no run directory {runs / '20261127-081500'}"
    assert "inv profile" in str(exc.value) and "\n" not in str(exc.value)
    with pytest.raises(ReportError, match=re.escape(str(tmp_path / "x" / "y"))):
        resolve_run(runs, tmp_path / "x" / "y")
