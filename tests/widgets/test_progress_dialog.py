"""TaskProgressDialog (bgtasks.widgets) and its batch bookkeeping, headless."""

from __future__ import annotations

import gc
import threading

import pytest
from _held_tasks import quick, wait_states
from PySide6.QtCore import Qt, QThread, QTimer
from PySide6.QtWidgets import QDialog, QWidget

from bgtasks import TaskState, current_task
from bgtasks.widgets import BatchFailure, TaskProgressDialog
from bgtasks.widgets._progress_batch import Batch, RemainingTime, remaining_text


def report_and_hold(gate: threading.Event, fraction: float, message: str) -> str:
    """Report ``fraction`` with ``message``, then run until ``gate`` is set (or stopped)."""
    task = current_task()
    task.report_progress(fraction, message=message)
    while not gate.wait(0.005):
        task.raise_if_cancelled()
    return "done"


def fail(text: str) -> None:
    raise ValueError(text)


_PARENTS: list[QWidget] = []  # the windows the dialogs are modal over, kept alive


@pytest.fixture(autouse=True)
def _drop_parents():
    yield
    while _PARENTS:
        _PARENTS.pop().deleteLater()


def make_dialog(qtbot, manager, **kwargs) -> TaskProgressDialog:
    parent = QWidget()
    qtbot.addWidget(parent)
    _PARENTS.append(parent)
    return TaskProgressDialog(manager, parent=parent, **kwargs)


# ---------------------------------------------------------------- progress and message


def test_progress_is_the_mean_of_the_fractions_and_shows_the_latest_message(
    qtbot, make_manager, gate
):
    m = make_manager(max_threads=3)
    group = m.next_group_id()
    done = m.options(group=group, name="first").submit(quick).uid
    half = m.options(group=group, name="half").submit(report_and_hold, gate, 0.5, "at half")
    m.start_processing()
    wait_states(qtbot, m, [done], TaskState.COMPLETED)
    qtbot.waitUntil(lambda: m.info(half.uid).progress == 0.5, timeout=5000)
    dialog = make_dialog(qtbot, m, group=group, text="Exporting 3 files…")
    # A task added to the group after binding joins the batch.
    quarter = m.options(group=group, name="quarter").submit(
        report_and_hold, gate, 0.25, "a quarter in"
    )
    dialog.open()
    qtbot.waitUntil(lambda: len(dialog.uids()) == 3, timeout=5000)
    assert dialog.uids() == [done, half.uid, quarter.uid]
    assert dialog.windowModality() is Qt.WindowModality.WindowModal
    assert dialog.heading.text() == "Exporting 3 files…"

    expected = (1 + 0.5 + 0.25) / 3
    qtbot.waitUntil(lambda: dialog.fraction() == pytest.approx(expected), timeout=5000)
    qtbot.waitUntil(lambda: dialog.bar.value() == round(expected * 1000), timeout=5000)
    # The message is the one reported last (quarter started after half reported).
    qtbot.waitUntil(lambda: dialog.message() == "quarter: a quarter in", timeout=5000)
    assert dialog.current.accessibleDescription() == "quarter: a quarter in"
    assert dialog.status.text().startswith("1 of 3 tasks ended")
    assert dialog.counts() == {"completed": 1, "failed": 0, "cancelled": 0, "live": 2}
    assert dialog.bar.accessibleName() == "Overall progress"
    assert dialog.status.accessibleName() and dialog.current.accessibleName()
    assert dialog.bar.accessibleDescription().startswith(f"{round(expected * 100)} % done")
    threads: list[threading.Thread] = []
    dialog.finished.connect(lambda _: threads.append(threading.current_thread()))
    gate.set()
    with qtbot.waitSignal(dialog.finished, timeout=5000) as finished:
        pass
    assert finished.args == [QDialog.DialogCode.Accepted.value]
    assert threads == [threading.main_thread()]  # the GUI thread
    assert not dialog.isVisible()
    assert dialog.fraction() == 1.0 and dialog.is_over()


