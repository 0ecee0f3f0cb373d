"""``BackgroundTaskManager``: the Qt layer over the scheduling core.

It adds to ``Scheduler``: a private ``QThreadPool``
whose workers run ``run_worker``; a drain that turns
the scheduler's events into signals and done-callbacks on the manager's
thread; a timer for retries and timeouts; owners; and lifetime handling
(``shut_down``, application quit, interpreter exit, deletion).

Delivery: a worker that records the first undelivered event posts one
``QEvent`` to the manager.  The drain then emits signals for every event it
finds, oldest first, for at most ``drain_budget`` seconds per pass; if more
remain it posts itself again, so paint and input events interleave with a
flood of results.  Progress is delivered at most every ``progress_interval``
seconds per task (latest value wins), and always before the task's end.
"""

from __future__ import annotations

import atexit
import functools
import logging
import sys
import warnings
import weakref
from collections.abc import Callable, Hashable, Mapping, Sequence
from time import perf_counter
from typing import Any

import PySide6
from PySide6.QtCore import (
    QCoreApplication,
    QEvent,
    QObject,
    QTimer,
    Signal,
)

from ..core import (
    MAX_WORKERS,
    Scheduler,
    check_count,
    check_seconds,
    run_worker,
)
from . import _pool
from ._delivery import WAKE, Delivery
from ._executors import Executors
from ._flat import flatten_mixins
from ._futures import ManagerExecutor
from ._group_names import GroupNames
from ._home_thread import DiesAtHome
from ._qt_types import create_loaded_qt_types
from ._registry import Registry
from ._submit import Submission

if sys.version_info < (3, 12) and PySide6.__version__.startswith("6.12.0"):
    # Each Signal.emit in PySide6 6.12.0 drops a reference to True; before
    # Python 3.12 made True immortal that aborts the process after ~1000 emits.
    warnings.warn(
        f"PySide6 {PySide6.__version__} crashes on Python {sys.version.split()[0]} after about "
        "a thousand signal emits; install PySide6-Essentials<6.12 or use Python 3.12+",
        RuntimeWarning,
        stacklevel=2,
    )

log = logging.getLogger("bgtasks")


#: Seconds after the first task is added to a manager never started before it warns.
NEVER_STARTED_AFTER = 1.0
_START_HINT = "call start_processing(), or pass start_processing=True"

#: Managers not yet shut down, for the interpreter-exit hook.
_LIVE_MANAGERS: weakref.WeakSet[BackgroundTaskManager] = weakref.WeakSet()


