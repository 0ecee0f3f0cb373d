"""CloseGuard (bgtasks.widgets), headless."""

from __future__ import annotations

import pytest
from _held_tasks import hold, quick, wait_states
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import (
    QApplication,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressDialog,
    QPushButton,
)

from bgtasks import TaskState
from bgtasks.widgets import CloseChoice, CloseGuard


class Asker:
    """An injectable question: records what it was asked, answers ``choice``."""

    def __init__(self, choice: CloseChoice) -> None:
        self.choice = choice
        self.calls: list[list[int]] = []

    def __call__(self, window, tasks):
        assert isinstance(window, QMainWindow)
        self.calls.append([info.uid for info in tasks])
        return self.choice


@pytest.fixture
def window(qtbot):
    win = QMainWindow()
    win.setCentralWidget(QLabel("work"))
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    return win


def test_guard_closes_at_once_without_live_tasks(qtbot, make_manager, window):
    m = make_manager(start_processing=True)
    guard = CloseGuard(window, m)
    guard.ask = asker = Asker(CloseChoice.STAY)
    uid = m.submit(quick).uid
    wait_states(qtbot, m, [uid], TaskState.COMPLETED)
    assert window.close()
    assert not window.isVisible()
    assert asker.calls == []


def test_guard_ignores_unimportant_tasks(qtbot, make_manager, window, gate):
    m = make_manager(start_processing=True)
    guard = CloseGuard(window, m)
    guard.ask = asker = Asker(CloseChoice.STAY)
    guard.ignore_group("thumbnails")
    guard.ignore_name("autosave-index")
    a = m.options(group="thumbnails").submit(hold, gate).uid
    b = m.options(name="autosave-index").submit(hold, gate).uid
    c = m.options(name="prefetch", group="net").submit(hold, gate).uid
    guard.is_important = lambda info: info.group != "net"
    wait_states(qtbot, m, [a, b, c], TaskState.RUNNING)
    assert guard.important_tasks() == []
    assert window.close()
    assert not window.isVisible()
    assert asker.calls == []
    # unimportant tasks are left alone
    assert {m.task_state(u) for u in (a, b, c)} == {TaskState.RUNNING}


def test_guard_stay_keeps_the_window_and_the_tasks(qtbot, make_manager, window, gate):
    m = make_manager(start_processing=True, max_threads=1)
    guard = CloseGuard(window, m)
    guard.ask = asker = Asker(CloseChoice.STAY)
    guard.ignore_group("bg")
    running = m.options(name="save").submit(hold, gate).uid
    queued = m.options(name="upload").submit(hold, gate).uid
    m.options(group="bg").submit(hold, gate)  # unimportant: not in the question
    wait_states(qtbot, m, [running], TaskState.RUNNING)
    with qtbot.waitSignal(guard.answered, timeout=1000) as answer:
        assert not window.close()
    assert answer.args == [CloseChoice.STAY]
    assert asker.calls == [[running, queued]]
    assert window.isVisible()
    assert m.task_state(running) is TaskState.RUNNING
    assert m.task_state(queued) is TaskState.QUEUED
    assert not guard.is_waiting()


def test_guard_cancel_and_quit_stops_the_tasks_and_closes(qtbot, make_manager, window, gate):
    m = make_manager(start_processing=True, max_threads=1)
    guard = CloseGuard(window, m)
    guard.ask = asker = Asker(CloseChoice.CANCEL_AND_QUIT)
    running = m.submit(hold, gate).uid
    queued = m.submit(hold, gate).uid
    wait_states(qtbot, m, [running], TaskState.RUNNING)
    assert window.close()
    assert not window.isVisible()
    assert asker.calls == [[running, queued]]
    wait_states(qtbot, m, [running, queued], TaskState.CANCELLED)