def test_message_follows_the_task_that_reported_last(qtbot, make_manager, gate):
    m = make_manager(max_threads=2)
    group = m.next_group_id()
    first = m.options(group=group, name="a").submit(report_and_hold, gate, 0.1, "one").uid
    m.start_processing()
    wait_states(qtbot, m, [first], TaskState.RUNNING)
    dialog = make_dialog(qtbot, m, group=group)
    qtbot.waitUntil(lambda: dialog.message() == "a: one", timeout=5000)
    second = m.options(group=group, name="b").submit(report_and_hold, gate, 0.1, "two").uid
    qtbot.waitUntil(lambda: dialog.message() == "b: two", timeout=5000)
    m.stop_task(second)  # its message goes with it
    qtbot.waitUntil(lambda: dialog.message() == "a: one", timeout=5000)
    gate.set()
    wait_states(qtbot, m, [first], TaskState.COMPLETED)


# ---------------------------------------------------------------- cancel


def test_cancel_stops_the_groups_tasks_and_says_it_is_cancelling(qtbot, make_manager, gate):
    m = make_manager(max_threads=2)
    other = m.options(name="other").submit(report_and_hold, gate, 0.0, "other")
    group = m.next_group_id()
    uids = [
        m.options(group=group, name=f"t{i}").submit(report_and_hold, gate, 0.0, "x").uid
        for i in range(4)
    ]
    done = m.options(group=group, name="quick").submit(quick).uid
    m.start_processing()
    qtbot.waitUntil(lambda: m.task_state(uids[0]) is TaskState.RUNNING, timeout=5000)
    dialog = make_dialog(qtbot, m, group=group)
    dialog.open()
    qtbot.waitExposed(dialog)
    assert dialog.button.text() == "&Cancel"
    assert dialog.focusWidget() is dialog.button

    # Escape is Cancel: the dialog stays open and says it is cancelling.
    qtbot.keyClick(dialog, Qt.Key.Key_Escape)
    assert dialog.is_cancelling() and dialog.isVisible()
    assert dialog.button.text() == "Cancelling…" and not dialog.button.isEnabled()
    with qtbot.waitSignal(dialog.finished, timeout=5000) as finished:
        pass
    assert finished.args == [QDialog.DialogCode.Rejected.value]
    states = {uid: m.task_state(uid) for uid in uids}
    assert set(states.values()) == {TaskState.CANCELLED}, states
    # The group's quick task may have completed before the cancel; nothing else was touched.
    assert m.task_state(done) in (TaskState.COMPLETED, TaskState.CANCELLED)
    assert m.task_state(other.uid) is TaskState.RUNNING
    counts = dialog.counts()
    assert counts["cancelled"] >= 4 and counts["live"] == counts["failed"] == 0
    gate.set()
    wait_states(qtbot, m, [other.uid], TaskState.COMPLETED)


def test_cancel_of_task_ids_stops_only_those(qtbot, make_manager, gate):
    m = make_manager(max_threads=1)
    running = m.options(name="running").submit(report_and_hold, gate, 0.0, "r").uid
    queued = m.options(name="queued").submit(report_and_hold, gate, 0.0, "q").uid
    untouched = m.options(name="untouched").submit(report_and_hold, gate, 0.0, "u").uid
    m.start_processing()
    wait_states(qtbot, m, [running], TaskState.RUNNING)
    dialog = make_dialog(qtbot, m, task_ids=[running, queued])
    assert dialog.group() is None and dialog.uids() == [running, queued]
    dialog.open()
    dialog.button.click()
    with qtbot.waitSignal(dialog.finished, timeout=5000):
        pass
    assert m.task_state(running) is TaskState.CANCELLED
    assert m.task_state(queued) is TaskState.CANCELLED
    assert m.info(queued).started is None  # a queued task never ran
    assert m.task_state(untouched) in (TaskState.QUEUED, TaskState.RUNNING)
    gate.set()
    wait_states(qtbot, m, [untouched], TaskState.COMPLETED)


# ---------------------------------------------------------------- the end


