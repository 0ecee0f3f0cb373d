"""Widgets over a manager that was shut down (issue 11, items 14 and 16).

After ``shut_down()`` the manager emits nothing, so a widget that only
listened kept showing running tasks for ever, polled for ever, and a close
guard waited for ever.  Here every widget notices the shut-down manager,
reads the registry (CANCELLING, then CANCELLED when the task returns) and
stops its timers.  Tasks block on a ``threading.Event`` that ignores stop
requests, so they stay CANCELLING until the test releases them.
"""

from __future__ import annotations

import threading

import pytest
from PySide6.QtGui import QColor, QImage
from PySide6.QtWidgets import QApplication, QLabel, QMainWindow, QMessageBox, QProgressDialog

from bgtasks import TaskState
from bgtasks.thumbnails import ThumbnailLoader
from bgtasks.widgets import (
    CloseChoice,
    CloseGuard,
    TaskGraphView,
    TaskModel,
    TaskMonitor,
    TaskStatusIndicator,
    ask_with_message_box,
)


def block(gate: threading.Event) -> str:
    """Runs until ``gate`` is set; deaf to stop requests (bounded, so nothing hangs)."""
    gate.wait(60)
    return "done"


@pytest.fixture
def gate():
    event = threading.Event()
    yield event
    event.set()


def states(model: TaskModel, uids) -> list[TaskState]:
    return [model.task_info(uid).state for uid in uids]


def start_four(qtbot, manager, gate):
    """Two tasks running (max_threads=2) and two queued behind them."""
    uids = [manager.options(name=f"job {i}").submit(block, gate).uid for i in range(4)]
    qtbot.waitUntil(
        lambda: (
            [manager.task_state(u) for u in uids]
            == [TaskState.RUNNING] * 2 + [TaskState.QUEUED] * 2
        ),
        timeout=10000,
    )
    return uids


# ---------------------------------------------------------------------- TaskMonitor / TaskModel


@pytest.mark.parametrize("grouped", [False, True])
def test_monitor_shows_the_shut_down_manager_then_stops_polling(qtbot, make_manager, gate, grouped):
    m = make_manager(start_processing=True, max_threads=2)
    monitor = TaskMonitor(m, grouped=grouped)
    qtbot.addWidget(monitor)
    monitor.show()
    uids = start_four(qtbot, m, gate)
    qtbot.waitUntil(lambda: monitor.summary_label.text() == "2 running · 2 queued", timeout=5000)
    assert not monitor.model.is_shut_down()

    m.shut_down(timeout=0)
    # the registry is read once: running tasks are stopping, queued ones were dropped
    qtbot.waitUntil(
        lambda: monitor.summary_label.text() == "Shut down · 2 cancelling · 2 cancelled",
        timeout=5000,
    )
    assert monitor.model.is_shut_down()
    assert states(monitor.model, uids) == [TaskState.CANCELLING] * 2 + [TaskState.CANCELLED] * 2
    # nothing can be done with a shut-down manager's tasks
    assert not monitor.cancel_button.isEnabled()
    assert not monitor.retry_button.isEnabled()
    assert not monitor.clear_button.isEnabled()
    assert monitor.summary_label.toolTip() == "The task manager has shut down"

    gate.set()  # the functions return: the registry says CANCELLED, with no signal
    qtbot.waitUntil(lambda: monitor.summary_label.text() == "Shut down · 4 cancelled", timeout=5000)
    assert states(monitor.model, uids) == [TaskState.CANCELLED] * 4
    assert monitor.model.state_counts()[TaskState.CANCELLED] == 4
    assert monitor.model.state_counts()[TaskState.RUNNING] == 0
    # and nothing polls a dead manager any more
    qtbot.waitUntil(lambda: "pass" not in monitor.model.running_timers(), timeout=5000)
    assert "watch" not in monitor.model.running_timers()
    passes = monitor.model.pass_count
    monitor.model.apply_pass()  # a stray pass changes nothing and restarts nothing
    assert monitor.model.pass_count == passes + 1
    assert "pass" not in monitor.model.running_timers()
    assert monitor.summary_label.text() == "Shut down · 4 cancelled"


