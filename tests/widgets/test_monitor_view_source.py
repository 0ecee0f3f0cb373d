"""TaskMonitor: the view reads the model itself while nothing is filtered or
sorted, the filter proxy otherwise; a switch keeps what the user sees."""

from __future__ import annotations

import time

import pytest
from _monitors import synced
from PySide6.QtCore import QItemSelection, QItemSelectionModel, QPoint, Qt

from bgtasks import TaskState
from bgtasks.widgets import TaskModel, TaskMonitor


def ok(x=None):
    return x


def shown(qtbot, manager, grouped: bool) -> TaskMonitor:
    widget = TaskMonitor(manager, grouped=grouped)
    qtbot.addWidget(widget)
    widget.resize(900, 500)
    widget.show()
    return widget


def group_rows(widget: TaskMonitor) -> dict[str, bool]:
    """Each group row the view shows, and whether it is expanded."""
    rows = widget.view.model()
    out = {}
    for row in range(rows.rowCount()):
        index = rows.index(row, 0)
        out[index.data(TaskModel.GroupRole)] = widget.view.isExpanded(index)
    return out


def current_uid(widget: TaskMonitor):
    return widget.view.currentIndex().data(TaskModel.UidRole)


@pytest.mark.parametrize("grouped", [False, True], ids=["flat", "grouped"])
def test_the_view_reads_the_model_itself_until_a_filter_or_a_sort_is_set(
    qtbot, make_manager, grouped
):
    manager = make_manager()
    widget = shown(qtbot, manager, grouped)
    handles = [manager.options(name=f"t{i}", group="g").submit(ok, i) for i in range(3)]
    qtbot.waitUntil(lambda: synced(widget) and widget.model.task_count() == 3, timeout=5000)
    # the proxy is detached: no filterAcceptsRow() per inserted row, no index mapping
    assert widget.view.model() is widget.model
    assert widget.proxy.sourceModel() is None
    widget.text_edit.setText("t1")
    assert widget.view.model() is widget.proxy
    assert widget.proxy.sourceModel() is widget.model
    assert widget.select_uid(handles[1].uid)
    assert widget.selected_uids() == [handles[1].uid]
    widget.text_edit.clear()
    assert widget.view.model() is widget.model and widget.proxy.sourceModel() is None
    assert widget.selected_uids() == [handles[1].uid]  # kept across the switch
    widget.state_combo.setCurrentIndex(widget.state_combo.findData(TaskState.QUEUED))
    assert widget.view.model() is widget.proxy
    widget.state_combo.setCurrentIndex(0)
    assert widget.view.model() is widget.model
    widget.view.sortByColumn(TaskModel.NameColumn, Qt.SortOrder.DescendingOrder)
    assert widget.view.model() is widget.proxy  # sorting needs it too
    header = widget.view.header() if grouped else widget.view.horizontalHeader()
    header.setSortIndicator(-1, Qt.SortOrder.AscendingOrder)  # back to task order
    assert widget.view.model() is widget.model
    assert widget._source.switches == 6
    assert widget.selected_uids() == [handles[1].uid]


def test_a_switch_keeps_selection_current_row_and_expanded_groups(qtbot, make_manager):
    manager = make_manager()  # never started: every task stays queued
    widget = shown(qtbot, manager, grouped=True)
    tasks = {
        f"{g}{i}": manager.options(name=f"{g}{i}", group=g.upper()).submit(ok)
        for g in "abc"
        for i in range(3)
    }
    qtbot.waitUntil(lambda: synced(widget) and widget.model.task_count() == 9, timeout=5000)
    assert group_rows(widget) == {"A": True, "B": True, "C": True}
    widget.view.collapse(widget.view.model().index(1, 0))  # B
    assert widget.select_uid(tasks["c1"].uid)  # current and selected
    extra = widget._source.from_model(widget.model.index_of(tasks["a0"].uid))
    widget.view.selectionModel().select(
        QItemSelection(extra, extra),
        QItemSelectionModel.SelectionFlag.Select | QItemSelectionModel.SelectionFlag.Rows,
    )
    assert set(widget.selected_uids()) == {tasks["a0"].uid, tasks["c1"].uid}
    assert widget.cancel_button.isEnabled()

    widget.view.sortByColumn(TaskModel.NameColumn, Qt.SortOrder.DescendingOrder)
    assert widget.view.model() is widget.proxy
    assert list(group_rows(widget)) == ["C", "B", "A"]  # sorted: group labels, descending
    assert group_rows(widget) == {"C": True, "B": False, "A": True}
    assert set(widget.selected_uids()) == {tasks["a0"].uid, tasks["c1"].uid}
    assert current_uid(widget) == tasks["c1"].uid

    widget.view.header().setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
    widget.text_edit.setText("a")  # group A's tasks only (their group's label is "A")
    assert widget.view.model() is widget.proxy
    assert group_rows(widget) == {"A": True}
    assert widget.selected_uids() == [tasks["a0"].uid]  # c1 went out of view: deselected
    widget.view.collapse(widget.view.model().index(0, 0))  # A, while filtered

    widget.text_edit.clear()
    assert widget.view.model() is widget.model
    # B stayed collapsed while hidden, C expanded, and A is as it was left
    assert group_rows(widget) == {"A": False, "B": False, "C": True}
    assert widget.selected_uids() == [tasks["a0"].uid]
    assert widget.cancel_button.isEnabled() and not widget.retry_button.isEnabled()
    widget.view.selectionModel().clearSelection()
    assert not widget.cancel_button.isEnabled()  # the tally follows the new selection model


