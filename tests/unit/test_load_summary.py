"""flamekit.load.summary: hand-built k6 summaries and k6 JSON log lines."""
from __future__ import annotations

import json

import pytest

from flamekit.errors import LoadError
from flamekit.load.summary import (
    first_request_failure, last_error, parse_log_line, parse_summary, read_summary,
)


# ------------------------------------------------------------------------------------------
# parse_summary on hand-built summaries
# ------------------------------------------------------------------------------------------

def summary(iterations=1500, dropped=None, http_reqs=4500, failed_rate=0.0, checks_rate=1.0,
            run_ms=60_004.2, p99=True, extra=None) -> dict:
    m: dict = {
        "iterations": {"type": "counter", "contains": "default",
                       "values": {"count": iterations, "rate": iterations / (run_ms / 1000)}},
        "vus_max": {"type": "gauge", "contains": "default",
                    "values": {"value": 20, "min": 20, "max": 20}},
    }
    if http_reqs:
        trend = {"avg": 12.5, "min": 1.0, "med": 10.0, "max": 250.0, "p(90)": 20.0,
                 "p(95)": 30.0, "count": http_reqs}
        if p99:
            trend["p(99)"] = 80.0
        m["http_reqs"] = {"type": "counter", "values": {"count": http_reqs, "rate": 75.0}}
        m["http_req_duration"] = {"type": "trend", "contains": "time", "values": trend}
        m["http_req_failed"] = {"type": "rate", "values": {
            "rate": failed_rate, "passes": round(failed_rate * http_reqs),
            "fails": http_reqs - round(failed_rate * http_reqs)}}
        m["iteration_duration"] = {"type": "trend", "values": {"p(95)": 95.0, "med": 40.0}}
    if checks_rate is not None:
        m["checks"] = {"type": "rate", "values": {"rate": checks_rate, "passes": 1, "fails": 0}}
    if dropped is not None:
        m["dropped_iterations"] = {"type": "counter", "values": {"count": dropped, "rate": 0.1}}
    m.update(extra or {})
    return {"metrics": m, "state": {"testRunDurationMs": run_ms, "isStdOutTTY": False},
            "root_group": {}, "options": {}, "flamekit": {"phase": "measure"}}


def test_parse_summary_without_dropped_iterations_metric_means_zero_dropped():
    r = parse_summary(summary(), target_tps=25, duration_s=60)
    assert r.dropped_iterations == 0
    assert r.iterations == 1500 and r.http_reqs == 4500
    assert r.achieved_tps == pytest.approx(25.0)   # over the 60 s window, not the 60.004 s run
    assert r.duration_s == pytest.approx(60.0042)
    assert (r.p50_ms, r.p90_ms, r.p95_ms, r.p99_ms, r.avg_ms, r.max_ms) == \
        (10.0, 20.0, 30.0, 80.0, 12.5, 250.0)
    assert r.iteration_p95_ms == 95.0
    assert r.error_rate == 0.0 and r.checks_failed_rate == 0.0
    assert r.vus_max == 20 and r.phase == "measure"
    assert r.rate_held and not r.thresholds_failed


def test_parse_summary_with_dropped_iterations_is_not_rate_held():
    r = parse_summary(summary(iterations=1400, dropped=100, failed_rate=0.02, checks_rate=0.9),
                      target_tps=25, duration_s=60, exit_code=99)
    assert r.dropped_iterations == 100
    assert not r.rate_held
    assert r.error_rate == 0.02
    assert r.checks_failed_rate == pytest.approx(0.1)
    assert r.thresholds_failed


def test_rate_held_needs_95_percent_of_target_even_without_drops():
    assert not parse_summary(summary(iterations=1380), 25, 60).rate_held   # 23.0/s
    assert parse_summary(summary(iterations=1425), 25, 60).rate_held       # 23.75/s


def test_parse_summary_zero_requests():
    r = parse_summary(summary(iterations=0, http_reqs=0, checks_rate=None, run_ms=2000),
                      target_tps=25, duration_s=2)
    assert r.iterations == 0 and r.http_reqs == 0 and r.achieved_tps == 0.0
    assert r.p50_ms is None and r.p95_ms is None and r.p99_ms is None and r.max_ms is None
    assert r.error_rate is None and r.checks_failed_rate is None
    assert not r.rate_held
    json.dumps(r.to_dict())


