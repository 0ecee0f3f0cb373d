"""``BackgroundTaskManager``: the Qt layer over the scheduling core.

It adds three things to :class:`~bgtasks._scheduler.Scheduler`: a private
``QThreadPool`` whose workers run :func:`~bgtasks._scheduler.run_worker`, a
drain that turns the scheduler's events into signals on the manager's thread,
and lifetime handling (``shut_down``, application quit, interpreter exit,
deletion).

Delivery: a worker that records the first undelivered event posts one
``QEvent`` to the manager.  The drain then emits signals for every event it
finds, oldest first, for at most ``drain_budget`` seconds per pass; if more
remain it posts itself again, so paint and input events interleave with a
flood of results and the UI never freezes.
"""

from __future__ import annotations

import atexit
import functools
import weakref
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from time import perf_counter
from typing import Any

from PySide6.QtCore import QCoreApplication, QEvent, QObject, Signal

from . import _pool
from ._scheduler import GROUP_FINISHED, TASK_COMPLETED, Scheduler, TaskState, run_worker

_WAKE = QEvent.Type(QEvent.registerEventType())

#: Managers not yet shut down, for the interpreter-exit hook.
_LIVE_MANAGERS: weakref.WeakSet[BackgroundTaskManager] = weakref.WeakSet()


