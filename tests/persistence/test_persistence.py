"""Persistent tasks: TaskJournal (bgtasks issue 6)."""

from __future__ import annotations

import json
import random
import re
import sqlite3
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import _persist_funcs as f
import pytest

from bgtasks import TaskCancelled
from bgtasks.persistence import (
    JournalError,
    RestoreReport,
    TaskJournal,
    default_journal_path,
)
from bgtasks.persistence.codec import crc
from bgtasks.persistence.schema import CRC_COLUMNS

CHILD = Path(__file__).with_name("_persist_child.py")
JSON_KINDS = "None, bool, int, float, str, list, dict with str keys"


@pytest.fixture(autouse=True)
def _fresh_funcs():
    f.calls.clear()
    f.gates.clear()
    f.started.clear()
    yield
    for gate in f.gates.values():
        gate.set()  # no task waits past its test


@pytest.fixture
def open_journal(make_manager, tmp_path):
    """open_journal(manager=None, path=None, **kw): a journal closed at the test's end."""
    opened = []

    def make(manager=None, path=None, **kwargs):
        journal = TaskJournal(
            manager or make_manager(), path or tmp_path / "journal.sqlite3", **kwargs
        )
        opened.append(journal)
        return journal

    yield make
    for journal in opened:
        journal.close()


def started(name):
    return f.started.setdefault(name, threading.Event())


def gate(name):
    return f.gates.setdefault(name, threading.Event())


def state_of(journal, handle):
    return journal.record(handle.uid).state


# ---------------------------------------------------------------- validation


def not_persistable_message(label):
    return (
        f"{label} is not a persistable function: decorate it with @persistable "
        "(from bgtasks.persistence) to submit it as a persistent task"
    )


def test_a_lambda_or_a_local_function_is_refused_and_nothing_is_registered(open_journal):
    journal = open_journal()

    def local(x):
        return x

    lam = lambda: None  # noqa: E731
    for fn in (lam, local):
        expected = not_persistable_message(f"test_persistence:{fn.__qualname__}")
        with pytest.raises(TypeError, match=f"^{re.escape(expected)}$"):
            journal.submit(fn)
    with pytest.raises(TypeError, match=r"^a persistent task needs a function, got 3$"):
        journal.submit(3)
    assert journal.records() == []
    assert journal.manager.tasks() == []


def test_a_function_named_like_a_registered_one_is_refused(open_journal):
    journal = open_journal()

    def impostor(a, b):
        return a

    impostor.__module__, impostor.__qualname__ = "_persist_funcs", "add"
    with pytest.raises(
        TypeError, match=f"^{re.escape(not_persistable_message('_persist_funcs:add'))}$"
    ):
        journal.submit(impostor, 1, 2)
    assert journal.records() == []


def test_arguments_must_be_json_data(open_journal):
    journal = open_journal()
    cases = [
        ((f.add, {1, 2}, 3), {}, f"the arguments must be JSON data ({JSON_KINDS}), got [{{1, 2}}, 3]"),
        ((f.add, (1, 2), 3), {}, f"the arguments must be JSON data ({JSON_KINDS}), got [(1, 2), 3]"),
        ((f.join,), {"p": Path("/x")}, f"the keyword arguments must be JSON data ({JSON_KINDS}), got {{'p': PosixPath('/x')}}"),
        ((f.join,), {"d": {1: "a"}}, f"the keyword arguments must be JSON data ({JSON_KINDS}), got {{'d': {{1: 'a'}}}}"),
        ((f.add, float("nan"), 1), {}, f"the arguments must be JSON data ({JSON_KINDS}), got [nan, 1]"),
    ]  # fmt: skip
    for args, kwargs, message in cases:
        with pytest.raises(TypeError, match=f"^{re.escape(message)}$"):
            journal.submit(*args, **kwargs)
    with pytest.raises(
        TypeError,
        match=r"^a persistent task's group must be None, a str or an int, got \('a', 1\)$",
    ):
        journal.options(group=("a", 1)).submit(f.add, 1, 2)
    with pytest.raises(TypeError, match=r"^priority must be a finite number or None, got 'high'$"):
        journal.options(priority="high").submit(f.add, 1, 2)
    with pytest.raises(TypeError, match=r"^enduring must be True or False, got 1$"):
        journal.options(enduring=1).submit(f.add, 1, 2)
    assert journal.records() == []
    assert journal.manager.tasks() == []


