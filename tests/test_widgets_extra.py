"""TaskStatusIndicator, CloseGuard and TaskGraphView (bgtasks.widgets), headless."""

from __future__ import annotations

import threading
from types import SimpleNamespace as Info

import pytest
from PySide6.QtCore import QPoint, QPointF, Qt, QTimer
from PySide6.QtGui import QColor, QWheelEvent
from PySide6.QtWidgets import (
    QApplication,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressDialog,
    QPushButton,
)

from bgtasks import TaskState, current_task
from bgtasks.widgets._close_guard import CloseChoice, CloseGuard
from bgtasks.widgets._graph_view import (
    STATE_COLOURS,
    TaskEdgeItem,
    TaskGraphView,
    TaskNodeItem,
    layers,
)
from bgtasks.widgets._indicator import TaskStatusIndicator


def hold(gate: threading.Event, progress: float | None = None) -> str:
    """A task that runs until ``gate`` is set (or it is asked to stop)."""
    ctx = current_task()
    if progress is not None:
        ctx.report_progress(progress)
    while not gate.wait(0.005):
        ctx.raise_if_cancelled()
    return "done"


def quick() -> int:
    return 1


def boom() -> None:
    raise RuntimeError("boom")


@pytest.fixture
def gate():
    event = threading.Event()
    yield event
    event.set()  # whatever the test did, let every held task end


def wait_states(qtbot, manager, uids, state, timeout=10000):
    qtbot.waitUntil(lambda: all(manager.task_state(uid) is state for uid in uids), timeout=timeout)


# ---------------------------------------------------------------------- TaskStatusIndicator


def test_indicator_is_idle_without_tasks(qtbot, make_manager):
    m = make_manager()
    ind = TaskStatusIndicator(m)
    qtbot.addWidget(ind)
    assert ind.is_idle()
    assert ind.text() == "Idle"
    assert ind.progress() is None
    assert ind.accessibleName() == "Background tasks"
    assert ind.focusPolicy() & Qt.FocusPolicy.TabFocus


def test_indicator_counts_and_progress_are_exact(qtbot, make_manager, gate):
    m = make_manager(max_threads=2)
    ind = TaskStatusIndicator(m)
    qtbot.addWidget(ind)
    ind.show()
    done = [m.submit(quick, name=f"q{i}").uid for i in range(2)]
    m.start_processing()
    wait_states(qtbot, m, done, TaskState.COMPLETED)
    ind.refresh()
    assert ind.is_idle() and ind.text() == "Idle"  # that batch is over

    m.pause_processing()
    first = m.submit(quick, name="first").uid
    running = [m.submit(hold, gate, 0.5, name=f"r{i}").uid for i in range(2)]
    queued = [m.submit(hold, gate, name=f"w{i}").uid for i in range(3)]
    pending = m.submit(quick, upstream_task_ids=[queued[0]], name="after").uid
    m.start_processing()
    wait_states(qtbot, m, [first], TaskState.COMPLETED)
    wait_states(qtbot, m, running, TaskState.RUNNING)
    qtbot.waitUntil(lambda: all(m.info(u).progress == 0.5 for u in running), timeout=10000)

    def caught_up():  # the registry runs ahead of delivery: wait for the signals too
        ind.refresh()
        return ind.progress() == pytest.approx(2 / 7, abs=1e-3)

    qtbot.waitUntil(caught_up, timeout=10000)
    assert ind.text() == "2 running · 4 queued"
    # batch of 7: one finished, two running at 50 %
    assert ind.progress() == pytest.approx(2 / 7, abs=1e-3)
    assert not ind.is_idle()
    assert ind.toolTip().splitlines() == [
        "1 pending",
        "3 queued",
        "2 running",
        "1 of 7 finished",
    ]
    ind.setToolTip("Click for the task monitor")
    assert ind.toolTip().splitlines()[0] == "Click for the task monitor"
    assert ind.toolTip().splitlines()[-1] == "1 of 7 finished"
    assert ind.accessibleDescription() == "2 running · 4 queued, 29 % done"

    gate.set()
    wait_states(qtbot, m, [*running, *queued, pending], TaskState.COMPLETED)
    # the timer notices that the work is over by itself
    qtbot.waitUntil(ind.is_idle, timeout=5000)
    assert ind.text() == "Idle"
    assert not ind._timer.isActive()


