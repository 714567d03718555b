"""The HTML pages: run index and differential flame graph."""
from __future__ import annotations

import importlib.util
import json
import re
import shutil
from html.parser import HTMLParser
from urllib.parse import unquote

import pytest

from flamekit.analysis.collapsed import parse_collapsed
from flamekit.analysis.compare import compare_runs
from flamekit.render.html import write_diff_flamegraph, write_index
from flamekit.render.markdown import write_report
from tests.unit.test_analysis_captures import ROOT, STAMP_A, STAMP_B, make_run, mutate, two_runs


class LinkParser(HTMLParser):
    def __init__(self):
        super().__init__()
        self.hrefs, self.srcs = [], []

    def handle_starttag(self, tag, attrs):
        d = dict(attrs)
        if "href" in d:
            self.hrefs.append(d["href"])
        if "src" in d:
            self.srcs.append(d["src"])


def embedded_data(page: str) -> dict:
    m = re.search(r'<script type="application/json" id="flamekit-data">(.*?)</script>', page, re.S)
    assert m, "no embedded data"
    return json.loads(m.group(1))


def test_index_lists_runs_newest_first_with_working_links(tmp_path):
    run_a = make_run(tmp_path, STAMP_A)
    failed = mutate(("status",), "failed")
    make_run(tmp_path, STAMP_B, failed)
    write_report(run_a, repo_root=tmp_path)
    fg_dir = tmp_path / "docs" / "perf" / "flamegraphs"
    (fg_dir / "legacy-cpu-20260217-100000.html").write_text("<html></html>")
    out = write_index(tmp_path / "docs/perf/runs", fg_dir, tmp_path / "docs" / "perf")
    assert out == fg_dir / "index.html"
    page = out.read_text()
    assert page.index(STAMP_B) < page.index(STAMP_A)
    assert ">failed<" in page and ">ok<" in page and "24.9 / 25" in page
    assert "<script" not in page and "http://" not in page and "https://" not in page
    parser = LinkParser()
    parser.feed(page)
    assert not parser.srcs
    for href in parser.hrefs:
        assert (fg_dir / unquote(href)).is_file(), href
    assert f"order-service-cpu-{STAMP_A}.html" in parser.hrefs
    assert f"order-service-cpu-{STAMP_B}.html" in parser.hrefs
    assert f"../flamegraph-analysis-{STAMP_A}.md" in parser.hrefs
    assert "legacy-cpu-20260217-100000.html" in parser.hrefs


def test_index_without_runs(tmp_path):
    page = write_index(tmp_path / "runs", tmp_path / "fg", tmp_path).read_text()
    assert "No runs yet" in page


def test_diff_flamegraph_is_self_contained_with_embedded_data(tmp_path):
    a = parse_collapsed("root;hot 60\nroot;cold 40\nroot;</script><b>x 1\n")
    b = parse_collapsed("root;hot 30\nroot;cold 70\nroot;new 5\n")
    out = write_diff_flamegraph(a, b, tmp_path / "sub" / "diff.html", "cpu: A vs B & <more>")
    page = out.read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert "http://" not in page and "https://" not in page and "//cdn" not in page
    parser = LinkParser()
    parser.feed(page)
    assert not parser.srcs and not parser.hrefs
    assert page.count("</script>") == 2  # the hostile frame name cannot close a script
    assert "cpu: A vs B &amp; &lt;more&gt;" in page
    data = embedded_data(page)
    assert (data["total_a"], data["total_b"]) == (101, 105)
    names = data["names"]

    def find(node, path):
        if not path:
            return node
        for kid in node[3] if len(node) > 3 else []:
            if names[kid[0]] == path[0]:
                return find(kid, path[1:])
        return None

    assert find(data["root"], ["root", "hot"])[1:3] == [60, 30]
    assert find(data["root"], ["root", "new"])[1:3] == [0, 5]
    assert find(data["root"], ["root", "</script><b>x"]) is None  # absent from B: no width
    assert "cooler in B" in page and "<code>hot</code>" in page


def test_diff_flamegraph_names_weighted_units(tmp_path):
    a = parse_collapsed("root;hot 600\n", weight="bytes", sample_count=3)
    b = parse_collapsed("root;hot 300\nroot;cold 300\n", weight="bytes", sample_count=4)
    page = write_diff_flamegraph(a, b, tmp_path / "d.html", event="alloc").read_text()
    assert "600 bytes allocated, 3 samples" in page and "share of allocated bytes" in page
    data = embedded_data(page)
    assert (data["unit_a"], data["unit_b"]) == ("bytes", "bytes")


def load_browser_helper():
    spec = importlib.util.spec_from_file_location("flamekit_test_browser",
                                                  ROOT / "tests" / "integration" / "browser.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.browser
def test_generated_pages_load_in_chromium_without_errors(tmp_path):
    browser = load_browser_helper()
    try:
        browser.find_chromium()
    except browser.ChromiumMissing as exc:
        pytest.skip(str(exc))
    a, b = two_runs(tmp_path)
    write_report(b, repo_root=tmp_path)
    fg_dir = tmp_path / "docs" / "perf" / "flamegraphs"
    index = write_index(tmp_path / "docs/perf/runs", fg_dir, tmp_path / "docs" / "perf")
    cmp = compare_runs(a, b)
    diff = write_diff_flamegraph(cmp.captures[0].profile_a, cmp.captures[0].profile_b,
                                   fg_dir / "diff.html", "order-service cpu")
    broken = tmp_path / "broken.html"
    broken.write_text("<!DOCTYPE html><html><head></head><body><script>nope();</script></body></html>")
    for page in (index, diff):
        errors, png = browser.load_in_chromium(page, tmp_path / f"{page.stem}.png")
        assert errors == [], errors
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 2000
    errors, _ = browser.load_in_chromium(broken, tmp_path / "broken.png")
    assert any("nope is not defined" in e for e in errors), errors
    assert not list(tmp_path.glob(".probe-*")) and not list(fg_dir.glob(".probe-*"))
    shutil.rmtree(tmp_path / "docs")


def test_pages_inline_their_template_css_and_js_and_leave_no_temp_files(tmp_path):
    templates = ROOT / "flamekit" / "render" / "templates"
    a = parse_collapsed("root;hot 6\n")
    out = write_diff_flamegraph(a, a, tmp_path / "d.html")
    page = out.read_text()
    assert (templates / "diff.js").read_text() in page
    assert (templates / "diff.css").read_text() in page
    index = write_index(tmp_path / "runs", tmp_path / "fg", tmp_path).read_text()
    assert (templates / "index.css").read_text() in index
    assert "{{" not in page + index and "{%" not in page + index
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["d.html", "index.html"]
