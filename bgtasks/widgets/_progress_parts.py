"""The failure list of ``TaskProgressDialog``: a row per failed task, its traceback a child row.

A child row shows the traceback's lines as they fit; the pane below the list
shows the current failure's whole traceback, wrapped (a tree cannot size a
wrapped row that spans its columns).  GUI thread only.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Qt
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import QLabel, QPlainTextEdit, QTreeWidget, QTreeWidgetItem, QWidget

from ._progress_batch import BatchFailure


class FailureList:
    """A label and a tree of failed tasks; both hidden while the list is empty.

    Not a QObject: it only holds the two widgets, which belong to ``owner``.
    """

    def __init__(self, owner: QWidget) -> None:
        self.label = QLabel("&Failed tasks (expand one for its traceback):", owner)
        view = self.view = QTreeWidget(owner)
        view.setHeaderLabels(["Task", "Error"])
        view.setAccessibleName("Failed tasks")
        view.setAccessibleDescription("Expand a task to read its traceback")
        view.setUniformRowHeights(False)  # a traceback row is many lines high
        view.header().setStretchLastSection(True)
        self.label.setBuddy(view)
        pane = self.traceback_pane = QPlainTextEdit(owner)
        pane.setReadOnly(True)
        pane.setTabChangesFocus(True)
        pane.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
        pane.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        pane.setAccessibleName("Traceback of the selected failed task")
        pane.setPlaceholderText("Select a failed task to read its traceback")
        for widget in (self.label, view, pane):
            widget.hide()
        self._listed: set[int] = set()
        self._tracebacks: dict[int, str] = {}
        view.currentItemChanged.connect(self._show_traceback)

    def uids(self) -> set[int]:
        """The failed tasks listed."""
        return set(self._listed)

    def add(self, failures: Sequence[BatchFailure]) -> bool:
        """List the failures not listed yet, each with its traceback as a child row;
        True if there were any."""
        new = [failure for failure in failures if failure.uid not in self._listed]
        if not new:
            return False
        mono = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        for failure in new:
            self._listed.add(failure.uid)
            item = QTreeWidgetItem([failure.name, failure.error])
            item.setData(0, Qt.ItemDataRole.UserRole, failure.uid)
            item.setToolTip(1, failure.error)
            text = failure.traceback.rstrip() or "(no traceback)"
            self._tracebacks[failure.uid] = text
            detail = QTreeWidgetItem([text])
            detail.setData(0, Qt.ItemDataRole.UserRole, failure.uid)
            detail.setToolTip(0, text)
            detail.setFont(0, mono)
            item.addChild(detail)
            self.view.addTopLevelItem(item)
            detail.setFirstColumnSpanned(True)
        self.view.resizeColumnToContents(0)
        first = self.view.topLevelItem(0)
        if self.view.currentItem() is None and first is not None:
            self.view.setCurrentItem(first)  # the pane shows the first traceback at once
        for widget in (self.label, self.view, self.traceback_pane):
            widget.show()
        return True

    def drop(self, uid: int) -> None:
        """Remove a task's row (it runs again)."""
        if uid not in self._listed:
            return
        self._listed.discard(uid)
        self._tracebacks.pop(uid, None)
        view = self.view
        for row in range(view.topLevelItemCount()):
            item = view.topLevelItem(row)
            if item is not None and item.data(0, Qt.ItemDataRole.UserRole) == uid:
                view.takeTopLevelItem(row)
                break
        if not self._listed:
            for widget in (self.label, view, self.traceback_pane):
                widget.hide()

    def focus_first(self) -> None:
        """Give the list the focus, on its first row unless a row is current."""
        view = self.view
        view.setFocus()
        first = view.topLevelItem(0)
        if view.currentItem() is None and first is not None:
            view.setCurrentItem(first)

    def _show_traceback(self, current: QTreeWidgetItem | None, *_: object) -> None:
        uid = current.data(0, Qt.ItemDataRole.UserRole) if current is not None else None
        self.traceback_pane.setPlainText(self._tracebacks.get(uid, "") if uid is not None else "")


def grow(widget: QWidget, width: int, height: int) -> None:
    """Make ``widget`` at least ``width`` x ``height`` (within the screen), around its
    centre when shown; it never shrinks."""
    screen = widget.screen().availableGeometry()
    width = min(max(widget.width(), width), screen.width())
    height = min(max(widget.height(), height), screen.height())
    if (width, height) == (widget.width(), widget.height()):
        return
    centre = widget.frameGeometry().center()
    widget.resize(width, height)
    if widget.isVisible():  # grow around its centre, and stay on the screen
        frame = widget.frameGeometry()
        frame.moveCenter(centre)
        x = min(max(frame.left(), screen.left()), screen.right() - frame.width() + 1)
        y = min(max(frame.top(), screen.top()), screen.bottom() - frame.height() + 1)
        widget.move(x, y)
