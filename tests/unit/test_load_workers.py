"""flamekit.load.workers: segments, worker plans, raw points, merged figures, and one short real
run of two k6 workers against a throwaway HTTP server on 127.0.0.1."""
from __future__ import annotations

import json
import statistics
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from flamekit.errors import ConfigError, LoadError
from flamekit.load import workers as w
from flamekit.load.k6 import LoadPlan, find_k6
from flamekit.load.summary import LoadResult

ROOT = Path(__file__).resolve().parents[2]
HTTP_GET = ROOT / "scripts" / "perf" / "http-get.js"


def result(**kw) -> LoadResult:
    base = dict(target_tps=50.0, achieved_tps=25.0, iterations=250, dropped_iterations=0, http_reqs=250,
                p50_ms=1.0, p95_ms=2.0, p99_ms=3.0, avg_ms=1.2, max_ms=4.0, error_rate=0.0,
                checks_failed_rate=0.0, duration_s=10.0, vus_max=19, exit_code=0, summary_path=None,
                phase="measure")
    base.update(kw)
    return LoadResult(**base)


# ------------------------------------------------------------------------------------------ segments

@pytest.mark.parametrize("n,expected", [
    (1, ["0:1"]),
    (2, ["0:1/2", "1/2:1"]),
    (4, ["0:1/4", "1/4:1/2", "1/2:3/4", "3/4:1"]),
])
def test_segments_cover_zero_to_one(n, expected):
    assert [w.segment(i, n) for i in range(n)] == expected


def test_sequence_and_flags():
    assert w.segment_sequence(4) == "0,1/4,1/2,3/4,1"
    assert w.segment_flags(1, 3) == ["--execution-segment", "1/3:2/3",
                                     "--execution-segment-sequence", "0,1/3,2/3,1"]
    assert w.segment_options(1, 3) == {"executionSegment": "1/3:2/3",
                                       "executionSegmentSequence": "0,1/3,2/3,1"}


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2", w.MAX_WORKERS + 1])
def test_bad_worker_counts(bad):
    with pytest.raises(ConfigError):
        w.check_workers(bad)


def test_segment_index_checked():
    with pytest.raises(ValueError):
        w.segment(2, 2)


def test_worker_plan_keeps_the_global_plan(tmp_path):
    plan = LoadPlan(script=HTTP_GET, base_url="http://127.0.0.1:9", tps=50, duration_s=10,
                    extra_env={"FK_TARGET_URL": "http://127.0.0.1:9/x"})
    files = w.worker_files(tmp_path, 1, "measure")
    wp = w.worker_plan(plan, files)
    assert (wp.tps, wp.duration_s, wp.vus_pair()) == (50, 10, plan.vus_pair())  # k6 divides, not us
    assert wp.summary_path == files.summary
    assert wp.extra_env["FK_TARGET_URL"] == "http://127.0.0.1:9/x"
    assert wp.extra_env["K6_CONFIG"] == str(files.config.resolve())
    assert wp.extra_env["K6_OUT"] == f"json={files.raw.resolve()}"
    assert files.raw.name == "k6-measure-worker2.points.json"


# ------------------------------------------------------------------------------------------ merging

def test_raw_points_reads_only_points_of_chosen_metrics(tmp_path):
    p = tmp_path / "points.json"
    lines = [
        {"type": "Metric", "metric": "http_req_duration", "data": {"name": "http_req_duration"}},
        {"type": "Point", "metric": "http_req_duration", "data": {"value": 1.5}},
        {"type": "Point", "metric": "http_req_duration", "data": {"value": 2.5}},
        {"type": "Point", "metric": "iteration_duration", "data": {"value": 9.0}},
        {"type": "Point", "metric": "data_sent", "data": {"value": 100}},
    ]
    p.write_text("\n".join(json.dumps(x) for x in lines) + '\n{"type":"Point","metric":"http_req_d')
    got = w.raw_points(p)
    assert got == {"http_req_duration": [1.5, 2.5], "iteration_duration": [9.0]}
    assert w.raw_points(tmp_path / "missing.json") == {"http_req_duration": [], "iteration_duration": []}


