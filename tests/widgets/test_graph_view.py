"""TaskGraphView (bgtasks.widgets), headless."""

from __future__ import annotations

import threading
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
    # Settled: every task drawn, and no layout computing, applying or scheduled (under load
    # the tasks added during the first layout's computation get a second one).
    qtbot.waitUntil(
        lambda: (
            set(view.nodes()) == set(chain)
            and view.nodes()[a].state is TaskState.RUNNING
            and not view.is_laying_out()
            and not view.running_timers() & {"refresh", "layout"}
        ),
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


# ---------------------------------------------------------------------- groups, neighbours, fit


def _pipeline(m, n=25):
    """n reads (group "io") each parsed (group "compute"), a merge, a report; 2n + 2 tasks."""
    reads = [m.options(name=f"read {i}", group="io").submit(quick).uid for i in range(n)]
    parses = [
        m.options(name=f"parse {i}", group="compute", upstream_task_ids=[r]).submit(ok).uid
        for i, r in enumerate(reads)
    ]
    merge = m.options(name="merge", upstream_task_ids=parses).submit(ok).uid
    report = m.options(name="report", upstream_task_ids=[merge]).submit(ok).uid
    return reads, parses, merge, report


def _shown_view(qtbot, m, size=(1000, 700)):
    view = TaskGraphView(m)
    qtbot.addWidget(view)
    view.resize(*size)
    view.show()
    qtbot.waitExposed(view)
    view.refresh()
    return view


def test_groups_above_the_threshold_collapse_and_expand_on_click(qtbot, make_manager):
    m = make_manager()  # paused: every task stays queued or waiting
    reads, parses, merge, report = _pipeline(m)
    view = _shown_view(qtbot, m)
    assert set(view.group_nodes()) == {"io", "compute"}
    assert set(view.nodes()) == {merge, report}
    io = view.group_nodes()["io"]
    assert io.text() == "io · 25 queued"
    assert view.group_nodes()["compute"].text() == "compute · 25 waiting"
    assert view.links() == {
        (("group", "io"), ("group", "compute")): 25,
        (("group", "compute"), ("task", merge)): 25,
        (("task", merge), ("task", report)): 1,
    }
    assert view.is_collapsed("io") and not view.is_collapsed("nothing")
    # a click expands it
    centre = view.mapFromScene(io.sceneBoundingRect().center())
    with qtbot.waitSignal(view.laid_out, timeout=5000):
        qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=centre)
    assert set(view.group_nodes()) == {"compute"}
    assert set(view.nodes()) == {*reads, merge, report}
    assert view.links()[(("task", reads[3]), ("group", "compute"))] == 1
    # the first task of the expanded group has the keyboard focus; C collapses its group
    assert view.scene().focusItem() is view.nodes()[reads[0]]
    with qtbot.waitSignal(view.laid_out, timeout=5000):
        qtbot.keyClick(view, Qt.Key.Key_C)
    assert set(view.group_nodes()) == {"io", "compute"}
    # the threshold is a setting; a group the user collapsed stays collapsed
    with qtbot.waitSignal(view.laid_out, timeout=5000):
        view.collapse_threshold = 25
    assert set(view.group_nodes()) == {"io"}
    assert set(view.nodes()) == {*parses, merge, report}


def test_group_nodes_expand_with_enter_or_space(qtbot, make_manager):
    m = make_manager()
    reads, parses, merge, report = _pipeline(m)
    view = _shown_view(qtbot, m)
    view.setFocus()
    order = view.node_order()
    assert order[0] == ("group", "io")  # reading order: layer by layer
    qtbot.keyClick(view, Qt.Key.Key_Tab)
    assert view.scene().focusItem() is view.group_nodes()["io"]
    assert view.accessibleDescription() == (
        "Group io · 25 tasks: 25 queued. Collapsed: press Enter to expand."
    )
    with qtbot.waitSignal(view.laid_out, timeout=5000):
        qtbot.keyClick(view, Qt.Key.Key_Return)
    assert not view.is_collapsed("io") and set(reads) <= set(view.nodes())
    # Tab walks on from the focused task; Space on a group node expands it too
    while view.scene().focusItem() is not view.group_nodes()["compute"]:
        qtbot.keyClick(view, Qt.Key.Key_Tab)
    with qtbot.waitSignal(view.laid_out, timeout=5000):
        qtbot.keyClick(view, Qt.Key.Key_Space)
    assert view.group_nodes() == {} and len(view.nodes()) == 52
    # E expands everything, the context menu's last group action collapses big groups again
    with qtbot.waitSignal(view.laid_out, timeout=5000):
        view.reset_groups()
    assert set(view.group_nodes()) == {"io", "compute"}


def _closure(m, uid):
    """Everything upstream and downstream of ``uid``, the slow and obvious way."""
    infos = {info.uid: info for info in m.tasks()}
    found = {uid}
    up = [uid]
    while up:
        up.extend(u for u in infos[up.pop()].upstream if u not in found and not found.add(u))
    down = [uid]
    seen = {uid}
    while down:
        here = down.pop()
        for info in infos.values():
            if here in info.upstream and info.uid not in seen:
                seen.add(info.uid)
                down.append(info.uid)
    return found | seen


