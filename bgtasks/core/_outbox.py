"""The event outbox the owner's thread drains."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ._events import (
    OPTIONAL_EVENTS,
    TASK_CANCELLED,
    TASK_COMPLETED,
    TASK_FAILED,
    TASK_PROGRESS,
    TASK_STATE,
)
from ._fields import (
    TAKE_LIMIT,
    TRIM_LIMIT,
    SchedulerFields,
)
from ._task import (
    _HIDDEN,
    Task,
)


class Outbox(SchedulerFields):
    """Events in the order things happened; the owner takes them in batches."""

    def watch(self, kinds: Iterable[int]) -> None:
        """Produce the optional event kinds in ``kinds`` (someone listens to them)."""
        with self._lock:
            self._watched = frozenset(kinds) & OPTIONAL_EVENTS
            self._watch_states = TASK_STATE in self._watched

    def _flush_wake(self) -> None:
        if self._outbox and not self._wake_pending:
            self._wake_pending = True
            self._wake()

    def _queue_progress(self, source: Task, now: float) -> None:
        source.progress_queued = True
        source.progress_at = now
        for t in source.mirrors if source.mirrors is not None else (source,):
            if t.group is not _HIDDEN:
                self._outbox.append((TASK_PROGRESS, source, t))
                self._n_progress += 1

    def take_events(self) -> list[tuple[Any, ...]]:
        """Take the undelivered events, oldest first, at most ``TAKE_LIMIT`` of
        them; called on the owner's thread, until it returns an empty list.

        The owner delivers each batch before it takes the next: taking marks
        the previous batch delivered (its results are released, its tasks may
        be forgotten).  Progress events carry the value current at the take:
        ``(TASK_PROGRESS, source, task, fraction, message)``; a progress event
        of a run that retry() reset is dropped.  An empty list means the outbox
        was empty, and the next event will call ``wake()`` again.
        """
        with self._lock:
            delivered = self._taken
            if delivered:
                self._taken = []
                grave = self._grave
                tasks = self._tasks
                for event in delivered:
                    kind = event[0]
                    if kind == TASK_COMPLETED:  # (kind, uid, group, result)
                        task = tasks.get(event[1])
                        if task is None:
                            continue  # forgotten meanwhile (clear_finished): nothing held
                        task.pending -= 1
                        if task.result is not None:
                            grave.append(task.result)
                            task.result = None  # delivered: later tasks don't merge it
                            if task.merge is not None:
                                task.merge = None
                    elif kind == TASK_FAILED or kind == TASK_CANCELLED:  # an end
                        event[1].pending -= 1
                grave.append(delivered)
            # Delivery caught up: keep_finished holds again, a bounded step a take.
            more = len(self._finished) > self.keep_finished and self._trim_finished(TRIM_LIMIT)
            events = self._outbox
            if not events:
                if more:  # the owner comes back for the rest (after its other events)
                    self._wake()
                else:
                    self._wake_pending = False
                events = []  # never the live outbox: a worker may append to it now
            else:
                # The rest waits for the next take (the owner takes until it gets
                # none) in the same list, shortened in place: copied into a new
                # list, a flood's backlog (tens of thousands of events) was a
                # young container every young collection walked again.
                taken = events[:TAKE_LIMIT]
                del events[:TAKE_LIMIT]
                events = taken
                if self._n_progress:
                    events = self._snapshot_progress(events)
                self._taken = events
        if self._grave or self._deferred:
            self._after()
        return events

    def _snapshot_progress(self, events: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        """Progress events get the values to deliver (lock held)."""
        out: list[tuple[Any, ...]] = []
        append = out.append
        for event in events:
            if event[0] == TASK_PROGRESS:
                self._n_progress -= 1
                source = event[1]
                source.progress_queued = False  # a newer value queues a new event
                if source.progress is None:
                    continue  # retried since: the new run has reported nothing yet
                event = (TASK_PROGRESS, source, event[2], source.progress, source.progress_message)
            append(event)
        return out
