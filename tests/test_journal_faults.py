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


# ---------------------------------------------------------------- damaged files and rows

import re  # noqa: E402
import sqlite3  # noqa: E402

import _journal_funcs as jf  # noqa: E402

import bgtasks.persistence as persistence  # noqa: E402
from bgtasks.persistence import JournalError, RestoreReport, TaskJournal  # noqa: E402


@pytest.fixture(autouse=True)
def _no_calls():
    jf.calls.clear()


def make_journal(make_manager, path, rows=(("a",), ("b",), ("c",)), run=0):
    """A closed journal whose tasks ``rows`` were submitted; the first ``run`` of them finished."""
    manager = make_manager()
    journal = TaskJournal(manager, path)
    handles = [journal.submit(jf.record, *args) for args in rows]
    if run:
        manager.start_processing()
        for h in handles[:run]:
            h.result(10)
        manager.shut_down(timeout=5)
    journal.close()
    manager.shut_down(timeout=5)
    jf.calls.clear()
    return [h.uid for h in handles]


def files_of(path):
    return {p.name: p.read_bytes() for p in sorted(path.parent.iterdir()) if p.name.startswith(path.name)}


def test_a_damaged_index_is_a_journal_error_and_the_file_is_left_untouched(make_manager, tmp_path):
    path = tmp_path / "j.sqlite3"
    make_journal(make_manager, path)
    db = sqlite3.connect(path)
    root, page_size = db.execute("SELECT rootpage FROM sqlite_master WHERE name='tasks_live'").fetchone()[0], db.execute("PRAGMA page_size").fetchone()[0]
    db.close()
    data = bytearray(path.read_bytes())
    assert data[(root - 1) * page_size] == 0x0A  # a leaf index page
    start = (root - 1) * page_size  # make it a clean empty leaf: it lost its cells
    data[start + 1 : start + 8] = b"\0\0" + b"\0\0" + page_size.to_bytes(2, "big") + b"\0"
    path.write_bytes(bytes(data))
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA quick_check").fetchone() == ("ok",)  # what the old check saw
    assert db.execute("SELECT count(*) FROM tasks WHERE state IN ('submitted','started')").fetchone() == (0,)
    db.close()
    before = files_of(path)
    with pytest.raises(JournalError, match=f"^{re.escape(str(path))}: damaged bgtasks journal \\(integrity check: "):
        TaskJournal(make_manager(), path)
    assert files_of(path) == before


def edit(path, sql, *params):
    db = sqlite3.connect(path)
    db.execute(sql, params)
    db.commit()
    db.close()


def test_a_row_edited_outside_bgtasks_is_quarantined_and_the_others_restore(
    make_manager, tmp_path
):
    path = tmp_path / "j.sqlite3"
    a, b, c = make_journal(make_manager, path)
    edit(path, "UPDATE tasks SET args='[\"B\"]' WHERE jid=2")
    journal = TaskJournal(make_manager(), path)
    try:
        assert journal.needs_restore
        assert [r.args for r in journal.records()] == [["a"], ["c"]]
        report = journal.restore()
        assert list(report.uids) == [a, c] and report.skipped == []
        assert report.quarantined == {2: "row 2: checksum mismatch (damaged, or edited outside bgtasks)"}
        journal.manager.start_processing()
        assert [report.handles[u].result(10) for u in (a, c)] == [["a"], ["c"]]
        assert jf.calls == [("record", ("a",)), ("record", ("c",))]
        rows = journal._db.execute("SELECT reason, jid, args FROM quarantine").fetchall()
        assert rows == [(report.quarantined[2], 2, '["B"]')]
        assert journal.restore() == RestoreReport()
    finally:
        journal.close()


def test_rows_with_bad_values_are_quarantined_before_anything_runs(make_manager, tmp_path):
    path = tmp_path / "j.sqlite3"
    uids = make_journal(make_manager, path, rows=[(str(i),) for i in range(6)])
    bad = {
        2: ("args", "'[1,'", "bad args: '[1,'"),
        3: ("upstream", "'[9]'", "bad upstream: '[9]'"),
        4: ("state", "'sleeping'", "bad state: 'sleeping'"),
        5: ("function", "CAST(x'ff' AS TEXT)", "not UTF-8 text in function"),
    }
    db = sqlite3.connect(path)
    db.create_function("bgtasks_crc", -1, persistence._crc, deterministic=True)
    for jid, (column, value, _) in bad.items():
        db.execute(f"UPDATE tasks SET {column}={value} WHERE jid={jid}")
        if jid != 5:  # a valid checksum: the values themselves are checked
            db.execute(f"UPDATE tasks SET crc=bgtasks_crc({', '.join(persistence._CRC_COLUMNS)}) WHERE jid={jid}")
    db.commit()
    db.close()
    journal = TaskJournal(make_manager(), path)
    try:
        report = journal.restore()
        assert report.quarantined == {jid: f"row {jid}: {why}" for jid, (_, _, why) in bad.items()}
        assert list(report.uids) == [uids[0], uids[5]]
        journal.manager.start_processing()
        assert [h.result(10) for h in report.handles.values()] == [["0"], ["5"]]
        assert [(r.args, r.state) for r in journal.records()] == [(["0"], "finished"), (["5"], "finished")]
    finally:
        journal.close()


def test_discard_with_a_damaged_row_quarantines_it(make_manager, tmp_path):
    path = tmp_path / "j.sqlite3"
    make_journal(make_manager, path)
    edit(path, "UPDATE tasks SET kwargs='{' WHERE jid=1")
    journal = TaskJournal(make_manager(), path)
    try:
        assert [r.args for r in journal.discard()] == [["b"], ["c"]]
        assert journal.quarantined == {1: "row 1: checksum mismatch (damaged, or edited outside bgtasks)"}
        assert [r.state for r in journal.records()] == ["skipped", "skipped"]
    finally:
        journal.close()


@pytest.mark.parametrize(
    "sql, why",
    [
        ("UPDATE meta SET value='x' WHERE key='next_session'", "bad next_session 'x'"),
        ("DELETE FROM meta WHERE key='next_session'", "bad next_session None"),
        ("UPDATE meta SET value='1' WHERE key='next_session'", "bad next_session '1' (rows of session 1 exist)"),
        ("DROP TABLE tasks", "no such table: tasks"),
    ],
)
def test_damaged_metadata_is_a_journal_error_and_nothing_is_written(make_manager, tmp_path, sql, why):
    path = tmp_path / "j.sqlite3"
    make_journal(make_manager, path)
    edit(path, sql)
    before = files_of(path)
    with pytest.raises(JournalError, match=f"^{re.escape(f'{path}: damaged bgtasks journal ({why})')}$"):
        TaskJournal(make_manager(), path)
    assert files_of(path) == before
