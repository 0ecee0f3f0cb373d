"""Only functions the application registered with @persistable run at restore (issue 11)."""

from __future__ import annotations

import logging
import re
import sqlite3
import sys

import _journal_funcs as jf
import _persist_funcs as f
import pytest

import bgtasks.persistence as persistence
from bgtasks.persistence import TaskJournal, persistable, persistable_functions


@pytest.fixture(autouse=True)
def _clean():
    jf.calls.clear()
    f.calls.clear()
    before = persistable_functions()
    yield
    # No public way to unregister (a registration lasts the process): the
    # test-only hook forgets what a test registered.
    for name in persistable_functions().keys() - before.keys():
        persistence._unregister(name)


@pytest.fixture
def journal_at(make_manager):
    opened = []

    def make(path, **kwargs):
        journal = TaskJournal(make_manager(), path, **kwargs)
        opened.append(journal)
        return journal

    yield make
    for journal in opened:
        journal.close()


# ---------------------------------------------------------------- registration


def test_persistable_registers_under_module_qualname_and_returns_the_function():
    assert persistable(jf.record) is jf.record  # registering twice is harmless
    registry = persistable_functions()
    assert registry["_journal_funcs:record"] is jf.record
    assert registry["journal-tests.renamed"] is jf.renamed
    assert registry["_persist_funcs:Holder.nested"] is f.Holder.nested
    assert "_journal_funcs:not_registered" not in registry
    registry.clear()  # a copy: the registry itself is unchanged
    assert persistable_functions()["_journal_funcs:record"] is jf.record


def test_persistable_refuses_what_it_cannot_name_stably():
    lam = lambda: None  # noqa: E731

    def local():
        return None

    for fn in (lam, local):
        label = f"test_journal_security:{fn.__qualname__}"
        expected = (
            f"@persistable needs a module-level function or an explicit name=, "
            f"got {fn!r} ({label} is not a stable name)"
        )
        with pytest.raises(TypeError, match=f"^{re.escape(expected)}$"):
            persistable(fn)
    with pytest.raises(TypeError, match=r"^@persistable needs a function, got 3$"):
        persistable(3)
    with pytest.raises(TypeError, match=r"^a persistable name must be a non-empty string, got ''$"):
        persistable(name="")
    assert persistable(name="tests.local")(local) is local  # an explicit name is fine
    assert persistable_functions()["tests.local"] is local


def test_a_name_cannot_be_taken_twice():
    def impostor(a, b):
        return a

    expected = f"persistable name '_persist_funcs:add' is already registered for {f.add!r}"
    with pytest.raises(ValueError, match=f"^{re.escape(expected)}$"):
        persistable(name="_persist_funcs:add")(impostor)
    expected = f"{f.add!r} is already persistable as '_persist_funcs:add'"
    with pytest.raises(ValueError, match=f"^{re.escape(expected)}$"):
        persistable(name="other")(f.add)
    assert persistable_functions()["_persist_funcs:add"] is f.add


def test_submitting_an_unregistered_function_is_refused_and_records_nothing(
    make_manager, journal_at, tmp_path
):
    manager = make_manager()
    journal = journal_at(tmp_path / "j.sqlite3")
    journal.manager.start_processing()
    expected = (
        "_journal_funcs:not_registered is not a persistable function: decorate it with "
        "@persistable (from bgtasks.persistence) to submit it as a persistent task"
    )
    with pytest.raises(TypeError, match=f"^{re.escape(expected)}$"):
        journal.submit(jf.not_registered, 1)
    manager = journal.manager
    manager.set_journal(journal)
    with pytest.raises(TypeError, match=f"^{re.escape(expected)}$"):
        manager.options(persist=True).submit(jf.not_registered, 1)
    with pytest.raises(TypeError, match=r"^a persistent task needs a function, got 3$"):
        journal.submit(3)
    assert journal.records() == [] and manager.tasks() == []
    assert jf.calls == []
    # a registered one goes through, under its explicit name if it has one
    assert journal.submit(jf.renamed, 4).result(10) == 4
    assert [r.function for r in journal.records()] == ["journal-tests.renamed"]


# ---------------------------------------------------------------- restore never imports


def _previous_run_with_rows(make_manager, path, functions):
    """A previous run whose unfinished rows name ``functions`` (registered for that run only)."""
    manager = make_manager()
    journal = TaskJournal(manager, path)
    handles = []
    for name, args in functions:
        fn = persistable_functions().get(name)
        if fn is None:

            def fn(*a):  # what a tampered file could name; never registered in "this" run
                raise AssertionError("never runs")

            persistable(name=name)(fn)
        handles.append(journal.submit(fn, *args))
    journal.close()
    manager.shut_down(timeout=5)
    for name, _ in functions:
        if name != "_journal_funcs:record":
            persistence._unregister(name)
    return [h.uid for h in handles]


