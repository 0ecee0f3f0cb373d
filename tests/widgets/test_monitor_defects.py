"""TaskMonitor regressions (issue 14): retry of keyed tasks, refreshes with a big
selection, the group filter's stale groups, and a monitor dropped without deleteLater."""

from __future__ import annotations

import gc
import logging
import weakref

import pytest
from _monitors import shown_monitor, synced
from PySide6.QtCore import Qt

from bgtasks import TaskState
from bgtasks.widgets import TaskGraphView, TaskModel, TaskMonitor, TaskProgressDialog


def ok(x=None):
    return x


def boom():
    raise ValueError("it broke")


def visible(monitor: TaskMonitor) -> list[int]:
    """The task uids of the rows the view shows, in order."""
    rows = monitor.view.model()
    uids = []
    for row in range(rows.rowCount()):
        index = rows.index(row, 0)
        children = rows.rowCount(index)
        for child in range(children) if children else [None]:
            cell = index if child is None else rows.index(child, 0, index)
            uids.append(cell.data(TaskModel.UidRole))
    return uids


def combo_items(monitor: TaskMonitor) -> list[str]:
    combo = monitor.group_combo
    return [combo.itemText(i) for i in range(combo.count())]


@pytest.fixture
def monitor(qtbot, make_manager):
    return shown_monitor(qtbot, make_manager(max_threads=2))


# ---------------------------------------------------------------------- retry


def test_retry_retries_what_it_can_and_explains_keyed_tasks(qtbot, monitor, caplog):
    """Regression: Retry raised ValueError ("function was released") out of its
    slot on a keyed task, skipping the rest of the selection."""
    manager = monitor.model.manager
    keyed = manager.options(name="keyed", key="k").submit(boom)  # first in view order
    plain = manager.options(name="plain").submit(boom)
    manager.start_processing()
    qtbot.waitUntil(lambda: keyed.done() and plain.done() and synced(monitor), timeout=5000)
    assert monitor.model.uids() == [keyed.uid, plain.uid]
    monitor.view.selectAll()
    assert monitor.selected_uids() == [keyed.uid, plain.uid]
    assert monitor.retry_button.isEnabled()  # the plain task can run again
    with caplog.at_level(logging.WARNING, logger="bgtasks"):
        qtbot.mouseClick(monitor.retry_button, Qt.MouseButton.LeftButton)  # no exception
    qtbot.waitUntil(lambda: manager.info(plain.uid).attempts == 2, timeout=5000)
    assert manager.task_state(keyed.uid) is TaskState.FAILED
    assert manager.info(keyed.uid).attempts == 1
    reason = f"task {keyed.uid} can no longer be retried: its function was released"
    assert monitor.status_label.text() == "Retried 1 task; 1 could not be retried"
    assert monitor.status_label.toolTip() == reason
    records = [r for r in caplog.records if r.getMessage().startswith("TaskMonitor")]
    assert [(r.levelno, r.getMessage()) for r in records] == [
        (logging.WARNING, f"TaskMonitor: 1 of 2 selected tasks could not be retried: {reason}")
    ]

    qtbot.waitUntil(lambda: manager.info(plain.uid).state.is_terminal, timeout=5000)
    qtbot.waitUntil(lambda: synced(monitor), timeout=5000)
    assert "1 selected task cannot be retried" in monitor.retry_button.toolTip()
    assert monitor.select_uid(keyed.uid)  # only the keyed one: nothing to retry
    assert not monitor.retry_button.isEnabled()
    assert "1 selected task cannot be retried" in monitor.retry_button.toolTip()
    assert monitor.retry_selected() == 0


def test_retry_of_a_selection_goes_on_past_a_task_forgotten_meanwhile(qtbot, monitor):
    manager = monitor.model.manager
    handles = [manager.options(name=f"t{i}").submit(boom) for i in range(3)]
    manager.start_processing()
    qtbot.waitUntil(lambda: all(h.done() for h in handles) and synced(monitor), timeout=5000)
    assert [str(h.exception()) for h in handles] == ["it broke"] * 3
    monitor.view.selectAll()
    manager.keep_finished = 0  # the manager forgets them; no pass has run yet
    assert monitor.model.task_count() == 3
    assert monitor.retry_selected() == 0  # every one was forgotten: none retried, no error
    assert monitor.status_label.text() == "Retried 0 tasks; 3 could not be retried"


