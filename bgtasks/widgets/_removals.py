"""The rows a ``TaskModel`` was told to remove, and
removing them in blocks.

A block is contiguous rows of one parent, one ``beginRemoveRows`` each.
Rows go last first, so the rows of those left keep their numbers.  A
block is sized from the measured cost per row, so a pass stays near its
budget (views and proxies react to each block inside ``endRemoveRows``).
GUI thread only, as the model.
"""

from __future__ import annotations

from time import perf_counter

from PySide6.QtCore import QAbstractItemModel, QModelIndex

from ._row_edits import emit_group_changed, remove_group_row
from ._rows import RowStore, TaskRow

#: Fewest rows or tasks a budgeted pass handles at once, however slow the last ones were.
MIN_CHUNK = 64


class Removals:
    """The uids whose rows are to go (``uids``), applied by ``apply``."""

    def __init__(self) -> None:
        self.uids: set[int] = set()
        # the rows of uids, sorted last row first; None when stale
        self._order: list[TaskRow] | None = None
        self._cost = 5e-6  # seconds one removed row costs a pass, measured

    def add(self, uid: int) -> None:
        """Remove ``uid``'s row at the next pass."""
        self.uids.add(uid)
        self._order = None

    def discard(self, uid: int) -> None:
        """Keep ``uid``'s row after all (if it was to go)."""
        if uid in self.uids:
            self.uids.discard(uid)
            self._order = None

    def apply(self, model: QAbstractItemModel, store: RowStore, deadline: float, cap: int) -> int:
        """Remove rows, block by block, until ``cap`` rows went or ``deadline``
        (``perf_counter()``) passed (one block at least); returns how many went."""
        order = self._order
        if order is None:
            nodes = store.nodes
            order = [nodes[uid] for uid in self.uids]
            order.sort(
                key=lambda n: (-1 if n.parent is None else n.parent.row, n.row), reverse=True
            )
            self._order = order
        done = pos = 0
        while pos < len(order) and done < cap:
            began = perf_counter()
            if done and began >= deadline:
                break
            # no more than half the time left allows at the measured cost per row
            most = cap - done
            if deadline != float("inf"):
                most = min(most, max(MIN_CHUNK, int((deadline - began) / 2 / self._cost)))
            end = _block_end(order, pos, min(len(order), pos + most))
            block = order[pos:end]
            pos = end
            self._remove_block(model, store, block)
            done += len(block)
            cost = (perf_counter() - began) / len(block)
            self._cost = 0.5 * self._cost + 0.5 * max(cost, 1e-7)
        del order[:pos]
        return done

    def _remove_block(
        self, model: QAbstractItemModel, store: RowStore, block: list[TaskRow]
    ) -> None:
        group = block[0].parent
        rows = store.rows_of(group)
        parent = QModelIndex() if group is None else model.createIndex(group.row, 0, 0)
        model.beginRemoveRows(parent, block[-1].row, block[0].row)
        store.drop_block(rows, block, self.uids)
        model.endRemoveRows()
        if group is not None:
            group.counts = None
            if rows:
                emit_group_changed(model, group)
            else:
                remove_group_row(model, store, group)


def _block_end(order: list[TaskRow], pos: int, limit: int) -> int:
    """Where the block starting at ``order[pos]`` ends: the rows after it of the
    same parent, each the row above the one before, up to ``limit``."""
    group = order[pos].parent
    end = pos + 1
    while end < limit and order[end].parent is group and order[end].row == order[end - 1].row - 1:
        end += 1
    return end