def test_journal_options_are_checked_at_the_call_and_merge_later_wins(open_journal):
    journal = open_journal()
    journal.restore()
    with pytest.raises(TypeError) as caught:
        journal.options(retries=2)
    assert str(caught.value) == (
        "unknown journal task option 'retries'; the options are "
        "enduring, group, name, priority, store_result, upstream_task_ids"
    )
    with pytest.raises(TypeError, match=r"^store_result must be True or False, got None$"):
        journal.options(name="a").options(store_result=None)
    with pytest.raises(TypeError, match=r"^upstream_task_ids must be a list of task ids, got 3$"):
        journal.options(upstream_task_ids=3)
    first = journal.options(priority=1, group="g", name="a")
    second = first.options(priority=5, enduring=True)
    assert (first.task_options.priority, first.task_options.enduring) == (1, False)
    handle = second.submit(f.add, 1, 2)
    record = journal.record(handle.uid)
    assert (record.priority, record.group, record.name, record.enduring) == (5, "g", "a", True)
    with pytest.raises(AttributeError, match="^JournalSubmitter is immutable: cannot set 'x'$"):
        second.x = 1
    journal.manager.start_processing()
    assert handle.result(timeout=10) == 3


def test_upstream_must_be_a_persistent_task_of_this_journal(open_journal, make_manager, tmp_path):
    manager = make_manager()
    journal = open_journal(manager)
    other = open_journal(manager, tmp_path / "other.sqlite3")
    plain = manager.submit(f.add, 1, 2)
    foreign = other.submit(f.add, 1, 2)
    for uid in (plain.uid, foreign.uid, 999, "1"):
        with pytest.raises(
            ValueError,
            match=f"^upstream task {re.escape(repr(uid))} is not a persistent task of this journal$",
        ):
            journal.options(upstream_task_ids=[uid]).submit(f.join)
    assert journal.records() == []


def test_constructor_checks_its_arguments(make_manager, tmp_path):
    with pytest.raises(TypeError, match=r"^manager must be a BackgroundTaskManager, got None$"):
        TaskJournal(None, tmp_path / "j")
    with pytest.raises(ValueError, match=r"^synchronous must be 'normal' or 'full', got 'fast'$"):
        TaskJournal(make_manager(), tmp_path / "j", synchronous="fast")
    assert not (tmp_path / "j").exists()


def test_default_path_is_a_per_user_data_file():
    path = default_journal_path()
    assert path.is_absolute() and path.name == "bgtasks-journal.sqlite3"


# ---------------------------------------------------------------- journal rows


def test_rows_follow_submitted_started_finished(qtbot, open_journal):
    journal = open_journal()
    h = journal.options(priority=4, group="g", name="waiter").submit(f.wait_for, "a")
    rec = journal.record(h.uid)  # committed before submit returned; the manager is paused
    assert (rec.state, rec.uid, rec.function, rec.args, rec.kwargs) == (
        "submitted", h.uid, "_persist_funcs:wait_for", ["a"], {},
    )  # fmt: skip
    assert (rec.priority, rec.group, rec.name, rec.runs, rec.enduring) == (
        4,
        "g",
        "waiter",
        0,
        False,
    )
    journal.manager.start_processing()
    assert started("a").wait(10)
    assert (journal.record(h.uid).state, journal.record(h.uid).runs) == ("started", 1)
    gate("a").set()
    assert h.result(10) == "a"
    rec = journal.record(h.uid)
    assert (rec.state, rec.result, rec.error) == ("finished", None, None)


def test_rows_for_failed_and_upstream_failed_tasks(qtbot, open_journal):
    journal = open_journal()
    journal.manager.start_processing()
    bad = journal.submit(f.fail, "boom")
    down = journal.options(upstream_task_ids=[bad.uid]).submit(f.join)
    with pytest.raises(ValueError, match="^boom$"):
        bad.result(10)
    assert (state_of(journal, bad), journal.record(bad.uid).error) == ("failed", "ValueError: boom")
    qtbot.waitUntil(lambda: state_of(journal, down) == "failed", timeout=5000)
    assert journal.record(down.uid).error == str(down.exception(0))
    assert journal.record(down.uid).runs == 0
    assert ("join", ()) not in f.calls