def test_a_switch_keeps_the_row_at_the_top(qtbot, make_manager):
    manager = make_manager()
    widget = shown(qtbot, manager, grouped=False)
    handles = [manager.options(name=f"task {i:03}").submit(ok) for i in range(300)]
    qtbot.waitUntil(lambda: synced(widget) and widget.model.task_count() == 300, timeout=5000)
    view = widget.view
    view.executeDelayedItemsLayout()  # the scroll bar's range covers the 300 rows
    view.scrollTo(
        widget._source.from_model(widget.model.index_of(handles[150].uid)),
        view.ScrollHint.PositionAtTop,
    )

    def top_uid():
        return view.indexAt(QPoint(0, 0)).data(TaskModel.UidRole)

    assert top_uid() == handles[150].uid
    widget.state_combo.setCurrentIndex(widget.state_combo.findData(TaskState.QUEUED))
    assert view.model() is widget.proxy and top_uid() == handles[150].uid
    widget.state_combo.setCurrentIndex(0)
    assert view.model() is widget.model and top_uid() == handles[150].uid


def test_new_groups_start_expanded_after_switches_and_in_a_sorted_view(qtbot, make_manager):
    # The monitor expands a new group row once the view's model has it: after a
    # switch, its slot must still run after the view's and the proxy's own.
    manager = make_manager()
    widget = shown(qtbot, manager, grouped=True)
    manager.options(name="x", group="b").submit(ok)
    qtbot.waitUntil(lambda: synced(widget) and widget.model.task_count() == 1, timeout=5000)
    widget.text_edit.setText("x")
    widget.text_edit.clear()
    manager.options(name="y", group="c").submit(ok)
    qtbot.waitUntil(lambda: synced(widget) and widget.model.task_count() == 2, timeout=5000)
    assert widget.view.model() is widget.model
    assert group_rows(widget) == {"b": True, "c": True}
    widget.view.sortByColumn(TaskModel.NameColumn, Qt.SortOrder.AscendingOrder)
    manager.options(name="z", group="a").submit(ok)
    qtbot.waitUntil(lambda: synced(widget) and widget.model.task_count() == 3, timeout=5000)
    assert widget.view.model() is widget.proxy
    assert group_rows(widget) == {"a": True, "b": True, "c": True}


def test_a_switch_keeps_a_large_selection_as_few_ranges(qtbot, make_manager):
    # Every paint tests each cell against each selected range, and every row
    # insertion or removal walks them: a select-all must come back as a range
    # per run of rows, not one per row.
    manager = make_manager()
    widget = shown(qtbot, manager, grouped=False)
    handles = [manager.options(name=f"task {i}").submit(ok) for i in range(2000)]
    qtbot.waitUntil(lambda: synced(widget) and widget.model.task_count() == 2000, timeout=10000)
    widget.view.selectAll()
    assert widget.view.selectionModel().selection().size() == 1
    widget.text_edit.setText("task")  # every task matches
    assert widget.view.model() is widget.proxy
    assert widget.view.selectionModel().selection().size() == 1
    widget.text_edit.setText("task 1")  # task 1, 10-19, 100-199, 1000-1999: 4 runs of rows
    widget.text_edit.clear()
    assert widget.view.model() is widget.model
    ranges = widget.view.selectionModel().selection()
    assert ranges.size() == 4, [(r.top(), r.bottom()) for r in ranges]
    assert len(widget.selected_uids()) == 1 + 10 + 100 + 1000
    assert set(widget.selected_uids()) == {
        h.uid for h in handles if manager.info(h.uid).name.startswith("task 1")
    }
    assert widget.cancel_button.isEnabled()  # every one is queued: the tally has them


