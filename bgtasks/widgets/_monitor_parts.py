"""The parts of a ``TaskMonitor``, each built by a small
function: the filter bar, the task view, the action bar, the traceback pane
and the keyboard shortcuts.  The monitor lays them out and wires them.

GUI thread only.
"""

from __future__ import annotations

from itertools import pairwise
from typing import NamedTuple

from PySide6.QtCore import QAbstractItemModel, Qt
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QTableView,
    QTreeView,
    QVBoxLayout,
    QWidget,
)

from ..core._state import TaskState
from ._columns import ELAPSED, GROUP, MESSAGE, NAME, PROGRESS, STATE
from ._delegate import ProgressDelegate
from ._filter_proxy import ANY_GROUP


class FilterBar(NamedTuple):
    """The filters by group, state and text, with their labels in a row."""

    layout: QHBoxLayout
    group_combo: QComboBox
    state_combo: QComboBox
    text_edit: QLineEdit


class TaskView(NamedTuple):
    """The view of the tasks and the progress bar painter of its progress column."""

    view: QTreeView | QTableView
    delegate: ProgressDelegate


class ActionBar(NamedTuple):
    """Cancel, Retry and Clear finished, what the last action did, then the summary line."""

    layout: QHBoxLayout
    cancel_button: QPushButton
    retry_button: QPushButton
    clear_button: QPushButton
    summary_label: QLabel
    status_label: QLabel


class TracebackPane(NamedTuple):
    """The selected task's traceback, read only, with a Copy button."""

    box: QWidget
    error_panel: QPlainTextEdit
    copy_button: QPushButton


def build_filter_bar(owner: QWidget) -> FilterBar:
    """Group (``Alt+G``), state (``Alt+S``) and text (``Alt+F``) filters."""
    group_combo = QComboBox(owner)
    group_combo.setAccessibleName("Group filter")
    group_combo.addItem("All groups", ANY_GROUP)
    group_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
    state_combo = QComboBox(owner)
    state_combo.setAccessibleName("State filter")
    state_combo.addItem("All states", None)
    for state in TaskState:
        state_combo.addItem(state.value.capitalize(), state)
    text_edit = QLineEdit(owner)
    text_edit.setAccessibleName("Text filter")
    text_edit.setPlaceholderText("name, message or error")
    text_edit.setClearButtonEnabled(True)
    layout = QHBoxLayout()
    for text, field in (
        ("&Group:", group_combo),
        ("&State:", state_combo),
        ("&Filter:", text_edit),
    ):
        label = QLabel(text, owner)
        label.setBuddy(field)
        layout.addWidget(label)
        layout.addWidget(field, 1 if field is text_edit else 0)
    return FilterBar(layout, group_combo, state_combo, text_edit)


def build_task_view(owner: QWidget, model: QAbstractItemModel, grouped: bool) -> TaskView:
    """A QTableView when flat (a QTreeView lays out every row, calling into
    Python for each, whenever rows come or go), a tree when grouped, over
    ``model`` (the columns' widths need its columns)."""
    if grouped:
        tree = QTreeView(owner)
        tree.setUniformRowHeights(True)
        view: QTreeView | QTableView = tree
        header = tree.header()
    else:
        table = QTableView(owner)
        table.setShowGrid(False)
        table.setWordWrap(False)
        table.setCornerButtonEnabled(False)
        table.setTabKeyNavigation(False)  # Tab leaves the table, as from a tree
        table.verticalHeader().hide()
        table.verticalHeader().setDefaultSectionSize(table.fontMetrics().height() + 6)
        view = table
        header = table.horizontalHeader()
    view.setAccessibleName("Tasks")
    view.setModel(model)
    # Rows come and go all the time: a scroll bar shown and hidden with them
    # shifted the columns sideways under the reader, and each time resized
    # the viewport and header (a relayout and a full repaint in a flood's gap).
    view.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOn)
    view.setAlternatingRowColors(True)
    view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
    view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    view.setSortingEnabled(True)
    header.setSortIndicator(-1, Qt.SortOrder.AscendingOrder)  # task order
    header.setStretchLastSection(True)
    header.setHighlightSections(False)
    delegate = ProgressDelegate(view)
    view.setItemDelegateForColumn(PROGRESS, delegate)
    for column, width in ((NAME, 180), (GROUP, 90), (PROGRESS, 110), (MESSAGE, 180), (ELAPSED, 70)):
        view.setColumnWidth(column, width)
    if grouped:  # a group row's state counts ("3 queued, 3 running") need the room
        view.setColumnWidth(STATE, 150)
    return TaskView(view, delegate)


