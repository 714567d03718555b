"""The stage rule of analysis and render: which modules they may import, and no print."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MODULES = sorted((ROOT / "flamekit" / "analysis").glob("*.py")) + sorted((ROOT / "flamekit" / "render").glob("*.py"))
# what each stage may import from flamekit (besides itself)
ALLOWED = {"analysis": {"config", "errors", "util", "runs"},
           "render": {"config", "errors", "util", "runs", "analysis"}}


def flamekit_imports(path: Path) -> set[str]:
    """The flamekit top-level modules/packages a module imports (relative imports resolved)."""
    stage = path.parent.name
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1:
                continue  # its own stage
            if node.level == 2:
                found.add((node.module or "").split(".")[0] or "flamekit")
            elif (node.module or "").startswith("flamekit."):
                found.add(node.module.split(".")[1])
            elif (node.module or "").split(".")[0] in ("invoke", "python_on_whales"):
                found.add(node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "flamekit" and len(parts) > 1:
                    found.add(parts[1])
                elif parts[0] in ("invoke", "python_on_whales"):
                    found.add(parts[0])
    return found - {stage}


@pytest.mark.parametrize("path", MODULES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_stage_imports_only_earlier_stages_and_never_prints(path):
    stage = path.parent.name
    assert flamekit_imports(path) <= ALLOWED[stage], flamekit_imports(path) - ALLOWED[stage]
    src = path.read_text()
    assert not re.search(r"(?<![\w.])print\(", src)
    assert len(src.splitlines()) < 600


def test_the_old_report_module_is_gone():
    assert not (ROOT / "flamekit" / "analysis" / "report.py").exists()