def test_indicator_refreshes_by_itself_at_a_bounded_rate(qtbot, make_manager, gate):
    m = make_manager(start_processing=True, max_threads=1)
    ind = TaskStatusIndicator(m)
    qtbot.addWidget(ind)
    assert not ind._timer.isActive()  # no work, no timer
    assert ind.refresh_interval == 100
    uid = m.submit(hold, gate, name="h").uid
    qtbot.waitUntil(lambda: ind.text() == "1 running · 0 queued", timeout=5000)
    assert ind._timer.isActive()
    assert m.task_state(uid) is TaskState.RUNNING


def test_indicator_hides_when_idle_if_asked(qtbot, make_manager, gate):
    m = make_manager(start_processing=True)
    ind = TaskStatusIndicator(m)
    qtbot.addWidget(ind)
    ind.show()
    ind.hide_when_idle = True
    assert not ind.isVisible()
    uid = m.submit(hold, gate).uid
    qtbot.waitUntil(ind.isVisible, timeout=5000)
    gate.set()
    wait_states(qtbot, m, [uid], TaskState.COMPLETED)
    qtbot.waitUntil(lambda: not ind.isVisible(), timeout=5000)
    ind.hide_when_idle = False  # back to idle-looking
    assert ind.isVisible() and ind.text() == "Idle"


def test_indicator_batch_grows_with_work_added_while_busy(qtbot, make_manager, gate):
    m = make_manager(start_processing=True, max_threads=1)
    ind = TaskStatusIndicator(m)
    qtbot.addWidget(ind)
    first = m.submit(quick).uid
    wait_states(qtbot, m, [first], TaskState.COMPLETED)
    # the indicator sees the batch end at its next tick, and stops its timer
    qtbot.waitUntil(lambda: ind.is_idle() and not ind._timer.isActive(), timeout=5000)
    held = m.submit(hold, gate, 0.5).uid  # a new batch: the finished task is not in it
    wait_states(qtbot, m, [held], TaskState.RUNNING)
    qtbot.waitUntil(lambda: m.info(held).progress == 0.5, timeout=5000)
    ind.refresh()
    assert (ind.text(), ind.progress()) == ("1 running · 0 queued", 0.5)
    later = [m.submit(quick).uid for _ in range(3)]
    ind.refresh()
    assert ind.text() == "1 running · 3 queued"
    assert ind.progress() == pytest.approx(0.5 / 4, abs=1e-3)
    gate.set()
    wait_states(qtbot, m, [held, *later], TaskState.COMPLETED)
    late = m.submit(hold, threading.Event()).uid  # keeps the batch open
    wait_states(qtbot, m, [late], TaskState.RUNNING)
    ind.refresh()
    assert ind.text() == "1 running · 0 queued"
    assert ind.progress() == pytest.approx(4 / 5, abs=1e-3)
    assert "4 of 5 finished" in ind.toolTip()
    m.stop_task(late)


def test_indicator_click_and_keys_emit_and_show_the_monitor(qtbot, make_manager):
    m = make_manager()
    ind = TaskStatusIndicator(m)
    qtbot.addWidget(ind)
    ind.show()
    monitor = QLabel("monitor")
    qtbot.addWidget(monitor)
    ind.set_monitor(monitor)
    assert ind.monitor() is monitor
    assert not monitor.isVisible()
    with qtbot.waitSignal(ind.clicked, timeout=1000):
        qtbot.mouseClick(ind, Qt.MouseButton.LeftButton, pos=QPoint(5, 5))
    assert monitor.isVisible()
    monitor.hide()
    for key in (Qt.Key.Key_Space, Qt.Key.Key_Return, Qt.Key.Key_Enter):
        with qtbot.waitSignal(ind.clicked, timeout=1000):
            qtbot.keyClick(ind, key)
    assert monitor.isVisible()
    # a right click does nothing
    with qtbot.assertNotEmitted(ind.clicked):
        qtbot.mouseClick(ind, Qt.MouseButton.RightButton, pos=QPoint(5, 5))


# ---------------------------------------------------------------------- CloseGuard


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
    a = m.submit(hold, gate, group="thumbnails").uid
    b = m.submit(hold, gate, name="autosave-index").uid
    c = m.submit(hold, gate, name="prefetch", group="net").uid
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
    running = m.submit(hold, gate, name="save").uid
    queued = m.submit(hold, gate, name="upload").uid
    m.submit(hold, gate, group="bg")  # unimportant: not in the question
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


# ---------------------------------------------------------------------- TaskGraphView


def ok(**kwargs) -> dict:
    return {"seen": sorted(kwargs)}