def test_rows_for_tasks_cancelled_queued_and_running(qtbot, open_journal):
    journal = open_journal()
    running = journal.options(priority=1).submit(f.wait_for, "r")
    queued = journal.submit(f.add, 1, 2)
    assert queued.cancel() is True
    qtbot.waitUntil(lambda: state_of(journal, queued) == "cancelled", timeout=5000)
    journal.manager.start_processing()
    assert started("r").wait(10)
    assert running.cancel() is True
    with pytest.raises(TaskCancelled):
        running.result(10)
    qtbot.waitUntil(lambda: state_of(journal, running) == "cancelled", timeout=5000)
    assert journal.record(running.uid).runs == 1
    assert [c[0] for c in f.calls] == ["wait_for", "wait_for stopped"]


def test_results_are_stored_when_asked_and_dicts_always(open_journal):
    journal = open_journal()
    journal.manager.start_processing()
    kept = journal.options(store_result=True).submit(f.add, 1, 2)
    dropped = journal.submit(f.add, 3, 4)
    as_dict = journal.submit(f.make_dict, "k", [1, "x"])
    unstorable = journal.options(store_result=True).submit(f.not_json)
    for h in (kept, dropped, as_dict, unstorable):
        h.result(10)
    assert journal.record(kept.uid).result == 3
    assert journal.record(dropped.uid).result is None
    assert journal.record(as_dict.uid).result == {"k": [1, "x"]}
    rec = journal.record(unstorable.uid)
    assert (rec.state, rec.result) == ("finished", None)
    assert rec.error.startswith("result not stored: the result must be JSON data")