def test_parse_summary_missing_p99_and_stopped_early():
    r = parse_summary(summary(iterations=250, http_reqs=750, p99=False, run_ms=10_000),
                      target_tps=25, duration_s=60, exit_code=105)
    assert r.p99_ms is None and r.p95_ms == 30.0
    assert r.achieved_tps == pytest.approx(25.0)   # over the 10 s it actually ran
    assert r.duration_s == pytest.approx(10.0)


def test_parse_summary_reads_outcomes_and_transport_errors():
    extra = {
        "fk_orders_confirmed": {"type": "counter", "values": {"count": 90, "rate": 1}},
        "fk_orders_rejected": {"type": "counter", "values": {"count": 10, "rate": 1}},
        "fk_transport_errors": {"type": "counter", "values": {"count": 3, "rate": 1}},
    }
    r = parse_summary(summary(extra=extra), 25, 60)
    assert dict(r.outcomes) == {"confirmed": 90, "rejected": 10}
    assert r.transport_errors == 3


@pytest.mark.parametrize("bad", [{}, {"metrics": []}, [], None])
def test_parse_summary_rejects_non_summaries(bad):
    with pytest.raises(LoadError):
        parse_summary(bad, 25, 60)


def test_to_dict_is_the_manifest_load_object(tmp_path):
    r = parse_summary(summary(dropped=2), 25, 60, summary_path=tmp_path / "s.json")
    d = r.to_dict()
    for key in ("target_tps", "achieved_tps", "p50_ms", "p95_ms", "p99_ms", "error_rate",
                "dropped_iterations", "iterations", "duration_s", "http_reqs", "vus_max",
                "rate_held", "exit_code", "summary_path"):
        assert key in d, key
    assert d["dropped_iterations"] == 2 and d["rate_held"] is False
    assert d["summary_path"] == str(tmp_path / "s.json")
    assert json.loads(json.dumps(d)) == d


def test_read_summary_missing_and_garbage(tmp_path):
    with pytest.raises(LoadError, match="no summary"):
        read_summary(tmp_path / "absent.json", 25, 60)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(LoadError, match="unreadable"):
        read_summary(bad, 25, 60)


# ------------------------------------------------------------------------------------------
# k6's JSON log (lines as k6 1.1 writes them with --log-format json)
# ------------------------------------------------------------------------------------------

LOG = [
    '{"error":"Get \\"http://127.0.0.1:9\\": dial tcp 127.0.0.1:9: connect: connection refused",'
    '"level":"warning","msg":"Request Failed","time":"2026-12-01T19:56:01Z"}',
    '{"error":"second failure","level":"warning","msg":"Request Failed","time":"2026-12-01T19:56:02Z"}',
    '{"level":"info","msg":"flamekit k6 order-flow [measure] starting","source":"console","time":"2026-12-01T19:56:00Z"}',
    '{"hint":"script exception","level":"error","msg":"Error: FK_SKUS=\\"many\\" is not a valid integer '
    '\\u003e= 1\\n\\tat envNumber (file:///x/flamekit.js:50:11(80))\\n","time":"2026-12-01T19:56:02Z"}',
    "flamekit k6 http-get [measure]: 3 iterations (2.99/s of 2/s), dropped 0",
    "",
]


def test_parse_log_line_reads_json_and_skips_other_output():
    rec = parse_log_line(LOG[0])
    assert rec["level"] == "warning" and rec["msg"] == "Request Failed"
    assert rec["error"].startswith('Get "http://127.0.0.1:9"')
    assert parse_log_line(LOG[4]) is None          # the scripts' summary line on stdout
    assert parse_log_line("{not json") is None
    assert parse_log_line('{"no":"level"}') is None
    assert parse_log_line("") is None


def test_last_error_is_the_first_line_of_the_last_error_message():
    assert last_error(LOG) == 'Error: FK_SKUS="many" is not a valid integer >= 1'
    assert last_error(LOG[:3] + LOG[4:]) == LOG[4]   # no error: the last output line
    assert last_error([]) is None


def test_first_request_failure_is_the_error_field():
    assert first_request_failure(LOG).endswith("connect: connection refused")
    assert first_request_failure(LOG[2:]) is None
