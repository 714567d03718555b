"""Looking back at runs: report, compare two runs, open a report or flame graph."""
from __future__ import annotations

import os
import sys
import webbrowser
from pathlib import Path

from .. import runs, ui
from ..config import Settings
from ..errors import ReportError
from .chain import write_reports


def report(settings: Settings, run: str | None) -> Path:
    return write_reports(settings, runs.resolve_run(settings.runs_dir, run))


def compare(settings: Settings, run_a: str, run_b: str, top: int = 10) -> Path:
    from ..analysis.compare import compare_runs
    from ..render.html import write_diff_flamegraph
    from ..render.markdown import comparison_markdown
    cmp = compare_runs(run_a, run_b, settings.runs_dir, top=top)
    text = comparison_markdown(cmp)
    diffs = []
    for cc in cmp.captures:
        if cc.profile_a is None or cc.profile_b is None:
            continue
        html = settings.flamegraph_dir / f"diff-{cc.service}-{cc.event}-{cmp.stamp_a}-vs-{cmp.stamp_b}.html"
        write_diff_flamegraph(cc.profile_a, cc.profile_b, html,
                              title=f"{cc.service} {cc.event}: {cmp.stamp_a} -> {cmp.stamp_b}",
                              label_a=cmp.stamp_a, label_b=cmp.stamp_b, event=cc.event)
        diffs.append(html)
    from ..util import atomic_write
    md = atomic_write(settings.reports_dir / "comparisons" / f"compare-{cmp.stamp_a}-vs-{cmp.stamp_b}.md",
                      text + "".join(f"\n- differential flame graph: `{d}`" for d in diffs) + "\n")
    ui.say(text.rstrip("\n"))
    for d in diffs:
        ui.say(f"differential flame graph: {d}")
    return md


def view(settings: Settings, run: str | None, flamegraph: bool = False, print_only: bool = False) -> Path:
    run_dir = runs.resolve_run(settings.runs_dir, run)
    if flamegraph:
        paths = list(runs.flamegraphs_of(runs.read_manifest(run_dir), settings.root))
        if not paths:
            raise ReportError(f"run {run_dir.name} has no flame graph", "run `inv profile` again")
        target = paths[0]
    else:
        target = runs.report_path(settings.reports_dir, run_dir.name, "html")
        if not target.is_file():
            target = runs.report_path(settings.reports_dir, run_dir.name, "md")
        if not target.is_file():
            target = write_reports(settings, run_dir)
    ui.say(str(target))
    if not print_only and (os.environ.get("DISPLAY") or sys.platform == "darwin"):
        webbrowser.open(target.resolve().as_uri())
    return target
