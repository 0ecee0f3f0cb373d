"""``ViewSource``: which model the ``TaskMonitor``'s view reads.

A ``QSortFilterProxyModel`` maps every index it hands out through its source's
``index()``, a call into Python, and asks ``filterAcceptsRow()`` (Python
again) of every row the source inserts.  A tree's layout then costs four
calls into Python per expanded row instead of two, a paint about twice as
many, and each model pass one more per new row; during a flood, with workers
taking the GIL between calls, each call is also a wait.  So while no filter
and no sorted column is set (the proxy would show the model as it is), the
view reads the ``TaskModel`` itself and the proxy is detached; setting a
filter or sorting by a column puts the proxy under the view, and clearing
them takes it away.

A switch keeps what the user sees: the selected rows, the current row, the
expanded groups (those the other model did not show are remembered) and the
row at the top, all found again by task uid or group.

GUI thread only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from PySide6.QtCore import (
    QAbstractItemModel,
    QItemSelection,
    QItemSelectionModel,
    QModelIndex,
    QPoint,
    Qt,
)
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableView, QTreeView

from ._filter_proxy import TaskFilterProxy
from ._model import TaskModel

#: A row, as a switch finds it again: ("task", uid) or ("group", group).
RowKey = tuple[str, Any]


class ViewSource:
    """Puts ``model`` or ``proxy`` under ``view``, whichever shows the same rows
    for less: the model while the proxy filters and sorts nothing.

    ``on_switch(old, new)`` is called with the view's old and new selection
    models after each switch, before the selection is restored on the new
    one (the monitor moves its connections); ``after_switch()`` once it is
    restored (the rows a filter hides stay unselected).  GUI thread only.
    """

    def __init__(
        self,
        view: QTreeView | QTableView,
        model: TaskModel,
        proxy: TaskFilterProxy,
        on_switch: Callable[[QItemSelectionModel, QItemSelectionModel], None],
        after_switch: Callable[[], object] = lambda: None,
    ) -> None:
        self._view = view
        self._model = model
        self._proxy = proxy
        self._on_switch = on_switch
        self._after_switch = after_switch
        #: Groups expanded when last seen, kept while a switch's new model
        #: does not show them (a filter hid them).
        self._expanded: set[Any] = set()
        self.switches = 0  # how many times the view changed model (for tests)
        if view.model() is not model:
            view.setModel(model)
        self.header.sortIndicatorChanged.connect(self._sort_changed)
        proxy.filter_about_to_change.connect(self._filter_about_to_change)
        proxy.filter_changed.connect(self._filter_changed)
        proxy.sort_applied.connect(self._proxy_sorted)

    @property
    def header(self) -> QHeaderView:
        """The view's column header (its sort indicator says the sorted column)."""
        view = self._view
        return view.header() if isinstance(view, QTreeView) else view.horizontalHeader()

    def from_model(self, index: QModelIndex) -> QModelIndex:
        """The view's index for a ``TaskModel`` index (invalid if filtered out)."""
        if self._view.model() is self._proxy:
            return self._proxy.mapFromSource(index)
        return index

    # ------------------------------------------------------------------ the proxy's signals

    def _filter_about_to_change(self) -> None:
        # The expanded groups are read before the change: a group a filter
        # hid and shows again comes back collapsed in the proxy, so they are
        # put back as they were after it.
        self._remember_expanded()

    def _filter_changed(self) -> None:
        wanted = self._wanted()
        if wanted is not self._view.model():
            self._switch(wanted, remember=False)
        elif wanted is self._proxy:
            self._restore_expanded()

    def _proxy_sorted(self, column: int, order: Qt.SortOrder) -> None:
        # proxy.sort() called by code, not by the view: shown in the header
        # as a click would, which puts the proxy under the view (or takes it away)
        header = self.header
        if (header.sortIndicatorSection(), header.sortIndicatorOrder()) != (column, order):
            header.setSortIndicator(column, order)

    # ------------------------------------------------------------------ internals

    def _wanted(self) -> QAbstractItemModel:
        if self._proxy.is_filtering() or self.header.sortIndicatorSection() >= 0:
            return self._proxy
        return self._model

    def _sort_changed(self, section: int, order: Qt.SortOrder) -> None:
        # The view sorts its model itself (the TaskModel ignores it); a switch
        # to the proxy sorts it in setModel.
        wanted = self._wanted()
        if wanted is not self._view.model():
            self._switch(wanted, remember=True)

    def _switch(self, wanted: QAbstractItemModel, remember: bool) -> None:
        view, proxy = self._view, self._proxy
        selected, current, top = self._where()
        if remember:
            self._remember_expanded()
        old_selection = view.selectionModel()
        if wanted is proxy:
            proxy.setSourceModel(self._model)  # maps and filters from now on
        # sorts a proxy by the header's sort indicator; the header keeps its
        # sections (widths, order), the two models having the same columns
        view.setModel(wanted)
        if wanted is proxy:
            header = self.header
            proxy.sort(header.sortIndicatorSection(), header.sortIndicatorOrder())
        else:
            # no work per inserted row while unused (Qt takes null; the stubs say no)
            proxy.setSourceModel(None)  # type: ignore[arg-type]
        self.switches += 1
        self._on_switch(old_selection, view.selectionModel())
        old_selection.deleteLater()  # the view made a new one; nobody shares the old
        self._restore_expanded()
        self._restore(selected, current, top)
        self._after_switch()

    def _key(self, index: QModelIndex) -> RowKey | None:
        if not index.isValid():
            return None
        uid = index.data(TaskModel.UidRole)
        if uid is not None:
            return ("task", uid)
        return ("group", index.siblingAtColumn(0).data(TaskModel.GroupRole))

    def _find(self, key: RowKey | None) -> QModelIndex:
        """The view's index of a row found by ``_key`` (invalid if not shown)."""
        if key is None:
            return QModelIndex()
        kind, value = key
        model = self._model
        index = model.index_of(value) if kind == "task" else model.group_index(value)
        return self.from_model(index)

    def _where(self) -> tuple[list[RowKey], RowKey | None, RowKey | None]:
        view = self._view
        keys = (self._key(index) for index in view.selectionModel().selectedRows(0))
        selected = [key for key in keys if key is not None]
        return selected, self._key(view.currentIndex()), self._key(view.indexAt(QPoint(0, 0)))

    def _restore(
        self, selected: Iterable[RowKey], current: RowKey | None, top: RowKey | None
    ) -> None:
        view = self._view
        selection = self._selection_of(selected)
        flags = QItemSelectionModel.SelectionFlag
        model = view.selectionModel()
        current_index = self._find(current)
        if current_index.isValid():
            model.setCurrentIndex(current_index, flags.NoUpdate)
        if not selection.isEmpty():
            model.select(selection, flags.Select | flags.Rows)
        top_index = self._find(top)
        if top_index.isValid():
            view.executeDelayedItemsLayout()  # the scroll bars' ranges, for the new rows
            view.scrollTo(top_index, QAbstractItemView.ScrollHint.PositionAtTop)

    def _selection_of(self, keys: Iterable[RowKey]) -> QItemSelection:
        """The rows of ``keys`` the view shows, a range per run of adjacent rows.

        A range per row is what a select-all would come back as: 20,000 ranges,
        which every paint tests each cell against (0.9 ms more a paint here)
        and every insertion or removal of rows walks.
        """
        runs: dict[int, tuple[QModelIndex, list[int]]] = {}  # by parent row (-1: top)
        for key in keys:
            index = self._find(key)
            if index.isValid():
                parent = index.parent()
                runs.setdefault(parent.row(), (parent, []))[1].append(index.row())
        model = self._view.model()
        selection = QItemSelection()
        for parent, rows in runs.values():
            rows.sort()
            first = last = rows[0]
            for row in rows[1:]:
                if row != last + 1:
                    selection.select(model.index(first, 0, parent), model.index(last, 0, parent))
                    first = row
                last = row
            selection.select(model.index(first, 0, parent), model.index(last, 0, parent))
        return selection

    def _group_rows(self) -> Iterable[tuple[Any, QModelIndex]]:
        model = self._view.model()
        for row in range(model.rowCount()):
            index = model.index(row, 0)
            yield index.data(TaskModel.GroupRole), index

    def _remember_expanded(self) -> None:
        view = self._view
        if not isinstance(view, QTreeView):
            return
        for group, index in self._group_rows():
            if view.isExpanded(index):
                self._expanded.add(group)
            else:
                self._expanded.discard(group)
        self._expanded.intersection_update(self._model.groups())  # gone: forgotten

    def _restore_expanded(self) -> None:
        view = self._view
        if not isinstance(view, QTreeView):
            return
        for group, index in self._group_rows():
            if group in self._expanded:
                view.expand(index)
