"""Edits of a ``TaskModel``'s rows that tell its views:
inserting snapshots, changed ranges, and removing an empty group row.

Functions of the model and its ``RowStore``: each wraps a
store change in Qt's ``begin…``/``end…`` calls, or emits ``dataChanged``
once per contiguous range.  GUI thread only, as the model.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from PySide6.QtCore import QAbstractItemModel, QModelIndex

from ..core._state import TaskInfo
from ._columns import COLUMNS, GROUP, NAME
from ._rows import GroupRow, RowStore, TaskRow


def insert_infos(
    model: QAbstractItemModel, store: RowStore, infos: Iterable[TaskInfo], signal: bool
) -> None:
    """Append a row per snapshot (grouped: under its group's row, made when
    new); ``signal``: tell the views (not while the model is being made)."""
    infos = list(infos)
    store.note_finished(infos)  # in the order they came, whatever their groups
    if not store.grouped:
        _append(model, store, None, infos, signal)
        return
    by_group: dict[Any, list[TaskInfo]] = {}
    for inf in infos:
        by_group.setdefault(inf.group, []).append(inf)
    for key, batch in by_group.items():
        group = store.group_of_key.get(key)
        if group is None:
            row = store.place_of(key)
            if signal:
                model.beginInsertRows(QModelIndex(), row, row)
            group = store.add_group(key, row)
            if signal:
                model.endInsertRows()
        else:
            group.counts = None
            if signal:
                emit_group_changed(model, group)
        _append(model, store, group, batch, signal)


def _append(
    model: QAbstractItemModel,
    store: RowStore,
    group: GroupRow | None,
    infos: list[TaskInfo],
    signal: bool,
) -> None:
    if not infos:
        return
    if signal:
        first = len(store.rows_of(group))
        parent = QModelIndex() if group is None else model.createIndex(group.row, 0, 0)
        model.beginInsertRows(parent, first, first + len(infos) - 1)
    store.append(group, infos)
    if signal:
        model.endInsertRows()


def emit_changed(
    model: QAbstractItemModel, nodes: list[TaskRow], first_col: int, last_col: int
) -> None:
    """One ``dataChanged`` per contiguous range of ``nodes``' rows under one
    parent; from the first column, their group rows change too."""
    by_parent: dict[GroupRow | None, list[int]] = {}
    for node in nodes:
        by_parent.setdefault(node.parent, []).append(node.row)
    for group, rows in by_parent.items():
        gid = 0 if group is None else group.gid
        rows.sort()
        begin = 0
        for i in range(1, len(rows) + 1):
            if i == len(rows) or rows[i] != rows[i - 1] + 1:
                model.dataChanged.emit(
                    model.createIndex(rows[begin], first_col, gid),
                    model.createIndex(rows[i - 1], last_col, gid),
                )
                begin = i
        if group is not None and first_col == 0:
            group.counts = None
            emit_group_changed(model, group)


def emit_group_changed(model: QAbstractItemModel, group: GroupRow) -> None:
    """Every cell of a group's row changed (its totals follow its tasks)."""
    model.dataChanged.emit(
        model.createIndex(group.row, 0, 0), model.createIndex(group.row, COLUMNS - 1, 0)
    )


def remove_group_row(model: QAbstractItemModel, store: RowStore, group: GroupRow) -> None:
    """Remove a group's row once its last task row went."""
    row = group.row
    model.beginRemoveRows(QModelIndex(), row, row)
    store.drop_group(group)  # renumbers before the end: views ask parent()
    model.endRemoveRows()


def relabel_group(model: QAbstractItemModel, store: RowStore, group: Any) -> None:
    """The cells that show ``group``'s label changed (it was renamed): its
    row's name when grouped, its tasks' group cells (flat: the whole column,
    one signal)."""
    if store.grouped:
        row = store.group_of_key.get(group)
        if row is None:
            return
        place = store.new_place(row)
        if place == row.row:
            store.move_group(row, place)  # stays; its order value changes
        else:  # its new label sorts elsewhere: the row moves
            dest = place + 1 if place > row.row else place  # counted with it
            model.beginMoveRows(QModelIndex(), row.row, row.row, QModelIndex(), dest)
            store.move_group(row, place)
            model.endMoveRows()
        model.dataChanged.emit(
            model.createIndex(row.row, NAME, 0), model.createIndex(row.row, NAME, 0)
        )
        if row.children:
            last = len(row.children) - 1
            model.dataChanged.emit(
                model.createIndex(0, GROUP, row.gid), model.createIndex(last, GROUP, row.gid)
            )
    elif store.top and group in store.group_sizes:
        last = len(store.top) - 1
        model.dataChanged.emit(model.createIndex(0, GROUP, 0), model.createIndex(last, GROUP, 0))