# ---------------------------------------------------------------------- big selections


def test_a_refresh_costs_the_changed_rows_not_the_selected_ones(qtbot, monitor):
    """Regression: with every row selected each refresh read every selected row
    (20,000 selected: 444 ms a refresh)."""
    manager = monitor.model.manager
    model = monitor.model
    model.refresh_interval = 60_000  # passes only when the test asks
    handles = [manager.options(name=f"q{i}").submit(ok, i) for i in range(400)]
    qtbot.waitUntil(lambda: len(model.pending().to_add) == 400, timeout=5000)
    model.flush()
    monitor.view.selectAll()
    assert len(monitor.selected_uids()) == 400
    assert monitor.cancel_button.isEnabled() and not monitor.retry_button.isEnabled()

    reads: list[int] = []
    task_info = model.task_info
    model.task_info = lambda uid: reads.append(uid) or task_info(uid)
    selected = monitor.selected_uids
    monitor.selected_uids = lambda: pytest.fail("a refresh read the whole selection")
    manager.stop_task(handles[7].uid)
    qtbot.waitUntil(lambda: handles[7].uid in model.pending().to_refresh, timeout=5000)
    with qtbot.waitSignal(model.batch_applied, timeout=5000):
        model.apply_pass()
    assert len(reads) <= 2  # the changed row, not the 400 selected
    assert monitor.retry_button.isEnabled()  # the cancelled task can run again
    assert monitor.cancel_button.isEnabled()

    # every selected row ends: the buttons follow, still without reading the selection
    manager.stop_all_tasks()
    qtbot.waitUntil(lambda: len(model.pending().to_refresh) == 399, timeout=5000)
    model.flush()
    assert not monitor.cancel_button.isEnabled() and monitor.retry_button.isEnabled()
    monitor.selected_uids = selected
    model.task_info = task_info


def test_buttons_follow_selection_changes_rows_leaving_and_filters(qtbot, monitor):
    manager = monitor.model.manager
    bad = [manager.options(name=f"bad {i}", group="B").submit(boom) for i in range(2)]
    manager.start_processing()
    qtbot.waitUntil(lambda: all(h.done() for h in bad) and synced(monitor), timeout=5000)
    manager.pause_processing()
    queued = manager.options(name="waits", group="Q").submit(ok)
    qtbot.waitUntil(lambda: synced(monitor), timeout=5000)
    monitor.view.selectAll()
    assert monitor.cancel_button.isEnabled() and monitor.retry_button.isEnabled()
    # the filter hides the failed rows: they leave the selection
    monitor.group_combo.setCurrentIndex(monitor.group_combo.findData("Q"))
    assert monitor.selected_uids() == [queued.uid]
    assert monitor.cancel_button.isEnabled() and not monitor.retry_button.isEnabled()
    monitor.group_combo.setCurrentIndex(0)
    monitor.view.clearSelection()
    assert not monitor.cancel_button.isEnabled() and not monitor.retry_button.isEnabled()
    assert monitor.select_uid(bad[0].uid)
    assert monitor.retry_button.isEnabled() and not monitor.cancel_button.isEnabled()
    # the selected row goes (the manager forgets it): nothing left to retry
    manager.clear_finished()
    qtbot.waitUntil(lambda: synced(monitor), timeout=5000)
    assert monitor.selected_uids() == []
    assert not monitor.retry_button.isEnabled()


# ---------------------------------------------------------------------- group filter


def test_group_filter_lists_the_groups_shown_in_natural_order(qtbot, monitor):
    """Regression: groups were listed in order of appearance and never left
    (44 entries for 13 groups)."""
    manager = monitor.model.manager
    for group in (1, 5, 10, 2, "beta", "Alpha", None):
        manager.options(group=group).submit(ok)
    manager.start_processing()
    qtbot.waitUntil(lambda: synced(monitor) and monitor.model.task_count() == 7, timeout=5000)
    assert combo_items(monitor) == [
        "All groups",
        "1",
        "2",
        "5",
        "10",
        "(no group)",
        "Alpha",
        "beta",
    ]
    manager.clear_finished()
    later = manager.options(group=3).submit(ok)
    qtbot.waitUntil(lambda: later.done() and synced(monitor), timeout=5000)
    qtbot.waitUntil(lambda: combo_items(monitor) == ["All groups", "3"], timeout=5000)


