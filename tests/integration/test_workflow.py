"""`inv profile-all`, the report, `inv compare` and the pages in a real browser."""
from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.integration.conftest import ROOT, DemoStack, free_port, stack_env

PLANTED = {
    ("order-service", "cpu"): "demo.order.PricingEngine.priceOrder",
    ("order-service", "alloc"): "demo.order.OrderJson.write",
    ("inventory-service", "lock"): "demo.inventory.StockLedger.reserve",
    ("payment-service", "wall"): "demo.payment.CardAuthorizer.authorize",
}


@pytest.fixture(scope="module")
def own_stack(docker_engine, images, profiler_installed, tmp_path_factory):
    """profile-all brings its own stack up and down: give it its own project and port."""
    project = f"fkall{os.getpid()}"
    port = free_port()
    out = tmp_path_factory.mktemp("profile-all")
    st = DemoStack(project, port, stack_env(project, port, out), out)
    try:
        yield st
    finally:
        st.inv("down", check=False)


def running_containers(project: str) -> list[str]:
    p = subprocess.run(["docker", "ps", "-q", "--filter", f"label=com.docker.compose.project={project}"],
                       capture_output=True, text=True, timeout=60)
    return p.stdout.split()


def report_of(stdout: str) -> Path:
    m = re.search(r"^report: (.+\.md)$", stdout, re.M)
    assert m, stdout[-2000:]
    return Path(m.group(1))


@pytest.fixture(scope="module")
def full_run(own_stack):
    p = own_stack.inv("profile-all", "--duration", "12", "--warmup", "4", timeout=1200)
    return p


def test_profile_all_reports_every_planted_hotspot(full_run, own_stack):
    out = full_run.stdout
    for n in range(1, 9):
        assert f"[{n}/8]" in out
    rep = report_of(out)
    text = rep.read_text()
    for (svc, ev), method in PLANTED.items():
        assert f"### {svc}: {ev}" in text, (svc, ev)
        assert re.search(re.escape(method) + r".{0,80}\d+\.\d%", text), method
    # what to fix first: each planted method in a ranked row of the first 40 lines, with a cost
    head = text.splitlines()[:40]
    for method in PLANTED.values():
        assert any(method in line and re.search(r"\|\s*\d+(\.\d+)?\s*\|", line) for line in head), method
    assert "achieved" in text.lower() or "→" in text
    assert "dropped iterations" in text and "p95" in text
    runs = list((own_stack.out / "runs").iterdir())
    assert len(runs) == 1
    m = json.loads((runs[0] / "manifest.json").read_text())
    assert {c["service"] for c in m["captures"]} == {"gateway", "order-service", "inventory-service",
                                                     "payment-service"}
    assert len({c["event"] for c in m["captures"]}) == 4
    # one load window for all: about warm-up + duration, not services x events x duration
    assert m["wall_seconds"] < 4 + 12 + 120
    assert (own_stack.out / "flamegraphs" / "index.html").is_file()
    assert running_containers(own_stack.project) == []  # torn down


def test_compare_sees_the_cheaper_pricing(own_stack):
    a = own_stack.inv("profile-all", "--services", "order-service", "--events", "cpu",
                      "--duration", "10", "--warmup", "3", timeout=900)
    b = own_stack.inv("profile-all", "--services", "order-service", "--events", "cpu",
                      "--duration", "10", "--warmup", "3", timeout=900, extra_env={"PRICING_COST": "0.2"})
    stamp = lambda out: report_of(out).stem.removeprefix("flamegraph-analysis-")  # noqa: E731
    cmp = own_stack.inv("compare", stamp(a.stdout), stamp(b.stdout))
    text = cmp.stdout
    cooler = text[text.lower().index("cooler"):]
    assert "demo.order.PricingEngine.priceOrder" in cooler[:3000], text
    diffs = list((own_stack.out / "flamegraphs").glob("diff-order-service-cpu-*.html"))
    assert diffs


def test_failing_step_tears_down_and_says_so(own_stack):
    p = own_stack.inv("profile-all", "--services", "order-service", "--events", "cpu", "--duration", "5",
                      check=False, extra_env={"INVOKE_FLAMEKIT_WAIT_TIMEOUT": "1"}, timeout=900)
    assert p.returncode != 0
    last = p.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "Traceback" not in p.stderr, p.stderr
    assert "[8/8] stack down" in p.stdout
    assert running_containers(own_stack.project) == []


@pytest.mark.browser
def test_pages_load_in_chromium_without_errors(full_run, own_stack, tmp_path):
    from tests.integration.browser import load_in_chromium
    fg = own_stack.out / "flamegraphs"
    pages = [fg / "index.html"] + sorted(fg.glob("order-service-cpu-*.html"))[:1] \
        + sorted(fg.glob("diff-*.html"))[:1]
    assert len(pages) >= 2
    for page in pages:
        errors, png = load_in_chromium(page, tmp_path / (page.stem + ".png"))
        assert errors == [], (page, errors)
        data = png.read_bytes()
        assert len(data) > 5000  # a blank 1200x800 PNG compresses to far less


def _colored_share(png, y0: int, y1: int) -> float:
    """Share of clearly coloured pixels (frames; the page background is white or grey) in rows y0..y1."""
    from PIL import Image
    im = Image.open(png).convert("HSV")
    band = im.crop((0, y0, im.width, y1))
    sats = band.getchannel("S").get_flattened_data()
    return sum(1 for v in sats if v > 40) / max(1, len(sats))


@pytest.mark.browser
def test_flame_graph_opens_with_its_widest_frames_in_view_at_1366x768(full_run, own_stack, tmp_path):
    """The icicle layout (--inverted): the root and the wide frames under it fill the top of a
    laptop screen, where the default layout opened a deep JVM graph on blank space."""
    from tests.integration.browser import load_in_chromium
    page = sorted((own_stack.out / "flamegraphs").glob("order-service-cpu-*.html"))[0]
    errors, png = load_in_chromium(page, tmp_path / "first-screen.png", window_size="1366,768")
    assert errors == []
    top = _colored_share(png, 45, 200)       # under the title bar: "all" and the frames below it
    bottom = _colored_share(png, 620, 768)   # the narrow leaves, or nothing
    assert top > 0.5 and top > bottom, (top, bottom)
