"""The analysis report markdown: sections, tables, links, findings."""
from __future__ import annotations

import copy
import json
import math
import re
from pathlib import Path
from urllib.parse import unquote

import pytest

from flamekit.analysis.captures import CaptureData, load_captures
from flamekit.analysis.collapsed import parse_collapsed
from flamekit.analysis.hotspots import allocated_classes, app_hotspots
from flamekit.render.markdown import _capture_section, finding, write_report
from flamekit.runs import read_manifest
from flamekit.errors import ReportError
from tests.unit.test_analysis_captures import STAMP_A, CLEAN_MANIFEST, cpu_collapsed, make_run, mutate, weighted_run
from tests.unit.test_analysis_hotspots import REAL_WALL


def md_links(text):
    return re.findall(r"\]\(([^)]+)\)", text)


def test_report_contents_links_and_findings(tmp_path):
    run = make_run(tmp_path, STAMP_A)
    out = write_report(run, repo_root=tmp_path)
    assert out == tmp_path / "docs" / "perf" / f"flamegraph-analysis-{STAMP_A}.md"
    text = out.read_text()
    headings = [line for line in text.splitlines() if line.startswith("## ")]
    assert headings == ["## What to fix first", "## Cost per iteration by service", "## Where the CPU goes",
                        "## Request threads (wall)", "## Exports", "## Run set-up", "## Load", "## Hotspots",
                        "## Validity", "## Findings"]
    assert text.startswith(f"# Flame graph analysis: {STAMP_A}")
    for figure in ("25.0 → 24.9", "12.1 ms", "40.2 ms", "60.0 ms", "| error rate | 0.00% |",
                   "| dropped iterations | 0 |", "-XX:+DebugNonSafepoints", "4.3", "v1.1.0", "17.0.15"):
        assert figure in text, figure
    assert "## Validity\n\nnone\n" in text
    assert ("`demo.order.PricingEngine.priceOrder` is the application method behind 63.2% ± 3.0 of "
            "order-service's CPU samples (1,000 samples, perf_events). Next application frames: "
            "`demo.order.Repo.save` 36.8%. It is also the top raw leaf (63.2%).") in text
    section = text.split("### order-service: cpu")[1]
    assert section.index("#### Top application frames") < section.index("#### Top methods by self share")
    assert "| 1 | `demo.order.PricingEngine.priceOrder` | 632 | 63.2% | ± 3.0 | 63.2% |" in section
    assert "| 2 | `demo.order.Repo.save` | 368 | 36.8% | ± 3.0 | 36.8% |" in section
    assert "| 1 | `demo.order.PricingEngine.priceOrder` | 632 | 63.2% | ± 3.0 | 63.2% |" in text
    # every link resolves relative to the report, and both flame graphs are linked
    links = md_links(text)
    for link in links:
        assert (out.parent / unquote(link)).exists(), link
    targets = {(out.parent / unquote(link)).resolve() for link in links}
    assert (tmp_path / f"docs/perf/flamegraphs/order-service-cpu-{STAMP_A}.html").resolve() in targets
    assert (run / "order-service" / "cpu.html").resolve() in targets


def test_report_elsewhere_keeps_relative_links(tmp_path):
    run = make_run(tmp_path, STAMP_A)
    out = write_report(run, tmp_path / "reports" / "deep" / "analysis.md", tmp_path)
    links = md_links(out.read_text())
    assert links and all(link.startswith("../../") for link in links)
    assert all((out.parent / unquote(link)).exists() for link in links)


def test_report_ctimer_small_sample_run_warns_and_never_says_wall_clock(tmp_path):
    m = mutate(("captures", 0, "engine"), "ctimer")
    m["captures"][0]["samples"] = None  # filled from the collapsed file
    run = make_run(tmp_path, STAMP_A, m, collapsed=cpu_collapsed(200, 50, 50))
    text = write_report(run, repo_root=tmp_path).read_text()
    validity = text.split("## Validity")[1].split("## Findings")[0]
    assert "only 300 samples" in validity and "±5.7 points" in validity
    assert "CPU time sampled by a timer (ctimer)" in validity
    assert "several points" in text
    hits = [mm.start() for mm in re.finditer("wall-clock", text)]
    assert hits and all(text[i - 4:i] == "not " for i in hits)


