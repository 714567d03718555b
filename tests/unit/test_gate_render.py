"""The gate's CI outputs: JUnit XML and the markdown summary."""
from __future__ import annotations

import random
import xml.etree.ElementTree as ET

from flamekit.render import gate as rg
from tests.unit.test_gate import HOT, manifest, run_gate, table


def _result(hot=120.0, **run_m):
    rng = random.Random(1)
    base = {("order-service", "cpu"): table(rng), ("order-service", "lock"): table(rng, event="lock", samples=5)}
    run = {("order-service", "cpu"): table(rng, hot=hot), ("order-service", "lock"): table(rng, event="lock", samples=7)}
    return run_gate(base, run, run_m=manifest(**run_m) if run_m else None)


def test_junit_has_a_case_per_check_and_a_failure_with_numbers():
    r = _result()
    root = ET.fromstring(rg.junit_xml(r))
    suite = root.find("testsuite")
    cases = suite.findall("testcase")
    names = [(c.get("classname"), c.get("name")) for c in cases]
    assert names == [("gate.runs", "comparable"), ("gate.order-service", "cpu"), ("gate.order-service", "lock"),
                     ("gate.load", "p95"), ("gate.load", "error rate"), ("gate.load", "achieved TPS")]
    failure = cases[1].find("failure")
    assert failure is not None and HOT in failure.get("message") and "CPU ms per order" in failure.get("message")
    assert "->" in failure.text and "q=" in failure.text
    assert cases[2].find("skipped") is not None
    assert suite.get("failures") == "1" and suite.get("tests") == "6" and suite.get("skipped") == "1"
    props = {p.get("name"): p.get("value") for p in suite.find("properties")}
    assert props == {"baseline": "main", "run": "r2", "verdict": "regression"}


def test_junit_reports_reasons_as_errors():
    r = _result(flags=["-Xmx1g"])
    root = ET.fromstring(rg.junit_xml(r))
    err = root.find("testsuite/testcase[@name='comparable']/error")
    assert err is not None and "different JVM flags" in err.get("message")


def test_summary_markdown_leads_with_the_verdict():
    r = _result()
    md = rg.summary_markdown(r)
    assert md.startswith("## flamekit gate: FAIL")
    assert f"**order-service cpu: {HOT} +" in md
    assert "### Regressions" in md and "| p95 |" in md and "Not judged: under 100 samples" in md
    ok = rg.summary_markdown(_result(hot=60.0))
    assert ok.startswith("## flamekit gate: PASS")


def test_verdict_lines_start_with_the_headline():
    r = _result()
    lines = rg.verdict_lines(r)
    assert lines[0] == r.headline()


def test_verdict_lines_under_exit_2_still_list_every_regression():
    r = _result(flags=["-Xmx1g"])
    lines = rg.verdict_lines(r)
    assert lines[0].startswith("cannot judge: different JVM flags")
    assert any(l.startswith("  unjudged regression: order-service cpu: " + HOT) for l in lines)
