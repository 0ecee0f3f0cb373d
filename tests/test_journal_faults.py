"""Fault injection for the journal (issue 11): full disk, damaged files, kills, two processes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

CHILD = Path(__file__).with_name("_journal_child.py")


def child(*args, stdin=None, timeout=60):
    proc = subprocess.run(
        [sys.executable, str(CHILD), *map(str, args)],
        capture_output=True, text=True, cwd=CHILD.parent, timeout=timeout, input=stdin,
    )  # fmt: skip
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and len(lines) == 1, (proc.returncode, proc.stdout, proc.stderr)
    return json.loads(lines[0][len("RESULT ") :])


# ---------------------------------------------------------------- full disk


def test_a_submit_refused_by_a_full_disk_runs_nothing_and_a_retry_runs_once(tmp_path):
    db = tmp_path / "j.sqlite3"
    out = child("diskfull", db)
    assert out["error"] == (
        f"JournalError: {db}: cannot write the journal: disk I/O error"
    )
    assert out["tasks_after_refusal"] == 1
    assert out["results"] == [["a"], ["c"]]
    assert out["calls"] == [["a"], ["c"]]
    assert out["records"] == [[["a"], "finished"], [["c"], "finished"]]


def test_a_restore_refused_by_a_full_disk_runs_nothing_and_can_be_retried(tmp_path):
    db = tmp_path / "j.sqlite3"
    assert child("prepare", db)["records"] == [[["p1"], "submitted"], [["p2"], "submitted"]]
    out = child("diskfull-restore", db)
    assert out["error"] == (
        f"JournalError: {db}: cannot write the journal: disk I/O error"
    )
    assert (out["tasks_after_refusal"], out["needs_restore"]) == (0, True)
    assert out["results"] == [["p1"], ["p2"]]
    assert out["calls"] == [["p1"], ["p2"]]
    assert out["records"] == [[["p1"], "finished"], [["p2"], "finished"]]
