"""How long finished tasks stay registered, and what is forgotten."""

from __future__ import annotations

from ._events import (
    TASK_REMOVED,
)
from ._fields import (
    ENDED_MEMORY,
    SchedulerFields,
)
from ._task import (
    _HIDDEN,
    COMPLETED,
)


class Retention(SchedulerFields):
    """Finished tasks stay until keep_finished newer ones finished and were delivered."""

    def _trim_finished(self, limit: int = -1) -> bool:
        """Forget the oldest finished tasks past keep_finished, at most ``limit``
        of them (-1: no limit); True if the limit stopped it and more could go.
        Never one whose end is not delivered yet (its result may still be merged
        into a task added before delivery)."""
        finished, tasks = self._finished, self._tasks
        while len(finished) > self.keep_finished:
            if tasks[finished[0]].pending:
                return False
            if not limit:
                return True
            self._forget_oldest()
            limit -= 1
        return False

    def _forget_oldest(self) -> None:
        uid = self._finished.popleft()
        task = self._tasks.pop(uid)
        grave = self._grave
        # The record may live on (a stale heap entry, an undelivered event):
        # what it holds of the user's goes now, and dies after the lock.
        grave.append((task, task.fn, task.args, task.kwargs, task.result))
        task.fn = task.args = task.kwargs = task.result = None
        if task.state is not COMPLETED:
            ended = self._ended
            ended[uid] = (task.state, task.message, task.traceback)
            if len(ended) > ENDED_MEMORY:
                del ended[next(iter(ended))]
        extras = task.__dict__
        if extras:
            grave.append(extras.copy())
            extras.clear()
        if TASK_REMOVED in self._watched and task.group is not _HIDDEN:
            self._outbox.append((TASK_REMOVED, uid, task.group))

    def clear_finished(self) -> int:
        """Forget every finished task; returns how many."""
        with self._lock:
            n = len(self._finished)
            while self._finished:
                self._forget_oldest()
            self._flush_wake()
        self._after()
        return n