def test_failures_keep_it_open_listing_each_with_its_traceback(qtbot, make_manager):
    m = make_manager(max_threads=2)
    group = m.next_group_id()
    ok = m.options(group=group, name="fine").submit(quick).uid
    bad = m.options(group=group, name="broken.png").submit(fail, "broken.png: bad header").uid
    downstream = m.options(group=group, name="after", upstream_task_ids=[bad]).submit(quick).uid
    dialog = make_dialog(qtbot, m, group=group)
    dialog.open()
    m.start_processing()
    qtbot.waitUntil(lambda: dialog.button.text() == "&Close", timeout=5000)
    assert dialog.is_over() and dialog.isVisible()  # stays open
    assert dialog.result() == 0
    assert dialog.heading.text() == "2 of 3 tasks failed (1 completed)."
    assert dialog.accessibleDescription() == dialog.heading.text()
    assert dialog.button.text() == "&Close" and dialog.button.isEnabled()
    failures = dialog.failures()
    assert [f.uid for f in failures] == [bad, downstream]
    assert isinstance(failures[0], BatchFailure)
    assert failures[0].error == "broken.png: bad header"
    assert failures[1].error == "broken.png: bad header"  # the cascade's
    assert "raise ValueError(text)" in failures[0].traceback

    view = dialog.failures_view
    assert view.isVisible() and view.topLevelItemCount() == 2
    item = view.topLevelItem(0)
    assert item.text(0) == "broken.png" and item.text(1) == failures[0].error
    assert item.childCount() == 1 and not item.isExpanded()
    assert item.child(0).text(0) == failures[0].traceback.rstrip()
    # The keyboard reaches it: focus is on the list, Right expands the traceback.
    assert dialog.focusWidget() is view and view.currentItem() is item
    qtbot.keyClick(view, Qt.Key.Key_Right)
    assert item.isExpanded()
    # The pane below shows the current failure's whole traceback; Tab reaches it, then Close.
    pane = dialog.failure_list.traceback_pane
    assert pane.isVisible() and pane.toPlainText() == failures[0].traceback.rstrip()
    view.setCurrentItem(view.topLevelItem(1))
    assert pane.toPlainText() == failures[1].traceback.rstrip()
    qtbot.keyClick(view, Qt.Key.Key_Tab)
    assert dialog.focusWidget() is pane
    qtbot.keyClick(pane, Qt.Key.Key_Tab)
    assert dialog.focusWidget() is dialog.button
    assert m.task_state(ok) is TaskState.COMPLETED

    with qtbot.waitSignal(dialog.finished, timeout=1000) as finished:
        qtbot.keyClick(dialog, Qt.Key.Key_Escape)  # over: Escape closes
    assert finished.args == [QDialog.DialogCode.Rejected.value]


def test_exec_returns_accepted_when_every_task_completed(qtbot, make_manager):
    m = make_manager()
    group = m.next_group_id()
    uids = [m.options(group=group).submit(quick).uid for _ in range(5)]
    dialog = make_dialog(qtbot, m, group=group, modality=Qt.WindowModality.ApplicationModal)
    assert dialog.accessibleDescription() == "Running 5 tasks…"
    QTimer.singleShot(0, m.start_processing)  # once the dialog's loop runs
    never_hang = QTimer(dialog, singleShot=True, interval=10_000)  # dies with the dialog
    never_hang.timeout.connect(lambda: dialog.done(-1))  # -1 fails the test
    never_hang.start()
    assert dialog.exec() == QDialog.DialogCode.Accepted.value
    assert {m.task_state(uid) for uid in uids} == {TaskState.COMPLETED}


def test_a_group_that_already_finished_closes_at_once(qtbot, make_manager):
    m = make_manager()
    group = m.next_group_id()
    uids = [m.options(group=group).submit(quick).uid for _ in range(3)]
    m.start_processing()
    wait_states(qtbot, m, uids, TaskState.COMPLETED)
    dialog = make_dialog(qtbot, m, group=group)
    assert dialog.is_over() and dialog.fraction() == 1.0
    assert dialog.status.text() == "3 of 3 tasks ended"
    with qtbot.waitSignal(dialog.finished, timeout=5000) as finished:
        dialog.open()
    assert finished.args == [QDialog.DialogCode.Accepted.value]
    assert not dialog.isVisible()


def test_a_finished_batch_with_a_failure_shows_it(qtbot, make_manager):
    m = make_manager()
    uid = m.options(name="bad").submit(fail, "nope").uid
    m.start_processing()
    wait_states(qtbot, m, [uid], TaskState.FAILED)
    dialog = make_dialog(qtbot, m, task_ids=[uid])
    dialog.open()
    qtbot.waitUntil(lambda: dialog.heading.text() == "1 of 1 tasks failed.", timeout=5000)
    assert dialog.isVisible() and [f.uid for f in dialog.failures()] == [uid]
    assert "nope" in dialog.failures_view.topLevelItem(0).child(0).text(0)