def visible_uids(widget: TaskMonitor) -> set[int]:
    rows = widget.view.model()
    out = set()
    parents = [None]
    if widget.model.grouped:
        parents = [rows.index(r, 0) for r in range(rows.rowCount())]
    for parent in parents:
        args = () if parent is None else (parent,)
        for r in range(rows.rowCount(*args)):
            out.add(rows.index(r, 0, *args).data(TaskModel.UidRole))
    return out


@pytest.mark.parametrize("seed", range(4))
def test_random_filters_sorts_and_selections_keep_the_view_consistent(qtbot, make_manager, seed):
    # Filters, sorts, selections, expansions and new tasks in a random order:
    # the view reads the proxy exactly while it filters or sorts (detached
    # otherwise), the selection survives a switch where its rows stay shown,
    # and the buttons follow the selection.
    import random

    rng = random.Random(seed)
    manager = make_manager()  # never started: states stay as submitted
    widget = shown(qtbot, manager, grouped=seed % 2 == 1)
    header = widget.view.header() if widget.model.grouped else widget.view.horizontalHeader()

    def submit(n: int) -> None:
        for _ in range(n):
            g = rng.choice("abc")
            manager.options(name=f"{g}{rng.randrange(30)}", group=g).submit(ok)

    submit(20)
    for step in range(60):
        qtbot.waitUntil(lambda: synced(widget), timeout=5000)
        before = set(widget.selected_uids())
        op = rng.choice(["text", "state", "sort", "unsort", "select", "collapse", "submit"])
        if op == "text":
            widget.text_edit.setText(rng.choice(["", "", "a", "b1", "c", "zz"]))
        elif op == "state":
            combo = widget.state_combo
            combo.setCurrentIndex(rng.choice([0, 0, combo.findData(TaskState.QUEUED)]))
        elif op == "sort":
            order = rng.choice([Qt.SortOrder.AscendingOrder, Qt.SortOrder.DescendingOrder])
            widget.view.sortByColumn(rng.randrange(TaskModel.ErrorColumn + 1), order)
        elif op == "unsort":
            header.setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
        elif op == "select":
            shown_uids = sorted(visible_uids(widget) - {None})
            for uid in rng.sample(shown_uids, min(len(shown_uids), rng.randrange(1, 6))):
                index = widget._source.from_model(widget.model.index_of(uid))
                widget.view.selectionModel().select(
                    index,
                    QItemSelectionModel.SelectionFlag.Toggle
                    | QItemSelectionModel.SelectionFlag.Rows,
                )
        elif op == "collapse" and widget.model.grouped:
            rows = widget.view.model()
            if rows.rowCount():
                index = rows.index(rng.randrange(rows.rowCount()), 0)
                widget.view.setExpanded(index, not widget.view.isExpanded(index))
        elif op == "submit":
            submit(rng.randrange(1, 6))
        qtbot.waitUntil(lambda: synced(widget), timeout=5000)
        wanted_proxy = widget.proxy.is_filtering() or header.sortIndicatorSection() >= 0
        where = f"step {step}, {op}"
        assert (widget.view.model() is widget.proxy) == wanted_proxy, where
        assert widget.proxy.sourceModel() is (widget.model if wanted_proxy else None), where
        selected = set(widget.selected_uids())
        shown_now = visible_uids(widget)
        assert selected <= shown_now, where
        if op in ("text", "state", "sort", "unsort"):
            assert selected == before & shown_now, where  # kept where still shown
        assert widget.cancel_button.isEnabled() == bool(selected), where  # all queued


