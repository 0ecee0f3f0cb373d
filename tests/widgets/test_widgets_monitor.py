"""TaskMonitor: actions, filters, error panel, summary, keyboard and accessibility."""

from __future__ import annotations

import itertools

import pytest
from _monitors import shown_monitor, synced
from PySide6.QtCore import QModelRoleData, QModelRoleDataSpan, Qt
from PySide6.QtGui import QGuiApplication, QKeySequence
from PySide6.QtWidgets import QApplication, QComboBox, QLineEdit, QPlainTextEdit, QPushButton

from bgtasks import TaskState, current_task
from bgtasks.widgets import ProgressDelegate, TaskModel, TaskMonitor, summary_text

PROGRESS = TaskModel.ProgressColumn


def ok(x=None):
    return x


def boom():
    raise ValueError("it broke")


def block():
    current_task().sleep(30)  # until cancelled


@pytest.fixture
def monitor(qtbot, make_manager):
    return shown_monitor(qtbot, make_manager(max_threads=4))


def visible_uids(monitor: TaskMonitor) -> list[int]:
    rows = monitor.view.model()  # the model itself, or the proxy while filtered or sorted
    return [rows.index(r, 0).data(TaskModel.UidRole) for r in range(rows.rowCount())]


def test_summary_text():
    counts = dict.fromkeys(TaskState, 0)
    counts.update({TaskState.RUNNING: 3, TaskState.QUEUED: 120, TaskState.FAILED: 1})
    assert summary_text(counts) == "3 running · 120 queued · 1 failed"
    assert summary_text(dict.fromkeys(TaskState, 0)) == "No tasks"


def test_summary_follows_the_manager(qtbot, monitor):
    manager = monitor.model.manager
    assert monitor.summary_label.text() == "No tasks"
    first = [manager.submit(ok, i) for i in range(3)]
    manager.options(upstream_task_ids=[first[0].uid]).submit(ok)
    qtbot.waitUntil(lambda: monitor.summary_label.text() == "3 queued · 1 pending", timeout=5000)
    manager.submit(boom)
    manager.start_processing()
    qtbot.waitUntil(lambda: monitor.summary_label.text() == "4 completed · 1 failed", timeout=5000)


def test_cancel_selected_queued_and_running(qtbot, monitor):
    manager = monitor.model.manager
    queued = [manager.options(name=f"q{i}").submit(ok, i) for i in range(3)]
    qtbot.waitUntil(lambda: synced(monitor), timeout=5000)
    assert not monitor.cancel_button.isEnabled()
    assert monitor.select_uid(queued[1].uid)
    assert monitor.selected_uids() == [queued[1].uid]
    assert monitor.cancel_button.isEnabled()
    qtbot.mouseClick(monitor.cancel_button, Qt.MouseButton.LeftButton)
    assert manager.task_state(queued[1].uid) is TaskState.CANCELLED
    # Delete in the table cancels too (a shortcut: the window must be active)
    qtbot.waitExposed(monitor)
    monitor.activateWindow()
    assert monitor.select_uid(queued[2].uid)
    monitor.view.setFocus()
    qtbot.keyClick(monitor.view, Qt.Key.Key_Delete)
    assert manager.task_state(queued[2].uid) is TaskState.CANCELLED
    assert manager.task_state(queued[0].uid) is TaskState.QUEUED

    running = manager.options(name="runner").submit(block)
    manager.start_processing()
    qtbot.waitUntil(lambda: running.running() and synced(monitor), timeout=5000)
    assert monitor.select_uid(running.uid)
    qtbot.waitUntil(monitor.cancel_button.isEnabled, timeout=5000)
    monitor.cancel_button.click()
    qtbot.waitUntil(running.done, timeout=5000)
    assert running.state is TaskState.CANCELLED
    qtbot.waitUntil(lambda: synced(monitor), timeout=5000)
    assert not monitor.cancel_button.isEnabled()
    assert monitor.retry_button.isEnabled()  # a cancelled task can run again


