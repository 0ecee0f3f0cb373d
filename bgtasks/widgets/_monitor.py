"""``TaskMonitor``: a widget to watch, filter, cancel and retry a manager's tasks.

GUI thread only (the manager's thread, which must be the GUI thread).
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import (
    QModelIndex,
    QModelRoleDataSpan,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
)
from PySide6.QtGui import QGuiApplication, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTableView,
    QTreeView,
    QVBoxLayout,
    QWidget,
)

from ..core._state import TaskState
from ..qt._manager import BackgroundTaskManager
from ._columns import GROUP, MESSAGE, NAME, PROGRESS, group_label
from ._delegate import ProgressDelegate
from ._model import TaskModel

#: The group filter's value that shows every group.
ANY_GROUP: Any = object()

_RETRYABLE = frozenset({TaskState.FAILED, TaskState.CANCELLED})
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


def summary_text(counts: dict[TaskState, int], shut_down: bool = False) -> str:
    """``"3 running · 120 queued · 1 failed"``: the non-zero counts, or "No tasks".

    With ``shut_down``: ``"Shut down · 2 cancelling · 5 cancelled"``."""
    parts = [f"{counts.get(s, 0)} {s.value}" for s in _SUMMARY_ORDER if counts.get(s, 0)]
    if shut_down:
        return " · ".join([SHUT_DOWN_TEXT, *parts])
    return " · ".join(parts) if parts else "No tasks"


class TaskFilterProxy(QSortFilterProxyModel):
    """Filters a :class:`TaskModel` by group, state and text.

    The text matches, case-insensitively, a task's name, group, message or
    error.  Group rows (grouped mode) show while one of their tasks does.
    GUI thread only.
    """

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._group: Any = ANY_GROUP
        self._state: TaskState | None = None
        self._text = ""
        self.setRecursiveFilteringEnabled(True)
        self.setSortRole(TaskModel.SortRole)

    def set_group(self, group: Any) -> None:
        """Show only this group's tasks; ``ANY_GROUP`` shows all."""
        self._change(_group=group)

    def set_state(self, state: TaskState | None) -> None:
        """Show only tasks in this state; ``None`` shows all."""
        self._change(_state=state)

    def set_text(self, text: str) -> None:
        """Show only tasks whose name, group, message or error contain ``text``."""
        self._change(_text=text.strip().casefold())

    def _change(self, **values: Any) -> None:
        if hasattr(self, "beginFilterChange"):  # Qt 6.10+; invalidateFilter is deprecated
            self.beginFilterChange()
            self._set(values)
            self.endFilterChange(QSortFilterProxyModel.Direction.Rows)
        else:
            self._set(values)
            self.invalidateFilter()

    def _set(self, values: dict[str, Any]) -> None:
        for name, value in values.items():
            setattr(self, name, value)

    def multiData(  # noqa: N802 - Qt override
        self, index: QModelIndex | QPersistentModelIndex, role_data_span: QModelRoleDataSpan
    ) -> None:
        # Qt's proxy answers multiData() with one data() per role, each
        # mapping the index and calling the source (in Python) again: a
        # delegate's ~10 roles per cell, each a wait for the GIL while workers
        # run.  One call here, and the source answers every role at once.
        if index.isValid():
            self.sourceModel().multiData(self.mapToSource(index), role_data_span)

    def filterAcceptsRow(  # noqa: N802 - Qt override
        self, source_row: int, source_parent: QModelIndex | QPersistentModelIndex
    ) -> bool:
        # Called for every row the model inserts or changes: with no filter set,
        # answered without a single call into Qt (each would wait for the GIL).
        if self._group is ANY_GROUP and self._state is None and not self._text:
            return True
        model = self.sourceModel()
        info = (
            model._info_at(source_row, source_parent)
            if isinstance(model, TaskModel)
            else model.index(source_row, 0, source_parent).data(TaskModel.InfoRole)
        )
        if info is None:  # a group row: shown while a child is (recursive filtering)
            return False
        if self._group is not ANY_GROUP and info.group != self._group:
            return False
        if self._state is not None and info.state is not self._state:
            return False
        if self._text:
            text = self._text
            return (
                text in info.name.casefold()
                or text in group_label(info.group).casefold()
                or text in info.message.casefold()
                or text in info.error.casefold()
            )
        return True


