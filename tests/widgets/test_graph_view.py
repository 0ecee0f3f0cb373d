"""TaskGraphView (bgtasks.widgets), headless."""

from __future__ import annotations

from types import SimpleNamespace as Info

import pytest
from _held_tasks import hold, quick, wait_states
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QColor, QWheelEvent
from PySide6.QtWidgets import QApplication

from bgtasks import TaskState
from bgtasks.widgets import (
    STATE_COLOURS,
    TaskEdgeItem,
    TaskGraphView,
    TaskNodeItem,
    layers,
)


def boom() -> None:
    raise RuntimeError("boom")


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
    a = m.options(name="load").submit(ok).uid
    b = m.options(name="parse", upstream_task_ids=[a]).submit(ok).uid
    c = m.options(name="thumbs", upstream_task_ids=[a]).submit(boom).uid
    d = m.options(name="publish", upstream_task_ids=[b, c]).submit(ok).uid
    e = m.options(name="upload").submit(hold, gate).uid
    f = m.options(name="index", upstream_task_ids=[b, e]).submit(ok).uid
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
    # layered left to right: a column per longest-path layer, a root beside what it feeds
    x = {u: nodes[u].pos().x() for u in nodes}
    assert x[a] < x[b] == x[c] < x[d] == x[f]
    assert x[e] == x[b] < x[f]
    # arrows start at the upstream node and end at the downstream node
    assert {(k[0][1], k[1][1]) for k in view.edge_items()} == view.edges()
    for ((_, up), (_, down)), edge in view.edge_items().items():
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
    a = m.options(name="slow").submit(hold, gate).uid
    b = m.options(name="after", upstream_task_ids=[a]).submit(ok).uid
    qtbot.waitUntil(lambda: set(view.nodes()) == {a, b}, timeout=5000)
    qtbot.waitUntil(lambda: view.nodes()[a].state is TaskState.RUNNING, timeout=5000)
    assert view.edges() == {(a, b)}
    assert view.nodes()[b].colour() == QColor("white")

    # a failure shows, with its downstream task
    count = view.refresh_count
    many = [m.options(name=f"q{i}").submit(quick).uid for i in range(200)]
    wait_states(qtbot, m, many, TaskState.COMPLETED)
    qtbot.waitUntil(lambda: set(many) <= set(view.nodes()), timeout=5000)
    # hundreds of signals, a handful of rebuilds
    assert view.refresh_count - count < 30
    c = m.options(name="explode", upstream_task_ids=[a]).submit(boom).uid
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
    a = m.options(name="slow").submit(hold, gate).uid
    chain = [a]
    for i in range(30):
        chain.append(m.options(name=f"after{i}", upstream_task_ids=[chain[-1]]).submit(ok).uid)
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
    d = m.options(name="new", upstream_task_ids=[chain[-1]]).submit(ok).uid
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
        prev = (
            m.options(name=f"step{i}", upstream_task_ids=[prev] if prev else None).submit(quick).uid
        )
    view.refresh()
    fitted = view.zoom()
    # too long to read whole in 300 x 200: the smallest legible scale, and a note
    assert fitted == pytest.approx(view.min_legible_scale) == pytest.approx(0.6)
    assert view.fit_note().startswith("Too big to read whole (12 nodes): showing the latest work")
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