def test_retry_reruns_a_failed_task(qtbot, monitor):
    manager = monitor.model.manager
    calls = itertools.count()

    def flaky():
        if next(calls) == 0:
            raise RuntimeError("first time fails")
        return "fine"

    handle = manager.options(name="flaky").submit(flaky)
    manager.start_processing()
    qtbot.waitUntil(lambda: handle.done() and synced(monitor), timeout=5000)
    assert handle.state is TaskState.FAILED
    assert monitor.select_uid(handle.uid)
    assert monitor.retry_button.isEnabled()
    qtbot.mouseClick(monitor.retry_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: manager.task_state(handle.uid) is TaskState.COMPLETED, timeout=5000)
    qtbot.waitUntil(lambda: synced(monitor), timeout=5000)
    assert monitor.model.task_info(handle.uid).attempts == 2
    assert not monitor.retry_button.isEnabled()


def test_clear_finished_keeps_live_rows(qtbot, monitor):
    manager = monitor.model.manager
    done = [manager.submit(ok, i) for i in range(4)] + [manager.submit(boom)]
    manager.start_processing()
    qtbot.waitUntil(lambda: all(h.done() for h in done), timeout=5000)
    manager.pause_processing()
    live = [manager.options(name="waits").submit(ok, i) for i in range(2)]
    qtbot.waitUntil(lambda: synced(monitor), timeout=5000)
    assert len(visible_uids(monitor)) == 7
    monitor.clear_button.click()
    qtbot.waitUntil(lambda: synced(monitor), timeout=5000)
    assert monitor.model.uids() == [h.uid for h in live]
    assert visible_uids(monitor) == [h.uid for h in live]
    qtbot.waitUntil(lambda: monitor.summary_label.text() == "2 queued", timeout=5000)


def test_filters_hide_rows(qtbot, monitor):
    manager = monitor.model.manager
    a = [manager.options(name=f"alpha {i}", group="A").submit(ok, i) for i in range(3)]
    b = [manager.options(name=f"beta {i}", group="B").submit(ok, i) for i in range(2)]
    bad = manager.options(name="gamma", group="B").submit(boom)
    manager.start_processing()
    qtbot.waitUntil(lambda: all(h.done() for h in a + b + [bad]) and synced(monitor), timeout=5000)
    every = [h.uid for h in a + b + [bad]]
    assert visible_uids(monitor) == every

    assert not monitor.proxy.isRecursiveFilteringEnabled()  # a flat list has no group rows
    combo = monitor.group_combo
    assert [combo.itemText(i) for i in range(combo.count())] == ["All groups", "A", "B"]
    combo.setCurrentIndex(combo.findData("B"))
    assert visible_uids(monitor) == [h.uid for h in b] + [bad.uid]

    monitor.state_combo.setCurrentIndex(monitor.state_combo.findData(TaskState.FAILED))
    assert visible_uids(monitor) == [bad.uid]

    combo.setCurrentIndex(0)
    monitor.state_combo.setCurrentIndex(0)
    qtbot.keyClicks(monitor.text_edit, "ALPHA 1")
    assert visible_uids(monitor) == [a[1].uid]
    monitor.text_edit.setText("it broke")  # the error text matches too
    assert visible_uids(monitor) == [bad.uid]
    monitor.text_edit.clear()
    assert visible_uids(monitor) == every


def test_error_panel_and_copy(qtbot, monitor):
    manager = monitor.model.manager
    good = manager.options(name="good").submit(ok, 1)
    bad = manager.options(name="bad").submit(boom)
    manager.start_processing()
    qtbot.waitUntil(lambda: bad.done() and good.done() and synced(monitor), timeout=5000)
    traceback = manager.info(bad.uid).traceback
    assert "ValueError: it broke" in traceback
    assert monitor.select_uid(bad.uid)
    assert monitor.error_panel.toPlainText() == traceback
    assert monitor.error_panel.isReadOnly()
    QGuiApplication.clipboard().clear()
    qtbot.mouseClick(monitor.copy_button, Qt.MouseButton.LeftButton)
    assert QGuiApplication.clipboard().text() == traceback
    assert monitor.select_uid(good.uid)
    assert monitor.error_panel.toPlainText() == ""
    assert not monitor.copy_button.isEnabled()