def test_graph_palette_matches_the_dot_palette():
    assert set(STATE_COLOURS) == set(TaskState)
    assert STATE_COLOURS[TaskState.PENDING] == QColor("white")
    assert STATE_COLOURS[TaskState.QUEUED] == QColor("lightblue")
    assert STATE_COLOURS[TaskState.RUNNING] == QColor("yellow")
    assert STATE_COLOURS[TaskState.CANCELLING] == QColor("orange")
    hue = {s: c.hslHue() for s, c in STATE_COLOURS.items()}
    assert 90 <= hue[TaskState.COMPLETED] <= 150  # green
    assert hue[TaskState.FAILED] in range(0, 11) or hue[TaskState.FAILED] >= 350  # red
    assert STATE_COLOURS[TaskState.CANCELLED].hslSaturation() == 0  # gray


def test_layers_are_longest_paths_from_roots():
    infos = [
        Info(uid=1, upstream=()),
        Info(uid=2, upstream=(1,)),
        Info(uid=3, upstream=(1, 2, 2)),
        Info(uid=4, upstream=(99,)),  # forgotten upstream: a root
        Info(uid=5, upstream=(3, 4)),
        Info(uid=6, upstream=(1,)),
    ]
    assert layers(infos) == {1: 0, 2: 1, 3: 2, 4: 0, 5: 3, 6: 1}
    # a long chain needs no recursion
    chain = [Info(uid=i, upstream=(i - 1,) if i else ()) for i in range(5000)]
    assert layers(chain)[4999] == 4999


def _dag(m, gate):
    a = m.submit(ok, name="load").uid
    b = m.submit(ok, name="parse", upstream_task_ids=[a]).uid
    c = m.submit(boom, name="thumbs", upstream_task_ids=[a]).uid
    d = m.submit(ok, name="publish", upstream_task_ids=[b, c]).uid
    e = m.submit(hold, gate, name="upload").uid
    f = m.submit(ok, name="index", upstream_task_ids=[b, e]).uid
    return a, b, c, d, e, f


def test_graph_view_matches_the_managers_tasks(qtbot, make_manager, gate):
    m = make_manager(start_processing=True)
    view = TaskGraphView(m)
    qtbot.addWidget(view)
    view.resize(800, 400)
    view.show()
    a, b, c, d, e, f = _dag(m, gate)
    qtbot.waitUntil(
        lambda: m.task_state(d) is TaskState.FAILED and m.task_state(e) is TaskState.RUNNING,
        timeout=10000,
    )
    view.refresh()
    nodes = view.nodes()
    assert set(nodes) == {info.uid for info in m.tasks()} == {a, b, c, d, e, f}
    for info in m.tasks():
        node = nodes[info.uid]
        assert node.state is info.state
        assert node.colour() == STATE_COLOURS[info.state]
        assert node.title() == f"{info.uid}: {info.name}"
        assert node.subtitle().startswith(info.state.name)
    assert [nodes[u].state for u in (a, b, c, d, e, f)] == [
        TaskState.COMPLETED,
        TaskState.COMPLETED,
        TaskState.FAILED,
        TaskState.FAILED,
        TaskState.RUNNING,
        TaskState.PENDING,
    ]
    assert view.edges() == {(a, b), (a, c), (b, d), (c, d), (b, f), (e, f)}
    scene_items = view.scene().items()
    assert sum(isinstance(i, TaskNodeItem) for i in scene_items) == 6
    assert sum(isinstance(i, TaskEdgeItem) for i in scene_items) == 6
    # layered left to right: a column per longest-path layer
    x = {u: nodes[u].pos().x() for u in nodes}
    assert x[a] == x[e] < x[b] == x[c] < x[d] == x[f]
    # arrows start at the upstream node and end at the downstream node
    for (up, down), edge in ((k, view._edges[k]) for k in view.edges()):
        path = edge.path()
        assert nodes[up].sceneBoundingRect().contains(path.pointAtPercent(0))
        assert (
            nodes[down].sceneBoundingRect().adjusted(-10, 0, 0, 0).contains(path.pointAtPercent(1))
        )
    view.grab()  # paints without errors


