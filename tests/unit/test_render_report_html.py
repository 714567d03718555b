"""The HTML analysis report: ranked tables first, self-contained, every link resolves."""
from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

from flamekit.render.markdown import write_report
from flamekit.render.report_html import write_html_report
from tests.unit.test_analysis_costs import STAMP, demo_run
from tests.unit.test_render_html import LinkParser, load_browser_helper

ROOT = Path(__file__).resolve().parents[2]


def _report(tmp_path):
    run = demo_run(tmp_path)
    write_report(run, repo_root=tmp_path)
    return write_html_report(run, repo_root=tmp_path)


def test_html_report_beside_the_markdown_ranked_first_and_self_contained(tmp_path):
    out = _report(tmp_path)
    assert out == tmp_path / "docs" / "perf" / f"flamegraph-analysis-{STAMP}.html"
    page = out.read_text()
    assert (ROOT / "flamekit/render/templates/report.css").read_text() in page
    assert "<script" not in page and "http://" not in page and "https://" not in page and "{{" not in page
    first_table = page.index("<table")
    assert page.index("demo.order.PricingEngine.priceOrder") < page.index("Validity checks")
    for method in ("demo.order.OrderJson.write", "demo.inventory.StockLedger.reserve",
                   "demo.payment.CardAuthorizer.authorize"):
        assert first_table < page.index(method) < page.index("Validity checks"), method
    parser = LinkParser()
    parser.feed(page)
    assert not parser.srcs
    for href in parser.hrefs:
        assert (out.parent / unquote(href)).exists(), href
    hrefs = set(parser.hrefs)
    assert f"flamegraphs/order-service-cpu-{STAMP}.html" in hrefs
    assert f"runs/{STAMP}/order-service/cpu.heatmap.html" in hrefs
    assert f"runs/{STAMP}/order-service/alloc.pb.gz" in hrefs and f"runs/{STAMP}/order-service/profile.jfr" in hrefs
    assert f"flamegraph-analysis-{STAMP}.md" in hrefs
    assert re.search(r"garbage collection 12\.0%", page)


def test_html_report_escapes_frame_names(tmp_path):
    run = demo_run(tmp_path)
    alloc = run / "order-service" / "alloc.collapsed"
    alloc.write_text(alloc.read_text().replace("demo/order/OrderJson.write", "demo/order/OrderJson.<script>"))
    page = write_html_report(run, repo_root=tmp_path).read_text()
    assert "<script>" not in page


@pytest.mark.browser
def test_html_report_loads_in_chromium_at_1366x768(tmp_path):
    browser = load_browser_helper()
    try:
        browser.find_chromium()
    except browser.ChromiumMissing as exc:
        pytest.skip(str(exc))
    out = _report(tmp_path)
    errors, png = browser.load_in_chromium(out, tmp_path / "report.png", window_size="1366,768")
    assert errors == [], errors
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