def test_percentile_matches_k6_interpolation():
    v = sorted(float(x) for x in range(1, 101))   # 1..100
    assert w.percentile(v, 50) == pytest.approx(50.5)
    assert w.percentile(v, 95) == pytest.approx(95.05)
    assert w.percentile(v, 99.9) == pytest.approx(99.901)
    assert w.percentile([], 95) is None
    assert w.percentile([7.0], 95) == 7.0


def test_merge_sums_counts_and_takes_percentiles_of_merged_samples():
    # worker 1 is fast, worker 2 slow: the merged p95 is not the mean of the workers' p95
    fast = [1.0] * 90 + [2.0] * 10
    slow = [10.0] * 90 + [20.0] * 10
    a = result(achieved_tps=24.9, iterations=249, dropped_iterations=1, http_reqs=100, error_rate=0.01,
               p95_ms=2.0, vus_max=19, outcomes={"ok": 90, "declined": 10})
    b = result(achieved_tps=25.0, iterations=250, dropped_iterations=2, http_reqs=100, error_rate=0.03,
               p95_ms=20.0, vus_max=20, duration_s=10.4, outcomes={"ok": 95, "declined": 5})
    m = w.merge_results([a, b], 50, fast + slow, [5.0, 6.0], [(99, 1), (97, 3)], "measure")
    assert m.achieved_tps == pytest.approx(49.9)
    assert (m.iterations, m.dropped_iterations, m.http_reqs, m.vus_max) == (499, 3, 200, 39)
    assert m.error_rate == pytest.approx(0.02)
    assert m.checks_failed_rate == pytest.approx(0.02)
    assert m.p50_ms == pytest.approx(statistics.median(fast + slow))
    assert m.p95_ms == pytest.approx(statistics.quantiles(sorted(fast + slow), n=100, method="inclusive")[94])
    assert m.p95_ms != pytest.approx((a.p95_ms + b.p95_ms) / 2)
    assert m.max_ms == 20.0 and m.avg_ms == pytest.approx(statistics.fmean(fast + slow))
    assert m.duration_s == 10.4 and m.outcomes == {"ok": 185, "declined": 15}
    assert not m.rate_held        # dropped iterations, summed, still count
    assert m.to_dict()["target_tps"] == 50.0


def test_merge_keeps_a_failed_exit_code_and_needs_results():
    m = w.merge_results([result(), result(exit_code=99)], 50, [1.0])
    assert m.exit_code == 99 and m.thresholds_failed
    with pytest.raises(LoadError):
        w.merge_results([], 50)


# ------------------------------------------------------------------------------------------ real k6

class _Ok(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *a):
        pass


@pytest.fixture()
def server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def test_two_real_workers_split_the_rate(server, tmp_path):
    try:
        k6 = find_k6()
    except LoadError:
        pytest.skip("no k6 binary")
    plan = LoadPlan(script=HTTP_GET, base_url=server, tps=20, duration_s=3, vus=4, max_vus=10)
    group = w.K6Workers(plan, 2, tmp_path, k6)
    with group:
        group.wait()
    each = group.worker_results()
    # k6 split 60 iterations in halves (plus, at most, one at the window's end) and the VUs
    assert all(r.iterations in (30, 31) for r in each), [r.iterations for r in each]
    assert [r.vus_max for r in each] == [2, 2]
    merged = group.result()
    assert merged.iterations == sum(r.iterations for r in each) and merged.rate_held
    assert merged.http_reqs == merged.iterations and merged.p95_ms is not None
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        f"k6-measure-worker{i}.{s}" for i in (1, 2) for s in ("config.json", "points.json", "summary.json", "log"))