def test_report_discovers_unlisted_captures_and_alloc_sections(tmp_path):
    m = copy.deepcopy(CLEAN_MANIFEST)
    m["captures"] = None
    m["load"] = None
    run = make_run(tmp_path, STAMP_A, m, seed_copy=False)
    (run / "order-service" / "alloc.collapsed").write_text(
        "java/lang/Thread.run;demo/Repo.save;byte[]_[k] 700\n"
        "java/lang/Thread.run;demo/Json.write;java.lang.String_[i] 300\n")
    text = write_report(run, repo_root=tmp_path).read_text()
    assert "### order-service: alloc" in text and "### order-service: cpu" in text
    assert "#### Top allocation sites (self)" in text and "#### Top allocated classes" in text
    assert "`demo.Repo.save` is the application site of 70.0% ± 2.8 of order-service's allocation samples" in text
    assert "It is also the top raw allocation site (70.0%)" in text
    assert "No load figures were recorded." in text
    validity = text.split("## Validity")[1]
    assert "no captures recorded" not in validity  # the discovered files are captures
    assert "- order-service cpu: profiling engine not recorded" in validity
    assert "- no load figures recorded" in validity


def test_report_missing_manifest_and_run(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ReportError, match="no manifest.json"):
        write_report(tmp_path / "empty", repo_root=tmp_path)
    with pytest.raises(ReportError, match="no run directory"):
        write_report(tmp_path / "gone", repo_root=tmp_path)
    (tmp_path / "empty" / "manifest.json").write_text("{not json")
    with pytest.raises(ReportError, match="unreadable manifest"):
        write_report(tmp_path / "empty", repo_root=tmp_path)


def test_report_leads_with_application_frames_and_uses_manifest_app_packages(tmp_path):
    m = copy.deepcopy(CLEAN_MANIFEST)
    m["captures"][0]["samples"] = None
    run = make_run(tmp_path, STAMP_A, m, collapsed=REAL_WALL.replace("demo/payment", "demo/order"))
    m["settings"]["events"] = ["wall"]
    (run / "order-service" / "cpu.collapsed").rename(run / "order-service" / "wall.collapsed")
    m["captures"][0].update(event="wall", engine="wall", collapsed="order-service/wall.collapsed",
                            html="order-service/cpu.html")
    (run / "manifest.json").write_text(json.dumps(m))
    text = write_report(run, repo_root=tmp_path).read_text()
    section = text.split("### order-service: wall")[1].split("## Validity")[0]
    assert section.index("#### Top application frames") < section.index("#### Top methods by self share")
    assert "| 1 | `demo.order.CardAuthorizer.authorize` | 200 | 2.8% | ± 0.4 | 2.8% |" in section
    findings = text.split("## Findings")[1]
    assert ("`demo.order.CardAuthorizer.authorize` is the application method behind 2.8% ± 0.4 of "
            "order-service's wall-clock samples (7,032 samples, wall).") in findings
    assert "hold 97.2% of wall-clock samples; of the 2.8% with one, `demo.order.CardAuthorizer.authorize` holds 100.0%" in findings
    assert "The top raw leaf is `/usr/lib/x86_64-linux-gnu/libc.so.6` with 100.0% ± 0.0." in findings
    # settings.app_packages narrows the application frames; an explicit argument wins over it
    m["settings"]["app_packages"] = ["demo.order.Main"]
    (run / "manifest.json").write_text(json.dumps(m))
    text = write_report(run, repo_root=tmp_path).read_text()
    assert "`demo.order.Main.route` is the application method behind 2.8%" in text
    assert "| application packages | `demo.order.Main` |" in text
    assert "the deepest Java method under `demo.order.Main`" in text
    text = write_report(run, repo_root=tmp_path, app_packages=["demo.order.CardAuthorizer"]).read_text()
    assert "`demo.order.CardAuthorizer.authorize` is the application method behind 2.8%" in text


def test_finding_without_any_application_frame():
    prof = parse_collapsed("java/lang/Thread.run;sun/nio/ch/EPollSelectorImpl.clearInterrupt;java.lang.Object 1000\n")
    cap = CaptureData("svc", "lock", "lock", None, 1000, prof, None, None, None, None)
    text = finding(cap)
    assert text.startswith("No application frame is on any stack of svc's lock-contention samples")
    assert "The top raw contending frame is `sun.nio.ch.EPollSelectorImpl.clearInterrupt` with 100.0%" in text
    assert finding(cap, ["sun.nio"]).startswith("`sun.nio.ch.EPollSelectorImpl.clearInterrupt` is the "
                                                  "application method contending in 100.0%")


