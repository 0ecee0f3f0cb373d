"""The changes a ``TaskModel`` recorded from the
manager's signals and not applied yet, and the fetch that applies inserts
and refreshes.

A signal only records a uid: to insert, to remove, or whose row is stale.
A pass fetches the snapshots of every task it takes with one
``manager.infos(uids)`` call (one wait for the scheduler lock per pass, not
one per task).  GUI thread only, as the model.
"""

from __future__ import annotations

from itertools import islice
from time import perf_counter
from typing import Any, NamedTuple

from PySide6.QtCore import QAbstractItemModel

from ..core._state import TaskInfo, TaskState
from ..qt._manager import BackgroundTaskManager
from ._columns import COLUMNS
from ._removals import MIN_CHUNK, Removals
from ._row_edits import emit_changed, insert_infos
from ._rows import RowStore

#: The states a run ends in.
TERMINAL = frozenset({TaskState.COMPLETED, TaskState.FAILED, TaskState.CANCELLED})


class PendingUids(NamedTuple):
    """The uids a model recorded and no pass applied yet (see ``TaskModel.pending()``)."""

    #: Announced tasks without a row yet, in the order they were announced.
    to_add: tuple[int, ...]
    #: Rows to remove.
    to_remove: frozenset[int]
    #: Rows whose task changed, to read again, in the order they changed.
    to_refresh: tuple[int, ...]


class PendingChanges:
    """Uids to insert (``to_add``), to read again (``dirty``) and to remove:
    forgotten by the manager (``removals``) or out of the window of finished
    rows (``trims``)."""

    def __init__(self) -> None:
        # uids announced and without a row, in order, with the state their last
        # task_state_changed gave (None before one); ``finished_adds`` counts the
        # finished ones, kept by the model's slots
        self.to_add: dict[int, TaskState | None] = {}
        self.finished_adds = 0
        self.dirty: dict[int, None] = {}
        self.removals = Removals()
        self.trims = Removals()
        # seconds one task costs a pass (fetch + rows), measured: sizes the chunks
        self._item_cost = 5e-6

    def __bool__(self) -> bool:
        return bool(self.to_add or self.removals.uids or self.dirty or self.trims.uids)

    def uids(self) -> PendingUids:
        """A copy of what is recorded."""
        return PendingUids(tuple(self.to_add), frozenset(self.removals.uids), tuple(self.dirty))

    def hide_finished_adds(self, store: RowStore, n: int) -> None:
        """Count the first ``n`` finished tasks of ``to_add`` hidden, without reading
        them: newer finished ones fill the window of finished rows."""
        to_add = self.to_add
        gone: list[int] = []
        for uid, state in to_add.items():
            if state in TERMINAL and state is not None:
                store.hide(uid, state)
                gone.append(uid)
                if len(gone) == n:
                    break
        for uid in gone:
            del to_add[uid]
        self.finished_adds -= len(gone)

    def _take_adds(self, n: int) -> list[int]:
        """Remove and return the first ``n`` uids of ``to_add`` (keeping ``finished_adds``)."""
        to_add = self.to_add
        if n <= 0 or not to_add:
            return []
        items = list(islice(to_add.items(), n))
        if len(items) == len(to_add):
            to_add.clear()
        else:
            for uid, _ in items:
                del to_add[uid]
        if self.finished_adds:
            self.finished_adds -= sum(1 for _, state in items if state in TERMINAL)
        return [uid for uid, _ in items]

    def apply_fetched(
        self,
        model: QAbstractItemModel,
        store: RowStore,
        manager: BackgroundTaskManager,
        deadline: float,
        cap: int,
        window: int | None = None,
    ) -> tuple[int, list[int]]:
        """Insert and refresh up to ``cap`` recorded tasks with one ``infos()``
        call: one wait for the scheduler lock per pass, not one per task.  The
        chunk is sized from the measured cost per task so the pass stays near
        its budget; a pass takes at least a few tasks, so the queue drains.
        With a ``window`` of finished rows, finished tasks that would leave it
        at once get no row (they are counted hidden).  Returns how many tasks
        it took, and the uids of the rows that changed."""
        room = deadline - perf_counter()
        if room != float("inf"):
            # aim at half the room left: a long call is more likely to lose the
            # GIL to the workers for a whole switch interval
            cap = min(cap, max(MIN_CHUNK, int(room / 2 / self._item_cost)))
        if window is not None and self.finished_adds > window:
            self.hide_finished_adds(store, self.finished_adds - window)
        adds = self._take_adds(cap)
        updates = take(self.dirty, cap - len(adds))
        taken = len(adds) + len(updates)
        if not taken:
            return 0, []
        began = perf_counter()
        # uids already forgotten are left out: their task_removed follows
        snaps = manager.infos([*adds, *updates])
        get = snaps.get
        fresh = [inf for uid in adds if (inf := get(uid)) is not None]
        if window is not None:
            fresh = beyond_window(store, fresh, window)
        insert_infos(model, store, fresh, True)
        changed = store.update(updates, get)
        emit_changed(model, changed, 0, COLUMNS - 1)
        cost = (perf_counter() - began) / taken
        self._item_cost = 0.5 * self._item_cost + 0.5 * max(cost, 1e-7)
        return taken, [node.uid for node in changed]


def beyond_window(store: RowStore, infos: list[TaskInfo], window: int) -> list[TaskInfo]:
    """The snapshots of ``infos`` that get a row: of more than ``window`` finished
    tasks, the first ones would leave the window at once; they are counted hidden."""
    skip = sum(1 for inf in infos if inf.state.is_terminal) - window
    if skip <= 0:
        return infos
    kept: list[TaskInfo] = []
    for inf in infos:
        if skip and inf.state.is_terminal:
            store.hide(inf.uid, inf.state)
            skip -= 1
        else:
            kept.append(inf)
    return kept


def take(queue: dict[int, Any], n: int) -> list[int]:
    """Remove and return the first ``n`` keys of an insertion-ordered dict."""
    if n <= 0 or not queue:
        return []
    if n >= len(queue):
        keys = list(queue)
        queue.clear()
        return keys
    keys = list(islice(queue, n))
    for key in keys:
        del queue[key]
    return keys
