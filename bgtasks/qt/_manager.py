"""``BackgroundTaskManager``: the Qt layer over the scheduling core.

It adds to :class:`~bgtasks._scheduler.Scheduler`: a private ``QThreadPool``
whose workers run :func:`~bgtasks._scheduler.run_worker`; a drain that turns
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
import threading
import warnings
import weakref
from collections import deque
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from time import perf_counter
from typing import Any

import PySide6
from PySide6.QtCore import (
    QCoreApplication,
    QEvent,
    QMetaMethod,
    QObject,
    Qt,
    QThread,
    QTimer,
    Signal,
)

from ..core import (
    ANY_GROUP,
    GROUP_FINISHED,
    MAX_WORKERS,
    TASK_ADDED,
    TASK_CANCELLED,
    TASK_COMPLETED,
    TASK_FAILED,
    TASK_PROGRESS,
    TASK_REMOVED,
    TASK_STARTED,
    TASK_STATE,
    TASK_STATUS,
    Scheduler,
    _graph,
    check_count,
    check_seconds,
    run_worker,
)
from ..core._handle import TaskHandle
from ..core._state import TaskInfo, TaskState
from ..executors._contract import Executor, RemoteCall
from . import _pool
from ._qt_types import create_loaded_qt_types

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

_WAKE = QEvent.Type(QEvent.registerEventType())
_BEAT_MS = 1  # the GIL gate's beat: well under its STALE_AFTER
_BEAT_QUIET_AFTER = 0.25  # no event from the workers for this long: stop beating

#: Managers not yet shut down, for the interpreter-exit hook.
_LIVE_MANAGERS: weakref.WeakSet[BackgroundTaskManager] = weakref.WeakSet()

#: Signals whose events the scheduler produces only while they are connected.
_OPTIONAL_SIGNALS = {
    "task_started": TASK_STARTED,
    "task_state_changed": TASK_STATE,
    "task_added": TASK_ADDED,
    "task_removed": TASK_REMOVED,
    "task_status_changed": TASK_STATUS,
}


class BackgroundTaskManager(QObject):
    """Runs tasks in a private thread pool and reports on the manager's thread.

    A task is a callable with arguments, a priority (higher first, FIFO among
    equals, ``None`` counts as 0), a group (any hashable value, ``None``
    included) and upstream tasks it waits for.  Each upstream result that is a
    non-empty dict is merged into the task's keyword arguments, upstream keys
    winning over the task's own ``task_kwargs``.

    Signals are always emitted on the thread the manager lives in, in the
    order things happened:

    * ``task_completed(uid, group, result)``
    * ``task_failed(uid, group, message, traceback_str)``: the task raised
      (anything, ``SystemExit`` included), timed out, or an upstream task
      failed; every downstream task of a failed task fails with the same
      message and traceback and never runs (or is cancelled, by policy).
    * ``task_group_finished(group)``: the last live task of a group ended and
      at least one of the group's tasks completed or failed since the group's
      last ``task_group_finished``.  A group whose tasks were all stopped
      gets none.
    * ``task_cancelled(uid, group)``: a stopped task ended.  (The seed's
      signals stay silent for stopped tasks.)
    * ``task_started(uid, group)``, ``task_progress(uid, group, fraction,
      message)``, ``task_state_changed(uid, group, state)``,
      ``task_added(uid, group)``, ``task_removed(uid, group)``,
      ``task_status_changed(uid, group, status)`` (a running task set
      ``current_task().status`` to a new value).

    Every run of a task ends exactly once: completed, failed or cancelled.

    Thread safety: every method may be called from any thread, a running task
    included, except ``start_processing``, ``pause_processing``, ``shut_down``
    and the configuration setters, which belong to the manager's thread.
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

    def __init__(
        self,
        parent: QObject | None = None,
        start_processing: bool = False,
        max_threads: int = 8,
    ) -> None:
        """Create a manager with its own pool of at most ``max_threads`` threads.

        Call on the thread whose event loop should receive the signals.
        """
        check_count("max_threads", max_threads, minimum=1, maximum=MAX_WORKERS)
        super().__init__(parent)
        # Before any worker runs: PySide's lazy type creation is not thread-safe.
        create_loaded_qt_types()
        #: Seconds the drain may spend emitting signals before it yields to the event loop.
        self.drain_budget = 0.004
        #: Seconds ``shut_down()`` waits for running tasks when no timeout is given;
        #: also used when the application quits or the interpreter exits.
        self.shutdown_timeout = 5.0
        self._pending: deque[tuple[Any, ...]] = deque()  # taken from the scheduler, not yet emitted
        self._shut_down = False
        self._callbacks: dict[int, list[tuple[TaskHandle, Callable[[TaskHandle], Any]]]] = {}
        self._callbacks_lock = threading.Lock()
        self._resume = QTimer(self)  # the drain continues after other timers had their turn
        self._resume.setSingleShot(True)
        self._resume.timeout.connect(self._drain)
        # While workers run, this thread beats the scheduler's GIL gate: a
        # worker that sees no beat for a few ms waits until this thread has
        # had the GIL (see _gil_gate.py).  Stopped when no worker runs.
        self._beat = QTimer(self)
        self._beat.setTimerType(Qt.TimerType.PreciseTimer)
        self._beat.setInterval(_BEAT_MS)
        self._beat.timeout.connect(self._on_beat)
        self._drained_at = 0.0  # perf_counter() of the last drain
        self._calls: deque[tuple[Callable[..., Any], tuple[Any, ...]]] = deque()  # any thread
        self._owners: dict[int, set[int]] = {}  # id(owner) -> uids
        self._owner_of: dict[int, int] = {}  # uid -> id(owner)
        self._receivers: dict[int, int] = {}  # optional event kind -> connections
        self._executors: dict[str, Executor] = {}  # name -> backend, made on first use
        self._executors_used: set[str] = set()
        self._executor_limits: set[str] = set()  # resources named for executors' slots
        self._executor_lock = threading.Lock()  # the three above
        self._journal: Any = None  # set_journal: where persist=True tasks are recorded
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
        task_kwargs: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> int:
        """Queue ``cbl(*task_args, **task_kwargs)`` and return the task's uid.

        ``options`` are the keyword-only task options of :meth:`submit`.  Any
        thread may call this, a running task included.  Raises ``TypeError``
        for a non-callable ``cbl``, a ``task_args`` that is not a list or tuple,
        a ``task_kwargs`` that is not a mapping, an unhashable group or a
        non-numeric priority; ``ValueError`` for an upstream id this manager
        never issued; ``RuntimeError`` after ``shut_down()``.
        """
        if cbl is None or not callable(cbl):
            raise TypeError(f"cbl must be callable, got {cbl!r}")
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
        """
        return self._add(None, priority, group, upstream_task_ids, None, task_kwargs, options)

    def next_group_id(self) -> int:
        """Return a group id no other call returned.  Any thread may call this."""
        return self._scheduler.next_group_id()

    def start_processing(self) -> None:
        """Start (or resume) dispatching queued tasks.  Manager's thread."""
        create_loaded_qt_types()  # modules imported since the manager was made
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
        are stopped whatever ``stop_downstream`` says.

        Any thread.  ``KeyError`` for a uid this manager never issued; a task
        that already ended is left alone.
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

        Running tasks are asked to stop.  Nothing is emitted afterwards, and
        ``add_task`` raises ``RuntimeError``.  Tasks still running when the
        timeout expires are left to finish in the background; their results
        are dropped.  Idempotent.  Runs by itself when the application quits
        or the interpreter exits.  Manager's thread.
        """
        if timeout is None:
            timeout = self.shutdown_timeout
        else:
            check_seconds("timeout", timeout)
        if self._shut_down:
            return
        self._shut_down = True
        deadline = perf_counter() + timeout
        self._scheduler.close()
        self._pending.clear()
        self._resume.stop()
        self._beat.stop()
        self._scheduler.gate.stop()
        with self._callbacks_lock:
            self._callbacks.clear()
        with self._executor_lock:
            executors = list(self._executors.values())
        _LIVE_MANAGERS.discard(self)
        for executor in executors:  # first: their proxy tasks then end at once
            try:
                executor.shut_down(max(0.0, deadline - perf_counter()))
            except Exception:  # noqa: BLE001 - shutting down must go on
                log.exception("shutting down %r failed", executor)
        _pool.release_pool(self._pool, max(0.0, deadline - perf_counter()))

    # ------------------------------------------------------------------ futures API

    def submit(
        self,
        fn: Callable[..., Any],
        /,
        *args: Any,
        priority: float | None = None,
        group: Hashable = None,
        upstream_task_ids: Sequence[int] | None = None,
        name: str | None = None,
        key: Hashable = None,
        retries: int = 0,
        retry_on: type[BaseException] | tuple[type[BaseException], ...] = (Exception,),
        backoff: float = 0.1,
        timeout: float | None = None,
        resources: Mapping[str, int] | None = None,
        on_upstream_failure: str | None = None,
        exclusive: bool = False,
        owner: QObject | None = None,
        executor: str | Executor | None = None,
        persist: bool = False,
        **kwargs: Any,
    ) -> TaskHandle:
        """Queue ``fn(*args, **kwargs)`` and return its :class:`TaskHandle`.

        The keyword names below are task options (as with Dask's ``submit``),
        not arguments for ``fn``; to pass one of them to ``fn``, use
        ``functools.partial`` or ``add_task``.  The options apply to
        ``add_task`` and ``add_pass_through_task`` too.

        * ``priority``, ``group``, ``upstream_task_ids``: as in ``add_task``.
        * ``name``: shown in ``info`` and graphs (default: the function's name).
        * ``key``: while a task with this key is live, a new one attaches to it
          instead of running again; each request gets its own uid, signals and
          handle, and the shared work is cancelled only when every request
          is.  With ``cache_size`` > 0 finished results are kept by key (LRU);
          failures never are.
        * ``retries``: run again up to this many times when it raises one of
          ``retry_on``, after ``backoff * 2**(attempt-1)`` seconds with ±50 %
          jitter.
        * ``timeout``: seconds from start; then it is asked to stop, and ends
          FAILED with ``TimeoutError``.
        * ``resources``: e.g. ``{"disk": 1}``; at most the limit set by
          :meth:`set_resource_limit` runs at once, whatever ``max_threads`` is.
        * ``on_upstream_failure``: ``"fail"`` (default, as the seed) or
          ``"cancel"``; a cancelled upstream always cancels.
        * ``exclusive``: cancel the group's older tasks that have not started
          (latest wins).
        * ``owner``: a QObject; when it is destroyed its tasks are cancelled
          and nothing more is delivered for them.
        * ``executor``: where ``fn`` runs: ``None``/``"thread"`` (the pool),
          ``"process"`` (worker processes, :class:`bgtasks.executors.processes.ProcessExecutor`),
          ``"dask"`` (:class:`bgtasks.executors.dask.DaskExecutor`), another name
          given to :meth:`set_executor`, or an :class:`Executor`.  Everything
          else (signals, dependencies, cancel, handles) stays the same; the
          executor refuses at this call what it cannot run (``TypeError``).
        * ``persist``: journal the task in the :class:`bgtasks.persistence.TaskJournal`
          given to :meth:`set_journal`, so it survives a crash or a restart
          (``journal.submit`` has more options: ``enduring``, ``store_result``).
          Only ``priority``, ``group``, ``upstream_task_ids`` and ``name`` are
          journaled; other options are refused with ``persist=True``.

        Any thread may call this.
        """
        if not callable(fn):
            raise TypeError(f"fn must be callable, got {fn!r}")
        if persist:
            journal = self._journal
            if journal is None:
                raise RuntimeError(
                    "persist=True needs a journal: call set_journal(TaskJournal(...))"
                )
            given = {
                "key": key, "retries": retries, "retry_on": retry_on, "backoff": backoff,
                "timeout": timeout, "resources": resources,
                "on_upstream_failure": on_upstream_failure, "exclusive": exclusive,
                "owner": owner, "executor": executor,
            }  # fmt: skip
            for option, value in given.items():
                if value != _SUBMIT_DEFAULTS[option]:
                    raise TypeError(f"option {option!r} cannot be journaled: persist=True takes "
                                    "priority, group, upstream_task_ids and name")  # fmt: skip
            return journal.submit(  # type: ignore[no-any-return]
                fn, *args, priority=priority, group=group,
                upstream_task_ids=upstream_task_ids, name=name, **kwargs,
            )  # fmt: skip
        chosen = None
        if executor is not None and executor != "thread":
            chosen = self._executor(executor)
            chosen.check(fn, args, kwargs)
            if name is None:
                name = getattr(fn, "__name__", None)
            if chosen.slots is not None:
                resource = f"executor:{id(chosen)}"
                with self._executor_lock:  # the limit exists before any task names it
                    if resource not in self._executor_limits:
                        self._scheduler.set_resource_limit(resource, chosen.slots)
                        self._executor_limits.add(resource)
                resources = {**(resources or {}), resource: 1}
            fn = RemoteCall(chosen, fn)
        handle = TaskHandle(self)
        options = dict(
            name=name, key=key, retries=retries, retry_on=retry_on, backoff=backoff,
            timeout=timeout, resources=resources, on_upstream_failure=on_upstream_failure,
            exclusive=exclusive, owner=owner,
        )  # fmt: skip
        handle.uid = self._add(
            fn, priority, group, upstream_task_ids, args, kwargs, options, handle
        )
        if isinstance(executor, str) and chosen is not None:
            with self._executor_lock:
                self._executors_used.add(executor)  # from now on set_executor refuses it
        return handle

    def set_journal(self, journal: Any) -> None:
        """Journal tasks submitted with ``persist=True`` in ``journal``, a
        :class:`bgtasks.persistence.TaskJournal` of this manager.  Any thread."""
        # Duck-typed: the Qt layer never imports the persistence layer above it.
        if not callable(getattr(journal, "submit", None)) or not hasattr(journal, "manager"):
            raise TypeError(f"journal must be a bgtasks.persistence.TaskJournal, got {journal!r}")
        if journal.manager is not self:
            raise ValueError(f"{journal!r} journals another manager's tasks")
        self._journal = journal

    @property
    def is_shut_down(self) -> bool:
        """True once :meth:`shut_down` has run (or started).  Any thread."""
        return self._shut_down

    def set_executor(self, name: str, executor: Executor) -> None:
        """Run tasks submitted with ``executor=name`` on ``executor``.

        Replaces the default of ``"process"`` or ``"dask"`` (e.g. to size the
        process pool).  The manager shuts the executor down with itself.
        Manager's thread; ``ValueError`` once a task used the name.
        """
        if not isinstance(name, str) or not name or name == "thread":
            raise ValueError(
                f"executor name must be a non-empty string other than 'thread', got {name!r}"
            )
        if not isinstance(executor, Executor):
            raise TypeError(f"executor must be a bgtasks.Executor, got {executor!r}")
        with self._executor_lock:
            if name in self._executors_used:
                raise ValueError(f"executor {name!r} is already in use; set it before submitting")
            replaced = self._executors.get(name)
            self._executors[name] = executor
        if replaced is not None:  # a default made for a submit that was refused: never used
            replaced.shut_down(0.0)

    def _executor(self, which: str | Executor) -> Executor:
        if isinstance(which, Executor):
            with self._executor_lock:
                self._executors.setdefault(f"<{id(which)}>", which)
            return which
        if not isinstance(which, str):
            raise TypeError(f"executor must be a name or a bgtasks.Executor, got {which!r}")
        if self._shut_down:
            raise RuntimeError("the manager is shut down; it accepts no new tasks")
        with self._executor_lock:
            executor = self._executors.get(which)
        if executor is None:
            made = _default_executor(which)  # may import dask: not under a lock
            with self._executor_lock:
                executor = self._executors.setdefault(which, made)
            if executor is not made:  # another thread made one first
                made.shut_down(0.0)
        return executor

    def handle(self, uid: int) -> TaskHandle:
        """A :class:`TaskHandle` for a task added with ``add_task``.  Any thread.

        Take it before the task ends to get its result: a completed task's
        result is dropped once ``task_completed`` has delivered it.
        """
        handle = TaskHandle(self)
        handle.uid = uid
        self._scheduler.add_handle(uid, handle)
        return handle

    # ------------------------------------------------------------------ control

    def set_priority(self, uid: int, priority: float) -> None:
        """Change the priority of a pending or queued task.  Any thread."""
        self._scheduler.set_priority(uid, priority)

    def set_group_priority(self, group: Hashable, priority: float) -> int:
        """Give every pending or queued task of ``group`` this priority (visible
        thumbnails first); returns how many changed.  Costs O(k log n) for the
        group's k tasks.  Any thread."""
        return self._scheduler.set_group_priority(group, priority)

    def retry(self, uid: int) -> TaskHandle:
        """Run a failed or cancelled task again, and the failed or cancelled
        tasks upstream of it first; returns a handle on the new run.

        A handle is the outcome of one run: handles taken before keep the
        outcome they had (a future never changes once done); the returned one
        (and :meth:`handle` from now on) follows the new run.  Any thread.
        ``KeyError`` for an unknown uid, ``ValueError`` for a task that is not
        failed or cancelled (or whose function was released), ``RuntimeError``
        after ``shut_down()``.
        """
        handle = TaskHandle(self)
        handle.uid = uid
        self._scheduler.retry(uid, handle)
        return handle

    def set_settings(self, uid: int, value: Any) -> None:
        """Post ``value`` to the task's settings mailbox (latest wins); the task
        adopts it with ``current_task().update_settings()``.  Any thread."""
        self._scheduler.set_settings(uid, value)

    def set_resource_limit(self, name: str, limit: int) -> None:
        """Allow at most ``limit`` units of resource ``name`` in use at once."""
        self._scheduler.set_resource_limit(name, limit)

    def set_group_policy(self, group: Hashable, on_upstream_failure: str) -> None:
        """Default ``on_upstream_failure`` (``"fail"`` or ``"cancel"``) for a group's tasks."""
        self._scheduler.set_group_policy(group, on_upstream_failure)

    @property
    def cache_size(self) -> int:
        """How many finished results are kept by ``key`` (0: none)."""
        return self._scheduler.cache_size

    @cache_size.setter
    def cache_size(self, size: int) -> None:
        self._scheduler.configure(cache_size=check_count("cache_size", size))

    @property
    def progress_interval(self) -> float:
        """Least seconds between two ``task_progress`` of one task (default 0.04: 25/s)."""
        return self._scheduler.progress_interval

    @progress_interval.setter
    def progress_interval(self, seconds: float) -> None:
        self._scheduler.configure(progress_interval=check_seconds("progress_interval", seconds))

    @property
    def keep_finished(self) -> int:
        """How many finished tasks stay in the registry (``info``) before the oldest go."""
        return self._scheduler.keep_finished

    @keep_finished.setter
    def keep_finished(self, count: int) -> None:
        self._scheduler.configure(keep_finished=check_count("keep_finished", count))

    # ------------------------------------------------------------------ registry

    def task_state(self, uid: int) -> TaskState:
        """The task's state.  ``KeyError`` for a uid this manager never issued,
        or one forgotten (see ``keep_finished``).  Any thread."""
        return self._scheduler.state(uid)

    def info(self, uid: int) -> TaskInfo:
        """A frozen snapshot of one task.  ``KeyError`` as :meth:`task_state`.  Any thread."""
        return self._scheduler.info(uid)

    def infos(self, uids: Iterable[int]) -> dict[int, TaskInfo]:
        """Snapshots of many tasks at once (one lock hold, so one wait for the GIL-bound
        workers, not one per task); uids not registered are left out.  Any thread."""
        return self._scheduler.infos_of(uids)

    def tasks(self, group: Hashable = ANY_GROUP, state: TaskState | None = None) -> list[TaskInfo]:
        """Snapshots of every registered task, or of one group, or in one state.  Any thread."""
        return self._scheduler.infos(group, state)

    def state_counts(self) -> dict[TaskState, int]:
        """How many registered tasks are in each state.  Any thread."""
        return self._scheduler.state_counts()

    def clear_finished(self) -> int:
        """Forget every finished task (``task_removed`` for each); returns how many."""
        return self._scheduler.clear_finished()

    @property
    def max_threads(self) -> int:
        return self._pool.maxThreadCount()

    def to_dot(self) -> str:
        """The task graph in Graphviz DOT: a node per registered task labelled
        with its name and state, coloured by state, edges to dependents."""
        return _graph.to_dot(self._scheduler.graph())

    def to_svg(self) -> str:
        """The task graph as SVG, drawn by Graphviz's ``dot`` program;
        ``RuntimeError`` naming it when it is not installed."""
        return _graph.to_svg(self.to_dot())

    # ------------------------------------------------------------------ internals

    def _add(
        self,
        fn: Callable[..., Any] | None,
        priority: Any,
        group: Any,
        upstream: Any,
        args: Any,
        kwargs: Any,
        options: dict[str, Any],
        handle: TaskHandle | None = None,
    ) -> int:
        scheduler = self._scheduler
        if not options:  # the common case: no task options
            return scheduler.add(fn, priority, group, upstream, args, kwargs, handle=handle)
        owner = options.pop("owner", None)
        exclusive = options.pop("exclusive", False)
        name = options.pop("name", None)
        unknown = set(options) - {
            "key", "retries", "retry_on", "backoff", "timeout", "resources", "on_upstream_failure"
        }  # fmt: skip
        if unknown:
            raise TypeError(f"unknown task option {sorted(unknown)[0]!r}")
        if owner is not None and not isinstance(owner, QObject):
            raise TypeError(f"owner must be a QObject, got {owner!r}")
        opts = scheduler.make_options(**options)
        uid = scheduler.add(
            fn, priority, group, upstream, args, kwargs, opts, name, bool(exclusive), handle
        )
        if owner is not None:
            self._own(owner, uid)
        return uid

    def _own(self, owner: QObject, uid: int) -> None:
        key = id(owner)
        with self._callbacks_lock:
            uids = self._owners.get(key)
            first = uids is None
            if first:
                uids = self._owners[key] = set()
            uids.add(uid)
            self._owner_of[uid] = key
        if first:
            owner.destroyed.connect(functools.partial(self._owner_destroyed, key))

    def _owner_destroyed(self, key: int, *_: object) -> None:
        # The owner's own slots went with it (Qt disconnects a destroyed
        # receiver); the registry's signals and the handles' done-callbacks
        # still report how its tasks end, so monitors and waiters see it.
        with self._callbacks_lock:
            uids = self._owners.pop(key, set())
            for uid in uids:
                self._owner_of.pop(uid, None)
        if not self._shut_down:
            self._scheduler.stop_uids(uids)

    def _stop_for_handle(self, uid: int) -> bool:
        return self._scheduler.stop(uid, False, True)

    def _add_done_callback(self, handle: TaskHandle, fn: Callable[[TaskHandle], Any]) -> None:
        with self._callbacks_lock:
            if not handle.done():
                self._callbacks.setdefault(handle.uid, []).append((handle, fn))
                return
        self._call_soon(fn, handle)

    def _call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        if self._shut_down:
            return
        if QThread.currentThread() is self.thread():
            _call_logged(fn, *args)
        else:
            self._calls.append((fn, args))
            QCoreApplication.postEvent(self, QEvent(_WAKE))

    # Connection counts per optional signal.  Qt may call these two while it
    # holds its own connection lock, so they must not call receivers() or
    # anything else that would take it again.
    def connectNotify(self, signal: QMetaMethod) -> None:  # noqa: N802 - Qt override
        self._count_receivers(signal, 1)

    def disconnectNotify(self, signal: QMetaMethod) -> None:  # noqa: N802 - Qt override
        self._count_receivers(signal, -1)

    def _count_receivers(self, signal: QMetaMethod, delta: int) -> None:
        kind = _OPTIONAL_SIGNALS.get(bytes(signal.name().data()).decode())
        scheduler = getattr(self, "_scheduler", None)
        if kind is None or scheduler is None:
            return
        counts = self._receivers
        counts[kind] = max(0, counts.get(kind, 0) + delta)
        scheduler.watch(k for k, n in counts.items() if n > 0)

    # ------------------------------------------------------------------ delivery

    def event(self, ev: QEvent) -> bool:
        if ev.type() == _WAKE:
            self._drain()
            return True
        return super().event(ev)

    def _on_beat(self) -> None:
        # Beat while workers run and their events keep coming: tasks that run
        # long and quietly reach no point where they could give way, and a
        # 1 ms timer would only keep this thread (and the CPU) awake.
        if (
            self._scheduler.workers_running()
            and perf_counter() - self._drained_at < _BEAT_QUIET_AFTER
        ):
            self._scheduler.gate.beat()
        else:
            self._beat.stop()
            self._scheduler.gate.stop()

    def _drain(self) -> None:
        # Events move from the scheduler to self._pending and are emitted from
        # there one at a time, so a slot that spins a nested event loop (a
        # modal dialog) gets a nested drain that continues in order.
        if not self._shut_down:
            # this thread has the GIL: no worker needs to wait for it.  (A drain
            # is bounded by drain_budget, however the workers slow it down.)
            self._drained_at = perf_counter()
            self._scheduler.gate.beat()
            if not self._beat.isActive():
                self._beat.start()
        calls = self._calls
        while calls:
            fn, args = calls.popleft()
            _call_logged(fn, *args)
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
                self._deliver(pending.popleft())
                if perf_counter() >= deadline:
                    # Continue from a zero-timer, not a posted event: Qt handles
                    # posted events before timers, so a posted event would run
                    # the next pass back to back with this one.
                    self._resume.start(0)
                    return

    def _deliver(self, event: tuple[Any, ...]) -> None:
        # Every field read here was captured in the event under the
        # scheduler's lock (take_events); the task records are only read for
        # their uid and group, which never change.
        kind = event[0]
        task = event[1]
        if kind == TASK_COMPLETED:
            self.task_completed.emit(task.uid, task.group, event[2])
        elif kind == TASK_PROGRESS:
            task = event[2]
            self.task_progress.emit(task.uid, task.group, event[3], event[4])
            return
        elif kind == GROUP_FINISHED:
            self.task_group_finished.emit(task)
            return
        elif kind == TASK_FAILED:
            self.task_failed.emit(task.uid, task.group, event[2], event[3])
        elif kind == TASK_CANCELLED:
            self.task_cancelled.emit(task.uid, task.group)
        elif kind == TASK_REMOVED:
            self.task_removed.emit(task, event[2])
            return
        else:
            if kind == TASK_STARTED:
                self.task_started.emit(task.uid, task.group)
            elif kind == TASK_STATE:
                self.task_state_changed.emit(task.uid, task.group, event[2])
            elif kind == TASK_ADDED:
                self.task_added.emit(task.uid, task.group)
            elif kind == TASK_STATUS:
                self.task_status_changed.emit(task.uid, task.group, event[2])
            return
        # the task ended: its done-callbacks
        if self._callbacks or self._owner_of:
            with self._callbacks_lock:
                callbacks = self._callbacks.pop(task.uid, None)
                if callbacks and not all(handle.done() for handle, _ in callbacks):
                    # handles of a newer run (retry) wait for that run's end
                    later = [c for c in callbacks if not c[0].done()]
                    self._callbacks[task.uid] = later
                    callbacks = [c for c in callbacks if c[0].done()]
                key = self._owner_of.pop(task.uid, None)
                if key is not None:
                    self._owners.get(key, set()).discard(task.uid)
            if callbacks:
                for handle, fn in callbacks:
                    _call_logged(fn, handle)


#: submit()'s task options that persist=True cannot journal, with their defaults.
_SUBMIT_DEFAULTS: dict[str, Any] = {
    "key": None, "retries": 0, "retry_on": (Exception,), "backoff": 0.1, "timeout": None,
    "resources": None, "on_upstream_failure": None, "exclusive": False, "owner": None,
    "executor": None,
}  # fmt: skip


def _default_executor(name: str) -> Executor:
    if name == "process":
        from ..executors.processes import ProcessExecutor

        return ProcessExecutor()
    if name == "dask":
        from ..executors.dask import DaskExecutor

        return DaskExecutor()  # ImportError saying what to install without the dask extra
    raise ValueError(
        f"unknown executor {name!r}: use 'thread', 'process', 'dask' or a name given to set_executor"
    )


def _call_logged(fn: Callable[..., Any], *args: Any) -> None:
    try:
        fn(*args)
    except Exception:
        log.exception("bgtasks: a done-callback raised")


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
