"""The tools CI runs: ruff (lint and format) and mypy (strict, configured in pyproject.toml).

Each check runs the tool the test extra installed, from the repository root so that
pyproject.toml's settings apply, and shows the tool's output when it fails.  A planted
violation per tool proves the check can fail.
"""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).parents[1]
#: What ruff checks and formats: the package and everything shipped beside it.
RUFF_PATHS = ("bgtasks", "tests", "benchmarks", "demo_app")
#: mypy on a cold cache reads PySide6's stubs: slow on a loaded machine.
MYPY_SECONDS = 600


def tool(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run ``python -m <args>`` with this interpreter, from the repository root."""
    return subprocess.run(
        [sys.executable, "-m", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def report(proc: subprocess.CompletedProcess[str]) -> str:
    return f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"


def test_ruff_check_is_clean():
    proc = tool("ruff", "check", "--no-cache", *RUFF_PATHS)
    assert proc.returncode == 0, report(proc)


def test_ruff_format_is_clean():
    proc = tool("ruff", "format", "--check", "--no-cache", *RUFF_PATHS)
    assert proc.returncode == 0, report(proc)


@pytest.mark.timeout(MYPY_SECONDS + 60)
def test_mypy_strict_is_clean():
    proc = tool("mypy", "bgtasks", timeout=MYPY_SECONDS)
    assert proc.returncode == 0, report(proc)
    assert proc.stdout.startswith("Success: no issues found"), report(proc)


# ------------------------------------------------------------------ the checks can fail


def test_ruff_check_reports_a_planted_violation(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import os\n")  # F401: imported but unused
    proc = tool("ruff", "check", "--no-cache", "--config", str(ROOT / "pyproject.toml"), str(bad))
    assert proc.returncode == 1, report(proc)
    assert "F401" in proc.stdout, report(proc)


def test_ruff_format_reports_a_planted_violation(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("x = {  'a':1 }\n")
    proc = tool(
        "ruff",
        "format",
        "--check",
        "--no-cache",
        "--config",
        str(ROOT / "pyproject.toml"),
        str(bad),
    )
    assert proc.returncode == 1, report(proc)


@pytest.mark.timeout(MYPY_SECONDS + 60)
def test_mypy_uses_the_strict_settings_of_pyproject(tmp_path):
    """An unannotated function is an error only under strict (disallow_untyped_defs):
    the checker reads pyproject.toml's [tool.mypy] strict = true."""
    bad = tmp_path / "untyped.py"
    bad.write_text("def double(x):\n    return 2 * x\n")
    proc = tool(
        "mypy",
        "--config-file",
        str(ROOT / "pyproject.toml"),
        "--no-incremental",
        str(bad),
        timeout=MYPY_SECONDS,
    )
    assert proc.returncode == 1, report(proc)
    assert "[no-untyped-def]" in proc.stdout, report(proc)
