"""The documentation site builds, and every ```python block of the README and the docs runs.

Each block runs by itself in a fresh interpreter (its own file, in an empty folder,
headless): it must be a complete program that exits 0.  Text that is not meant to
run is not written as a ```python block.
"""

from __future__ import annotations

import importlib.util
import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).parents[1]
DOCS = ROOT / "docs"
BLOCK = re.compile(r"^```python\n(.*?)^```\s*$", re.M | re.S)

#: Blocks that use an API not in the package yet are skipped until it lands: a block
#: matching a pattern below waits for that feature.  Delete the entry when it lands.
WAITS_FOR: list[tuple[str, str]] = []


def _blocks() -> list:
    params = []
    for path in [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]:
        text = path.read_text(encoding="utf-8")
        for match in BLOCK.finditer(text):
            line = text.count("\n", 0, match.start()) + 2  # the block's first line of code
            name = f"{path.relative_to(ROOT)}:{line}"
            code = match.group(1)
            marks = [
                pytest.mark.skip(reason=f"waits for {feature}")
                for pattern, feature in WAITS_FOR
                if re.search(pattern, code)
            ][:1]
            params.append(pytest.param(code, id=name, marks=marks))
    return params


BLOCKS = _blocks()


def test_the_docs_have_code_blocks():
    assert len(BLOCKS) >= 20


@pytest.mark.slow
@pytest.mark.parametrize("code", BLOCKS)
def test_code_block_runs(code, tmp_path):
    script = tmp_path / "example.py"  # a file, so that spawned worker processes can import it
    script.write_text(code, encoding="utf-8")
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONDONTWRITEBYTECODE="1")
    proc = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=90,
        env=env,
    )
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"


def _missing_docs_tools() -> str | None:
    for module in ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python"):
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            return module
    return None


@pytest.mark.slow
def test_site_builds_strict(tmp_path):
    missing = _missing_docs_tools()
    if missing is not None:
        pytest.skip(f"{missing} is not installed (pip install -e '.[test]' installs it)")
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "index.html").exists()
    assert (tmp_path / "reference" / "manager" / "index.html").exists()
    for page in tmp_path.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        assert "fonts.googleapis.com" not in text, f"{page} loads Google fonts"