def test_model_notices_a_shut_down_while_only_queued_tasks_are_shown(qtbot, make_manager):
    # Nothing runs, so nothing ticks: a slow watch still notices the shut-down.
    m = make_manager()  # not started: the tasks stay queued
    uids = [m.submit(len, "abc").uid for _ in range(3)]
    model = TaskModel(m)
    assert states(model, uids) == [TaskState.QUEUED] * 3
    assert "watch" in model.running_timers()
    m.shut_down(timeout=0)
    qtbot.waitUntil(lambda: states(model, uids) == [TaskState.CANCELLED] * 3, timeout=5000)
    assert model.is_shut_down()
    assert model.state_counts()[TaskState.CANCELLED] == 3
    qtbot.waitUntil(lambda: not model.running_timers(), timeout=5000)


def test_model_watch_only_runs_while_live_rows_are_shown(qtbot, make_manager):
    m = make_manager(start_processing=True)
    model = TaskModel(m)
    assert "watch" not in model.running_timers()  # no rows
    uid = m.submit(len, "abc").uid
    qtbot.waitUntil(
        lambda: (
            model.task_info(uid) is not None and model.task_info(uid).state is TaskState.COMPLETED
        ),
        timeout=5000,
    )
    qtbot.waitUntil(lambda: not model.running_timers(), timeout=5000)


def test_model_gives_up_on_a_task_that_never_returns(qtbot, make_manager, gate):
    # A task deaf to stop requests may outlive the manager for ever: the model
    # polls its row for shutdown_poll_limit seconds at most, then stops.
    m = make_manager(start_processing=True)
    uid = m.submit(block, gate).uid
    model = TaskModel(m)
    model.shutdown_poll_limit = 0.3
    qtbot.waitUntil(lambda: model.task_info(uid).state is TaskState.RUNNING, timeout=5000)
    m.shut_down(timeout=0)
    qtbot.waitUntil(lambda: model.task_info(uid).state is TaskState.CANCELLING, timeout=5000)
    qtbot.waitUntil(lambda: "pass" not in model.running_timers(), timeout=5000)
    assert "watch" not in model.running_timers()
    assert m.task_state(uid) is TaskState.CANCELLING  # still not returned
    assert model.task_info(uid).state is TaskState.CANCELLING


def test_model_notices_a_deleted_manager(qtbot, gate):
    from bgtasks import BackgroundTaskManager

    m = BackgroundTaskManager(start_processing=True)
    uid = m.submit(block, gate).uid
    model = TaskModel(m)
    qtbot.waitUntil(
        lambda: (
            model.task_info(uid) is not None and model.task_info(uid).state is TaskState.RUNNING
        ),
        timeout=5000,
    )
    with qtbot.waitSignal(m.destroyed, timeout=5000):
        m.deleteLater()
    qtbot.waitUntil(model.is_shut_down, timeout=5000)  # the running row's next pass
    gate.set()
    qtbot.waitUntil(lambda: "pass" not in model.running_timers(), timeout=5000)
    assert "watch" not in model.running_timers()


# ---------------------------------------------------------------------- TaskStatusIndicator


def test_indicator_shows_the_shut_down_manager_then_stops_polling(qtbot, make_manager, gate):
    m = make_manager(start_processing=True, max_threads=2)
    ind = TaskStatusIndicator(m)
    qtbot.addWidget(ind)
    ind.show()
    start_four(qtbot, m, gate)
    qtbot.waitUntil(lambda: ind.text() == "2 running · 2 queued", timeout=5000)

    m.shut_down(timeout=0)
    qtbot.waitUntil(lambda: ind.text() == "Shut down · 2 stopping", timeout=5000)
    assert ind.is_shut_down()
    assert ind.toolTip() == "The task manager has shut down\n2 cancelling"
    gate.set()
    qtbot.waitUntil(lambda: ind.text() == "Shut down", timeout=5000)
    qtbot.waitUntil(lambda: not ind.running_timers(), timeout=5000)
    assert ind.is_idle()
    assert ind.progress() is None
    assert ind.toolTip() == "The task manager has shut down"
    assert ind.accessibleDescription() == "The task manager has shut down"
    ind.refresh()  # an explicit refresh keeps it so, and starts nothing
    assert ind.text() == "Shut down"
    assert not ind.running_timers()