class BackgroundTaskManager(QObject):
    """Runs tasks in a private thread pool and reports on the manager's thread.

    A task is a callable with arguments, a priority (higher first, FIFO among
    equals, ``None`` counts as 0), a group (any hashable value, ``None``
    included) and upstream tasks it waits for.  Each upstream result that is a
    non-empty dict is merged into the task's keyword arguments, upstream keys
    winning over the task's own ``task_kwargs``.

    Signals (always emitted on the thread the manager lives in, in the order
    the tasks finished):

    * ``task_completed(uid, group, result)``
    * ``task_failed(uid, group, message, traceback_str)``: the task raised
      (anything, ``SystemExit`` included), or an upstream task failed; every
      downstream task of a failed task fails with the same message and
      traceback and never runs.
    * ``task_group_finished(group)``: the last live task of a group ended and
      at least one of the group's tasks completed or failed since the group's
      last ``task_group_finished``.  A group whose tasks were all stopped
      gets none.

    Stopped tasks end silently.  Every task ends exactly once: completed,
    failed or stopped.

    Thread safety: ``add_task``, ``add_pass_through_task``, ``next_group_id``,
    ``stop_task``, ``stop_task_group`` and ``stop_all_tasks`` may be called from
    any thread, a running task included.  The other methods belong to the
    manager's thread.
    """

    task_completed = Signal(object, object, object)
    task_failed = Signal(object, object, str, str)
    task_group_finished = Signal(object)

    def __init__(
        self,
        parent: QObject | None = None,
        start_processing: bool = False,
        max_threads: int = 8,
    ) -> None:
        """Create a manager with its own pool of at most ``max_threads`` threads.

        Call on the thread whose event loop should receive the signals.
        """
        if isinstance(max_threads, bool) or not isinstance(max_threads, int) or max_threads < 1:
            raise ValueError(f"max_threads must be a positive integer, got {max_threads!r}")
        super().__init__(parent)
        #: Seconds the drain may spend emitting signals before it yields to the event loop.
        self.drain_budget = 0.004
        #: Seconds ``shut_down()`` waits for running tasks when no timeout is given;
        #: also used when the application quits or the interpreter exits.
        self.shutdown_timeout = 5.0
        self._pending: deque[tuple[int, Any]] = deque()  # taken from the scheduler, not yet emitted
        self._shut_down = False
        pool = self._pool = _pool.new_pool(max_threads)
        me = weakref.ref(self)

        def wake() -> None:  # scheduler lock held; never after close()
            manager = me()
            if manager is not None:
                QCoreApplication.postEvent(manager, QEvent(_WAKE))

        def spawn(count: int) -> None:  # any thread, scheduler lock not held
            for _ in range(count):
                pool.start(work)

        scheduler = self._scheduler = Scheduler(max_threads, spawn, wake)
        work = functools.partial(run_worker, scheduler)
        # Deleted without shut_down() (by a parent, or garbage collected): stop
        # posting to the dead object at once, and never wait for a stuck task.
        self.destroyed.connect(functools.partial(_on_destroyed, scheduler, pool))
        app = QCoreApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.shut_down)
        _LIVE_MANAGERS.add(self)
        if start_processing:
            scheduler.start()

    # ------------------------------------------------------------------ seed API

    def add_task(
        self,
        cbl: Callable[..., Any],
        priority: float | None = None,
        group: Hashable = None,
        upstream_task_ids: Sequence[int] | None = None,
        task_args: Sequence[Any] | None = None,
        task_kwargs: dict[str, Any] | None = None,
    ) -> int:
        """Queue ``cbl(*task_args, **task_kwargs)`` and return the task's uid.

        Any thread may call this, a running task included.  Raises ``TypeError``
        for a non-callable ``cbl``, a ``task_args`` that is not a list or tuple,
        a ``task_kwargs`` that is not a mapping, an unhashable group or a
        non-numeric priority; ``ValueError`` for an upstream id this manager
        never issued; ``RuntimeError`` after ``shut_down()``.
        """
        if cbl is None or not callable(cbl):
            raise TypeError(f"cbl must be callable, got {cbl!r}")
        return self._scheduler.add(cbl, priority, group, upstream_task_ids, task_args, task_kwargs)

    def add_pass_through_task(
        self,
        priority: float | None = None,
        group: Hashable = None,
        upstream_task_ids: Sequence[int] | None = None,
        task_kwargs: dict[str, Any] | None = None,
    ) -> int:
        """Queue a task that does no work and completes with its merged kwargs.

        Its result is ``task_kwargs`` updated with every upstream dict result,
        which makes it a fan-in point.  Any thread may call this.
        """
        return self._scheduler.add(None, priority, group, upstream_task_ids, None, task_kwargs)

    def next_group_id(self) -> int:
        """Return a group id no other call returned.  Any thread may call this."""
        return self._scheduler.next_group_id()

    def start_processing(self) -> None:
        """Start (or resume) dispatching queued tasks.  Manager's thread."""
        self._scheduler.start()

    def pause_processing(self) -> None:
        """Stop dispatching new tasks; running tasks finish and report.  Manager's thread."""
        self._scheduler.pause()

    def stop_task(self, task_id: int, stop_upstream: bool = True, stop_downstream: bool = True) -> None:
        """Stop a task: if queued it never runs; if running its result is dropped.

        Stopped tasks emit nothing.  With ``stop_upstream`` the tasks it waits
        for are stopped too, with ``stop_downstream`` the tasks waiting for it.
        Tasks downstream of a stopped task can never get its result, so they are
        stopped whatever ``stop_downstream`` says.  Running Python code cannot be
        interrupted: a running task goes on until its function returns.

        Any thread may call this.  ``KeyError`` for a uid this manager never
        issued; a task that already ended is left alone.
        """
        self._scheduler.stop(task_id, stop_upstream, stop_downstream)

    def stop_task_group(
        self, group: Hashable, stop_upstream: bool = True, stop_downstream: bool = True
    ) -> None:
        """Stop every live task of ``group``, as :meth:`stop_task` does.  Any thread."""
        self._scheduler.stop_group(group, stop_upstream, stop_downstream)

    def stop_all_tasks(self) -> None:
        """Stop every queued and running task, as :meth:`stop_task` does.  Any thread."""
        self._scheduler.stop_all()

    def shut_down(self, timeout: float | None = None) -> None:
        """Drop every queued task, and wait for running ones at most ``timeout`` seconds.

        Nothing is emitted afterwards, and ``add_task`` raises ``RuntimeError``.
        Tasks still running when the timeout expires are left to finish in the
        background; their results are dropped.  Idempotent.  Runs by itself when
        the application quits or the interpreter exits.  Manager's thread.
        """
        if timeout is None:
            timeout = self.shutdown_timeout
        elif isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout < 0:
            raise ValueError(f"timeout must be a non-negative number of seconds, got {timeout!r}")
        if self._shut_down:
            return
        self._shut_down = True
        self._scheduler.close()
        self._pending.clear()
        _LIVE_MANAGERS.discard(self)
        _pool.release_pool(self._pool, timeout)

    # ------------------------------------------------------------------ beyond the seed

    def task_state(self, uid: int) -> TaskState | None:
        """The task's state; None once a completed task's result was taken for delivery.

        ``KeyError`` for a uid this manager never issued.  Any thread.
        """
        return self._scheduler.state(uid)

    @property
    def max_threads(self) -> int:
        return self._pool.maxThreadCount()

    # ------------------------------------------------------------------ delivery

    def event(self, ev: QEvent) -> bool:
        if ev.type() == _WAKE:
            self._drain()
            return True
        return super().event(ev)

    def _drain(self) -> None:
        # Events move from the scheduler to self._pending and are emitted from
        # there one at a time, so a slot that spins a nested event loop (a
        # modal dialog) gets a nested drain that continues in order.
        pending = self._pending
        take = self._scheduler.take_events
        deadline = perf_counter() + self.drain_budget
        while not self._shut_down:
            if not pending:
                events = take()
                if not events:
                    return
                pending.extend(events)
            while pending and not self._shut_down:
                kind, item = pending.popleft()
                if kind == TASK_COMPLETED:
                    result, item.result = item.result, None
                    self.task_completed.emit(item.uid, item.group, result)
                elif kind == GROUP_FINISHED:
                    self.task_group_finished.emit(item)
                else:
                    self.task_failed.emit(item.uid, item.group, item.message, item.traceback)
                if perf_counter() >= deadline:
                    QCoreApplication.postEvent(self, QEvent(_WAKE))
                    return


def _on_destroyed(scheduler: Scheduler, pool: Any, *_: object) -> None:
    scheduler.close()
    _pool.release_pool(pool, 0)


@atexit.register
def _shut_down_all() -> None:
    # Registered after PySide6's own exit hook, so it runs first.
    for manager in list(_LIVE_MANAGERS):
        try:
            manager.shut_down()
        except RuntimeError:  # the C++ object is already gone
            pass
