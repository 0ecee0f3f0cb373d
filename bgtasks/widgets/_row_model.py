"""``RowModel``: the Qt item-model face of a ``RowStore``.

It answers Qt (index, parent, row counts, cell data) from the store's
containers, with no call per row beyond Qt's own, and reads the rows for
the public accessors.  ``TaskModel`` derives from it
and keeps the store in step with a manager.

GUI thread only: the model's thread.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import (
    QAbstractItemModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
)

from ..core._state import TaskInfo, TaskState
from ._columns import (
    ALIGNMENT,
    BRUSHES,
    COLUMNS,
    DISPLAY,
    ELAPSED,
    ERROR,
    FOREGROUND,
    GROUP,
    GROUP_ROLE,
    HEADERS,
    INFO_ROLE,
    MESSAGE,
    NAME,
    PROGRESS,
    PROGRESS_ROLE,
    RIGHT,
    SORT_ROLE,
    STATE,
    STATE_ROLE,
    TOOLTIP,
    TRACEBACK_ROLE,
    UID_ROLE,
    USER,
    display,
    fill_group_span,
    group_data,
    group_label,
    natural_key,
    task_data,
)
from ._rows import GroupRow, RowStore, TaskRow

_ROOT = QModelIndex()  # the invalid index: the parent of top rows


class RowModel(QAbstractItemModel):
    """Task rows (and group rows, with ``grouped``) of a ``RowStore``
    as a Qt item model; see ``TaskModel`` for the
    columns and roles.  GUI thread only."""

    UidRole = UID_ROLE
    StateRole = STATE_ROLE
    ProgressRole = PROGRESS_ROLE
    TracebackRole = TRACEBACK_ROLE
    InfoRole = INFO_ROLE
    GroupRole = GROUP_ROLE
    SortRole = SORT_ROLE

    NameColumn = NAME
    GroupColumn = GROUP
    StateColumn = STATE
    ProgressColumn = PROGRESS
    MessageColumn = MESSAGE
    ElapsedColumn = ELAPSED
    ErrorColumn = ERROR

    def __init__(self, parent: QObject | None, grouped: bool, sort_groups: bool = False) -> None:
        super().__init__(parent)
        self._grouped = bool(grouped)
        #: The names of the groups that have one (kept by ``TaskModel``).
        names: dict[Any, str] = {}
        self._names = names
        # sort_groups: group rows in the natural order of their labels
        store = self._store = RowStore(
            self._grouped,
            (lambda key: natural_key(group_label(key, names))) if sort_groups else None,
        )
        # the containers the per-row Qt methods read (no lookup through the store)
        self._top, self._groups = store.top, store.groups
        self._group_of_gid, self._nodes = store.group_of_gid, store.nodes

    @property
    def grouped(self) -> bool:
        """Whether the tasks are shown under a row per group (a tree)."""
        return self._grouped

    def groups(self) -> list[Any]:
        """The groups of the tasks in the model, in the order they first appeared.

        Manager's thread.
        """
        return list(self._store.group_sizes)

    def group_label(self, group: Any) -> str:
        """How the model shows ``group``: the manager's name for it
        (``set_group_name``), else ``str(group)`` ("(no group)" for ``None``).

        Manager's thread.

        Args:
            group: The group.
        """
        return group_label(group, self._names)

    def state_counts(self) -> dict[TaskState, int]:
        """How many task rows the model shows in each state (kept as rows change).

        Manager's thread.
        """
        return dict(self._store.counts)

    def task_count(self) -> int:
        """How many task rows the model has (group rows not counted).  Manager's thread."""
        return len(self._nodes)

    def uids(self) -> list[int]:
        """Every task uid in the model, in row order (groups in order in grouped mode).

        Manager's thread.
        """
        return self._store.uids()

    def task_info(self, uid: int) -> TaskInfo | None:
        """The snapshot the model shows for ``uid``, or ``None`` if it has no such row.

        Manager's thread.

        Args:
            uid: The task's uid.
        """
        node = self._nodes.get(uid)
        return None if node is None else node.info

    def index_of(self, uid: int, column: int = 0) -> QModelIndex:
        """The index of a task's cell, invalid if the model has no row for it.

        Manager's thread.

        Args:
            uid: The task's uid.
            column: The cell's column.
        """
        node = self._nodes.get(uid)
        if node is None:
            return QModelIndex()
        return self.createIndex(node.row, column, 0 if node.parent is None else node.parent.gid)

    def group_index(self, group: Any, column: int = 0) -> QModelIndex:
        """The index of a group's row (grouped mode), invalid if the model has none.

        Manager's thread.

        Args:
            group: The group.
            column: The cell's column.
        """
        row = self._store.group_of_key.get(group) if self._grouped else None
        if row is None:
            return QModelIndex()
        return self.createIndex(row.row, column, 0)

    # ------------------------------------------------------------------ Qt model API

    def _node(self, index: QModelIndex | QPersistentModelIndex) -> TaskRow | GroupRow | None:
        gid = index.internalId()
        row = index.row()
        try:
            if not self._grouped:
                return self._top[row]
            if gid == 0:
                return self._groups[row]
            return self._group_of_gid[gid].children[row]
        except (IndexError, KeyError):
            return None

    def _info_at(
        self, row: int, parent: QModelIndex | QPersistentModelIndex = _ROOT
    ) -> TaskInfo | None:
        """The snapshot of the task in ``row`` under ``parent``; None for a group
        row or no row.  For a filter proxy: no call through Qt, so no wait for
        the GIL."""
        try:
            if not parent.isValid():
                if self._grouped:
                    return None
                return self._top[row].info if row >= 0 else None
            if not self._grouped or parent.internalId() != 0 or row < 0:
                return None
            return self._groups[parent.row()].children[row].info
        except IndexError:
            return None

    def index(
        self, row: int, column: int, parent: QModelIndex | QPersistentModelIndex = _ROOT
    ) -> QModelIndex:
        # Views call this once per row on every layout and once per cell on
        # every paint: checked here, in Python, not with hasIndex(), which calls
        # rowCount() and columnCount() back; and with as few calls into Qt as
        # can tell the cases apart (an invalid parent's row is -1).
        if row < 0 or not 0 <= column < COLUMNS:
            return QModelIndex()
        prow = parent.row()
        if prow < 0:  # a top row
            if row >= (len(self._groups) if self._grouped else len(self._top)):
                return QModelIndex()
            return self.createIndex(row, column, 0)
        # a task row: under a group row's first cell only
        if not self._grouped or parent.internalId() != 0 or parent.column() != 0:
            return QModelIndex()
        groups = self._groups
        if prow >= len(groups):
            return QModelIndex()
        group = groups[prow]
        if row >= len(group.children):
            return QModelIndex()
        return self.createIndex(row, column, group.gid)

    def parent(  # type: ignore[override]
        self, index: QModelIndex | QPersistentModelIndex = _ROOT
    ) -> QModelIndex:
        gid = index.internalId()  # 0 for a top row and for the invalid index
        if gid == 0:
            return QModelIndex()
        group = self._group_of_gid.get(gid)
        if group is None:
            return QModelIndex()
        return self.createIndex(group.row, 0, 0)

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = _ROOT) -> int:  # noqa: N802
        if not parent.isValid():
            return len(self._groups) if self._grouped else len(self._top)
        if not self._grouped or parent.column() != 0 or parent.internalId() != 0:
            return 0
        row = parent.row()
        return len(self._groups[row].children) if row < len(self._groups) else 0

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = _ROOT) -> int:  # noqa: N802
        return COLUMNS

    def headerData(  # noqa: N802
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation == Qt.Orientation.Horizontal and 0 <= section < len(HEADERS):
            if role == Qt.ItemDataRole.DisplayRole:
                return HEADERS[section]
        return None

    # flags() is Qt's (enabled, selectable): views ask it for every cell they
    # paint, and an override would cost a call into Python each time.

    def hasChildren(  # noqa: N802 - Qt override
        self, parent: QModelIndex | QPersistentModelIndex = _ROOT
    ) -> bool:
        # One call per row when a tree view lays out (Qt's would call
        # rowCount() and columnCount()); a task row (a non-zero internalId)
        # is answered after one call into Qt.
        if parent.internalId() != 0:
            return False
        row = parent.row()
        if row < 0:  # the invalid index: the root
            return bool(self._groups if self._grouped else self._top)
        if not self._grouped or parent.column() != 0:
            return False
        return row < len(self._groups) and bool(self._groups[row].children)

    def data(
        self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        node = self._node(index) if index.isValid() else None
        if node is None:
            return None
        if isinstance(node, GroupRow):
            return group_data(node, index.column(), role, self._names)
        return task_data(node.info, index.column(), role, self._names)

    def multiData(  # noqa: N802 - Qt override
        self,
        index: QModelIndex | QPersistentModelIndex,
        role_data_span: Any,  # a QModelRoleDataSpan: iterable, but PySide6's stubs omit __iter__
    ) -> None:
        # A delegate asks for ~10 roles per cell at each paint.  Qt's default
        # multiData calls data() once per role, letting go of the GIL around
        # each call: with busy workers every call waits for it again.  One
        # call per cell here halves a paint's time during a flood.
        # A caller may pass the same span for cell after cell (Qt's delegate
        # keeps one), so every role this model can answer is written, a value
        # or cleared: a slot left alone would keep the previous cell's value (a
        # failed row's red coloured the rows painted after it).  Roles it never
        # answers (font, decoration, check state, background) are never set by
        # it, so they stay empty and are left alone: clearing them too cost a
        # paint ~2 ms.  No value is cleared, not set to None: a QVariant holding
        # Python's None is valid, and Qt converting it calls back into Python.
        node = self._node(index) if index.isValid() else None
        if node is None:
            for slot in role_data_span:
                slot.clearData()
            return
        col = index.column()
        if isinstance(node, GroupRow):
            fill_group_span(node, col, role_data_span, self._names)
            return
        info = node.info
        names = self._names
        value: object
        for slot in role_data_span:
            role = slot.role()
            # the roles a delegate asks for, answered inline; most have no value
            if role == DISPLAY:
                value = display(info, col, names)
            elif role == FOREGROUND:
                value = BRUSHES.get(info.state)
            elif role == ALIGNMENT:
                value = RIGHT if col == ELAPSED else None
            elif role == TOOLTIP or role > USER:
                value = task_data(info, col, role, names)
            else:
                continue  # a role no cell answers: never set, still empty
            if value is None:
                slot.clearData()
            else:
                slot.setData(value)