def test_a_retried_task_reopens_the_batch(qtbot, make_manager, gate):
    m = make_manager()
    runs: list[int] = []

    def flaky() -> None:
        runs.append(1)
        if len(runs) > 1:  # the retry waits, then fails again
            gate.wait(5)
        raise OSError(f"attempt {len(runs)} failed")

    uid = m.options(name="flaky").submit(flaky).uid
    dialog = make_dialog(qtbot, m, task_ids=[uid])
    dialog.open()
    m.start_processing()
    qtbot.waitUntil(lambda: dialog.heading.text() == "1 of 1 tasks failed.", timeout=5000)
    m.retry(uid)
    # It runs again: live, its failure no longer listed, Cancel offered again.
    qtbot.waitUntil(lambda: dialog.counts()["live"] == 1, timeout=5000)
    assert dialog.failures() == [] and not dialog.is_over()
    qtbot.waitUntil(lambda: dialog.failures_view.topLevelItemCount() == 0, timeout=5000)
    qtbot.waitUntil(lambda: dialog.heading.text() == "Running 1 task…", timeout=5000)
    assert dialog.button.text() == "&Cancel" and dialog.button.isEnabled()
    gate.set()
    qtbot.waitUntil(lambda: len(dialog.failures()) == 1, timeout=5000)
    assert dialog.failures()[0].error.endswith("attempt 2 failed")
    qtbot.waitUntil(lambda: dialog.failures_view.topLevelItemCount() == 1, timeout=5000)
    assert dialog.failures_view.topLevelItem(0).text(1).endswith("attempt 2 failed")
    assert dialog.isVisible() and m.info(uid).attempts == 2


# ---------------------------------------------------------------- bad input