def test_weighted_alloc_capture_shares_from_bytes_uncertainty_from_count(tmp_path):
    run = weighted_run(tmp_path)
    caps = {c.event: c for c in load_captures(run, read_manifest(run), tmp_path)}
    assert set(caps) == {"cpu", "alloc"}  # alloc.samples.collapsed is not an event
    cap = caps["alloc"]
    assert (cap.weight, cap.samples, cap.weight_total) == ("bytes", 400, 1_200_000_000)
    assert cap.samples_collapsed == run / "order-service" / "alloc.samples.collapsed"
    prof = cap.profile
    assert prof.weighted and prof.total == 1_200_000_000 and prof.samples == 400
    assert cap.sample_profile.total == 400 and not cap.sample_profile.weighted
    [app] = app_hotspots(prof, "alloc", top=1)
    assert app.name == "demo.order.OrderJson.write"
    assert app.self_share == pytest.approx(0.75)          # of bytes, not of samples (25 %)
    assert app.samples == 400                             # the count, never 1.2e9
    u = app.self_uncertainty()
    assert u.points == pytest.approx(100 * 1.96 * math.sqrt(0.75 * 0.25 / 400))
    assert not u.reliable                                 # 400 samples: under the ~1,000 rule
    assert allocated_classes(prof, "alloc")[0].samples == 400

    text = write_report(run, repo_root=tmp_path).read_text()
    section = text.split("### order-service: alloc")[1].split("## Validity")[0]
    assert "400 allocation samples, 1.2 GB allocated (alloc); only 400 samples (under ~1,000)" in section
    assert "up to ± 4.9 points at 95%" in section
    assert "Shares are of allocated bytes; their ± comes from the number of samples." in section
    assert "| # | application frame | MB | app share | ± (95%) | total share |" in section
    assert "| 1 | `demo.order.OrderJson.write` | 900.0 | 75.0% | ± 4.2 | 75.0% |" in section
    assert "| # | allocation site | self MB | self share | ± (95%) | total share |" in section
    assert "| 1 | `jdk.internal.misc.Unsafe.allocateUninitializedArray` | 900.0 | 75.0% | ± 4.2 | 75.0% |" in section
    assert "| # | method | total MB | total share | ± (95%) | self share |" in section
    assert "| # | class | MB | share | ± (95%) |" in section
    assert "[sample counts](" in section
    assert "site samples" not in section
    findings = text.split("## Findings")[1]
    assert ("`demo.order.OrderJson.write` is the application site of 75.0% ± 4.2 of order-service's "
            "allocated bytes (400 samples, 1.2 GB allocated, alloc).") in findings
    assert "The top raw allocation site is `jdk.internal.misc.Unsafe.allocateUninitializedArray` with 75.0% ± 4.2." in findings
    assert "With only 400 samples every share is uncertain by up to ± 4.9 points" in findings
    validity = text.split("## Validity")[1].split("## Findings")[0]
    assert "order-service alloc: only 400 samples (under ~1,000)" in validity


def test_weighted_capture_without_any_count_says_the_error_is_unknown(tmp_path):
    run = weighted_run(tmp_path, samples_in_manifest=False)
    (run / "order-service" / "alloc.samples.collapsed").unlink()
    cap = next(c for c in load_captures(run, read_manifest(run), tmp_path) if c.event == "alloc")
    assert cap.samples is None and cap.profile.samples == 0
    assert app_hotspots(cap.profile, "alloc")[0].self_uncertainty().text.startswith("± ?")
    text = write_report(run, repo_root=tmp_path).read_text()
    assert "weighted by bytes but the number of samples was not recorded" in text
    assert "75.0% ± ? of order-service's allocated bytes" in text
    assert "1,200,000,000" not in text


def test_weighted_lock_labels_in_ms_of_wait():
    prof = parse_collapsed(
        "[w tid=1];demo/inventory/StockLedger.reserve_[j];java.lang.Object_[i] 30000000\n"
        "[w tid=2];sun/net/httpserver/ServerImpl$Dispatcher.run_[j];java.lang.Object_[i] 10000000\n",
        weight="ns", sample_count=1500)
    cap = CaptureData("inventory-service", "lock", "lock", None, 1500, prof, None, None, None, None,
                        weight="ns")
    lines = "\n".join(_capture_section(cap, Path("."), 10))
    assert "1,500 lock-contention samples, 40.0 ms of lock wait (lock); every share below is within ± 2.5 points" in lines
    assert "| # | application frame | wait ms | app share | ± (95%) | total share |" in lines
    assert "| 1 | `demo.inventory.StockLedger.reserve` | 30.0 | 75.0% | ± 2.2 | 75.0% |" in lines
    assert "| # | method | wait ms | self share | ± (95%) | total share |" in lines
    assert "| # | method | total wait ms | total share | ± (95%) | self share |" in lines
    assert "contention samples |" not in lines
    assert finding(cap).startswith(
        "`demo.inventory.StockLedger.reserve` is the application method contending in 75.0% ± 2.2 of "
        "inventory-service's lock wait time (1,500 samples, 40.0 ms of lock wait, lock).")