def test_keyboard_and_accessible_names(monitor):
    controls = [
        monitor.group_combo,
        monitor.state_combo,
        monitor.text_edit,
        monitor.view,
        monitor.cancel_button,
        monitor.retry_button,
        monitor.clear_button,
        monitor.error_panel,
        monitor.copy_button,
    ]
    for widget in controls + [monitor.summary_label]:
        assert widget.accessibleName(), widget
    # mnemonics: every button has its own Alt shortcut
    shortcuts = {
        b.shortcut().toString(QKeySequence.SequenceFormat.PortableText)
        for b in monitor.findChildren(QPushButton)
    }
    assert shortcuts == {"Alt+C", "Alt+R", "Alt+L", "Alt+Y"}
    # labels give the filters and the panel their Alt shortcuts
    buddies = {
        label.text(): label.buddy()
        for label in monitor.findChildren(type(monitor.summary_label))
        if label.buddy() is not None
    }
    assert isinstance(buddies["&Group:"], QComboBox)
    assert isinstance(buddies["&Filter:"], QLineEdit)
    assert isinstance(buddies["&Traceback:"], QPlainTextEdit)
    # tab order, from the first filter to the copy button
    widget, chain = monitor.group_combo, [monitor.group_combo]
    while len(chain) < len(controls):
        widget = widget.nextInFocusChain()
        if widget in controls:
            chain.append(widget)
    assert chain == controls


def test_progress_delegate_paints(qtbot, monitor):
    manager = monitor.model.manager

    def half():
        current_task().report_progress(1, 2, "half way")
        current_task().sleep(30)

    running = manager.options(name="half").submit(half)
    manager.start_processing()
    qtbot.waitUntil(lambda: monitor.model.task_info(running.uid) is not None, timeout=5000)
    qtbot.waitUntil(
        lambda: monitor.model.index_of(running.uid, PROGRESS).data() == "50%", timeout=5000
    )
    assert isinstance(monitor.view.itemDelegateForColumn(PROGRESS), ProgressDelegate)
    image = monitor.grab()  # paints every visible cell, the delegate's included
    assert not image.isNull()
    running.cancel()
    qtbot.waitUntil(running.done, timeout=5000)


def test_sorting_by_a_column(qtbot, monitor):
    manager = monitor.model.manager
    handles = [manager.options(name=name).submit(ok) for name in ("pear", "apple", "fig")]
    qtbot.waitUntil(lambda: synced(monitor), timeout=5000)
    assert visible_uids(monitor) == [h.uid for h in handles]  # task order at first
    monitor.view.sortByColumn(0, Qt.SortOrder.AscendingOrder)
    names = [monitor.view.model().index(r, 0).data() for r in range(3)]
    assert names == ["apple", "fig", "pear"]


def test_grouped_monitor(qtbot, make_manager):
    manager = make_manager()
    early = manager.options(name="early", group="E").submit(ok)
    widget = TaskMonitor(manager, grouped=True)
    rows = widget.view.model  # the model itself; the proxy while a filter is set
    assert widget.view.isExpanded(rows().index(0, 0))  # groups start expanded
    qtbot.addWidget(widget)
    a = [manager.options(name=f"a{i}", group="A").submit(ok, i) for i in range(2)]
    b = manager.options(name="b0", group="B").submit(boom)
    manager.start_processing()
    qtbot.waitUntil(lambda: all(h.done() for h in a + [b, early]) and synced(widget), timeout=5000)
    assert rows().rowCount() == 3
    names = [rows().index(r, 0).data(TaskModel.GroupRole) for r in range(3)]
    assert names == ["A", "B", "E"]  # natural order, not the order they came in
    group_b = rows().index(1, 0)
    assert group_b.data(TaskModel.GroupRole) == "B" and widget.view.isExpanded(group_b)
    widget.state_combo.setCurrentIndex(widget.state_combo.findData(TaskState.FAILED))
    assert rows().rowCount() == 1  # only group B has a failed task
    only = rows().index(0, 0)
    assert rows().rowCount(only) == 1
    assert rows().index(0, 0, only).data(TaskModel.UidRole) == b.uid
    assert widget.select_uid(b.uid)
    assert widget.selected_uids() == [b.uid]
    assert "ValueError: it broke" in widget.error_panel.toPlainText()
    assert widget.retry_button.isEnabled() and not widget.cancel_button.isEnabled()
    assert widget.proxy.isRecursiveFilteringEnabled()
    widget.state_combo.setCurrentIndex(0)
    widget.text_edit.setText("A1")  # a task's name, in a group that stays shown
    assert rows().rowCount() == 1
    group_a = rows().index(0, 0)
    assert group_a.data(TaskModel.GroupRole) == "A"
    assert [rows().index(r, 0, group_a).data(TaskModel.UidRole) for r in range(2)] == [
        a[1].uid,
        None,
    ]


