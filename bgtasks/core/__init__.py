"""The scheduling core: ready queue, dependency graph, groups, states, timers.

Nothing in this package imports Qt (a test checks it).

The Qt layer (``bgtasks/_manager.py``) gives the scheduler two
callbacks and runs ``run_worker`` in its thread pool:

* ``spawn(n)`` starts ``n`` more workers.  It is called *outside* the lock, by
  whichever thread made tasks ready.  The scheduler counts its workers, so
  never more than ``max_workers`` run at once.
* ``wake()`` asks the owner's thread to call ``Scheduler.take_events``.  It
  is called *under* the lock, at most once until ``take_events`` finds the
  outbox empty, so a flood of results costs one wake-up, not one per task.

Design:

* One lock (``Scheduler._lock``) guards every field.  No user code runs under
  it: task functions run in workers between ``Scheduler.finish`` calls,
  and signals are emitted by the owner after ``take_events`` returns.  No
  user object dies under it either: references dropped under the lock go to
  a graveyard emptied after the lock is released (a finalizer may call back
  into the scheduler).  A call made on the thread that holds the lock (a
  finalizer run by the garbage collector under it) is deferred until the lock
  is released; the lock is re-entrant only so that such a call can tell.
* Propagation (a stop, a failure, a retry) walks the graph with work lists,
  never recursion: chains of any length work.
* The ready queue is a heap of ``(-priority, uid, task)``: higher priority
  first, FIFO among equals because uids only grow.  An entry whose task is no
  longer QUEUED, or whose priority changed since, is skipped when popped
  (lazy deletion): a stop or a priority change is O(log n), never a scan.
* A task counts the upstream tasks it still waits for and knows its
  downstream tasks; finishing a task touches only its own dependents.
* Workers take their next task themselves, in the same lock hold that
  records the result: they never wait for the UI thread.
* Events go to one outbox in the order they happen; the owner drains it in
  batches.  Progress is coalesced: a task has at most one progress event in
  the outbox, which carries its latest value when delivered.
* Finished tasks stay in the registry (for ``info`` and late dependents)
  until ``keep_finished`` newer ones have finished; their function, arguments
  and result are dropped when they end (failed and cancelled ones keep theirs
  for ``retry``).
* Retries' backoffs, timeouts and held-back progress are deadlines in one
  heap, served by one daemon timer thread (``Scheduler.tick``), so they
  never wait for the owner's event loop.

Layout: ``Scheduler`` (``_scheduler.py``: the lock, add, claim, finish,
close) is assembled from one mixin per concern, each in its own module and all
sharing the fields declared in ``_fields.py``: ``_ready`` (the heap, claims,
how many workers), ``_transitions`` (ends and their propagation),
``_control`` (stop, priorities, retry), ``_running`` (what a running task
calls), ``_keys`` (dedupe and the result cache), ``_resources``,
``_timers``, ``_retention`` (forgetting), ``_registry`` (queries),
``_outbox`` (events) and ``_reentry`` (finalizers and the graveyard).  The
task record is in ``_task.py``, argument checks in ``_checks.py``, the worker
loop in ``_worker.py``.
"""

from ._events import (
    GROUP_FINISHED,
    OPTIONAL_EVENTS,
    TASK_ADDED,
    TASK_CANCELLED,
    TASK_COMPLETED,
    TASK_FAILED,
    TASK_PROGRESS,
    TASK_REMOVED,
    TASK_STARTED,
    TASK_STATE,
    TASK_STATUS,
)
from ._fields import ANY_GROUP, MAX_WORKERS
from ._scheduler import Scheduler
from ._task import Task
from ._validate import check_count, check_seconds
from ._worker import current, run_worker

__all__ = [
    "ANY_GROUP",
    "GROUP_FINISHED",
    "MAX_WORKERS",
    "OPTIONAL_EVENTS",
    "TASK_ADDED",
    "TASK_CANCELLED",
    "TASK_COMPLETED",
    "TASK_FAILED",
    "TASK_PROGRESS",
    "TASK_REMOVED",
    "TASK_STARTED",
    "TASK_STATE",
    "TASK_STATUS",
    "Scheduler",
    "Task",
    "check_count",
    "check_seconds",
    "current",
    "run_worker",
]
