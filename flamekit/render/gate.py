"""The gate's outputs for CI: JUnit XML (one testcase per service-event check and per load
check, failures carrying the numbers), a markdown summary fit for a CI job summary, and the
verdict lines printed on the terminal."""
from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Sequence

from ..analysis.gate import CaptureCheck, GateResult, MethodCheck, load_line, method_line

#: Method rows per service-event in the summary's table.
TOP_ROWS = 8


def _fmt(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 100:
        return f"{v:.0f}"
    if abs(v) >= 1:
        return f"{v:.2f}"
    return f"{v:.3g}"


def _numbers(m: MethodCheck) -> str:
    e = m.est
    return (f"{m.method}: {_fmt(e.cost_a)} -> {_fmt(e.cost_b)} {m.unit} per request "
            f"(x{e.ratio:.2f}, {m.unit} ratio {e.ratio_lo:.2f}..{e.ratio_hi:.2f}, q={m.q_cost:.2g}); "
            f"share {e.share_a:.1%} -> {e.share_b:.1%} (q={m.q_share:.2g})")


def junit_xml(result: GateResult) -> str:
    """JUnit XML: testsuite "flamekit gate"; a testcase per service-event (classname
    ``gate.<service>``, name the event) and per load check (classname ``gate.load``). A
    regression is a <failure>; a check that cannot be judged is an <error>; a service-event
    with too little in both runs is <skipped>. Run-level reasons are errors of a "comparable"
    testcase."""
    cases: list[ET.Element] = []

    def case(classname: str, name: str) -> ET.Element:
        el = ET.Element("testcase", classname=classname, name=name, time="0")
        cases.append(el)
        return el

    c = case("gate.runs", "comparable")
    if result.reasons:
        err = ET.SubElement(c, "error", message=result.reasons[0], type="cannot judge")
        err.text = "\n".join(result.reasons)
    for chk in result.checks:
        el = case(f"gate.{chk.service}", chk.event)
        if chk.undecided:
            ET.SubElement(el, "error", message=chk.undecided, type="cannot judge").text = chk.undecided
        elif chk.skipped:
            ET.SubElement(el, "skipped", message=chk.skipped)
        elif chk.regressions:
            worst = chk.regressions[0]
            f = ET.SubElement(el, "failure", message=method_line(worst, result.noun), type="regression")
            f.text = "\n".join(_numbers(m) for m in chk.regressions)
        out = [f"samples: baseline {chk.samples_a}, run {chk.samples_b}"]
        out += [_numbers(m) for m in sorted(chk.methods, key=lambda m: -m.est.ratio)[:TOP_ROWS]]
        ET.SubElement(el, "system-out").text = "\n".join(out)
    for lc in result.load:
        el = case("gate.load", lc.name)
        if lc.verdict == "regression":
            ET.SubElement(el, "failure", message=load_line(lc), type="regression").text = \
                f"baseline {lc.a}, run {lc.b}: {lc.detail}"
        elif lc.verdict == "n/a":
            ET.SubElement(el, "skipped", message=lc.detail)
        else:
            ET.SubElement(el, "system-out").text = lc.detail
    suite = ET.Element("testsuite", name="flamekit gate", tests=str(len(cases)),
                       failures=str(sum(1 for e in cases if e.find("failure") is not None)),
                       errors=str(sum(1 for e in cases if e.find("error") is not None)),
                       skipped=str(sum(1 for e in cases if e.find("skipped") is not None)), time="0")
    ET.SubElement(ET.SubElement(suite, "properties"), "property", name="baseline", value=result.baseline)
    suite[0].append(ET.Element("property", name="run", value=result.run))
    suite[0].append(ET.Element("property", name="verdict", value=result.verdict))
    suite.extend(cases)
    root = ET.Element("testsuites", name="flamekit gate", tests=suite.get("tests", "0"),
                      failures=suite.get("failures", "0"), errors=suite.get("errors", "0"))
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def verdict_lines(result: GateResult) -> list[str]:
    """The terminal verdict: the headline first (the worst regression, or why it cannot
    judge), then the other regressions, reasons and improvements."""
    lines = [result.headline()]
    regs = result.regressions
    named = result.exit_code == 1  # the headline named the worst regression
    for m in regs[(1 if named else 0):]:
        lines.append(("  also: " if named else "  unjudged regression: ") + method_line(m, result.noun))
    for lc in result.load_regressions[(1 if named and not regs else 0):]:
        lines.append(("  also: " if named else "  unjudged regression: ") + load_line(lc))
    if result.exit_code != 2:
        for reason in result.undecided:
            lines.append("  not judged: " + reason)
    for m in result.improvements:
        lines.append("  improved: " + method_line(m, result.noun))
    return lines


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def _rel(p: Path, base: Path) -> str:
    try:
        return os.path.relpath(p, base)
    except ValueError:
        return str(p)


def _method_rows(chk: CaptureCheck, noun: str) -> list[str]:
    rows = [f"| method | {chk.unit} per {noun} (baseline -> run) | change (95% CI) | share | q | verdict |",
            "|---|---:|---:|---:|---:|---|"]
    shown = sorted(chk.methods, key=lambda m: (m.verdict == "ok", -abs(m.est.ratio - 1)))[:TOP_ROWS]
    for m in shown:
        e = m.est
        mark = {"regression": "**regression**", "improvement": "improvement"}.get(m.verdict, "")
        rows.append(f"| `{_md(m.method)}` | {_fmt(e.cost_a)} -> {_fmt(e.cost_b)} | {(e.ratio - 1):+.0%} "
                    f"({(e.ratio_lo - 1):+.0%}..{(e.ratio_hi - 1):+.0%}) | {e.share_a:.1%} -> {e.share_b:.1%} "
                    f"| {min(m.q_cost, m.q_share):.2g} | {mark} |")
    return rows


def summary_markdown(result: GateResult, out_dir: Path | None = None, diffs: Sequence[Path] = ()) -> str:
    """A markdown summary for a CI job summary: verdict, reasons, load, per service-event."""
    icon = {0: "PASS", 1: "FAIL", 2: "CANNOT JUDGE"}[result.exit_code]
    cfg = result.config
    out = [f"## flamekit gate: {icon}", "",
           f"Run `{result.run}` against baseline `{result.baseline}`.", "",
           f"**{_md(result.headline())}**", ""]
    if result.undecided:
        out += ["### Cannot judge", ""] + [f"- {_md(r)}" for r in result.undecided] + [""]
    regs = result.regressions
    if regs or result.load_regressions:
        out += ["### Regressions", ""] + [f"- {_md(method_line(m, result.noun))}" for m in regs]
        out += [f"- {_md(load_line(lc))}" for lc in result.load_regressions] + [""]
    if result.improvements:
        out += ["### Improvements", ""] + [f"- {_md(method_line(m, result.noun))}" for m in result.improvements]
        out += [""]
    out += ["### Load", "", "| check | baseline | run | change | verdict |", "|---|---:|---:|---|---|"]
    for lc in result.load:
        a = "n/a" if lc.a is None else _fmt(lc.a)
        b = "n/a" if lc.b is None else _fmt(lc.b)
        out.append(f"| {lc.name} | {a} | {b} | {_md(lc.detail)} | {lc.verdict} |")
    out.append("")
    for chk in result.checks:
        runs_a = chk.methods[0].est.runs_a if chk.methods else 1
        pooled = ""
        if runs_a > 1:
            pooled = (f" Baseline of {runs_a} runs (its samples: the fewest of them); run-to-run variance "
                      f"x{chk.methods[0].est.dispersion:.1f} the bootstrap's, plus each method's own.")
        out += [f"### {chk.service} {chk.event}", "",
                f"Samples: baseline {chk.samples_a:,}, run {chk.samples_b:,}.{pooled}", ""]
        if chk.undecided or chk.skipped:
            out += [f"Not judged: {_md(chk.undecided or chk.skipped or '')}", ""]
            continue
        out += _method_rows(chk, result.noun) + [""]
    if diffs:
        out += ["### Differential flame graphs", ""]
        out += [f"- `{_rel(d, out_dir) if out_dir else d}`" for d in diffs] + [""]
    if result.notes:
        out += ["### Notes", ""] + [f"- {_md(n)}" for n in result.notes] + [""]
    out += [f"A change counts when significant (Benjamini-Hochberg q <= {cfg.alpha:g} over "
            f"{sum(len(c.methods) for c in result.checks)} methods x 2 tests, block bootstrap over time slices) "
            f"and beyond +{cfg.cost_pct:.0%} cost per {result.noun} or +{cfg.share_points * 100:g} points of share; "
            f"load: p95 +{cfg.p95_pct:.0%}, errors +{cfg.error_points * 100:g} points, "
            f"TPS -{cfg.tps_drop:.0%}. See docs/gate.md.", ""]
    return "\n".join(out)


__all__ = ["junit_xml", "summary_markdown", "verdict_lines"]
