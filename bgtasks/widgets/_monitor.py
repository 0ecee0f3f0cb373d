"""``TaskMonitor``: a widget to watch, filter, cancel and retry a manager's tasks.

GUI thread only (the manager's thread, which must be the GUI thread).
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QItemSelection, QItemSelectionModel, QModelIndex, Qt, Signal
from PySide6.QtGui import QGuiApplication, QShortcut
from PySide6.QtWidgets import QHBoxLayout, QSplitter, QTreeView, QVBoxLayout, QWidget

from ..core import check_count
from ..core._state import TaskState
from ..qt._home_thread import DiesAtHome
from ..qt._manager import BackgroundTaskManager
from ._filter_proxy import TaskFilterProxy
from ._group_filter import GroupFilter
from ._model import TaskModel
from ._monitor_actions import reasons_text, report_refusals, retry_tasks, tasks_text
from ._monitor_parts import (
    build_action_bar,
    build_filter_bar,
    build_shortcuts,
    build_task_view,
    build_traceback_pane,
    set_tab_order,
)
from ._selection import CANCEL, KEYED_REASON, NO_RETRY, RETRY, SelectionTally
from ._view_source import ViewSource

#: The order of the summary line.
_SUMMARY_ORDER = (
    TaskState.RUNNING,
    TaskState.CANCELLING,
    TaskState.QUEUED,
    TaskState.PENDING,
    TaskState.COMPLETED,
    TaskState.FAILED,
    TaskState.CANCELLED,
)


#: The summary's first part once the manager was shut down.
SHUT_DOWN_TEXT = "Shut down"
SHUT_DOWN_TIP = "The task manager has shut down"


_FINISHED = (TaskState.COMPLETED, TaskState.FAILED, TaskState.CANCELLED)


def summary_text(counts: dict[TaskState, int], shut_down: bool = False, hidden: int = 0) -> str:
    """The summary line: ``"3 running · 120 queued · 1 failed"``.  Any thread.

    The counts are tasks (``TaskModel.task_counts()``), rows or not: when
    finished tasks have no row (``hidden``, see ``TaskModel.finished_rows``)
    the line says how many finished ones the rows show:
    ``"2 running · 3017 completed · 8 failed (1000 of 3025 finished shown)"``.

    Args:
        counts: Tasks per state.
        shut_down: The manager was shut down: ``"Shut down · 2 cancelling · 5 cancelled"``.
        hidden: How many of the finished tasks counted have no row.

    Returns:
        The non-zero counts, or "No tasks".
    """
    parts = [f"{counts.get(s, 0)} {s.value}" for s in _SUMMARY_ORDER if counts.get(s, 0)]
    if shut_down:
        text = " · ".join([SHUT_DOWN_TEXT, *parts])
    else:
        text = " · ".join(parts) if parts else "No tasks"
    if hidden:
        finished = sum(counts.get(s, 0) for s in _FINISHED)
        text += f" ({finished - hidden} of {finished} finished shown)"
    return text


#: The Retry button's tool tip; a line follows when selected tasks cannot be retried.
RETRY_TIP = "Run the selected failed or cancelled tasks again (Alt+R, Ctrl+R)"


class TaskMonitor(DiesAtHome, QWidget):
    """Live table of a manager's tasks with filters, actions and an error panel.

    * Filters: group (``Alt+G``), state (``Alt+S``) and text (``Alt+F``).
    * Actions on the selected tasks: Cancel (``Alt+C``, or ``Delete`` in the
      table), Retry failed or cancelled ones (``Alt+R`` or ``Ctrl+R``), Clear
      finished (``Alt+L`` or ``Ctrl+Shift+Del``).
    * The selected task's full traceback, with Copy (``Alt+Y``, or
      ``Ctrl+Shift+C`` anywhere in the monitor).

    Besides the buttons' Alt mnemonics (which depend on the platform theme),
    ``shortcuts`` maps "cancel", "retry", "clear" and "copy" to real
    ``QShortcut`` objects (Delete on the table only; the others with
    ``Qt.WidgetWithChildrenShortcut``, active while the focus is anywhere in
    the monitor); each clicks its button, so a disabled action stays inert.
    * A summary line of the model's ``task_counts()``, refreshed with each
      model pass; it says how many finished tasks the rows show when older
      ones left the window of ``finished_rows``.
    * A status line (``status_label``) saying what the last action did:
      Retry goes through the whole selection, runs again what it can and
      explains (tool tip, and a WARNING on the ``bgtasks`` logger) what it
      cannot.  The Retry button is enabled only while a selected task can
      run again; its tool tip says how many selected tasks cannot (a task
      with a ``key`` keeps no function to run again).
    * Groups are shown by their names (``set_group_name``; renames follow),
      in natural order (numbers by value, names alphabetically): the group
      rows of a grouped monitor, and the group filter, which lists the
      groups the rows show and keeps the chosen one.
    * Work per model pass is in proportion to the rows that changed, never
      to the rows selected.
    * Once the manager is shut down (it emits nothing more; the model notices
      and reads the registry): the summary starts with "Shut down", tasks
      still stopping show as cancelling until they end, and the actions are
      disabled.

    * ``selection_changed`` is emitted (on the GUI thread) whenever the
      selected rows may have changed; ``selected_uids()`` says which.  Follow
      it rather than ``view.selectionModel()``: the view reads the model or
      the filter proxy (see ``proxy``), and each switch gives it a new
      selection model.

    GUI thread only.
    """

    selection_changed = Signal()

    def __init__(
        self,
        manager: BackgroundTaskManager,
        parent: QWidget | None = None,
        grouped: bool = False,
        finished_rows: int | None = 1000,
    ) -> None:
        """Show ``manager``'s tasks; with ``grouped`` as a tree, a row per group.

        GUI thread (the manager's).

        Args:
            manager: The manager whose tasks it shows.
            parent: The parent widget.
            grouped: A tree with a row per group; False: a flat list.
            finished_rows: The most rows of finished tasks shown (the model's
                ``finished_rows``): the rows that finished first leave
                beyond it, still counted in the summary.  ``None``: all.

        Raises:
            ValueError: ``finished_rows`` is not a non-negative int or None.
        """
        super().__init__(parent)
        self._remember_home()  # destroyed on this thread, whoever drops it last
        self._manager = manager
        self.setAccessibleName("Task monitor")
        self.model = TaskModel(
            manager, self, grouped=grouped, finished_rows=finished_rows, sort_groups=True
        )
        # Half the model's default: a pass shares the UI thread's turn of the
        # event loop with the manager's drain and the view's paint and layout,
        # and the three add up into one stall (a flood: 4 + 5 + 5 ms).  The
        # window of finished rows keeps a backlog cheap (its surplus is never read).
        self.model.pass_budget = 0.004
        #: The filters and sorting.  The view reads it only while a filter or
        #: a sorted column is set, the model itself otherwise (``view.model()``
        #: says which): see ``bgtasks/widgets/_view_source.py``.
        self.proxy = TaskFilterProxy(self)
        # group rows show while a task of theirs does; a flat list has none
        self.proxy.setRecursiveFilteringEnabled(grouped)
        self._tally = SelectionTally(self.model)

        filters = build_filter_bar(self)
        self.group_combo, self.state_combo = filters.group_combo, filters.state_combo
        self.text_edit = filters.text_edit
        self.view, self.delegate = build_task_view(self, self.model, grouped)
        on_switch = self._selection_model_changed
        self._source = ViewSource(self.view, self.model, self.proxy, on_switch, self._reselected)
        actions = build_action_bar(self)
        self.cancel_button, self.retry_button = actions.cancel_button, actions.retry_button
        self.clear_button, self.summary_label = actions.clear_button, actions.summary_label
        self.status_label = actions.status_label
        self._group_filter = GroupFilter(self.group_combo, self.model)
        pane = build_traceback_pane(self)
        self.error_panel, self.copy_button = pane.error_panel, pane.copy_button
        self._lay_out(filters.layout, pane.box, actions.layout)
        # An expanded tree lays out every expanded row through Python whenever
        # rows come or go: in a flood of 20,000 tasks (groups of 100) the worst
        # stall was 42-48 ms with a limit of 1,000, 24-37 ms with 300 (200-220 ms
        # with every group expanded).
        self._auto_expand_limit = 300
        self._wire()
        #: The actions' keyboard shortcuts, by action name.
        self.shortcuts: dict[str, QShortcut] = build_shortcuts(
            self, self.view, actions, self.copy_button
        )
        self._refresh()

    def _lay_out(self, filters: QHBoxLayout, pane: QWidget, actions: QHBoxLayout) -> None:
        splitter = QSplitter(Qt.Orientation.Vertical, self)
        splitter.addWidget(self.view)
        splitter.addWidget(pane)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 1)
        splitter.setChildrenCollapsible(False)
        layout = QVBoxLayout(self)
        layout.addLayout(filters)
        layout.addWidget(splitter, 1)
        layout.addLayout(actions)
        set_tab_order(
            self.group_combo,
            self.state_combo,
            self.text_edit,
            self.view,
            self.cancel_button,
            self.retry_button,
            self.clear_button,
            self.error_panel,
            self.copy_button,
        )

    def _wire(self) -> None:
        self.group_combo.currentIndexChanged.connect(self._group_chosen)
        # Bound methods, never a lambda over self: a C++ connection holds a
        # lambda where the garbage collector cannot see it, so the monitor
        # could never be freed.
        self.state_combo.currentIndexChanged.connect(self._state_chosen)
        self.text_edit.textChanged.connect(self.proxy.set_text)
        self.cancel_button.clicked.connect(self.cancel_selected)
        self.retry_button.clicked.connect(self.retry_selected)
        self.clear_button.clicked.connect(self.clear_finished)
        self.copy_button.clicked.connect(self.copy_traceback)
        self._selection_model_changed(None, self.view.selectionModel())
        self.model.rows_updated.connect(self._rows_updated)
        self._manager.group_renamed.connect(self._group_renamed)
        if isinstance(self.view, QTreeView) and self.model.task_count() < self.auto_expand_limit:
            self.view.expandAll()
        self.model.batch_applied.connect(self._refresh)

    # ------------------------------------------------------------------ public

    @property
    def auto_expand_limit(self) -> int:
        """Grouped: new groups start expanded while the monitor shows fewer
        tasks than this, collapsed beyond (settable, a non-negative int;
        default 300).  GUI thread."""
        return self._auto_expand_limit

    @auto_expand_limit.setter
    def auto_expand_limit(self, count: int) -> None:
        self._auto_expand_limit = check_count("auto_expand_limit", count)

    def selected_uids(self) -> list[int]:
        """Uids of the selected tasks, in view order.  GUI thread."""
        rows = self.view.selectionModel().selectedRows(0)
        uids = (index.data(TaskModel.UidRole) for index in rows)
        return [uid for uid in uids if uid is not None]

    def select_uid(self, uid: int) -> bool:
        """Select (and make current) a task's row.  GUI thread.

        Args:
            uid: The task.

        Returns:
            False if its row is filtered out or absent, else True.
        """
        index = self._source.from_model(self.model.index_of(uid))
        if not index.isValid():
            return False
        self.view.selectionModel().setCurrentIndex(
            index,
            self.view.selectionModel().SelectionFlag.ClearAndSelect
            | self.view.selectionModel().SelectionFlag.Rows,
        )
        return True

    def cancel_selected(self) -> int:
        """Stop the selected tasks that have not ended (and the tasks waiting
        for them; not the ones they wait for); returns how many.  GUI thread."""
        if self.model._check_shut_down():  # notices one at once
            return 0  # a shut-down manager takes no orders
        n = 0
        for uid in self.selected_uids():
            info = self.model.task_info(uid)
            if info is not None and not info.state.is_terminal:
                try:
                    self._manager.stop_task(uid, stop_upstream=False, stop_downstream=True)
                except KeyError:  # forgotten meanwhile
                    continue
                n += 1
        return n

    def retry_selected(self) -> int:
        """Run the selected failed or cancelled tasks again; returns how many.

        Goes through the whole selection: a task that cannot run again (a
        task with a key, one forgotten meanwhile) is skipped, and the status
        line (its tool tip: why, task by task) and a WARNING on the
        ``bgtasks`` logger say so.  GUI thread.
        """
        if self.model._check_shut_down():  # notices one at once
            return 0  # a shut-down manager takes no orders
        uids = self.selected_uids()
        outcome = retry_tasks(self._manager, uids)
        text = f"Retried {tasks_text(outcome.retried)}"
        if outcome.refused:
            text += f"; {len(outcome.refused)} could not be retried"
            report_refusals(len(uids), outcome)
        self.status_label.setText(text)
        self.status_label.setToolTip(reasons_text(outcome.refused))
        return outcome.retried

    def clear_finished(self) -> int:
        """Forget every finished task (the rows go at the next pass); returns how many.

        GUI thread.
        """
        if self.model._check_shut_down():  # notices one at once
            return 0  # a shut-down manager takes no orders
        return self._manager.clear_finished()

    def copy_traceback(self) -> None:
        """Put the error panel's text on the clipboard.  GUI thread."""
        QGuiApplication.clipboard().setText(self.error_panel.toPlainText())

    # ------------------------------------------------------------------ internals

    def _selection_model_changed(
        self, old: QItemSelectionModel | None, new: QItemSelectionModel
    ) -> None:
        """The view reads another model (``ViewSource``): follow its new selection
        model and rows; the tally starts again (the old selection says nothing more)."""
        if old is not None:
            old.selectionChanged.disconnect(self._selection_changed)
            old.currentChanged.disconnect(self._show_traceback)
            if isinstance(self.view, QTreeView):
                self.model.rowsInserted.disconnect(self._expand_group)
            self._tally.clear()
            self._update_buttons()
        new.selectionChanged.connect(self._selection_changed)
        new.currentChanged.connect(self._show_traceback)
        if isinstance(self.view, QTreeView):
            # connected again after the view's and the proxy's own connections
            # (made by the switch): when it runs, they know the new rows
            self.model.rowsInserted.connect(self._expand_group)

    def _reselected(self) -> None:
        # after a switch (``ViewSource``), which restored what it could of the selection
        self.selection_changed.emit()

    def _expand_group(self, parent: QModelIndex, first: int, last: int) -> None:
        assert isinstance(self.view, QTreeView)
        if self.model.task_count() >= self.auto_expand_limit:
            return
        if not parent.isValid():  # new group rows start expanded
            for row in range(first, last + 1):
                self.view.expand(self._source.from_model(self.model.index(row, 0)))

    def _group_chosen(self, _: int) -> None:
        self.proxy.set_group(self._group_filter.chosen())
        self._group_filter.sync(force=True)  # a group kept only while chosen may go

    def _state_chosen(self, _: int) -> None:
        self.proxy.set_state(self.state_combo.currentData())

    def _refresh(self) -> None:
        shut_down = self.model.is_shut_down()
        model = self.model
        self.summary_label.setText(
            summary_text(model.task_counts(), shut_down, model.hidden_count())
        )
        tip = SHUT_DOWN_TIP if shut_down else ""
        if self.summary_label.toolTip() != tip:
            self.summary_label.setToolTip(tip)
        self._group_filter.sync()
        self._update_buttons()
        self._show_traceback(self.view.currentIndex())

    def _selection_changed(self, selected: QItemSelection, deselected: QItemSelection) -> None:
        self._tally.selection_changed(selected, deselected)
        self._update_buttons()
        self.selection_changed.emit()

    def _rows_updated(self, uids: list[int]) -> None:
        self._tally.rows_updated(uids)  # the buttons follow at the end of the pass

    def _group_renamed(self, group: Any, name: str) -> None:
        self._group_filter.relabel()

    def _update_buttons(self) -> None:
        if self.model.is_shut_down():  # a shut-down manager takes no orders
            for button in (self.cancel_button, self.retry_button, self.clear_button):
                button.setEnabled(False)
            return
        count = self._tally.count
        self.cancel_button.setEnabled(count(CANCEL) > 0)
        self.retry_button.setEnabled(count(RETRY) > 0)
        self.clear_button.setEnabled(True)
        stuck = count(NO_RETRY)
        tip = RETRY_TIP
        if stuck:
            tip += f"\n{tasks_text(stuck).replace(' task', ' selected task')} cannot be retried: "
            tip += KEYED_REASON
        if self.retry_button.toolTip() != tip:
            self.retry_button.setToolTip(tip)

    def _show_traceback(self, current: QModelIndex, *_: Any) -> None:
        info = current.data(TaskModel.InfoRole) if current.isValid() else None
        if info is None:
            text = ""
        else:
            text = info.traceback or info.error
        if self.error_panel.toPlainText() != text:
            self.error_panel.setPlainText(text)
        self.copy_button.setEnabled(bool(text))