def test_bad_input_is_refused_with_a_clear_error(qtbot, make_manager):
    m = make_manager()
    uid = m.submit(quick).uid
    with pytest.raises(ValueError, match=r"^group 'nope' has no tasks in this manager: "):
        TaskProgressDialog(m, group="nope")
    with pytest.raises(ValueError, match=r"^group None has no tasks"):
        TaskProgressDialog(m, group=None)
    with pytest.raises(ValueError, match=r"^task 999 is unknown: task_ids must name tasks"):
        TaskProgressDialog(m, task_ids=[uid, 999])
    with pytest.raises(ValueError, match=r"^task_ids is empty"):
        TaskProgressDialog(m, task_ids=[])
    with pytest.raises(TypeError, match=r"^task_ids must be task uids \(ints\), not '1'$"):
        TaskProgressDialog(m, task_ids=["1"])
    with pytest.raises(TypeError, match=r"^task_ids must be an iterable"):
        TaskProgressDialog(m, task_ids="12")
    with pytest.raises(TypeError, match=r"not both or neither$"):
        TaskProgressDialog(m)
    with pytest.raises(TypeError, match=r"not both or neither$"):
        TaskProgressDialog(m, group=1, task_ids=[uid])
    with pytest.raises(TypeError, match=r"^manager must be a BackgroundTaskManager, not 3$"):
        TaskProgressDialog(3, group=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^group must be hashable, got \[1\]$"):
        TaskProgressDialog(m, group=[1])


def test_it_must_be_made_on_the_managers_thread(qtbot, make_manager):
    m = make_manager()
    uid = m.submit(quick).uid
    errors: list[BaseException] = []

    class Maker(QThread):
        def run(self) -> None:
            try:
                TaskProgressDialog(m, task_ids=[uid])
            except RuntimeError as exc:
                errors.append(exc)

    maker = Maker()
    maker.start()
    assert maker.wait(5000)
    assert [str(e) for e in errors] == ["a TaskProgressDialog must be made on its manager's thread"]


def test_a_shut_down_manager_is_noticed(qtbot, make_manager, gate):
    m = make_manager()
    uid = m.submit(report_and_hold, gate, 0.3, "r").uid
    m.start_processing()
    wait_states(qtbot, m, [uid], TaskState.RUNNING)
    dialog = make_dialog(qtbot, m, task_ids=[uid])
    dialog.open()
    m.shut_down(timeout=5)  # asks the task to stop; nothing is emitted afterwards
    qtbot.waitUntil(lambda: dialog.button.text() == "&Close", timeout=5000)
    assert dialog.heading.text().startswith("The task manager has shut down")


# ---------------------------------------------------------------- the pieces


def test_batch_counts_an_ended_task_whole_and_ignores_strangers():
    batch = Batch()
    assert batch.add(1, "a") and batch.add(2, "b") and not batch.add(1, "a")
    batch.report(1, 0.5, "half")
    batch.report(2, 2.0, "")  # clamped
    batch.report(3, 0.9, "not ours")
    assert batch.fraction() == pytest.approx(0.75)
    assert batch.current() == (1, "half")
    assert batch.end(2, "failed", "boom", "tb") and not batch.end(2, "failed")
    assert batch.fraction() == pytest.approx(0.75)
    assert batch.end(1, "cancelled") and batch.is_over()
    assert batch.current() is None
    assert batch.counts() == {"completed": 0, "failed": 1, "cancelled": 1, "live": 0}
    assert batch.failures() == [BatchFailure(2, "b", "boom", "tb")]
    with pytest.raises(ValueError, match=r"^outcome 'lost' is not one of"):
        batch.end(1, "lost")
    assert batch.reopen(2) and not batch.reopen(2)  # a retry: live again
    assert batch.counts() == {"completed": 0, "failed": 0, "cancelled": 1, "live": 1}
    assert batch.failures() == [] and batch.fraction() == pytest.approx(0.5)


def test_remaining_time_is_none_until_enough_data_then_tracks_the_rate():
    est = RemainingTime(time_constant=5, min_elapsed=2, min_fraction=0.02)
    assert est.seconds_left() is None
    for second in range(0, 3):  # 1 % a second
        est.update(float(second), second / 100)
    assert est.seconds_left() is not None
    est.reset()
    est.update(0.0, 0.0)
    est.update(1.0, 0.01)
    assert est.seconds_left() is None  # 1 s: too early
    for second in range(2, 41):
        est.update(float(second), second / 100)
    assert est.seconds_left() == pytest.approx(60, rel=0.01)  # 60 % left at 1 %/s
    # A stall pulls the rate down gradually, not at once.
    est.update(41.0, 0.40)
    assert 60 < est.seconds_left() < 80
    with pytest.raises(ValueError, match=r"^time_constant must be a finite number >= 0, not -1$"):
        RemainingTime(time_constant=-1)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, ""),
        (3, "a few seconds left"),
        (41, "about 40 s left"),
        (70, "about 1 min left"),
        (125, "about 2 min left"),
        (5400, "about 1.5 h left"),
    ],
)
def test_remaining_text(seconds, text):
    assert remaining_text(seconds) == text


def test_the_dialog_shows_the_estimate(qtbot, make_manager, gate):
    m = make_manager()
    uid = m.submit(report_and_hold, gate, 0.5, "r").uid
    m.start_processing()
    dialog = make_dialog(qtbot, m, task_ids=[uid])
    qtbot.waitUntil(lambda: dialog.fraction() == 0.5, timeout=5000)
    dialog.clock = lambda: 30.0  # the dialog's own updates add nothing at t = 30
    for second in range(0, 31):  # as if half the work took 30 s
        dialog.estimate.update(float(second), 0.5 * second / 30)
    assert dialog.remaining() == "about 30 s left"
    dialog.open()  # its timer redraws the status line
    qtbot.waitUntil(
        lambda: dialog.status.text() == "0 of 1 tasks ended · about 30 s left", timeout=5000
    )
    gate.set()
    wait_states(qtbot, m, [uid], TaskState.COMPLETED)


def test_collected_on_a_worker_thread_it_is_destroyed_on_the_ui_thread(qtbot, make_manager):
    """DiesAtHome: a dialog in a reference cycle freed by a worker's collection."""
    m = make_manager()
    uid = m.submit(quick).uid
    dialog = TaskProgressDialog(m, task_ids=[uid])
    dialog.cycle = dialog  # only the cyclic collector can free it
    seen: list[int] = []
    dialog.destroyed.connect(lambda *_: seen.append(threading.get_ident()))
    del dialog
    collector = threading.Thread(target=gc.collect)
    collector.start()
    collector.join()
    qtbot.waitUntil(lambda: bool(seen), timeout=5000)
    assert seen == [threading.get_ident()]