@pytest.mark.parametrize("grouped", [False, True], ids=["flat", "grouped"])
def test_the_columns_keep_their_widths_across_switches(qtbot, make_manager, grouped):
    # The monitor's widths were once set before its view had a model (so on
    # no column at all): the grouped State column cut "4 completed, ...".  A
    # switch must keep them, and a user's.
    manager = make_manager()
    widget = shown(qtbot, manager, grouped)
    manager.options(name="a task", group="g").submit(ok)
    qtbot.waitUntil(lambda: synced(widget) and widget.model.task_count() == 1, timeout=5000)
    view = widget.view
    assert view.columnWidth(TaskModel.NameColumn) == 180
    assert view.columnWidth(TaskModel.MessageColumn) == 180
    assert view.columnWidth(TaskModel.StateColumn) == (150 if grouped else 100)
    view.setColumnWidth(TaskModel.GroupColumn, 123)  # as a user drags it
    widths = [view.columnWidth(c) for c in range(TaskModel.ErrorColumn)]
    widget.text_edit.setText("task")
    assert view.model() is widget.proxy
    assert [view.columnWidth(c) for c in range(TaskModel.ErrorColumn)] == widths
    view.sortByColumn(TaskModel.NameColumn, Qt.SortOrder.DescendingOrder)
    widget.text_edit.clear()
    header = view.header() if grouped else view.horizontalHeader()
    header.setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
    assert view.model() is widget.model
    assert [view.columnWidth(c) for c in range(TaskModel.ErrorColumn)] == widths
    assert header.stretchLastSection()


@pytest.mark.parametrize("grouped", [False, True], ids=["flat", "grouped"])
def test_the_columns_stay_put_as_rows_come_and_go(qtbot, make_manager, grouped):
    # A scroll bar that came with the rows (and went with them) moved the
    # columns sideways and resized the viewport, a relayout and a full repaint.
    manager = make_manager()
    widget = shown(qtbot, manager, grouped)
    qtbot.waitExposed(widget)
    width = widget.view.viewport().width()
    handles = [manager.options(name=f"t{i}", group=i % 3).submit(ok) for i in range(200)]
    qtbot.waitUntil(lambda: synced(widget) and widget.model.task_count() == 200, timeout=5000)
    widget.view.executeDelayedItemsLayout()
    assert widget.view.verticalScrollBar().maximum() > 0  # more rows than fit
    assert widget.view.viewport().width() == width
    for handle in handles:
        handle.cancel()
    widget.clear_finished()
    qtbot.waitUntil(lambda: synced(widget) and widget.model.task_count() == 0, timeout=5000)
    widget.view.executeDelayedItemsLayout()
    assert widget.view.viewport().width() == width


def test_filters_set_on_the_proxy_directly_reach_the_view(qtbot, make_manager):
    # monitor.proxy is public: code that filters through it, not through the
    # filter bar, must still see the view filtered (a detached proxy filtered
    # nothing anyone saw).
    manager = make_manager()
    widget = shown(qtbot, manager, grouped=True)
    handles = [manager.options(name=f"t{i}", group="g").submit(ok) for i in range(3)]
    qtbot.waitUntil(lambda: synced(widget) and widget.model.task_count() == 3, timeout=5000)
    widget.proxy.set_text("t1")
    assert widget.view.model() is widget.proxy
    assert visible_uids(widget) == {handles[1].uid}
    widget.proxy.set_state(TaskState.QUEUED)
    widget.proxy.set_text("")
    assert widget.view.model() is widget.proxy  # the state filter is still set
    assert visible_uids(widget) == {h.uid for h in handles}
    widget.proxy.set_state(None)
    assert widget.view.model() is widget.model
    assert widget.proxy.sourceModel() is None


def test_sorting_the_proxy_directly_sorts_the_view(qtbot, make_manager):
    # proxy.sort() on a detached proxy sorted nothing anyone saw: it now sets
    # the header's sort indicator, as a click would.
    manager = make_manager()
    widget = shown(qtbot, manager, grouped=False)
    for name in ("pear", "apple", "fig"):
        manager.options(name=name).submit(ok)
    qtbot.waitUntil(lambda: synced(widget) and widget.model.task_count() == 3, timeout=5000)
    widget.proxy.sort(TaskModel.NameColumn, Qt.SortOrder.DescendingOrder)
    rows = widget.view.model()
    assert rows is widget.proxy
    assert [rows.index(r, 0).data() for r in range(3)] == ["pear", "fig", "apple"]
    header = widget.view.horizontalHeader()
    assert (header.sortIndicatorSection(), header.sortIndicatorOrder()) == (
        TaskModel.NameColumn,
        Qt.SortOrder.DescendingOrder,
    )
    widget.proxy.sort(-1)  # task order again: the view reads the model
    assert widget.view.model() is widget.model
    assert header.sortIndicatorSection() == -1


def flaky(i):
    time.sleep(0.001)  # the flood lasts long enough for a few hundred changes
    if i % 7 == 0:
        raise ValueError(f"task {i} failed")
    return i