def test_neighbours_filter_shows_exactly_the_upstream_and_downstream_closure(qtbot, make_manager):
    m = make_manager()
    reads, parses, merge, report = _pipeline(m, n=5)
    a = m.options(name="a").submit(quick).uid
    b = m.options(name="b", upstream_task_ids=[a, reads[0]]).submit(ok).uid
    c = m.options(name="c", upstream_task_ids=[b]).submit(ok).uid
    lonely = m.options(name="lonely").submit(quick).uid
    view = _shown_view(qtbot, m)
    everything = {info.uid for info in m.tasks()}
    assert view.shown_uids() == everything
    view.nodes()[b].setSelected(True)
    assert view.fit_note() == ""
    with qtbot.waitSignal(view.laid_out, timeout=5000):
        qtbot.keyClick(view, Qt.Key.Key_N)
    assert view.neighbours_only() and view.neighbours_action.isChecked()
    expected = _closure(m, b)
    assert expected == {b, a, reads[0], c}  # not parse 0 (a sibling), not merge
    assert view.shown_uids() == expected == set(view.nodes())
    assert view.edges() == {(a, b), (reads[0], b), (b, c)}
    # another selection refocuses: the read's closure reaches the report, not a or lonely
    with qtbot.waitSignal(view.laid_out, timeout=5000):
        view.scene().clearSelection()
        view.nodes()[reads[0]].setSelected(True)
    assert view.shown_uids() == _closure(m, reads[0]) == {reads[0], parses[0], merge, report, b, c}
    assert lonely not in view.shown_uids()
    with qtbot.waitSignal(view.laid_out, timeout=5000):
        view.neighbours_action.trigger()  # off again
    assert not view.neighbours_only() and view.shown_uids() == everything
    # nothing selected: everything stays, and the note says what to do
    view.scene().clearSelection()
    with qtbot.waitSignal(view.laid_out, timeout=5000):
        view.set_neighbours_only(True)
    assert view.shown_uids() == everything
    assert view.fit_note() == "Select a task (or a group) to show only its neighbours."


def test_fit_of_a_graph_too_big_to_read_goes_to_the_running_work(qtbot, make_manager, gate):
    m = make_manager(start_processing=True, max_threads=1)
    prev = None
    chain = []
    for i in range(300):
        fn, args = (hold, (gate,)) if i == 200 else (quick, ())
        prev = (
            m.options(name=f"s{i}", upstream_task_ids=[prev] if prev else None)
            .submit(fn, *args)
            .uid
        )
        chain.append(prev)
    qtbot.waitUntil(lambda: m.task_state(chain[200]) is TaskState.RUNNING, timeout=10000)
    view = _shown_view(qtbot, m, size=(600, 400))
    view.fit_to_view()
    assert view.zoom() == pytest.approx(view.min_legible_scale)
    assert view.fit_note() == (
        "Too big to read whole (300 nodes): showing the running work at 60 %. "
        "Zoom out with − or Ctrl+wheel; F fits again."
    )
    assert view.accessibleDescription().startswith("Too big to read whole")
    seen = view.mapToScene(view.viewport().rect()).boundingRect()
    assert seen.contains(view.nodes()[chain[200]].sceneBoundingRect())
    # a lower minimum: the whole chain fits
    view.min_legible_scale = 0.01
    assert view.fit_note() == "" and view.zoom() < 0.2


def test_graph_view_refuses_bad_settings(qtbot, make_manager):
    m = make_manager()
    view = TaskGraphView(m)
    qtbot.addWidget(view)
    with pytest.raises(ValueError, match=r"^collapse_threshold must be an int >= 0, got -1$"):
        view.collapse_threshold = -1
    with pytest.raises(ValueError, match=r"^collapse_threshold must be an int >= 0, got 2.5$"):
        view.collapse_threshold = 2.5
    with pytest.raises(
        ValueError, match=r"^min_legible_scale must be a number in \(0, 1\], got 0$"
    ):
        view.min_legible_scale = 0
    with pytest.raises(ValueError, match=r"got 1.5$"):
        view.min_legible_scale = 1.5
    with pytest.raises(TypeError, match=r"^on must be a bool, got 'yes'$"):
        view.set_neighbours_only("yes")
    with pytest.raises(ValueError, match=r"^group must not be None: tasks without a group"):
        view.collapse_group(None)
    with pytest.raises(TypeError, match="unhashable"):
        view.expand_group([1])
    assert view.collapse_threshold == 20 and view.min_legible_scale == 0.6


def test_group_nodes_show_the_groups_display_name(qtbot, make_manager):
    m = make_manager()
    _pipeline(m)
    if not hasattr(m, "set_group_name"):
        pytest.skip("the manager has no group names yet")
    view = _shown_view(qtbot, m)
    assert view.group_nodes()["io"].title() == "io · 25 tasks"
    m.set_group_name("io", "Read files")
    assert view.group_nodes()["io"].text() == "Read files · 25 queued"
    view.refresh()
    assert view.group_nodes()["io"].title() == "Read files · 25 tasks"


def test_relayouts_read_and_lay_out_on_a_worker_thread(qtbot, make_manager):
    m = make_manager()
    threads = []
    tasks = m.tasks

    def recorded(*args, **kwargs):
        threads.append(threading.current_thread())
        return tasks(*args, **kwargs)

    m.tasks = recorded
    view = TaskGraphView(m)
    qtbot.addWidget(view)
    assert threads == [threading.main_thread()]  # refresh(): now, on this thread
    with qtbot.waitSignal(view.laid_out, timeout=5000):
        uid = m.options(name="new").submit(quick).uid
    assert uid in view.nodes()
    assert len(threads) == 2 and threads[1] is not threading.main_thread()
    assert threads[1].name == "bgtasks-graph-layout" and threads[1].daemon
