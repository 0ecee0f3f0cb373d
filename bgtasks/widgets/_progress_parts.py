"""The failure list of ``TaskProgressDialog``: a row per failed task, its traceback a child row.

GUI thread only.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Qt
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import QLabel, QTreeWidget, QTreeWidgetItem, QWidget

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
        self.label.hide()
        view.hide()
        self._listed: set[int] = set()

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
            detail = QTreeWidgetItem([failure.traceback.rstrip() or "(no traceback)"])
            detail.setFont(0, mono)
            item.addChild(detail)
            self.view.addTopLevelItem(item)
            detail.setFirstColumnSpanned(True)
        self.view.resizeColumnToContents(0)
        self.label.show()
        self.view.show()
        return True

    def drop(self, uid: int) -> None:
        """Remove a task's row (it runs again)."""
        if uid not in self._listed:
            return
        self._listed.discard(uid)
        view = self.view
        for row in range(view.topLevelItemCount()):
            item = view.topLevelItem(row)
            if item is not None and item.data(0, Qt.ItemDataRole.UserRole) == uid:
                view.takeTopLevelItem(row)
                break
        if not self._listed:
            self.label.hide()
            view.hide()

    def focus_first(self) -> None:
        """Give the list the focus, on its first row unless a row is current."""
        view = self.view
        view.setFocus()
        first = view.topLevelItem(0)
        if view.currentItem() is None and first is not None:
            view.setCurrentItem(first)
