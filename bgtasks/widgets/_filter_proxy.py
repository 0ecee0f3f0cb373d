"""``TaskFilterProxy``: the ``TaskMonitor``'s filter by
group, state and text.  GUI thread only."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import (
    QModelIndex,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
    Signal,
)

from ..core._state import TaskState
from ..qt._home_thread import DiesAtHome
from ._columns import group_label
from ._model import TaskModel

#: The group filter's value that shows every group.
ANY_GROUP: Any = object()


class TaskFilterProxy(DiesAtHome, QSortFilterProxyModel):
    """Filters a ``TaskModel`` by group, state and text.

    The text matches, case-insensitively, a task's name, group (as the
    model shows it: its name, see ``TaskModel.group_label``), message or
    error.  Group rows (grouped mode) show while one of their tasks does.
    ``filter_about_to_change`` and ``filter_changed`` are emitted around
    each change of a filter, and ``sort_applied(column, order)`` after each
    ``sort()`` (the monitor moves its view between the model and this proxy
    on them, and shows the sort in its header).  GUI thread only.
    """

    filter_about_to_change = Signal()
    filter_changed = Signal()
    sort_applied = Signal(int, Qt.SortOrder)

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._remember_home()  # destroyed on this thread, whoever drops it last
        self._group: Any = ANY_GROUP
        self._state: TaskState | None = None
        self._text = ""
        self.setRecursiveFilteringEnabled(True)
        self.setSortRole(TaskModel.SortRole)

    def is_filtering(self) -> bool:
        """Whether a filter is set (group, state or text): some rows may be hidden."""
        return self._group is not ANY_GROUP or self._state is not None or bool(self._text)

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
        self.filter_about_to_change.emit()
        if hasattr(self, "beginFilterChange"):  # Qt 6.10+; invalidateFilter is deprecated
            self.beginFilterChange()
            self._set(values)
            self.endFilterChange(QSortFilterProxyModel.Direction.Rows)
        else:
            self._set(values)
            self.invalidateFilter()
        self.filter_changed.emit()

    def _set(self, values: dict[str, Any]) -> None:
        for name, value in values.items():
            setattr(self, name, value)

    def sort(  # noqa: D102 - Qt override
        self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder
    ) -> None:
        """Qt override: sort by ``column`` (-1: the model's order), then say so."""
        super().sort(column, order)
        self.sort_applied.emit(column, order)

    def multiData(  # noqa: N802 - Qt override
        self,
        index: QModelIndex | QPersistentModelIndex,
        role_data_span: Any,  # a QModelRoleDataSpan: iterable, but PySide6's stubs omit __iter__
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
        label = model.group_label if isinstance(model, TaskModel) else group_label
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
                or text in label(info.group).casefold()
                or text in info.message.casefold()
                or text in info.error.casefold()
            )
        return True