def test_indicator_gives_up_on_a_task_that_never_returns(qtbot, make_manager, gate):
    m = make_manager(start_processing=True)
    uid = m.submit(block, gate).uid
    qtbot.waitUntil(lambda: m.task_state(uid) is TaskState.RUNNING, timeout=5000)
    # made while the task runs: no signal will start its timer, it must poll anyway
    ind = TaskStatusIndicator(m)
    ind.shutdown_poll_limit = 0.3
    qtbot.addWidget(ind)
    assert ind.text() == "1 running · 0 queued"
    assert ind.running_timers() == {"refresh"}
    m.shut_down(timeout=0)
    qtbot.waitUntil(lambda: ind.text() == "Shut down · 1 stopping", timeout=5000)
    qtbot.waitUntil(lambda: not ind.running_timers(), timeout=5000)
    assert m.task_state(uid) is TaskState.CANCELLING
    assert ind.text() == "Shut down · 1 stopping"


# ---------------------------------------------------------------------- CloseGuard


class Asker:
    def __init__(self, choice: CloseChoice) -> None:
        self.choice = choice
        self.calls: list[list[int]] = []

    def __call__(self, window, tasks):
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


def test_guard_lets_a_window_close_once_the_manager_is_shut_down(
    qtbot, make_manager, window, gate, monkeypatch
):
    m = make_manager(start_processing=True)
    guard = CloseGuard(window, m)
    guard.ask = asker = Asker(CloseChoice.STAY)
    uid = m.submit(block, gate).uid
    qtbot.waitUntil(lambda: m.task_state(uid) is TaskState.RUNNING, timeout=5000)
    assert not window.close()
    assert asker.calls == [[uid]]

    m.shut_down(timeout=0)
    assert m.task_state(uid) is TaskState.CANCELLING  # the task has not returned
    assert guard.important_tasks() == []
    assert window.close()  # without asking again
    assert not window.isVisible()
    assert asker.calls == [[uid]]


def test_guard_default_question_is_not_shown_for_a_shut_down_manager(
    qtbot, make_manager, window, gate, monkeypatch
):
    asked = []

    def no_modal(*args):
        asked.append(args)
        return QMessageBox.StandardButton.NoButton

    monkeypatch.setattr(QMessageBox, "exec", no_modal)  # no modal can block the test
    m = make_manager(start_processing=True)
    guard = CloseGuard(window, m)
    assert guard.ask is ask_with_message_box
    uid = m.submit(block, gate).uid
    qtbot.waitUntil(lambda: m.task_state(uid) is TaskState.RUNNING, timeout=5000)
    m.shut_down(timeout=0)
    assert window.close()
    assert asked == []


def test_guard_wait_dialog_closes_when_the_manager_shuts_down(qtbot, make_manager, window, gate):
    m = make_manager(start_processing=True)
    guard = CloseGuard(window, m)
    guard.ask = asker = Asker(CloseChoice.WAIT)
    uid = m.submit(block, gate).uid
    qtbot.waitUntil(lambda: m.task_state(uid) is TaskState.RUNNING, timeout=5000)
    assert not window.close()
    dialog = guard.progress_dialog()
    assert guard.is_waiting() and dialog.isVisible()

    with qtbot.waitSignal(guard.wait_finished, timeout=5000) as finished:
        m.shut_down(timeout=0)
    assert finished.args == [True]
    assert not guard.is_waiting()
    # the dialog went (deleteLater: it may be gone, so it is looked for, not touched)
    shown = [w for w in QApplication.topLevelWidgets() if isinstance(w, QProgressDialog)]
    assert [w for w in shown if w.isVisible()] == []
    assert "poll" not in guard.running_timers()
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=5000)
    assert asker.calls == [[uid]]  # the window closed without a second question
    assert m.task_state(uid) is TaskState.CANCELLING