def test_graph_view_updates_live_and_coalesces(qtbot, make_manager, gate):
    m = make_manager(start_processing=True)
    view = TaskGraphView(m)
    qtbot.addWidget(view)
    assert view.nodes() == {}
    a = m.submit(hold, gate, name="slow").uid
    b = m.submit(ok, name="after", upstream_task_ids=[a]).uid
    qtbot.waitUntil(lambda: set(view.nodes()) == {a, b}, timeout=5000)
    qtbot.waitUntil(lambda: view.nodes()[a].state is TaskState.RUNNING, timeout=5000)
    assert view.edges() == {(a, b)}
    assert view.nodes()[b].colour() == QColor("white")

    # a failure shows, with its downstream task
    count = view.refresh_count
    many = [m.submit(quick, name=f"q{i}").uid for i in range(200)]
    wait_states(qtbot, m, many, TaskState.COMPLETED)
    qtbot.waitUntil(lambda: set(many) <= set(view.nodes()), timeout=5000)
    # hundreds of signals, a handful of rebuilds
    assert view.refresh_count - count < 30
    c = m.submit(boom, name="explode", upstream_task_ids=[a]).uid
    gate.set()
    qtbot.waitUntil(
        lambda: c in view.nodes() and view.nodes()[c].state is TaskState.FAILED, timeout=5000
    )
    assert view.nodes()[c].colour() == STATE_COLOURS[TaskState.FAILED]
    assert "error: boom" in view.nodes()[c].toolTip().splitlines()
    qtbot.waitUntil(lambda: view.nodes()[a].state is TaskState.COMPLETED, timeout=5000)
    assert view.nodes()[a].colour() == STATE_COLOURS[TaskState.COMPLETED]

    # forgotten tasks go away
    m.clear_finished()
    qtbot.waitUntil(lambda: view.nodes() == {}, timeout=5000)
    assert view.edges() == set()


def test_graph_view_repaints_changed_states_without_laying_out_again(qtbot, make_manager, gate):
    m = make_manager(start_processing=True)
    view = TaskGraphView(m)
    qtbot.addWidget(view)
    a = m.submit(hold, gate, name="slow").uid
    chain = [a]
    for i in range(30):
        chain.append(m.submit(ok, name=f"after{i}", upstream_task_ids=[chain[-1]]).uid)
    qtbot.waitUntil(
        lambda: set(view.nodes()) == set(chain) and view.nodes()[a].state is TaskState.RUNNING,
        timeout=5000,
    )
    layouts = view.layout_count
    positions = {uid: node.pos() for uid, node in view.nodes().items()}
    gate.set()
    qtbot.waitUntil(
        lambda: all(n.state is TaskState.COMPLETED for n in view.nodes().values()), timeout=5000
    )
    assert view.layout_count == layouts  # states changed, the graph did not
    assert {uid: node.pos() for uid, node in view.nodes().items()} == positions
    assert view.nodes()[chain[-1]].colour() == STATE_COLOURS[TaskState.COMPLETED]
    d = m.submit(ok, name="new", upstream_task_ids=[chain[-1]]).uid
    qtbot.waitUntil(lambda: d in view.nodes(), timeout=5000)
    assert view.layout_count == layouts + 1
    assert (chain[-1], d) in view.edges()


def test_graph_view_zoom_and_fit(qtbot, make_manager):
    m = make_manager()
    view = TaskGraphView(m)
    qtbot.addWidget(view)
    view.resize(300, 200)
    view.show()
    prev = None
    for i in range(12):
        prev = m.submit(quick, name=f"step{i}", upstream_task_ids=[prev] if prev else None).uid
    view.refresh()
    fitted = view.zoom()
    assert fitted < 1  # a long chain is shrunk to fit
    view.setFocus()
    qtbot.keyClick(view, Qt.Key.Key_Plus)
    assert view.zoom() == pytest.approx(fitted * view.ZOOM_STEP)
    qtbot.keyClick(view, Qt.Key.Key_Minus)
    qtbot.keyClick(view, Qt.Key.Key_Minus)
    assert view.zoom() == pytest.approx(fitted / view.ZOOM_STEP)
    view.refresh()  # zoomed by hand: refresh keeps the zoom
    assert view.zoom() == pytest.approx(fitted / view.ZOOM_STEP)
    qtbot.keyClick(view, Qt.Key.Key_0)
    assert view.zoom() == pytest.approx(fitted)

    # Ctrl+wheel zooms, a plain wheel does not
    def wheel(dy, modifiers):
        pos = QPointF(view.viewport().rect().center())
        event = QWheelEvent(
            pos, view.viewport().mapToGlobal(pos), QPoint(0, 0), QPoint(0, dy),
            Qt.MouseButton.NoButton, modifiers, Qt.ScrollPhase.NoScrollPhase, False,
        )  # fmt: skip
        QApplication.sendEvent(view.viewport(), event)

    wheel(120, Qt.KeyboardModifier.ControlModifier)
    assert view.zoom() == pytest.approx(fitted * view.ZOOM_STEP)
    wheel(-240, Qt.KeyboardModifier.NoModifier)
    assert view.zoom() == pytest.approx(fitted * view.ZOOM_STEP)
    for _ in range(50):
        view.zoom_by(2)
    assert view.zoom() == pytest.approx(view.MAX_ZOOM)
    view.fit_to_view()
    assert view.zoom() == pytest.approx(fitted)