def test_actions_from_the_keyboard(qtbot, monitor):
    """Cancel (Delete in the table), Retry (Ctrl+R), Copy traceback
    (Ctrl+Shift+C) and Clear finished (Ctrl+Shift+Del) are real shortcuts,
    driven here by key presses on the focused child (offscreen works)."""
    from PySide6.QtTest import QTest

    qtbot.waitExposed(monitor)
    monitor.activateWindow()
    qtbot.waitUntil(monitor.isActiveWindow, timeout=5000)
    manager = monitor.model.manager
    bad = manager.options(name="bad").submit(boom)
    blocker = manager.options(name="blocker").submit(block)
    manager.start_processing()
    qtbot.waitUntil(
        lambda: bad.done() and blocker.state is TaskState.RUNNING and synced(monitor),
        timeout=5000,
    )
    assert set(monitor.shortcuts) == {"cancel", "retry", "clear", "copy"}

    # Ctrl+R retries the selected failed task
    assert monitor.select_uid(bad.uid)
    monitor.view.setFocus()
    QTest.keyClick(monitor.view, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(
        lambda: manager.info(bad.uid).attempts == 2 and manager.info(bad.uid).state.is_terminal,
        timeout=5000,
    )
    qtbot.waitUntil(lambda: synced(monitor), timeout=5000)

    # Ctrl+Shift+C in the error panel copies the whole traceback
    assert monitor.select_uid(bad.uid)
    traceback = manager.info(bad.uid).traceback
    assert "ValueError: it broke" in traceback
    qtbot.waitUntil(lambda: monitor.error_panel.toPlainText() == traceback, timeout=5000)
    monitor.error_panel.setFocus()
    QGuiApplication.clipboard().clear()
    QTest.keySequence(monitor.error_panel, QKeySequence("Ctrl+Shift+C"))
    assert QGuiApplication.clipboard().text() == traceback

    # Delete outside the table does not cancel; in the table it does
    assert monitor.select_uid(blocker.uid)
    monitor.text_edit.setFocus()
    QTest.keyClick(monitor.text_edit, Qt.Key.Key_Delete)
    qtbot.wait(50)
    assert manager.task_state(blocker.uid) is TaskState.RUNNING
    monitor.view.setFocus()
    QTest.keyClick(monitor.view, Qt.Key.Key_Delete)
    qtbot.waitUntil(lambda: manager.task_state(blocker.uid) is TaskState.CANCELLED, timeout=5000)
    qtbot.waitUntil(lambda: synced(monitor), timeout=5000)

    # Ctrl+Shift+Del (here from the text filter) clears the finished tasks
    assert len(monitor.model.uids()) == 2
    monitor.text_edit.setFocus()
    QTest.keySequence(monitor.text_edit, QKeySequence("Ctrl+Shift+Del"))
    qtbot.waitUntil(lambda: synced(monitor) and not monitor.model.uids(), timeout=5000)
    assert manager.tasks() == []


def test_alt_mnemonics_reach_every_control(qtbot, monitor):
    """Alt+G/S/F/T move the focus to the filters and the traceback (label
    buddies); Alt+C/R/L/Y click the buttons (Qt animates a mnemonic click for
    100 ms, hence waitSignal)."""
    from PySide6.QtTest import QTest

    qtbot.waitExposed(monitor)
    monitor.activateWindow()
    qtbot.waitUntil(monitor.isActiveWindow, timeout=5000)
    manager = monitor.model.manager
    bad = manager.options(name="bad").submit(boom)
    manager.start_processing()
    qtbot.waitUntil(lambda: bad.done() and synced(monitor), timeout=5000)
    assert monitor.select_uid(bad.uid)

    monitor.view.setFocus()
    for key, target in (
        (Qt.Key.Key_G, monitor.group_combo),
        (Qt.Key.Key_S, monitor.state_combo),
        (Qt.Key.Key_F, monitor.text_edit),
        (Qt.Key.Key_T, monitor.error_panel),
    ):
        QTest.keyClick(QApplication.focusWidget(), key, Qt.KeyboardModifier.AltModifier)
        qtbot.waitUntil(lambda target=target: QApplication.focusWidget() is target, timeout=2000)

    QGuiApplication.clipboard().clear()
    with qtbot.waitSignal(monitor.copy_button.clicked, timeout=2000):
        QTest.keyClick(QApplication.focusWidget(), Qt.Key.Key_Y, Qt.KeyboardModifier.AltModifier)
    assert "ValueError: it broke" in QGuiApplication.clipboard().text()

    with qtbot.waitSignal(monitor.retry_button.clicked, timeout=2000):
        QTest.keyClick(QApplication.focusWidget(), Qt.Key.Key_R, Qt.KeyboardModifier.AltModifier)
    qtbot.waitUntil(lambda: manager.info(bad.uid).attempts == 2, timeout=5000)
    qtbot.waitUntil(lambda: manager.info(bad.uid).state.is_terminal, timeout=5000)
    qtbot.waitUntil(lambda: synced(monitor), timeout=5000)

    with qtbot.waitSignal(monitor.clear_button.clicked, timeout=2000):
        QTest.keyClick(QApplication.focusWidget(), Qt.Key.Key_L, Qt.KeyboardModifier.AltModifier)
    qtbot.waitUntil(lambda: monitor.model.uids() == [], timeout=5000)

    blocker = manager.options(name="blocker").submit(block)
    qtbot.waitUntil(lambda: blocker.state is TaskState.RUNNING and synced(monitor), timeout=5000)
    assert monitor.select_uid(blocker.uid)
    with qtbot.waitSignal(monitor.cancel_button.clicked, timeout=2000):
        QTest.keyClick(QApplication.focusWidget(), Qt.Key.Key_C, Qt.KeyboardModifier.AltModifier)
    qtbot.waitUntil(lambda: manager.task_state(blocker.uid) is TaskState.CANCELLED, timeout=5000)


def test_grouped_monitor_stops_expanding_new_groups_past_its_limit(qtbot, make_manager):
    manager = make_manager()
    widget = TaskMonitor(manager, grouped=True)
    qtbot.addWidget(widget)
    widget.auto_expand_limit = 3
    for i in range(3):
        manager.options(group="small").submit(ok, i)
    qtbot.waitUntil(lambda: synced(widget) and widget.model.task_count() == 3, timeout=5000)
    assert widget.view.isExpanded(widget.view.model().index(0, 0))  # came while below the limit
    manager.options(group="late").submit(ok, 9)
    qtbot.waitUntil(lambda: synced(widget) and widget.view.model().rowCount() == 2, timeout=5000)
    late = widget.view.model().index(0, 0)  # "late" sorts before "small"
    assert late.data(TaskModel.GroupRole) == "late"
    assert not widget.view.isExpanded(late)  # 3 tasks shown already: starts collapsed
    assert widget.view.isExpanded(widget.view.model().index(1, 0))  # the earlier group stays open


def test_proxy_answers_every_role_of_a_cell_in_one_call(qtbot, monitor):
    # multiData through the filter proxy gives what data() gives, role by role,
    # for the sorted and filtered row (the proxy maps the index once).
    manager = monitor.model.manager
    handles = [manager.options(name=f"task {i}").submit(ok, i) for i in range(3)]
    bad = manager.options(name="broken").submit(boom)
    manager.start_processing()
    qtbot.waitUntil(
        lambda: all(h.done() for h in [*handles, bad]) and synced(monitor), timeout=5000
    )
    monitor.view.sortByColumn(0, Qt.SortOrder.DescendingOrder)  # "task 2" first
    proxy = monitor.proxy
    assert monitor.view.model() is proxy  # sorted: the view reads the proxy
    roles = [
        Qt.ItemDataRole.DisplayRole,
        Qt.ItemDataRole.ForegroundRole,
        Qt.ItemDataRole.ToolTipRole,
        Qt.ItemDataRole.TextAlignmentRole,
        TaskModel.UidRole,
        TaskModel.StateRole,
        TaskModel.ProgressRole,
    ]
    assert proxy.index(0, 0).data(TaskModel.UidRole) == handles[2].uid
    for row in range(proxy.rowCount()):
        for column in range(proxy.columnCount()):
            index = proxy.index(row, column)
            for role in roles:
                slot = QModelRoleData(int(role))
                proxy.multiData(index, QModelRoleDataSpan(slot))
                assert slot.data() == index.data(role), (row, column, role)
    slot = QModelRoleData(int(Qt.ItemDataRole.DisplayRole))
    proxy.multiData(proxy.index(0, 6), QModelRoleDataSpan(slot))  # the error column
    assert slot.data() == ""  # "task 2" did not fail
    failed = [r for r in range(proxy.rowCount()) if proxy.index(r, 2).data() == "failed"]
    proxy.multiData(proxy.index(failed[0], 6), QModelRoleDataSpan(slot))
    assert slot.data() == "it broke"