def test_restore_reports_rows_naming_unregistered_functions_and_never_imports_them(
    make_manager, journal_at, tmp_path, monkeypatch, caplog
):
    marker, shell = tmp_path / "imported.txt", tmp_path / "shell-ran.txt"
    monkeypatch.setenv("BGTASKS_EVIL_MARKER", str(marker))
    sys.modules.pop("_journal_evil", None)
    path = tmp_path / "j.sqlite3"
    good, system, evil = _previous_run_with_rows(
        make_manager,
        path,
        [
            ("_journal_funcs:record", ["ok"]),
            ("os:system", [f"touch {shell}"]),
            ("_journal_evil:boom", [str(shell)]),
        ],
    )
    journal = journal_at(path)
    with caplog.at_level(logging.WARNING, logger="bgtasks"):
        report = journal.restore()
    assert list(report.uids) == [good]
    assert report.skipped == [system, evil]
    assert report.reasons == {
        system: "function 'os:system' is not registered as persistable: not imported, not run",
        evil: "function '_journal_evil:boom' is not registered as persistable: not imported, not run",
    }
    # Only the journal's records: an earlier, never-started manager of this test
    # may log its own shut-down warning on the "bgtasks" logger meanwhile.
    persistence = [r for r in caplog.records if r.name.startswith("bgtasks.persistence")]
    assert [(r.name, r.levelname, r.getMessage()) for r in persistence] == [
        ("bgtasks.persistence", "WARNING", f"{path}: task {uid}: {report.reasons[uid]}")
        for uid in (system, evil)
    ]
    journal.manager.start_processing()
    assert report.handles[good].result(10) == ["ok"]
    assert [(r.function, r.state) for r in journal.records()] == [
        ("_journal_funcs:record", "finished"),
        ("os:system", "skipped"),
        ("_journal_evil:boom", "skipped"),
    ]
    assert "_journal_evil" not in sys.modules
    assert not marker.exists() and not shell.exists()


def test_a_row_edited_by_hand_to_name_os_system_never_runs(
    make_manager, journal_at, tmp_path, monkeypatch
):
    marker, shell = tmp_path / "imported.txt", tmp_path / "shell-ran.txt"
    monkeypatch.setenv("BGTASKS_EVIL_MARKER", str(marker))
    sys.modules.pop("_journal_evil", None)
    path = tmp_path / "j.sqlite3"
    _previous_run_with_rows(
        make_manager, path, [("_journal_funcs:record", ["a"]), ("_journal_funcs:record", ["b"])]
    )
    db = sqlite3.connect(path)
    db.execute("UPDATE tasks SET function='os:system', args=? WHERE jid=1", (f'["touch {shell}"]',))
    db.execute(
        "UPDATE tasks SET function='_journal_evil:boom', args=? WHERE jid=2", (f'["{shell}"]',)
    )
    db.commit()
    db.close()
    journal = journal_at(path)
    report = journal.restore()
    assert report.handles == {} and report.uids == {}
    assert report.quarantined == {  # the rows' checksums no longer match
        1: "row 1: checksum mismatch (damaged, or edited outside bgtasks)",
        2: "row 2: checksum mismatch (damaged, or edited outside bgtasks)",
    }
    assert journal.manager.tasks() == []  # nothing was handed to the manager
    assert "_journal_evil" not in sys.modules
    assert not marker.exists() and not shell.exists()


def test_restore_snapshot_never_imports_nor_runs_unregistered_functions(
    journal_at, tmp_path, monkeypatch
):
    marker, shell = tmp_path / "imported.txt", tmp_path / "shell-ran.txt"
    monkeypatch.setenv("BGTASKS_EVIL_MARKER", str(marker))
    sys.modules.pop("_journal_evil", None)
    task = {
        "uid": 1, "function": "os:system", "args": [f"touch {shell}"], "kwargs": {},
        "name": None, "group": None, "priority": None, "upstream": [], "enduring": False,
        "store_result": False, "running": False,
    }  # fmt: skip
    data = {
        "format": "bgtasks-journal",
        "version": 1,
        "tasks": [
            task,
            {**task, "uid": 2, "function": "_journal_evil:boom", "args": [str(shell)]},
            {**task, "uid": 3, "function": "_journal_funcs:record", "args": ["fine"]},
        ],
    }
    journal = journal_at(tmp_path / "j.sqlite3")
    report = journal.restore_snapshot(data)
    assert list(report.uids) == [3] and report.skipped == [1, 2]
    assert report.reasons == {
        1: "function 'os:system' is not registered as persistable: not imported, not run",
        2: "function '_journal_evil:boom' is not registered as persistable: not imported, not run",
    }
    journal.manager.start_processing()
    assert report.handles[3].result(10) == ["fine"]
    assert [r.function for r in journal.records()] == ["_journal_funcs:record"]
    assert "_journal_evil" not in sys.modules
    assert not marker.exists() and not shell.exists()