def test_group_filter_keeps_the_chosen_group_while_it_is_chosen(qtbot, monitor):
    manager = monitor.model.manager
    first = manager.options(group="a").submit(ok)
    manager.options(group="b").submit(ok)
    manager.start_processing()
    qtbot.waitUntil(lambda: synced(monitor) and monitor.model.task_count() == 2, timeout=5000)
    combo = monitor.group_combo
    combo.setCurrentIndex(combo.findData("a"))
    assert monitor.proxy.rowCount() == 1
    manager.clear_finished()
    manager.options(group="c").submit(ok)
    qtbot.waitUntil(lambda: synced(monitor) and monitor.model.groups() == ["c"], timeout=5000)
    # "a" has no task left but stays the filter: the list never changes it under the user
    assert combo_items(monitor) == ["All groups", "a", "c"]
    assert combo.currentData() == "a" and monitor.proxy.rowCount() == 0
    combo.setCurrentIndex(combo.findData("c"))
    qtbot.waitUntil(lambda: combo_items(monitor) == ["All groups", "c"], timeout=5000)
    assert combo.currentData() == "c"
    assert first.done()


def test_the_monitor_shows_group_names_and_follows_renames(qtbot, monitor):
    manager = monitor.model.manager
    manager.set_group_name(2, "Import photos")
    a = manager.options(name="a", group=2).submit(ok)
    b = manager.options(name="b", group=10).submit(ok)
    manager.start_processing()
    qtbot.waitUntil(lambda: a.done() and b.done() and synced(monitor), timeout=5000)
    assert combo_items(monitor) == ["All groups", "10", "Import photos"]
    group_cell = monitor.model.index_of(a.uid, TaskModel.GroupColumn)
    assert group_cell.data() == "Import photos"
    monitor.text_edit.setText("import")  # the text filter matches the name
    assert monitor.proxy.rowCount() == 1
    monitor.text_edit.clear()
    manager.set_group_name(10, "Export")
    assert combo_items(monitor) == ["All groups", "Export", "Import photos"]
    assert monitor.model.index_of(b.uid, TaskModel.GroupColumn).data() == "Export"
    manager.set_group_name(2, "")
    assert combo_items(monitor) == ["All groups", "2", "Export"]
    assert group_cell.data() == "2"


def test_grouped_monitor_shows_group_rows_by_name_and_sorts_them_naturally(qtbot, make_manager):
    manager = make_manager()
    widget = TaskMonitor(manager, grouped=True)
    qtbot.addWidget(widget)
    for group in (10, 2, 1):
        manager.options(group=group).submit(ok)
    manager.set_group_name(1, "zeta")
    qtbot.waitUntil(lambda: synced(widget) and widget.view.model().rowCount() == 3, timeout=5000)
    widget.view.sortByColumn(0, Qt.SortOrder.AscendingOrder)
    names = [widget.view.model().index(r, 0).data() for r in range(3)]
    assert names == ["2", "10", "zeta"]


# ---------------------------------------------------------------------- lifetime


def test_monitors_dropped_without_delete_later_are_freed(qtbot, make_manager):
    """Regression: a lambda over ``self`` held by a C++ connection kept every
    dropped monitor, its model still running passes (10 cycles: 11 models)."""
    manager = make_manager(start_processing=True)
    models: list[weakref.ref[TaskModel]] = []
    for cycle in range(10):
        widget = TaskMonitor(manager, grouped=bool(cycle % 2))
        widget.show()
        handle = manager.options(group=cycle).submit(ok, cycle)
        qtbot.waitUntil(lambda w=widget, h=handle: h.done() and synced(w), timeout=5000)
        manager.set_group_name(cycle, f"cycle {cycle}")
        if cycle % 3:  # the view switched to the proxy and back, or left on it
            widget.text_edit.setText("cycle")
            widget.view.sortByColumn(0, Qt.SortOrder.DescendingOrder)
            widget.text_edit.clear()
            assert widget.view.model() is widget.proxy
            if cycle % 3 == 1:
                widget.view.sortByColumn(-1, Qt.SortOrder.AscendingOrder)
                assert widget.view.model() is widget.model
        widget.close()
        models.append(weakref.ref(widget.model))
        del widget
        gc.collect()
    gc.collect()
    qtbot.waitUntil(lambda: not any(ref() is not None for ref in models), timeout=5000)