def build_action_bar(owner: QWidget) -> ActionBar:
    """The action buttons, with their mnemonics and tool tips, and the summary line."""
    cancel_button = QPushButton("&Cancel", owner)
    cancel_button.setAccessibleName("Cancel selected tasks")
    cancel_button.setToolTip(
        "Cancel the selected queued or running tasks (Alt+C, Delete in the table)"
    )
    retry_button = QPushButton("&Retry", owner)
    retry_button.setAccessibleName("Retry selected failed tasks")
    retry_button.setToolTip("Run the selected failed or cancelled tasks again (Alt+R, Ctrl+R)")
    clear_button = QPushButton("C&lear finished", owner)
    clear_button.setAccessibleName("Clear finished tasks")
    clear_button.setToolTip("Remove every finished task from the list (Alt+L, Ctrl+Shift+Del)")
    summary_label = QLabel(owner)
    summary_label.setAccessibleName("Task summary")
    summary_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByKeyboard)
    status_label = QLabel(owner)
    status_label.setAccessibleName("Last action")
    layout = QHBoxLayout()
    layout.addWidget(cancel_button)
    layout.addWidget(retry_button)
    layout.addWidget(clear_button)
    layout.addWidget(status_label)
    layout.addStretch(1)
    layout.addWidget(summary_label)
    return ActionBar(layout, cancel_button, retry_button, clear_button, summary_label, status_label)


def build_traceback_pane(owner: QWidget) -> TracebackPane:
    """The error panel under a "Traceback:" label (``Alt+T``) and Copy (``Alt+Y``)."""
    error_panel = QPlainTextEdit(owner)
    error_panel.setAccessibleName("Traceback of the selected task")
    error_panel.setReadOnly(True)
    error_panel.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
    error_panel.setPlaceholderText("Select a failed task to see its traceback")
    error_panel.setTabChangesFocus(True)
    copy_button = QPushButton("Cop&y traceback", owner)
    copy_button.setAccessibleName("Copy traceback")
    copy_button.setToolTip("Copy the traceback to the clipboard (Alt+Y, Ctrl+Shift+C)")
    box = QWidget(owner)
    layout = QVBoxLayout(box)
    layout.setContentsMargins(0, 0, 0, 0)
    header = QHBoxLayout()
    label = QLabel("&Traceback:", box)
    label.setBuddy(error_panel)
    header.addWidget(label)
    header.addStretch(1)
    header.addWidget(copy_button)
    layout.addLayout(header)
    layout.addWidget(error_panel)
    return TracebackPane(box, error_panel, copy_button)


def build_shortcuts(
    owner: QWidget, view: QAbstractItemView, actions: ActionBar, copy_button: QPushButton
) -> dict[str, QShortcut]:
    """A ``QShortcut`` per action that clicks its button (so a disabled action
    stays inert): Delete in ``view`` only, the others anywhere in ``owner``."""
    shortcuts: dict[str, QShortcut] = {}
    children = Qt.ShortcutContext.WidgetWithChildrenShortcut
    only_view = Qt.ShortcutContext.WidgetShortcut
    for name, keys, button, target, context in (
        # Delete only in the table: the text filter and the panel keep theirs
        ("cancel", QKeySequence.StandardKey.Delete, actions.cancel_button, view, only_view),
        ("retry", "Ctrl+R", actions.retry_button, owner, children),
        ("clear", "Ctrl+Shift+Del", actions.clear_button, owner, children),
        ("copy", "Ctrl+Shift+C", copy_button, owner, children),
    ):
        shortcut = QShortcut(QKeySequence(keys), target)
        shortcut.setContext(context)
        shortcut.activated.connect(button.click)
        shortcuts[name] = shortcut
    return shortcuts


def set_tab_order(*widgets: QWidget) -> None:
    """Tab moves through ``widgets`` in this order."""
    for first, second in pairwise(widgets):
        QWidget.setTabOrder(first, second)