@pytest.mark.parametrize("grouped", [False, True], ids=["flat", "grouped"])
def test_switching_during_a_flood(qtbot, make_manager, grouped):
    # Filters, sorts and selections changed every few milliseconds while
    # 3,000 tasks run, fail and leave the window of finished rows: no error
    # in any slot (pytest-qt fails the test on one), and at the end the view
    # is on the right model with a selection it shows.
    import random

    from PySide6.QtCore import QTimer

    rng = random.Random(7)
    manager = make_manager(max_threads=4)
    widget = TaskMonitor(manager, grouped=grouped, finished_rows=300)
    qtbot.addWidget(widget)
    widget.resize(900, 500)
    widget.show()
    header = widget.view.header() if grouped else widget.view.horizontalHeader()
    handles = [manager.options(group=i // 100).submit(flaky, i) for i in range(3000)]
    ops = [0]

    def poke():
        ops[0] += 1
        op = rng.randrange(6)
        if op == 0:
            widget.text_edit.setText(rng.choice(["", "", "1", "failed", "zz"]))
        elif op == 1:
            combo = widget.state_combo
            combo.setCurrentIndex(rng.randrange(combo.count()))
        elif op == 2:
            combo = widget.group_combo
            combo.setCurrentIndex(rng.randrange(combo.count()))
        elif op == 3:
            widget.view.sortByColumn(rng.randrange(7), Qt.SortOrder.DescendingOrder)
        elif op == 4:
            header.setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
        else:
            rows = widget.view.model()
            if rows.rowCount():
                widget.view.selectionModel().select(
                    rows.index(rng.randrange(rows.rowCount()), 0),
                    QItemSelectionModel.SelectionFlag.Toggle
                    | QItemSelectionModel.SelectionFlag.Rows,
                )

    timer = QTimer()
    timer.timeout.connect(poke)
    timer.start(5)
    manager.start_processing()
    qtbot.waitUntil(lambda: all(h.done() for h in handles), timeout=60000)
    timer.stop()
    errors = [h.exception() for h in handles]  # observed: no "dropped failure" logs
    assert sum(e is not None for e in errors) == len(range(0, 3000, 7))
    qtbot.waitUntil(lambda: not widget.model.has_pending(), timeout=10000)
    assert ops[0] > 50, ops
    wanted_proxy = widget.proxy.is_filtering() or header.sortIndicatorSection() >= 0
    assert (widget.view.model() is widget.proxy) == wanted_proxy
    assert widget.proxy.sourceModel() is (widget.model if wanted_proxy else None)
    selected = set(widget.selected_uids())
    assert selected <= visible_uids(widget)
    failed = {u for u in selected if manager.info(u).state is TaskState.FAILED}
    assert widget.retry_button.isEnabled() == bool(failed)
    widget.text_edit.clear()
    widget.state_combo.setCurrentIndex(0)
    widget.group_combo.setCurrentIndex(0)
    header.setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
    assert widget.view.model() is widget.model and widget.proxy.sourceModel() is None
    assert widget.model.task_count() == 300  # the window of finished rows


def test_selection_changed_follows_the_selection_across_switches(qtbot, make_manager):
    # The view's selection model is replaced at each switch: code that followed
    # view.selectionModel() went deaf after the first filter.  The monitor's own
    # signal keeps following.
    manager = make_manager()
    widget = shown(qtbot, manager, grouped=False)
    handles = [manager.options(name=f"t{i}").submit(ok) for i in range(3)]
    qtbot.waitUntil(lambda: synced(widget) and widget.model.task_count() == 3, timeout=5000)
    seen: list[list[int]] = []
    widget.selection_changed.connect(lambda: seen.append(widget.selected_uids()))
    with qtbot.waitSignal(widget.selection_changed, timeout=1000):
        widget.select_uid(handles[0].uid)
    assert seen[-1] == [handles[0].uid]
    widget.text_edit.setText("t")  # a switch to the proxy: a new selection model
    assert widget.view.model() is widget.proxy
    with qtbot.waitSignal(widget.selection_changed, timeout=1000):
        widget.select_uid(handles[2].uid)
    assert seen[-1] == [handles[2].uid]
    widget.text_edit.setText("t1")  # the selected row is filtered out
    assert seen[-1] == []
    widget.text_edit.clear()  # back to the model
    widget.select_uid(handles[0].uid)
    assert seen[-1] == [handles[0].uid]
    count = len(seen)
    widget.text_edit.setText("t2")  # a switch whose new model does not show the selected row
    assert len(seen) > count and seen[-1] == []
    assert widget.selected_uids() == []