def test_grouped_model_keeps_group_rows_in_natural_order_and_moves_a_renamed_one(
    qtbot, make_manager
):
    """Regression: group rows came in the order groups first appeared (1, 5, 2, ...)."""
    from PySide6.QtTest import QAbstractItemModelTester

    manager = make_manager()
    model = TaskModel(manager, grouped=True, sort_groups=True)
    tester = QAbstractItemModelTester(model, QAbstractItemModelTester.FailureReportingMode.Fatal)
    for group in (1, 5, 2, 10, "beta", "Alpha", None, 0):
        manager.options(group=group).submit(ok)
    qtbot.waitUntil(lambda: len(model.pending().to_add) == 8, timeout=5000)
    model.flush()

    def rows() -> list[object]:
        return [model.index(r, 0).data(TaskModel.GroupRole) for r in range(model.rowCount())]

    assert rows() == [0, 1, 2, 5, 10, None, "Alpha", "beta"]  # "(no group)" sorts as text
    manager.set_group_name(10, "aardvark")  # moves up among the names
    assert rows() == [0, 1, 2, 5, None, 10, "Alpha", "beta"]
    assert model.index(5, 0).data() == "aardvark"
    plain = TaskModel(manager, grouped=True)  # without sort_groups: as groups first appeared
    assert [plain.index(r, 0).data(TaskModel.GroupRole) for r in range(plain.rowCount())] == [
        1,
        5,
        2,
        10,
        "beta",
        "Alpha",
        None,
        0,
    ]
    manager.set_group_name(0, "zebra")  # moves to the end
    assert rows() == [1, 2, 5, None, 10, "Alpha", "beta", 0]
    manager.set_group_name(2, "2")  # same place
    assert rows() == [1, 2, 5, None, 10, "Alpha", "beta", 0]
    later = manager.options(group=3).submit(ok)
    qtbot.waitUntil(lambda: later.uid in model.pending().to_add, timeout=5000)
    model.flush()
    assert rows() == [1, 2, 3, 5, None, 10, "Alpha", "beta", 0]
    # every task row is still under its group
    for r in range(model.rowCount()):
        group = model.index(r, 0)
        for c in range(model.rowCount(group)):
            assert model.index(c, 0, group).data(TaskModel.GroupRole) == group.data(
                TaskModel.GroupRole
            )
    del tester


class _NoText:
    """A group key whose str() and repr() raise."""

    def __str__(self) -> str:
        raise RuntimeError("no text")

    def __repr__(self) -> str:
        raise RuntimeError("no text")


@pytest.mark.parametrize("grouped", [False, True], ids=["flat", "grouped"])
def test_a_group_whose_str_raises_is_shown_by_its_type(qtbot, make_manager, grouped):
    # str(group) raised in every paint of the group cell (an error per paint on
    # stderr) and in the monitor's refresh, which then never updated its
    # summary or buttons.
    manager = make_manager(start_processing=True)
    widget = TaskMonitor(manager, grouped=grouped)
    qtbot.addWidget(widget)
    widget.show()
    key = _NoText()
    handle = manager.options(group=key, name="odd").submit(ok)
    qtbot.waitUntil(lambda: handle.done() and synced(widget), timeout=5000)
    assert manager.group_name(key) == "_NoText (str() failed)"
    cell = widget.model.index_of(handle.uid, TaskModel.GroupColumn)
    assert cell.data() == "_NoText (str() failed)"
    assert combo_items(widget) == ["All groups", "_NoText (str() failed)"]
    assert widget.summary_label.text() == "1 completed"
    widget.grab()  # paints every cell
    widget.text_edit.setText("str() failed")  # the text filter reads the label too
    assert visible(widget) == [handle.uid]
    graph = TaskGraphView(manager)
    qtbot.addWidget(graph)
    graph.show()
    graph.refresh()
    graph.collapse_group(key)
    graph.refresh()
    assert graph.group_nodes()[key].title() == "_NoText (str() failed) · 1 task"
    graph.grab()
    with pytest.raises(ValueError) as info:  # the refusal names the group as it can
        TaskProgressDialog(manager, group=_NoText())
    assert str(info.value).startswith("group _NoText (repr() failed) has no tasks in this manager")