class TaskMonitor(QWidget):
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
    * A summary line of the model's ``state_counts()``, refreshed with each model pass.
    * Once the manager is shut down (it emits nothing more; the model notices
      and reads the registry): the summary starts with "Shut down", tasks
      still stopping show as cancelling until they end, and the actions are
      disabled.

    GUI thread only.
    """

    def __init__(
        self, manager: BackgroundTaskManager, parent: QWidget | None = None, grouped: bool = False
    ) -> None:
        """Show ``manager``'s tasks; with ``grouped`` as a tree, a row per group."""
        super().__init__(parent)
        self._manager = manager
        self.setAccessibleName("Task monitor")
        self.model = TaskModel(manager, self, grouped=grouped)
        self.proxy = TaskFilterProxy(self)
        # group rows show while a task of theirs does; a flat list has none
        self.proxy.setRecursiveFilteringEnabled(grouped)
        self._groups_listed: set[Any] = set()  # groups in the group filter
        self._last_group: list[Any] = []
        self.proxy.setSourceModel(self.model)

        # filters
        self.group_combo = QComboBox(self)
        self.group_combo.setAccessibleName("Group filter")
        self.group_combo.addItem("All groups", ANY_GROUP)
        self.group_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.state_combo = QComboBox(self)
        self.state_combo.setAccessibleName("State filter")
        self.state_combo.addItem("All states", None)
        for state in TaskState:
            self.state_combo.addItem(state.value.capitalize(), state)
        self.text_edit = QLineEdit(self)
        self.text_edit.setAccessibleName("Text filter")
        self.text_edit.setPlaceholderText("name, message or error")
        self.text_edit.setClearButtonEnabled(True)
        filters = QHBoxLayout()
        for text, field in (
            ("&Group:", self.group_combo),
            ("&State:", self.state_combo),
            ("&Filter:", self.text_edit),
        ):
            label = QLabel(text, self)
            label.setBuddy(field)
            filters.addWidget(label)
            filters.addWidget(field, 1 if field is self.text_edit else 0)

        # the table: a QTableView when flat (a QTreeView lays out every row,
        # calling into Python for each, whenever rows come or go), a tree when grouped
        if grouped:
            tree = QTreeView(self)
            tree.setUniformRowHeights(True)
            self.view: QTreeView | QTableView = tree
            header = tree.header()
        else:
            table = QTableView(self)
            table.setShowGrid(False)
            table.setWordWrap(False)
            table.setCornerButtonEnabled(False)
            table.setTabKeyNavigation(False)  # Tab leaves the table, as from a tree
            table.verticalHeader().hide()
            table.verticalHeader().setDefaultSectionSize(table.fontMetrics().height() + 6)
            self.view = table
            header = table.horizontalHeader()
        self.view.setAccessibleName("Tasks")
        self.view.setModel(self.proxy)
        self.view.setAlternatingRowColors(True)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.setSortingEnabled(True)
        header.setSortIndicator(-1, Qt.SortOrder.AscendingOrder)  # task order
        header.setStretchLastSection(True)
        header.setHighlightSections(False)
        self.delegate = ProgressDelegate(self.view)
        self.view.setItemDelegateForColumn(PROGRESS, self.delegate)
        for column, width in ((NAME, 180), (GROUP, 90), (PROGRESS, 110), (MESSAGE, 180)):
            self.view.setColumnWidth(column, width)

        # actions
        self.cancel_button = QPushButton("&Cancel", self)
        self.cancel_button.setAccessibleName("Cancel selected tasks")
        self.cancel_button.setToolTip(
            "Cancel the selected queued or running tasks (Alt+C, Delete in the table)"
        )
        self.retry_button = QPushButton("&Retry", self)
        self.retry_button.setAccessibleName("Retry selected failed tasks")
        self.retry_button.setToolTip(
            "Run the selected failed or cancelled tasks again (Alt+R, Ctrl+R)"
        )
        self.clear_button = QPushButton("C&lear finished", self)
        self.clear_button.setAccessibleName("Clear finished tasks")
        self.clear_button.setToolTip(
            "Remove every finished task from the list (Alt+L, Ctrl+Shift+Del)"
        )
        self.summary_label = QLabel(self)
        self.summary_label.setAccessibleName("Task summary")
        self.summary_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByKeyboard)
        buttons = QHBoxLayout()
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.retry_button)
        buttons.addWidget(self.clear_button)
        buttons.addStretch(1)
        buttons.addWidget(self.summary_label)

        # the error panel
        self.error_panel = QPlainTextEdit(self)
        self.error_panel.setAccessibleName("Traceback of the selected task")
        self.error_panel.setReadOnly(True)
        self.error_panel.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.error_panel.setPlaceholderText("Select a failed task to see its traceback")
        self.error_panel.setTabChangesFocus(True)
        self.copy_button = QPushButton("Cop&y traceback", self)
        self.copy_button.setAccessibleName("Copy traceback")
        self.copy_button.setToolTip("Copy the traceback to the clipboard (Alt+Y, Ctrl+Shift+C)")
        error_box = QWidget(self)
        error_layout = QVBoxLayout(error_box)
        error_layout.setContentsMargins(0, 0, 0, 0)
        error_header = QHBoxLayout()
        error_label = QLabel("&Traceback:", error_box)
        error_label.setBuddy(self.error_panel)
        error_header.addWidget(error_label)
        error_header.addStretch(1)
        error_header.addWidget(self.copy_button)
        error_layout.addLayout(error_header)
        error_layout.addWidget(self.error_panel)

        splitter = QSplitter(Qt.Orientation.Vertical, self)
        splitter.addWidget(self.view)
        splitter.addWidget(error_box)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 1)
        splitter.setChildrenCollapsible(False)

        layout = QVBoxLayout(self)
        layout.addLayout(filters)
        layout.addWidget(splitter, 1)
        layout.addLayout(buttons)

        for first, second in (
            (self.group_combo, self.state_combo),
            (self.state_combo, self.text_edit),
            (self.text_edit, self.view),
            (self.view, self.cancel_button),
            (self.cancel_button, self.retry_button),
            (self.retry_button, self.clear_button),
            (self.clear_button, self.error_panel),
            (self.error_panel, self.copy_button),
        ):
            QWidget.setTabOrder(first, second)

        # wiring
        self.group_combo.currentIndexChanged.connect(self._group_chosen)
        self.state_combo.currentIndexChanged.connect(
            lambda _: self.proxy.set_state(self.state_combo.currentData())
        )
        self.text_edit.textChanged.connect(self.proxy.set_text)
        self.cancel_button.clicked.connect(self.cancel_selected)
        self.retry_button.clicked.connect(self.retry_selected)
        self.clear_button.clicked.connect(self.clear_finished)
        self.copy_button.clicked.connect(self.copy_traceback)
        self.view.selectionModel().selectionChanged.connect(self._selection_changed)
        self.view.selectionModel().currentChanged.connect(self._show_traceback)
        #: Grouped: new groups start expanded while the monitor shows fewer tasks
        #: than this, collapsed beyond.  An expanded tree lays out every expanded
        #: row through Python whenever rows come or go: in a flood of 20,000
        #: tasks (groups of 100) the worst stall was 42-48 ms with a limit of
        #: 1,000, 24-37 ms with 300 (200-220 ms with every group expanded).
        self.auto_expand_limit = 300
        if isinstance(self.view, QTreeView):
            if self.model.task_count() < self.auto_expand_limit:
                self.view.expandAll()
            self.model.rowsInserted.connect(self._expand_group)
        self.model.batch_applied.connect(self._refresh)
        self.view.installEventFilter(self)
        #: The actions' keyboard shortcuts, by action name.
        self.shortcuts: dict[str, QShortcut] = {}
        children = Qt.ShortcutContext.WidgetWithChildrenShortcut
        only_view = Qt.ShortcutContext.WidgetShortcut
        for name, keys, button, owner, context in (
            # Delete only in the table: the text filter and the panel keep theirs
            ("cancel", QKeySequence.StandardKey.Delete, self.cancel_button, self.view, only_view),
            ("retry", "Ctrl+R", self.retry_button, self, children),
            ("clear", "Ctrl+Shift+Del", self.clear_button, self, children),
            ("copy", "Ctrl+Shift+C", self.copy_button, self, children),
        ):
            shortcut = QShortcut(QKeySequence(keys), owner)
            shortcut.setContext(context)
            shortcut.activated.connect(button.click)
            self.shortcuts[name] = shortcut
        self._refresh()

    # ------------------------------------------------------------------ public

    def selected_uids(self) -> list[int]:
        """Uids of the selected tasks, in view order."""
        rows = self.view.selectionModel().selectedRows(0)
        uids = (index.data(TaskModel.UidRole) for index in rows)
        return [uid for uid in uids if uid is not None]

    def select_uid(self, uid: int) -> bool:
        """Select (and make current) a task's row; False if it is filtered out or absent."""
        index = self.proxy.mapFromSource(self.model.index_of(uid))
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
        for them; not the ones they wait for); returns how many."""
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
        """Run the selected failed or cancelled tasks again; returns how many."""
        if self.model._check_shut_down():  # notices one at once
            return 0  # a shut-down manager takes no orders
        n = 0
        for uid in self.selected_uids():
            try:
                state = self._manager.task_state(uid)
            except KeyError:
                continue
            if state in _RETRYABLE:
                self._manager.retry(uid)
                n += 1
        return n

    def clear_finished(self) -> int:
        """Forget every finished task (the rows go at the next pass); returns how many."""
        if self.model._check_shut_down():  # notices one at once
            return 0  # a shut-down manager takes no orders
        return self._manager.clear_finished()

    def copy_traceback(self) -> None:
        """Put the error panel's text on the clipboard."""
        QGuiApplication.clipboard().setText(self.error_panel.toPlainText())

    # ------------------------------------------------------------------ internals

    def eventFilter(self, watched: Any, event: Any) -> bool:  # noqa: N802 - Qt override
        if watched is self.view and event.type() == event.Type.KeyPress:
            if event.matches(QKeySequence.StandardKey.Delete):
                self.cancel_selected()
                return True
        return super().eventFilter(watched, event)

    def _expand_group(self, parent: QModelIndex, first: int, last: int) -> None:
        assert isinstance(self.view, QTreeView)
        if self.model.task_count() >= self.auto_expand_limit:
            return
        if not parent.isValid():  # new group rows start expanded
            for row in range(first, last + 1):
                self.view.expand(self.proxy.mapFromSource(self.model.index(row, 0)))

    def _group_chosen(self, _: int) -> None:
        self.proxy.set_group(self.group_combo.currentData())

    def _refresh(self) -> None:
        shut_down = self.model.is_shut_down()
        self.summary_label.setText(summary_text(self.model.state_counts(), shut_down))
        tip = SHUT_DOWN_TIP if shut_down else ""
        if self.summary_label.toolTip() != tip:
            self.summary_label.setToolTip(tip)
        groups = self.model.groups()
        if len(groups) != len(self._groups_listed) or groups[-1:] != self._last_group:
            combo = self.group_combo
            for group in groups:
                if group not in self._groups_listed:
                    self._groups_listed.add(group)
                    combo.addItem(group_label(group), group)
            self._last_group = groups[-1:]
        self._update_buttons()
        self._show_traceback(self.view.currentIndex())

    def _selection_changed(self, *_: Any) -> None:
        self._update_buttons()

    def _update_buttons(self) -> None:
        if self.model.is_shut_down():  # a shut-down manager takes no orders
            for button in (self.cancel_button, self.retry_button, self.clear_button):
                button.setEnabled(False)
            return
        infos = [self.model.task_info(uid) for uid in self.selected_uids()]
        states = [info.state for info in infos if info is not None]
        self.cancel_button.setEnabled(any(not s.is_terminal for s in states))
        self.retry_button.setEnabled(any(s in _RETRYABLE for s in states))
        self.clear_button.setEnabled(True)

    def _show_traceback(self, current: QModelIndex, *_: Any) -> None:
        info = current.data(TaskModel.InfoRole) if current.isValid() else None
        if info is None:
            text = ""
        else:
            text = info.traceback or info.error
        if self.error_panel.toPlainText() != text:
            self.error_panel.setPlainText(text)
        self.copy_button.setEnabled(bool(text))