def test_guard_wait_shows_progress_then_closes(qtbot, make_manager, window, gate):
    m = make_manager(start_processing=True, max_threads=1)
    guard = CloseGuard(window, m)
    guard.ask = asker = Asker(CloseChoice.WAIT)
    uids = [m.submit(hold, gate).uid for _ in range(2)]
    wait_states(qtbot, m, uids[:1], TaskState.RUNNING)
    assert not window.close()
    assert window.isVisible()
    assert guard.is_waiting()
    dialog = guard.progress_dialog()
    assert isinstance(dialog, QProgressDialog) and dialog.isVisible()
    assert (dialog.value(), dialog.maximum()) == (0, 2)
    assert dialog.labelText() == "Waiting for 2 background tasks to finish…"
    assert not window.close()  # a second close while waiting: no second question
    assert len(asker.calls) == 1
    with qtbot.waitSignal(guard.wait_finished, timeout=10000) as finished:
        gate.set()
    assert finished.args == [True]
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=5000)
    assert [m.task_state(u) for u in uids] == [TaskState.COMPLETED] * 2
    assert len(asker.calls) == 1  # the second close found nothing to ask about
    assert not guard.is_waiting()


def test_guard_wait_can_be_stopped_and_the_window_stays(qtbot, make_manager, window, gate):
    m = make_manager(start_processing=True)
    guard = CloseGuard(window, m)
    guard.ask = Asker(CloseChoice.WAIT)
    uid = m.submit(hold, gate).uid
    wait_states(qtbot, m, [uid], TaskState.RUNNING)
    assert not window.close()
    dialog = guard.progress_dialog()
    (button,) = [b for b in dialog.findChildren(QPushButton) if b.text() == "Stop waiting"]
    with qtbot.waitSignal(guard.wait_finished, timeout=1000) as finished:
        button.click()
    assert finished.args == [False]
    assert not guard.is_waiting()
    assert window.isVisible()
    assert m.task_state(uid) is TaskState.RUNNING


def _click_in_message_box(qtbot, text):
    """Once the guard's QMessageBox is up, click its button labelled ``text``."""
    clicked = []

    def click():
        boxes = [w for w in QApplication.topLevelWidgets() if isinstance(w, QMessageBox)]
        boxes = [b for b in boxes if b.isVisible()]
        if not boxes:
            QTimer.singleShot(10, click)
            return
        (button,) = [b for b in boxes[0].buttons() if b.text() == text]
        clicked.append(boxes[0].text())
        button.click()

    QTimer.singleShot(0, click)
    return clicked


@pytest.mark.parametrize(
    ("button", "closes", "end"),
    [
        ("Stay", False, TaskState.RUNNING),
        ("Cancel tasks and quit", True, TaskState.CANCELLED),
    ],
)
def test_guard_default_question_is_a_message_box(
    qtbot, make_manager, window, gate, button, closes, end
):
    m = make_manager(start_processing=True)
    guard = CloseGuard(window, m)
    uid = m.submit(hold, gate).uid
    wait_states(qtbot, m, [uid], TaskState.RUNNING)
    clicked = _click_in_message_box(qtbot, button)
    assert window.close() is closes
    assert clicked == ["1 background task has not finished (1 running, 0 waiting)."]
    assert window.isVisible() is not closes
    wait_states(qtbot, m, [uid], end)
    guard.uninstall()  # pytest-qt closes the window before the gate opens


def test_guard_default_question_wait_button(qtbot, make_manager, window, gate):
    m = make_manager(start_processing=True)
    guard = CloseGuard(window, m)
    uid = m.submit(hold, gate).uid
    wait_states(qtbot, m, [uid], TaskState.RUNNING)
    _click_in_message_box(qtbot, "Wait for them")
    assert not window.close()
    assert guard.is_waiting()
    gate.set()
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=10000)


def test_guard_uninstall(qtbot, make_manager, window, gate):
    m = make_manager(start_processing=True)
    guard = CloseGuard(window, m)
    guard.ask = asker = Asker(CloseChoice.STAY)
    uid = m.submit(hold, gate).uid
    wait_states(qtbot, m, [uid], TaskState.RUNNING)
    guard.uninstall()
    assert window.close()
    assert asker.calls == []
