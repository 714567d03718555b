"""The HTML outputs: the run index and the differential flame graph.

Pages are jinja2 templates (``templates/*.html.j2``, autoescaped); their CSS and JavaScript
are files next to them, inlined at render time so every page is one self-contained file
that opens offline from the file system. Data for a script goes in as JSON (``tojson``,
which escapes ``<``, ``>``, ``&`` and ``'`` so no frame name can close the script).
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import jinja2
from markupsafe import Markup

from ..errors import ReportError
from ..runs import RUN_HINT, list_runs, read_manifest, report_path, seed_flamegraph
from ..util import atomic_write
from ..analysis.captures import load_captures
from ..analysis.collapsed import Profile
from ..analysis.compare import compare_profiles
from ..analysis.values import get, number
from .format import link, measure, pct, profile_amount, pts

log = logging.getLogger(__name__)


@lru_cache(maxsize=1)
def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("flamekit.render", "templates"),
        autoescape=True, undefined=jinja2.StrictUndefined,
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.policies["json.dumps_kwargs"] = {"separators": (",", ":")}
    env.filters.update(pct=pct, pts=pts)

    # inline, not include: a stylesheet or script is text to paste, not a template to parse
    def inline(name: str) -> Markup:
        source, _, _ = env.loader.get_source(env, name)  # type: ignore[union-attr]
        return Markup(source)

    env.globals["inline"] = inline
    return env


def render_page(template: str, **context: object) -> str:
    """Render one of ``templates/*.html.j2`` with ``context``."""
    return _env().get_template(template).render(**context)


# --------------------------------------------------------------------------- index


@dataclass(frozen=True)
class _IndexRow:
    stamp: str
    status: str
    status_class: str
    graphs: list[tuple[str, str | None]]  # (service event, href or None)
    tps: str
    report: str | None


def _index_row(run: Path, fg_dir: Path, reports: Path, linked: set[Path]) -> _IndexRow:
    try:
        manifest = read_manifest(run)
    except ReportError as exc:
        log.warning("%s", exc)
        manifest = {"status": "no manifest"}
    stamp = str(manifest.get("stamp") or run.name)
    status = str(manifest.get("status") or "unknown")
    repo = fg_dir.parent.parent.parent if fg_dir.name == "flamegraphs" else None
    graphs: list[tuple[str, str | None]] = []
    for cap in load_captures(run, manifest, repo):
        seed = seed_flamegraph(fg_dir, cap.service, cap.event, stamp)
        target = seed if seed.is_file() else (cap.flamegraph or cap.html)
        if target is not None:
            linked.add(target.resolve())
        graphs.append((f"{cap.service} {cap.event}", link(target, fg_dir) if target else None))
    achieved = number(get(manifest, "load", "achieved_tps"))
    target_tps = number(get(manifest, "load", "target_tps")) or number(get(manifest, "settings", "tps"))
    tps = "n/a" if achieved is None else f"{achieved:.1f}" + (f" / {target_tps:g}" if target_tps else "")
    report = report_path(reports, stamp)
    return _IndexRow(stamp, status, status if status in ("ok", "failed") else "unknown", graphs, tps,
                     link(report, fg_dir) if report.is_file() else None)


def write_index(runs_root: str | os.PathLike[str], flamegraphs_dir: str | os.PathLike[str],
                reports_dir: str | os.PathLike[str]) -> Path:
    """Write ``<flamegraphs_dir>/index.html``: every run, newest first, with status,
    services/events, achieved TPS and links to its flame graphs and report; flame
    graph files that belong to no run are listed after. Static HTML, no script."""
    fg_dir = Path(flamegraphs_dir)
    out = fg_dir / "index.html"
    linked: set[Path] = set()
    rows = [_index_row(run, fg_dir, Path(reports_dir), linked) for run in list_runs(runs_root)]
    others = sorted(p for p in fg_dir.glob("*.html") if p.name != "index.html" and p.resolve() not in linked)
    atomic_write(out, render_page("index.html.j2", runs=rows, hint=RUN_HINT,
                                  others=[(p.name, link(p, fg_dir)) for p in others]))
    log.info("wrote index %s", out)
    return out


# --------------------------------------------------------------------------- diff flame graph


def _diff_tree(profile_a: Profile, profile_b: Profile, min_share: float) -> tuple[list, list[str]]:
    """The merged call tree of A and B as nested ``[name index, a, b, [children]]`` lists
    (the shape diff.js reads) and the frame names; paths under ``min_share`` of B dropped."""
    root: dict = {"a": 0, "b": 0, "c": {}}
    for prof, key in ((profile_a, "a"), (profile_b, "b")):
        for stack, value in prof.stacks.items():
            node = root
            node[key] += value
            for frame in stack:
                node = node["c"].setdefault(frame, {"a": 0, "b": 0, "c": {}})
                node[key] += value
    tb = profile_b.total
    names: list[str] = []
    index: dict[str, int] = {}

    def idx(name: str) -> int:
        if name not in index:
            index[name] = len(names)
            names.append(name)
        return index[name]

    def convert(name: str, node: dict) -> list:
        kids = [convert(k, v) for k, v in sorted(node["c"].items())
                if tb and v["b"] / tb >= min_share]
        item = [idx(name), node["a"], node["b"]]
        if kids:
            item.append(kids)
        return item

    return convert("all", root), names


def write_diff_flamegraph(profile_a: Profile, profile_b: Profile, out_html: str | os.PathLike[str],
                          title: str = "Differential flame graph", label_a: str = "A",
                          label_b: str = "B", event: str = "cpu", min_share: float = 1e-4) -> Path:
    """Write a self-contained differential flame graph (icicle: root on top).

    Frames are laid out by B's widths (each call path's share of B's samples, or of
    B's weight for a weighted profile);
    colour is the change of the path's normalised total share, B - A: red hotter,
    blue cooler, stronger for bigger changes (full colour at the largest change).
    Hover shows A share, B share and delta; click zooms, "reset zoom" returns.
    Paths under ``min_share`` of B are dropped; paths absent from B cannot be drawn
    by B's widths, so the methods that got cooler are also listed in a table.
    Data is embedded as JSON; no external resources.
    """
    out = Path(out_html)
    tree, names = _diff_tree(profile_a, profile_b, min_share)
    data = {"names": names, "total_a": profile_a.total, "total_b": profile_b.total,
            "unit_a": profile_a.weight, "unit_b": profile_b.weight,
            "label_a": label_a, "label_b": label_b, "root": tree}
    hot, cool, _, _ = compare_profiles(profile_a, profile_b, event, 10)
    page = render_page("diff.html.j2", title=title, label_a=label_a, label_b=label_b,
                       amount_a=profile_amount(profile_a), amount_b=profile_amount(profile_b),
                       measure=measure(event, profile_b.weight), hotter=hot, cooler=cool, data=data)
    atomic_write(out, page)
    log.info("wrote differential flame graph %s", out)
    return out
