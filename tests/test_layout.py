"""The package's layout is checked by tools, not by memory (issue 12).

* import-linter's contracts in pyproject.toml: the core imports no Qt and
  nothing above it, layers only point down, executors need no Qt, no import
  cycles inside a package;
* ruff's complexity rules (mccabe C901, too many branches or statements) at
  the thresholds set in pyproject.toml;
* the core's tests run without a QApplication: importing the core loads no Qt.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).parents[1]
BIN = pathlib.Path(sys.executable).parent


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=120, env=dict(os.environ)
    )


def test_import_contracts_are_kept():
    proc = run(str(BIN / "lint-imports"), "--no-cache")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 broken" in proc.stdout


def test_complexity_stays_under_the_thresholds():
    proc = run(str(BIN / "ruff"), "check", "--select", "C901,PLR0912,PLR0915", "bgtasks")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_core_loads_no_qt():
    code = "import sys, bgtasks.core; print(sorted(m for m in sys.modules if 'PySide' in m))"
    proc = run(sys.executable, "-c", code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


# -- sizes (issue 12): no module over 600 lines, no class over 400, no function
# body over 60 lines.  Measured with ast, so comments and docstrings inside a
# body count like code (they are read like code).

MODULE_LINES = 600
CLASS_LINES = 400
FUNCTION_BODY_LINES = 60


def _oversized() -> list[str]:
    import ast

    found = []
    for path in sorted((ROOT / "bgtasks").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        name = path.relative_to(ROOT).as_posix()
        lines = text.count("\n")
        if lines > MODULE_LINES:
            found.append(f"{name}: {lines} lines (module limit {MODULE_LINES})")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ClassDef):
                size = node.end_lineno - node.lineno + 1
                if size > CLASS_LINES:
                    found.append(f"{name}: class {node.name} {size} lines (limit {CLASS_LINES})")
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                body = node.end_lineno - node.body[0].lineno + 1
                if body > FUNCTION_BODY_LINES:
                    found.append(
                        f"{name}: {node.name}() body {body} lines (limit {FUNCTION_BODY_LINES})"
                    )
    return found


def test_no_module_class_or_function_is_oversized():
    assert _oversized() == []
