"""The README's example runs as written, and CI runs the README's test command."""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).parents[1]
README = (ROOT / "README.md").read_text()


def test_readme_example_runs_as_written():
    example = re.search(r"## Example\n\n```python\n(.*?)```", README, re.S).group(1)
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    proc = subprocess.run(
        [sys.executable, "-c", example], capture_output=True, text=True, timeout=60, env=env
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["1 {'length': 10}", "2 10 chars"]


def test_ci_runs_the_readme_test_command():
    commands = re.findall(r"```sh\n# (.*?)\n(.*?)\n```", README)
    assert [what for what, _ in commands] == [
        "launch the demo app",
        "run the whole test suite (headless)",
    ]
    test_command = commands[1][1]
    assert test_command in (ROOT / ".ci" / "run").read_text().splitlines()


def test_readme_links_point_at_files():
    for target in re.findall(r"\]\(((?:docs/)[^)#]+)", README):
        assert (ROOT / target).is_file(), f"README links to a missing file: {target}"