# ---------------------------------------------------------------------- ThumbnailLoader


def test_deleted_thumbnail_loader_leaves_no_live_rows(qtbot, make_manager, tmp_path):
    # The loader owns its tasks: deleting it cancels them, and the manager now
    # reports that (task_cancelled / task_state_changed), so a model's rows
    # end CANCELLED instead of staying QUEUED for ever.
    m = make_manager()  # not started: every request stays queued
    paths = []
    for i in range(3):
        image = QImage(64, 48, QImage.Format.Format_RGB32)
        image.fill(QColor("red"))
        path = str(tmp_path / f"{i}.png")
        assert image.save(path)
        paths.append(path)
    loader = ThumbnailLoader(m)
    uids = [loader.request(p) for p in paths]
    monitor = TaskMonitor(m)
    qtbot.addWidget(monitor)
    model = monitor.model
    live = [m.task_state(u) for u in uids]  # keyed: each waits for its shared decode
    assert states(model, uids) == live and not any(s.is_terminal for s in live)
    loader.deleteLater()
    qtbot.waitUntil(lambda: states(model, uids) == [TaskState.CANCELLED] * 3, timeout=5000)
    qtbot.waitUntil(lambda: monitor.summary_label.text() == "3 cancelled", timeout=5000)
    assert not m.is_shut_down
    assert [m.task_state(u) for u in uids] == [TaskState.CANCELLED] * 3
    qtbot.waitUntil(lambda: not model.running_timers(), timeout=5000)


def test_thumbnail_loader_after_shut_down(qtbot, make_manager, tmp_path):
    # Nothing will ever arrive from a shut-down manager: its rows end
    # CANCELLED, the loader has nothing pending, and a new request raises as
    # add_task does (instead of sharing a decode that will never report).
    m = make_manager()
    image = QImage(64, 48, QImage.Format.Format_RGB32)
    image.fill(QColor("blue"))
    path = str(tmp_path / "a.png")
    assert image.save(path)
    loader = ThumbnailLoader(m)
    uid = loader.request(path)
    model = TaskModel(m)
    assert loader.pending() == [path]
    m.shut_down(timeout=0)
    qtbot.waitUntil(lambda: states(model, [uid]) == [TaskState.CANCELLED], timeout=5000)
    assert loader.pending() == []
    assert not loader.is_pending(path)
    with pytest.raises(RuntimeError, match="shut down"):
        loader.request(path)


# ---------------------------------------------------------------------- TaskGraphView


def test_graph_view_shows_the_shut_down_manager_then_stops_polling(qtbot, make_manager, gate):
    m = make_manager(start_processing=True, max_threads=2)
    view = TaskGraphView(m)
    qtbot.addWidget(view)
    uids = start_four(qtbot, m, gate)

    def node_states():
        nodes = view.nodes()
        return [nodes[u].state if u in nodes else None for u in uids]

    qtbot.waitUntil(
        lambda: node_states() == [TaskState.RUNNING] * 2 + [TaskState.QUEUED] * 2, timeout=5000
    )
    m.shut_down(timeout=0)
    qtbot.waitUntil(
        lambda: node_states() == [TaskState.CANCELLING] * 2 + [TaskState.CANCELLED] * 2,
        timeout=5000,
    )
    assert view.is_shut_down()
    gate.set()
    qtbot.waitUntil(lambda: node_states() == [TaskState.CANCELLED] * 4, timeout=5000)
    qtbot.waitUntil(lambda: "watch" not in view.running_timers(), timeout=5000)
    assert "refresh" not in view.running_timers()
