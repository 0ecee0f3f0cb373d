"""What the ``TaskMonitor``'s selection allows: counts kept as the selection and
the selected rows change, so enabling its buttons costs nothing per selected row.

The selection model says which rows were selected or deselected (rows that
leave the view, filtered out or removed, are deselected with a signal too);
the model says which rows got a new snapshot (``rows_updated``).  Each is
work in proportion to the rows it names, never to the whole selection:
with 20,000 rows selected, a pass that changes 10 rows reads 10.

GUI thread only, as the monitor.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from PySide6.QtCore import QItemSelection

from ..core._state import TaskInfo, TaskState
from ._model import TaskModel

#: What a selected task allows.
CANCEL = 1  # it has not ended: Cancel stops it
RETRY = 2  # failed or cancelled: Retry runs it again
NO_RETRY = 4  # failed or cancelled, but it cannot run again (see ``kind_of``)

RETRYABLE = frozenset({TaskState.FAILED, TaskState.CANCELLED})

#: Why a task with a key cannot be retried.
KEYED_REASON = (
    "a task with a key shares one run with the other tasks of its key and keeps no function "
    "of its own to run again"
)


def kind_of(info: TaskInfo) -> int:
    """``CANCEL``, ``RETRY``, ``NO_RETRY`` or 0 (finished, nothing to do) for a task.

    A failed or cancelled task with a ``key`` cannot be retried: its
    function was released when it ended (``retry`` raises ``ValueError``).
    """
    state = info.state
    if not state.is_terminal:
        return CANCEL
    if state in RETRYABLE:
        return NO_RETRY if info.key is not None else RETRY
    return 0


class SelectionTally:
    """The selected tasks' kinds, by uid, and how many of each kind."""

    def __init__(self, model: TaskModel) -> None:
        self._model = model
        self._kinds: dict[int, int] = {}
        self.counts = {CANCEL: 0, RETRY: 0, NO_RETRY: 0}

    def clear(self) -> None:
        """Forget the selection (the view's selection model was replaced)."""
        self._kinds.clear()
        self.counts = dict.fromkeys(self.counts, 0)

    def count(self, kind: int) -> int:
        """How many selected tasks are of ``kind``."""
        return self.counts[kind]

    def selection_changed(self, selected: QItemSelection, deselected: QItemSelection) -> None:
        """Take a selection model's ``selectionChanged`` (rows of the view's model)."""
        for uid in self._uids(deselected):
            self._drop(uid)
        for uid in self._uids(selected):
            self._put(uid)

    def rows_updated(self, uids: Iterable[int]) -> None:
        """Take the model's ``rows_updated``: the selected ones of ``uids`` changed."""
        kinds = self._kinds
        for uid in uids:
            if uid in kinds:
                self._put(uid)

    def _put(self, uid: int) -> None:
        info = self._model.task_info(uid)
        kinds, counts = self._kinds, self.counts
        old = kinds.get(uid, 0)
        new = 0 if info is None else kind_of(info)
        if old == new:
            if info is not None:
                kinds[uid] = new
            return
        if old:
            counts[old] -= 1
        if new:
            counts[new] += 1
        kinds[uid] = new

    def _drop(self, uid: int) -> None:
        old = self._kinds.pop(uid, 0)
        if old:
            self.counts[old] -= 1

    def _uids(self, selection: QItemSelection) -> Iterator[int]:
        """The task uids of a selection of rows (group rows have none)."""
        role = TaskModel.UidRole
        for i in range(selection.size()):
            span = selection.at(i)
            parent, model = span.parent(), span.model()
            for row in range(span.top(), span.bottom() + 1):
                uid = model.index(row, 0, parent).data(role)
                if uid is not None:
                    yield uid
