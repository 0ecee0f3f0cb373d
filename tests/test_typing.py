"""The static types of ``submit``: mypy checks tests/typing/check_submit.py.

The sample asserts the inferred types (``assert_type``) and marks the calls
that must be rejected with ``# type: ignore[code]``; ``--warn-unused-ignores``
turns an error mypy no longer reports into a failure, so losing the ParamSpec
(``submit(fn: Callable[..., Any], ...)``) fails this test as surely as a wrong
return type does.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("mypy")

SAMPLE = Path(__file__).parent / "typing" / "check_submit.py"


def test_submit_is_typed_with_the_function_s_parameters_and_result():
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--warn-unused-ignores",
            "--follow-imports=silent",
            "--no-incremental",
            "--python-version",
            "3.10",
            str(SAMPLE),
        ],  # fmt: skip
        capture_output=True,
        text=True,
        cwd=Path(__file__).parent.parent,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("Success: no issues found in 1 source file"), result.stdout