def test_submit_from_many_threads_at_once(qtbot, open_journal):
    journal = open_journal()
    journal.manager.start_processing()
    handles, lock = [], threading.Lock()

    def submitter(base):
        for i in range(base, base + 50):
            h = journal.options(group=base).submit(f.add, i, 0)
            with lock:
                handles.append((i, h))

    threads = [threading.Thread(target=submitter, args=(b,)) for b in (0, 100, 200, 300)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(h.result(10) for _, h in handles) == sorted(i for i, _ in handles)
    records = journal.records()
    assert len(records) == 200 and {r.state for r in records} == {"finished"}
    assert sorted(r.args[0] for r in records) == sorted(i for i, _ in handles)
    assert all(r.group == r.args[0] // 100 * 100 for r in records)


def test_clear_finished_keeps_what_live_tasks_need(qtbot, open_journal):
    journal = open_journal()
    a = journal.submit(f.make_dict, "x", 1)
    journal.manager.start_processing()
    a.result(10)
    journal.submit(f.add, 1, 2).result(10)
    c = journal.submit(f.wait_for, "c")
    b = journal.options(upstream_task_ids=[a.uid, c.uid]).submit(f.join)
    assert started("c").wait(10)
    qtbot.waitUntil(lambda: state_of(journal, a) == "finished", timeout=5000)
    assert journal.clear_finished() == 1  # add's row; a's result is needed by b
    assert [r.args for r in journal.records()] == [["x", 1], ["c"], []]
    gate("c").set()
    b.result(10)
    qtbot.waitUntil(lambda: state_of(journal, b) == "finished", timeout=5000)
    assert journal.clear_finished() == 3 and journal.records() == []


# ---------------------------------------------------------------- restore


def previous_run(make_manager, path, build):
    """Run ``build(journal)`` in a 'previous process' that then stops without ending its tasks."""
    manager = make_manager()
    journal = TaskJournal(manager, path)
    try:
        return build(journal)
    finally:
        journal.close()  # later writes are dropped, as if the process had died
        manager.shut_down(timeout=5)


def test_restore_resubmits_with_priorities_groups_dependencies_and_merged_results(
    qtbot, make_manager, open_journal, tmp_path
):
    path = tmp_path / "journal.sqlite3"

    def build(journal):
        journal.manager.start_processing()
        a = journal.options(group=7).submit(f.make_dict, "x", 1)
        a.result(10)
        c = journal.options(priority=2, group="gc").submit(f.wait_for, "c")
        assert started("c").wait(10)
        b = journal.options(upstream_task_ids=[a.uid, c.uid], priority=5, group="gb").submit(
            f.join, y=2
        )
        d = journal.options(priority=-1, name="adder", upstream_task_ids=[c.uid]).submit(
            f.add, 1, 2
        )
        qtbot.waitUntil(lambda: state_of(journal, a) == "finished", timeout=5000)
        return a.uid, b.uid, c.uid, d.uid

    a, b, c, d = previous_run(make_manager, path, build)
    gate("c").set()
    f.calls.clear()
    started("c").clear()
    gate("c").clear()

    journal = open_journal(path=path)
    assert journal.needs_restore
    with pytest.raises(RuntimeError, match="call restore\\(\\) or discard\\(\\) before submitting"):
        journal.submit(f.add, 1, 1)
    report = journal.restore()
    assert isinstance(report, RestoreReport)
    assert sorted(report.uids) == sorted([b, c, d]) and a not in report.handles
    assert (report.interrupted, report.skipped) == ([c], [])
    m = journal.manager
    nb, nc, nd = (report.uids[u] for u in (b, c, d))
    assert (m.info(nb).priority, m.info(nb).group, set(m.info(nb).upstream)) == (5, "gb", {nc})
    assert (m.info(nc).priority, m.info(nc).group) == (2, "gc")
    assert (m.info(nd).priority, m.info(nd).name, m.info(nd).upstream) == (-1, "adder", (nc,))
    m.start_processing()
    assert started("c").wait(10)
    gate("c").set()
    assert report.handles[b].result(10) == {"y": 2, "x": 1}  # a's dict, from the journal
    assert report.handles[d].result(10) == 3
    assert ("make_dict", ("x", 1)) not in f.calls  # finished: never rerun
    qtbot.waitUntil(lambda: [r.state for r in journal.records()] == ["finished"] * 4, timeout=5000)
    assert journal.record(nc).runs == 2  # c: started in both runs
    assert journal.restore() == RestoreReport()  # nothing twice


def test_interrupted_tasks_can_be_skipped_with_their_downstream(
    qtbot, make_manager, open_journal, tmp_path
):
    path = tmp_path / "journal.sqlite3"

    def build(journal):
        journal.manager.start_processing()
        c = journal.submit(f.wait_for, "c")
        e = journal.submit(f.wait_for, "e")
        assert started("c").wait(10) and started("e").wait(10)
        b = journal.options(upstream_task_ids=[c.uid]).submit(f.join)
        return b.uid, c.uid, e.uid, journal.record(c.uid).jid

    b, c, e, c_jid = previous_run(make_manager, path, build)
    gate("c").set()
    gate("e").set()
    journal = open_journal(path=path)
    seen = []

    def decide(record):
        seen.append(record.args)
        return record.args == ["e"]

    report = journal.restore(rerun_interrupted=decide)
    assert seen == [["c"], ["e"]]
    assert sorted(report.interrupted) == sorted([c, e])
    assert list(report.uids) == [e]
    assert report.skipped == [c, b]
    assert report.reasons == {c: "interrupted", b: f"upstream task {c_jid} was skipped"}
    states = {r.uid: r.state for r in journal.records()}
    assert states[report.uids[e]] == "submitted"
    assert [r.state for r in journal.records() if r.args != ["e"]] == ["skipped", "skipped"]


def test_discard_gives_up_the_previous_run(make_manager, open_journal, tmp_path):
    path = tmp_path / "journal.sqlite3"
    previous_run(make_manager, path, lambda j: j.submit(f.add, 1, 2).uid)
    journal = open_journal(path=path)
    gone = journal.discard()
    assert [(r.function, r.state) for r in gone] == [("_persist_funcs:add", "submitted")]
    assert [(r.state, r.error) for r in journal.records()] == [("skipped", "discarded")]
    assert journal.restore() == RestoreReport()
    journal.submit(f.add, 3, 4)  # allowed now


def test_restore_skips_tasks_whose_upstream_failed_or_whose_function_is_gone(
    make_manager, open_journal, tmp_path
):
    path = tmp_path / "journal.sqlite3"

    def build(journal):
        a = journal.submit(f.fail, "early")
        b = journal.options(upstream_task_ids=[a.uid]).submit(f.join)
        journal.manager.start_processing()  # b fails in the worker; its callback is queued
        assert isinstance(a.exception(10), ValueError)
        journal.manager.pause_processing()
        c = journal.submit(f.add, 1, 2)  # never runs
        # closed before b's done callback ran on this thread: b's row stays "submitted"
        return a.uid, b.uid, c.uid, journal.record(a.uid).jid

    a, b, c, a_jid = previous_run(make_manager, path, build)
    db = sqlite3.connect(path)
    db.create_function("bgtasks_crc", -1, crc, deterministic=True)
    db.execute("UPDATE tasks SET function='_persist_funcs:gone' WHERE uid=?", (c,))
    db.execute(f"UPDATE tasks SET crc=bgtasks_crc({', '.join(CRC_COLUMNS)})")
    db.commit()
    db.close()
    journal = open_journal(path=path)
    assert [r.state for r in journal.records()] == ["failed", "submitted", "submitted"]
    report = journal.restore()
    assert (report.uids, report.skipped) == ({}, [b, c])
    assert report.reasons == {
        b: f"upstream task {a_jid} failed",
        c: "function '_persist_funcs:gone' is not registered as persistable: not imported, not run",
    }
    assert [r.state for r in journal.records()] == ["failed", "skipped", "skipped"]


def test_submit_after_shut_down_writes_nothing(make_manager, open_journal):
    manager = make_manager()
    journal = open_journal(manager)
    manager.shut_down(timeout=1)
    with pytest.raises(RuntimeError):
        journal.submit(f.add, 1, 2)
    assert journal.records() == []


# ---------------------------------------------------------------- snapshots


def test_snapshot_round_trip(qtbot, make_manager, open_journal, tmp_path):
    source = open_journal()
    source.manager.start_processing()
    a = source.submit(f.make_dict, "x", 1)
    a.result(10)
    qtbot.waitUntil(lambda: state_of(source, a) == "finished", timeout=5000)
    c = source.options(priority=3, group="gc", enduring=True).submit(f.wait_for, "c")
    assert started("c").wait(10)
    b = source.options(upstream_task_ids=[a.uid, c.uid], group=4).submit(f.join, y=2)
    data = source.snapshot()
    assert json.loads(json.dumps(data)) == data  # plain data
    assert (data["format"], data["version"]) == ("bgtasks-journal", 1)
    assert [t["uid"] for t in data["tasks"]] == [c.uid, b.uid]
    assert data["tasks"][1]["kwargs"] == {"y": 2, "x": 1}
    assert data["tasks"][0]["running"] and data["tasks"][0]["enduring"]
    gate("c").set()
    b.result(10)
    started("c").clear()
    gate("c").clear()

    target = open_journal(path=tmp_path / "target.sqlite3")
    report = target.restore_snapshot(data)
    assert report.interrupted == [c.uid] and sorted(report.uids) == sorted([b.uid, c.uid])
    m = target.manager
    new_b, new_c = report.uids[b.uid], report.uids[c.uid]
    assert (m.info(new_c).priority, m.info(new_c).group, m.info(new_b).upstream) == (
        3,
        "gc",
        (new_c,),
    )
    assert [(r.uid, r.enduring, r.state) for r in target.records()] == [
        (new_c, True, "submitted"), (new_b, False, "submitted"),
    ]  # fmt: skip
    m.start_processing()
    gate("c").set()
    assert report.handles[b.uid].result(10) == {"y": 2, "x": 1}


def test_restore_snapshot_refuses_bad_data_and_newer_versions(open_journal):
    journal = open_journal()
    good = {"format": "bgtasks-journal", "version": 1, "tasks": []}
    assert journal.restore_snapshot(good) == RestoreReport()
    with pytest.raises(
        ValueError, match=r"^snapshot version 2 is newer than this bgtasks reads \(1\)$"
    ):
        journal.restore_snapshot({**good, "version": 2})
    with pytest.raises(ValueError, match=r"^bad snapshot version '1'$"):
        journal.restore_snapshot({**good, "version": "1"})
    with pytest.raises(ValueError, match=r"^not a bgtasks snapshot: \[1, 2\]$"):
        journal.restore_snapshot([1, 2])
    with pytest.raises(
        ValueError, match=r"^bad snapshot task #1: \{'uid': 1\} \(KeyError\('upstream'\)\)$"
    ):
        journal.restore_snapshot({**good, "tasks": [{"uid": 1}]})
    assert journal.records() == [] and journal.manager.tasks() == []


# ---------------------------------------------------------------- reset


def test_reset_cancels_session_tasks_and_keeps_enduring_ones(qtbot, open_journal):
    journal = open_journal()
    session = journal.submit(f.add, 1, 2)
    downstream = journal.options(upstream_task_ids=[session.uid]).submit(f.join)
    enduring = journal.options(enduring=True).submit(f.add, 3, 4)
    assert journal.reset() == [session.uid, downstream.uid]
    assert [(r.state, r.error) for r in journal.records()] == [
        ("cancelled", "reset"), ("cancelled", "reset"), ("submitted", None),
    ]  # fmt: skip
    journal.manager.start_processing()
    assert enduring.result(10) == 7
    qtbot.waitUntil(lambda: session.done() and downstream.done(), timeout=5000)
    assert session.cancelled() and downstream.cancelled()
    assert [c[0] for c in f.calls] == ["add"] and f.calls[0][1] == (3, 4)
    assert journal.reset() == []


def test_shut_down_leaves_running_tasks_to_restore(qtbot, make_manager, open_journal, tmp_path):
    path = tmp_path / "journal.sqlite3"
    manager = make_manager(start_processing=True, max_threads=1)
    journal = TaskJournal(manager, path)
    h = journal.submit(f.wait_for, "s")
    queued = journal.options(priority=-1).submit(f.add, 1, 2)
    assert started("s").wait(10)
    manager.shut_down(timeout=5)  # asks "s" to stop and waits for it: it raises TaskCancelled
    assert f.calls[-1] == ("wait_for stopped", ("s",))
    assert [r.state for r in journal.records()] == ["started", "submitted"]
    journal.close()
    report = open_journal(path=path).restore()
    assert report.interrupted == [h.uid] and sorted(report.uids) == [h.uid, queued.uid]


# ---------------------------------------------------------------- foreign files


def test_a_corrupted_file_is_refused_and_left_untouched(make_manager, tmp_path):
    path = tmp_path / "journal.sqlite3"
    data = random.Random(6).randbytes(8192)
    path.write_bytes(data)
    with pytest.raises(JournalError, match=f"^{re.escape(str(path))}: not a bgtasks journal"):
        TaskJournal(make_manager(), path)
    assert path.read_bytes() == data
    assert sorted(p.name for p in tmp_path.iterdir()) == ["journal.sqlite3"]


def test_a_foreign_sqlite_file_is_refused_and_left_untouched(make_manager, tmp_path):
    path = tmp_path / "other.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE tasks (id INTEGER, what TEXT)")
    db.execute("INSERT INTO tasks VALUES (1, 'mine')")
    db.commit()
    db.close()
    data = path.read_bytes()
    expected = f"{path}: not a bgtasks journal (application_id 0x0); it was left untouched"
    with pytest.raises(JournalError, match=f"^{re.escape(expected)}$"):
        TaskJournal(make_manager(), path)
    assert path.read_bytes() == data
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.db"]


def test_a_newer_journal_and_one_in_use_are_refused(make_manager, open_journal, tmp_path):
    path = tmp_path / "journal.sqlite3"
    first = open_journal(path=path)
    with pytest.raises(
        JournalError, match=f"^{re.escape(str(path))}: the journal is in use by another process$"
    ):
        TaskJournal(make_manager(), path)
    first.close()
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version=3")
    db.close()
    data = path.read_bytes()
    with pytest.raises(
        JournalError, match=r"journal format 3 is newer than this bgtasks reads \(2\)$"
    ):
        TaskJournal(make_manager(), path)
    assert path.read_bytes() == data


# ---------------------------------------------------------------- the crash test


def run_child(db, results, kill, parent_kill_after=None):
    """Run the child once; return its REPORT and whether it was killed."""
    proc = subprocess.Popen(
        [sys.executable, str(CHILD), str(db), str(results), "30", kill],
        stdout=subprocess.PIPE, text=True, cwd=CHILD.parent,
    )  # fmt: skip
    report, seen = None, 0
    for line in proc.stdout:
        word, _, rest = line.rstrip("\n").partition(" ")
        if word == "REPORT":
            report = json.loads(rest)
        elif word == "STARTED":
            seen += 1
            if seen == parent_kill_after:
                proc.kill()  # SIGKILL, at a point the child does not choose
    proc.stdout.close()
    code = proc.wait(timeout=60)
    return report, code


def test_sigkill_at_any_point_loses_nothing_and_reruns_only_interrupted_tasks(tmp_path):
    db, results = tmp_path / "journal.sqlite3", tmp_path / "results.txt"
    rng = random.Random(2026)
    plan = [
        ("submit:7", None), ("start:3", None), ("append:4", None), ("finish:5", None),
        ("none", rng.randint(1, 4)), ("append:2", None), ("none", rng.randint(1, 4)),
    ]  # fmt: skip
    rerun: Counter[str] = Counter()
    interrupted: set[str] = set()
    restored_after_submit_kill = None
    for run, (kill, parent_kill) in enumerate(plan):
        report, code = run_child(db, results, kill, parent_kill)
        assert report is not None, f"run {run} ({kill}) died before restoring"
        if run == 1:
            restored_after_submit_kill = report
        interrupted.update(report["interrupted"])
        rerun.update(report["rerun"])
        if code == 0:
            break
    else:
        report, code = run_child(db, results, "none")
        interrupted.update(report["interrupted"])
        rerun.update(report["rerun"])
    assert code == 0
    keys = [f"t{i:02d}" for i in range(30)]
    # killed right after its 7th submit returned: exactly those 7 come back
    assert restored_after_submit_kill == {
        "interrupted": [], "rerun": [], "skipped": [], "restored": keys[:7],
    }  # fmt: skip

    lines = results.read_text().splitlines()
    counts = Counter(line.split()[0] for line in lines)
    assert sorted(counts) == keys  # nothing lost
    for key in keys:  # once, or once more per interrupted-and-rerun report
        assert 1 <= counts[key] <= 1 + rerun[key], (key, counts[key], rerun[key])
    assert any(counts[k] == 2 for k in keys)  # "append:K" kills do make reruns happen
    assert {k for k in keys if counts[k] > 1} <= interrupted
    for line in lines:  # a chained task got its upstream's dict result, restored or not
        key, after = line.split()
        i = int(key[1:])
        assert after == (f"t{i - 1:02d}" if i % 3 else "None"), line

    db_conn = sqlite3.connect(db)
    states = db_conn.execute("SELECT state, COUNT(*) FROM tasks GROUP BY state").fetchall()
    db_conn.close()
    assert states == [("finished", 30)]


# -------------------------------------------------- manager.options(persist=True).submit


def test_submit_with_persist_goes_through_the_managers_journal(
    open_journal, make_manager, tmp_path
):
    manager = make_manager()
    with pytest.raises(
        RuntimeError,
        match=r"^persist=True needs a journal: call set_journal\(TaskJournal\(\.\.\.\)\)$",
    ):
        manager.options(persist=True).submit(f.add, 1, 2)
    with pytest.raises(
        TypeError, match=r"^journal must be a bgtasks.persistence.TaskJournal, got 3$"
    ):
        manager.set_journal(3)
    other = open_journal(path=tmp_path / "other.sqlite3")  # another manager's journal
    with pytest.raises(ValueError, match=r"journals another manager's tasks$"):
        manager.set_journal(other)
    journal = open_journal(manager)
    journal.restore()
    manager.set_journal(journal)
    with pytest.raises(
        TypeError, match=r"^option 'retries' cannot be journaled: persist=True takes "
    ):
        manager.options(persist=True, retries=2).submit(f.add, 1, 2)
    assert manager.tasks() == []
    handle = manager.options(persist=True, priority=3, group="g", name="sum").submit(f.add, 1, 2)
    record = journal.record(handle.uid)
    assert (record.state, record.priority, record.group, record.name) == (
        "submitted",
        3,
        "g",
        "sum",
    )
    manager.start_processing()
    assert handle.result(timeout=10) == 3
    assert manager.is_shut_down is False


def test_keywords_named_like_task_options_reach_the_function(open_journal):
    journal = open_journal()
    journal.restore()
    handle = journal.submit(f.join, retries=2, key="k", timeout=1, executor="x")
    journal.manager.start_processing()
    expected = {"executor": "x", "key": "k", "retries": 2, "timeout": 1}
    assert handle.result(timeout=10) == expected
    assert journal.record(handle.uid).kwargs == expected


def test_a_closed_journal_refuses_reads_with_runtime_error(open_journal):
    journal = open_journal()
    journal.restore()
    handle = journal.submit(f.add, 1, 2)
    journal.close()
    with pytest.raises(RuntimeError, match=r"^the journal .* is closed$"):
        journal.record(handle.uid)