@flatten_mixins
class BackgroundTaskManager(
    DiesAtHome, Submission, Delivery, Executors, Registry, GroupNames, QObject
):
    """Runs tasks in a private thread pool and reports on the manager's thread.

    A task is a callable with arguments, a priority (higher first, FIFO among
    equals, ``None`` counts as 0), a group (any hashable value, ``None``
    included) and upstream tasks it waits for.  Each upstream result that is a
    non-empty dict is merged into the task's keyword arguments, upstream keys
    winning over the task's own ``task_kwargs``.

    Signals are always emitted on the thread the manager lives in (the
    manager's thread), in the order things happened.  ``uid`` is the task's
    uid (an int), ``group`` its group:

    Signals:
        * ``task_completed(uid, group, result)``: the task returned ``result``.
        * ``task_failed(uid, group, message, traceback_str)``: the task raised
          (anything, ``SystemExit`` included), timed out, or an upstream
          task failed; ``message`` and ``traceback_str`` are str.  Every
          downstream task of a failed task fails with the same message and
          traceback and never runs (or is cancelled, by policy).
        * ``task_group_finished(group)``: the last live task of a group ended and
          at least one of the group's tasks completed or failed since the
          group's last ``task_group_finished``.  A group whose tasks were
          all stopped gets none.
        * ``task_cancelled(uid, group)``: a stopped task ended.  (The seed's
          signals stay silent for stopped tasks.)
        * ``task_started(uid, group)``: the task began to run on a worker.
        * ``task_progress(uid, group, fraction, message)``: the task reported
          progress (``fraction`` a float, ``message`` a str), at most every
          ``progress_interval`` seconds, and always before its end.
        * ``task_state_changed(uid, group, state)``: the task's new
          ``TaskState``.
        * ``task_added(uid, group)``: the task was registered.
        * ``task_removed(uid, group)``: a finished task was forgotten (see
          ``keep_finished`` and ``clear_finished``).
        * ``task_status_changed(uid, group, status)``: a running task set
          ``current_task().status`` to a new value, ``status``.
        * ``group_renamed(group, name)``: ``set_group_name`` gave ``group`` a
          new name (``name`` a str; ``""``: the name was cleared, or dropped
          with the group's last task).

    Every run of a task ends exactly once: completed, failed or cancelled.

    Nothing fails silently: a failure that no ``task_failed`` slot,
    done-callback or handle (``result()``, ``exception()``, ``await``)
    observes is logged at ERROR on the ``bgtasks`` logger with its traceback
    (once per run; tasks that did not run because an upstream task failed
    are not logged again).  Tasks added to a manager never started are
    reported at WARNING a second after the first add, and at ``shut_down``.

    Thread safety: every method may be called from any thread, a running task
    included, except ``start_processing``, ``pause_processing``, ``shut_down``,
    ``set_group_name`` and the configuration setters (``set_executor``, the settable
    properties), which belong to the manager's thread.  Done-callbacks of
    handles run on the manager's thread.

    Settings (properties, validated when set): ``drain_budget`` (seconds a
    delivery pass may take, default 0.004) and ``shutdown_timeout`` (seconds
    ``shut_down`` waits for running tasks when given no timeout, also at
    application quit and interpreter exit; default 5.0), with ``max_threads``,
    ``keep_finished``, ``cache_size`` and ``progress_interval``.
    """

    task_completed = Signal(object, object, object)
    task_failed = Signal(object, object, str, str)
    task_group_finished = Signal(object)
    task_cancelled = Signal(object, object)
    task_started = Signal(object, object)
    task_progress = Signal(object, object, float, str)
    task_state_changed = Signal(object, object, object)
    task_added = Signal(object, object)
    task_removed = Signal(object, object)
    task_status_changed = Signal(object, object, object)
    group_renamed = Signal(object, str)

    def __init__(
        self,
        parent: QObject | None = None,
        start_processing: bool = False,
        max_threads: int = 8,
    ) -> None:
        """Create a manager with its own pool of at most ``max_threads`` threads.

        Call on the thread whose event loop should receive the signals: it
        becomes the manager's thread.

        Args:
            parent: The manager's QObject parent, if any.
            start_processing: Start dispatching at once; otherwise tasks wait
                for ``start_processing``.
            max_threads: The most tasks that run at once in the pool.

        Raises:
            ValueError: ``max_threads`` is not an int from 1 to the core's
                maximum (``bgtasks.core.MAX_WORKERS``).
        """
        check_count("max_threads", max_threads, minimum=1, maximum=MAX_WORKERS)
        super().__init__(parent)
        self._remember_home()  # destroyed on this thread, whoever drops it last
        # Before any worker runs: PySide's lazy type creation is not thread-safe.
        create_loaded_qt_types()
        self._drain_budget = 0.004  # drain_budget
        self._shutdown_timeout = 5.0  # shutdown_timeout
        self._shut_down = False
        self._init_delivery()
        self._init_executors()
        self._journal: Any = None  # set_journal: where persist=True tasks are recorded
        pool = self._pool = _pool.new_pool(max_threads)
        me = weakref.ref(self)

        def wake() -> None:  # scheduler lock held; never after close()
            manager = me()
            if manager is not None:
                try:
                    QCoreApplication.postEvent(manager, QEvent(WAKE))
                except RuntimeError:  # its C++ part is being deleted: close() is near
                    pass

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
        # add_task goes straight to the scheduler once _FirstAdd has stepped aside
        self._started = self._plain_add = bool(start_processing)
        if start_processing:
            scheduler.start()
        else:  # the first add arms the never-started warning (then steps aside)
            self.__dict__["_add"] = _FirstAdd(me)

    # ------------------------------------------------------------------ seed API

    def add_task(
        self,
        cbl: Callable[..., Any],
        priority: float | None = None,
        group: Hashable = None,
        upstream_task_ids: Sequence[int] | None = None,
        task_args: Sequence[Any] | None = None,
        task_kwargs: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> int:
        """Queue ``cbl(*task_args, **task_kwargs)`` and return the task's uid.

        Any thread may call this, a running task included; the task's signals
        arrive on the manager's thread.

        Args:
            cbl: The callable to run.
            priority: Higher runs first, FIFO among equals; ``None`` counts as 0.
            group: Any hashable value, ``None`` included.
            upstream_task_ids: Uids of tasks that must complete first; their
                non-empty dict results are merged into ``task_kwargs``.
            task_args: Positional arguments for ``cbl`` (a list or tuple).
            task_kwargs: Keyword arguments for ``cbl`` (a mapping).
            **options: Task options, as for ``options`` (but
                ``persist``, and the three parameters above).

        Returns:
            The task's uid.

        Raises:
            TypeError: ``cbl`` is not callable, ``task_args`` is not a list or
                tuple, ``task_kwargs`` not a mapping, ``group`` unhashable,
                ``priority`` not a number, or an option is unknown or of the
                wrong type.
            ValueError: an upstream id this manager never issued, or an option
                out of range.
            RuntimeError: the manager is shut down.
        """
        if cbl is None or not callable(cbl):
            raise TypeError(f"cbl must be callable, got {cbl!r}")
        if not options and self._plain_add:  # the common case, straight to the
            # scheduler (a method lookup on a PySide object costs ~90 ns, a call as much)
            return self._scheduler.add(
                cbl, priority, group, upstream_task_ids, task_args, task_kwargs
            )
        return self._add(cbl, priority, group, upstream_task_ids, task_args, task_kwargs, options)

    def add_pass_through_task(
        self,
        priority: float | None = None,
        group: Hashable = None,
        upstream_task_ids: Sequence[int] | None = None,
        task_kwargs: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> int:
        """Queue a task that does no work and completes with its merged kwargs.

        Its result is ``task_kwargs`` updated with every upstream dict result,
        which makes it a fan-in point.  Any thread may call this.

        Args:
            priority: As in ``add_task``.
            group: As in ``add_task``.
            upstream_task_ids: As in ``add_task``.
            task_kwargs: The result's starting point (a mapping).
            **options: Task options, as in ``add_task``.

        Returns:
            The task's uid.

        Raises:
            TypeError: as ``add_task``.
            ValueError: as ``add_task``.
            RuntimeError: the manager is shut down.
        """
        return self._add(None, priority, group, upstream_task_ids, None, task_kwargs, options)

    def next_group_id(self) -> int:
        """Return a group id no other call returned.  Any thread may call this.

        Returns:
            A new int, for the ``group`` of tasks that belong together.
        """
        return self._scheduler.next_group_id()

    def start_processing(self) -> None:
        """Start (or resume) dispatching queued tasks.  Manager's thread."""
        create_loaded_qt_types()  # modules imported since the manager was made
        self._started = True
        self.__dict__.pop("_add", None)
        self._scheduler.start()

    def pause_processing(self) -> None:
        """Stop dispatching new tasks; running tasks finish and report.  Manager's thread."""
        self._scheduler.pause()

    def stop_task(
        self, task_id: int, stop_upstream: bool = True, stop_downstream: bool = True
    ) -> None:
        """Stop a task: if queued it never runs; if running it is asked to stop.

        A running task sees ``current_task().cancelled`` become True (and its
        ``sleep`` raises); whatever it returns is dropped and it ends
        CANCELLED.  Python code cannot be interrupted from outside: a task
        that never checks runs to its end.  Stopped tasks emit
        ``task_cancelled`` only.  With ``stop_upstream`` the tasks it waits for
        are stopped too, with ``stop_downstream`` the tasks waiting for it;
        tasks downstream of a stopped task can never get its result, so they
        are stopped whatever ``stop_downstream`` says.  A task that already
        ended is left alone.  Any thread; ``task_cancelled`` arrives on the
        manager's thread.

        Args:
            task_id: The task's uid.
            stop_upstream: Also stop the tasks it waits for.
            stop_downstream: Also stop the tasks waiting for it.

        Raises:
            TypeError: ``task_id`` is not an int.
            KeyError: a uid this manager never issued, or one forgotten.
        """
        self._scheduler.stop(task_id, stop_upstream, stop_downstream)

    def stop_task_group(
        self, group: Hashable, stop_upstream: bool = True, stop_downstream: bool = True
    ) -> None:
        """Stop every live task of ``group``, as ``stop_task`` does.  Any thread.

        Args:
            group: The group (any hashable value, ``None`` included).
            stop_upstream: Also stop the tasks they wait for.
            stop_downstream: Also stop the tasks waiting for them.

        Raises:
            TypeError: ``group`` is unhashable.
        """
        self._scheduler.stop_group(group, stop_upstream, stop_downstream)

    def stop_all_tasks(self) -> None:
        """Stop every queued and running task, as ``stop_task`` does.  Any thread."""
        self._scheduler.stop_all()

    @property
    def shutdown_timeout(self) -> float:
        """Seconds ``shut_down`` waits for running tasks when given no timeout;
        also used when the application quits or the interpreter exits
        (default 5.0).

        Read on any thread; set on the manager's thread (``ValueError`` for a
        negative, NaN or infinite value).
        """
        return self._shutdown_timeout

    @shutdown_timeout.setter
    def shutdown_timeout(self, seconds: float) -> None:
        self._shutdown_timeout = float(check_seconds("shutdown_timeout", seconds))

    def shut_down(self, timeout: float | None = None) -> None:
        """Drop every queued task, and wait for running ones at most ``timeout`` seconds.

        Running tasks are asked to stop.  Nothing is emitted afterwards, and
        ``add_task`` raises ``RuntimeError``.  Tasks still running when the
        timeout expires are left to finish in the background; their results
        are dropped.  Idempotent.  Runs by itself when the application quits
        or the interpreter exits.  Manager's thread.

        Args:
            timeout: Seconds to wait for running tasks; ``None`` uses
                ``shutdown_timeout``.

        Raises:
            ValueError: ``timeout`` is not a non-negative, finite number.
        """
        if timeout is None:
            timeout = self._shutdown_timeout
        else:
            check_seconds("timeout", timeout)
        if self._shut_down:
            return
        self._shut_down = True
        deadline = perf_counter() + timeout
        if not self._started:
            waiting = self._scheduler.counts()["live"]
            if waiting:
                log.warning(
                    "shut down with %s that never ran: the BackgroundTaskManager was never "
                    "started (%s)", _tasks(waiting), _START_HINT,
                )  # fmt: skip
        self._scheduler.close()
        self._stop_delivery()
        self._scheduler.gate.stop()
        executors = self._executors_to_shut_down()
        _LIVE_MANAGERS.discard(self)
        for executor in executors:  # first: their proxy tasks then end at once
            try:
                executor.shut_down(max(0.0, deadline - perf_counter()))
            except Exception:  # noqa: BLE001 - shutting down must go on
                log.exception("shutting down %r failed", executor)
        _pool.release_pool(self._pool, max(0.0, deadline - perf_counter()))

    # ------------------------------------------------------------------ futures API

    def executor(self) -> ManagerExecutor:
        """A ``concurrent.futures.Executor`` that submits to this manager.  Any thread.

        For code written against the standard interface, e.g.
        ``loop.run_in_executor(manager.executor(), fn, *args)``.  Its
        ``submit(fn, /, *args, **kwargs)`` is ``submit``: it returns a
        ``TaskHandle``, a ``concurrent.futures.Future``.  Its
        ``shutdown()`` ends only that view (it accepts no more work, and
        cancels or waits for its own tasks), never the manager.

        Returns:
            A new view; each has its own ``shutdown``.
        """
        return ManagerExecutor(self)

    def _warn_if_never_started(self) -> None:
        # manager's thread, NEVER_STARTED_AFTER after the first add
        if self._started or self._shut_down:
            return
        waiting = self._scheduler.counts()["live"]
        if waiting:
            verb = "is" if waiting == 1 else "are"
            log.warning(
                "%s %s waiting on a BackgroundTaskManager that was never started: %s",
                _tasks(waiting), verb, _START_HINT,
            )  # fmt: skip

    def _arm_never_started(self) -> None:
        # manager's thread: the timer belongs to it
        me = weakref.ref(self)

        def check() -> None:
            manager = me()
            if manager is not None:
                manager._warn_if_never_started()

        QTimer.singleShot(round(NEVER_STARTED_AFTER * 1000), self, check)

    def _before_home_delete(self) -> None:
        # Dropped on a foreign thread and deleted now on this one: stop the
        # workers' wake-ups before the C++ object goes (DiesAtHome).
        _on_destroyed(self._scheduler, self._pool)

    @property
    def is_shut_down(self) -> bool:
        """True once ``shut_down`` has run (or started).  Any thread."""
        return self._shut_down

    # ------------------------------------------------------------------ internals


class _FirstAdd:
    """The manager's ``_add`` until the first task is added to a manager that
    was not started: it arms the never-started warning and steps aside."""

    __slots__ = ("manager",)

    def __init__(self, manager: weakref.ref[BackgroundTaskManager]) -> None:
        self.manager = manager

    def __call__(self, *args: Any) -> int:
        manager = self.manager()
        assert manager is not None  # it is calling us
        manager.__dict__.pop("_add", None)
        manager._plain_add = True
        uid = type(manager)._add(manager, *args)
        if not manager._started:
            manager._call_soon(manager._arm_never_started)  # posted from other threads
        return uid


def _tasks(n: int) -> str:
    return f"{n} task" if n == 1 else f"{n} tasks"


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
