"""The scheduling core: ready queue, dependency graph, groups, states, timers.

Nothing here imports Qt.  The Qt layer (``_manager.py``) gives the scheduler two
callbacks and runs :func:`run_worker` in its thread pool:

* ``spawn(n)`` starts ``n`` more workers.  It is called *outside* the lock, by
  whichever thread made tasks ready.  The scheduler counts its workers, so
  never more than ``max_workers`` run at once.
* ``wake()`` asks the owner's thread to call :meth:`Scheduler.take_events`.  It
  is called *under* the lock, at most once until ``take_events`` finds the
  outbox empty, so a flood of results costs one wake-up, not one per task.

Design:

* One lock (``Scheduler._lock``) guards every field.  No user code runs under
  it: task functions run in workers between :meth:`Scheduler.finish` calls,
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
  heap, served by one daemon timer thread (:meth:`Scheduler.tick`), so they
  never wait for the owner's event loop.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
import os
import random
import threading
import time
import traceback
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from typing import Any

from ._errors import TaskCancelled, UpstreamFailed
from ._gil_gate import GilGate
from ._state import TRANSITIONS, IllegalTransition, TaskInfo, TaskState

PENDING = TaskState.PENDING
QUEUED = TaskState.QUEUED
RUNNING = TaskState.RUNNING
CANCELLING = TaskState.CANCELLING
COMPLETED = TaskState.COMPLETED
FAILED = TaskState.FAILED
CANCELLED = TaskState.CANCELLED

# Outbox event kinds.  An event is a tuple whose first item is the kind.
TASK_COMPLETED = 0  # (kind, task, result)
TASK_FAILED = 1  # (kind, task)
GROUP_FINISHED = 2  # (kind, group)
TASK_CANCELLED = 3  # (kind, task)
TASK_STARTED = 4  # (kind, task)
TASK_PROGRESS = 5  # (kind, source, task): source's latest value, read when delivered
TASK_STATE = 6  # (kind, task, state)
TASK_ADDED = 7  # (kind, task)
TASK_REMOVED = 8  # (kind, uid, group)
TASK_STATUS = 9  # (kind, task, status)
#: Kinds produced only while someone listens (see Scheduler.watch).
OPTIONAL_EVENTS = frozenset({TASK_STARTED, TASK_STATE, TASK_ADDED, TASK_REMOVED, TASK_STATUS})

UPSTREAM_POLICIES = ("fail", "cancel")
#: A task that ran for less than this is short (see Scheduler._target).
SHORT_TASK = 0.001
#: Ready tasks and no task finished for this long: use every worker.
WIDEN_AFTER = 0.002
#: Workers let other threads have the GIL this often (seconds of running).
YIELD_EVERY = 0.0005
#: How many forgotten failed or cancelled tasks are still remembered as such, for
#: tasks added later with them upstream; older forgotten ones count as completed.
ENDED_MEMORY = 100_000
#: The most worker threads a scheduler accepts (a Qt thread pool's limit is an int).
MAX_WORKERS = 2**31 - 1
ANY_GROUP: Any = object()  # infos(): no group filter
_HIDDEN = object()  # the group of a deduplicated key's shared work: in no group

_local = threading.local()
log = logging.getLogger("bgtasks")
#: The longest wait the timer thread makes at once (threading refuses waits
#: beyond TIMEOUT_MAX, and a due time far away is just re-checked).
_MAX_WAIT = 3600.0


def _pass_through(**kwargs: Any) -> dict[str, Any]:
    return kwargs


class Options:
    """The rarely used per-task options, kept out of Task to keep it small."""

    __slots__ = ("retries", "retry_on", "backoff", "timeout", "resources", "key", "policy")

    def __init__(self) -> None:
        self.retries = 0
        self.retry_on: tuple[type[BaseException], ...] = (Exception,)
        self.backoff = 0.1
        self.timeout: float | None = None
        self.resources: dict[str, int] | None = None
        self.key: Hashable = None
        self.policy = "fail"


_NO_OPTIONS = Options()


_NOTHING = object()


class _TaskExtras:
    """Defaults of the fields most tasks never write.  A Task stores one of
    these in its (lazily created) instance dict only once it is set, which
    keeps the common task small and quick to create."""

    error: BaseException | None = None
    message = ""  # error message
    traceback = ""
    progress: float | None = None
    progress_message = ""
    progress_queued = False  # a progress event is in the outbox
    progress_dirty = False  # a newer value waits for the progress interval (a timer)
    progress_at = -1e9  # monotonic time of the last progress event
    yielded_at = 0.0  # monotonic time report_progress last let other threads run
    status: Any = None
    settings: Any = None
    settings_pending: Any = _NOTHING
    cancel_event: threading.Event | None = None
    handles: list[Any] | None = None  # TaskHandles waiting for the outcome
    work: Task | None = None  # a deduplicated request: the shared work
    mirrors: list[Task] | None = None  # shared work: its requests
    parked = False  # waiting in a resource's parked list (counted in _n_parked)
    timed_out = False
    retry_base = 0  # attempts before the last retry(): automatic retries count from there
    merge: dict[str, Any] | None = None  # a dict-subclass result as a plain dict, to merge


class Task(_TaskExtras):
    """One task's record; every field is guarded by the scheduler's lock, except
    ``fn``/``args``/``kwargs``, which the worker running the task reads."""

    __slots__ = (
        "uid", "name", "fn", "args", "kwargs", "priority", "group", "state", "waiting",
        "upstream", "downstream", "result", "created", "started", "ended", "attempts",
        "opts", "pending",
    )  # fmt: skip

    def __init__(self, uid: int, name: str, fn: Any, args: Any, kwargs: Any,
                 priority: float, group: Hashable, upstream: tuple[int, ...],
                 opts: Options) -> None:  # fmt: skip
        self.uid = uid
        self.name = name
        self.fn: Callable[..., Any] | None = fn
        self.args: tuple[Any, ...] | None = args
        self.kwargs: dict[str, Any] | None = kwargs
        self.priority = priority
        self.group = group
        self.state = PENDING
        self.waiting = 0  # upstream tasks not yet completed
        self.upstream = upstream
        self.downstream: list[Task] | tuple[()] = ()  # a list once it has any
        self.result: Any = None
        self.created = time.time()
        self.started: float | None = None
        self.ended: float | None = None
        self.attempts = 0
        self.opts = opts
        self.pending = 0  # terminal events not yet delivered: not to be forgotten

    def __repr__(self) -> str:
        return f"<Task {self.uid} {self.name!r} {self.state.name} group={self.group!r}>"


def _check_priority(priority: object, what: str = "priority") -> float:
    if priority is None:
        return 0
    if isinstance(priority, (int, float)) and not (
        isinstance(priority, float) and math.isnan(priority)
    ):
        return priority
    raise TypeError(f"{what} must be a number or None, got {priority!r}")


def _check_args(task_args: object) -> tuple[Any, ...]:
    if task_args is None:
        return ()
    if type(task_args) is tuple:
        return task_args
    if type(task_args) is list or (
        isinstance(task_args, Sequence) and not isinstance(task_args, (str, bytes))
    ):
        return tuple(task_args)
    raise TypeError(f"task_args must be a list or tuple of arguments, got {task_args!r}")


def _check_kwargs(task_kwargs: object) -> dict[str, Any]:
    if task_kwargs is None:
        return {}
    if not isinstance(task_kwargs, Mapping):
        raise TypeError(f"task_kwargs must be a mapping of names to values, got {task_kwargs!r}")
    kwargs = dict(task_kwargs)
    for key in kwargs:
        if type(key) is not str:
            raise TypeError(f"task_kwargs keys must be strings, got {key!r}")
    return kwargs


def _check_hashable(value: object, what: str) -> None:
    try:
        hash(value)
    except TypeError:
        raise TypeError(f"{what} must be hashable, got {value!r}") from None


def _check_seconds(what: str, value: object, positive: bool = False) -> float:
    """A non-negative (or positive) number of seconds that a timer can wait for."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not (value > 0 if positive else value >= 0)
    ):
        kind = "positive" if positive else "non-negative"
        raise ValueError(f"{what} must be a {kind} number of seconds, got {value!r}")
    if not value <= threading.TIMEOUT_MAX:  # inf, or beyond what a thread can wait
        raise ValueError(
            f"{what} must be a finite number of seconds of at most "
            f"{threading.TIMEOUT_MAX:.0f}, got {value!r}"
        )
    return value


def check_max_threads(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"max_threads must be a positive integer, got {value!r}")
    if value > MAX_WORKERS:
        raise ValueError(f"max_threads must be at most {MAX_WORKERS}, got {value!r}")
    return value


def _name_of(fn: Any) -> str:
    if fn is _pass_through:
        return "pass-through"
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None)
    return name if isinstance(name, str) else type(fn).__name__


class Scheduler:
    """Thread-safe task scheduler; every public method may be called from any thread."""

    def __init__(
        self,
        max_workers: int,
        spawn: Callable[[int], None],
        wake: Callable[[], None],
        keep_finished: int = 10_000,
    ) -> None:
        check_max_threads(max_workers)
        self._spawn = spawn
        self._wake = wake
        # Re-entrant only so that a call from a finalizer that the garbage
        # collector runs under it can be told apart and deferred (_reentered).
        self._lock = threading.RLock()
        #: References dropped under the lock, released after it (_bury).
        self._grave: list[Any] = []
        #: Calls made under the lock by the thread holding it, run after it (_run_deferred).
        self._deferred: list[tuple[Callable[..., Any], tuple[Any, ...]]] = []
        #: Workers give the GIL to a starving UI thread (the owner beats it).
        self.gate = GilGate()
        # All guarded by _lock:
        self._max_workers = max_workers
        # How many workers to keep busy (<= max_workers).  Python threads share
        # one interpreter lock: for short tasks, more threads than cores only
        # add contention (and starve the UI thread), so short tasks shrink the
        # target down to _floor; a long task, or ready tasks that see no task
        # finish for WIDEN_AFTER seconds (workers blocked), restore it.
        self._target = max_workers
        self._floor = min(max_workers, max(2, os.cpu_count() or 2))
        self._finish_count = 0
        self._widen_mark = -1  # _finish_count when the widen timer was armed; -1: not armed
        self.keep_finished = keep_finished
        self._tasks: dict[int, Task] = {}  # every task not yet forgotten
        self._finished: deque[int] = deque()  # ended, oldest first
        self._ended: dict[int, tuple[TaskState, str, str]] = {}  # forgotten, not COMPLETED
        self.progress_interval = 0.04
        self._next_uid = 1
        self._ready: list[tuple[float, int, Task]] = []
        self._n_ready = 0  # QUEUED tasks, parked ones included
        self._groups: dict[Hashable, dict[int, Task]] = {}  # live tasks of each group
        self._groups_reported: set[Hashable] = set()  # had a completion/failure this round
        self._group_policy: dict[Hashable, str] = {}
        self._outbox: list[tuple[Any, ...]] = []
        self._taken: list[tuple[Any, ...]] = []  # handed to the owner by the last take_events
        self._n_progress = 0  # progress events in the outbox
        self._wake_pending = False
        self._active = 0  # workers started and not yet retired
        self._paused = True
        self._closed = False
        self._group_ids = itertools.count()
        self._watched: frozenset[int] = frozenset()
        self._watch_states = False
        self._limits: dict[str, int] = {}  # resource -> how many at once
        self._in_use: dict[str, int] = {}
        self._parked: dict[str, list[Task]] = {}  # queued tasks waiting for a resource
        self._n_parked = 0
        self._keys: dict[Hashable, Task] = {}  # key -> live shared work
        self._cache: OrderedDict[Hashable, Any] = OrderedDict()
        self.cache_size = 0
        self._timers: list[
            tuple[float, int, str, Task, int]
        ] = []  # (due, seq, kind, task, attempt)
        self._timer_seq = itertools.count()
        # Retries' backoffs, timeouts and held progress fire from one daemon
        # thread, so they never depend on the owner's event loop.
        self._timer_wakeup = threading.Condition(self._lock)
        self._timer_thread: threading.Thread | None = None

    # ------------------------------------------------------------------ configuration

    def watch(self, kinds: Iterable[int]) -> None:
        """Produce the optional event kinds in ``kinds`` (someone listens to them)."""
        with self._lock:
            self._watched = frozenset(kinds) & OPTIONAL_EVENTS
            self._watch_states = TASK_STATE in self._watched

    def set_resource_limit(self, name: object, limit: object) -> None:
        if not isinstance(name, str) or not name:
            raise TypeError(f"resource name must be a non-empty string, got {name!r}")
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"resource limit must be a positive integer, got {limit!r}")
        with self._lock:
            self._limits[name] = limit
            self._unpark(name)
            spawn = self._spawn_count()
        if spawn:
            self._spawn(spawn)

    def configure(
        self,
        *,
        cache_size: int | None = None,
        keep_finished: int | None = None,
        progress_interval: float | None = None,
    ) -> None:
        """Change settings under the lock (values checked by the caller); a
        smaller cache or registry limit applies at once."""
        with self._lock:
            if progress_interval is not None:
                self.progress_interval = progress_interval
            if cache_size is not None:
                self.cache_size = cache_size
                while len(self._cache) > cache_size:
                    self._grave.append(self._cache.popitem(last=False))
            if keep_finished is not None:
                self.keep_finished = keep_finished
                if len(self._finished) > keep_finished:
                    self._trim_finished()
                self._flush_wake()
        self._after()

    def set_group_policy(self, group: Hashable, policy: object) -> None:
        _check_hashable(group, "group")
        if policy not in UPSTREAM_POLICIES:
            raise ValueError(f"on_upstream_failure must be 'fail' or 'cancel', got {policy!r}")
        with self._lock:
            self._group_policy[group] = policy

    # ------------------------------------------------------------------ submit

    def make_options(
        self,
        key: object = None,
        retries: object = 0,
        retry_on: object = (Exception,),
        backoff: object = 0.1,
        timeout: object = None,
        resources: object = None,
        on_upstream_failure: object = None,
    ) -> Options:
        """Validate per-task options (caller's thread, no lock)."""
        if isinstance(retry_on, type):
            retry_on = (retry_on,)
        if not isinstance(retry_on, tuple) or not all(
            isinstance(t, type) and issubclass(t, BaseException) for t in retry_on
        ):
            raise TypeError(f"retry_on must be exception types, got {retry_on!r}")
        _check_seconds("backoff", backoff)
        if (
            key is None and not retries and timeout is None and resources is None
            and on_upstream_failure is None
        ):  # fmt: skip
            return _NO_OPTIONS
        opts = Options()
        if key is not None:
            _check_hashable(key, "key")
            opts.key = key
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ValueError(f"retries must be a non-negative integer, got {retries!r}")
        opts.retries = retries
        opts.retry_on = retry_on
        opts.backoff = backoff  # type: ignore[assignment]  # checked above
        if timeout is not None:
            opts.timeout = _check_seconds("timeout", timeout, positive=True)
        if resources is not None:
            if not isinstance(resources, Mapping):
                raise TypeError(f"resources must map resource names to amounts, got {resources!r}")
            for name, amount in resources.items():
                if isinstance(amount, bool) or not isinstance(amount, int) or amount < 1:
                    raise ValueError(
                        f"resource {name!r} amount must be a positive integer, got {amount!r}"
                    )
            opts.resources = dict(resources)
        if on_upstream_failure is not None:
            if on_upstream_failure not in UPSTREAM_POLICIES:
                raise ValueError(
                    f"on_upstream_failure must be 'fail' or 'cancel', got {on_upstream_failure!r}"
                )
            opts.policy = on_upstream_failure
        return opts

    def add(
        self,
        fn: Callable[..., Any] | None,
        priority: object = None,
        group: object = None,
        upstream_task_ids: object = None,
        task_args: object = None,
        task_kwargs: object = None,
        opts: Options = _NO_OPTIONS,
        name: str | None = None,
        exclusive: bool = False,
        handle: Any = None,
    ) -> int:
        """Register a task and return its uid; ``fn=None`` makes a pass-through task.

        Everything is validated before anything is registered: a refused call
        changes nothing.
        """
        if fn is None:
            fn = _pass_through
        elif not callable(fn):
            raise TypeError(f"cbl must be callable, got {fn!r}")
        prio = _check_priority(priority)
        args = _check_args(task_args)
        kwargs = _check_kwargs(task_kwargs)
        _check_hashable(group, "group")
        if upstream_task_ids is None:
            upstream: tuple[int, ...] = ()
        elif isinstance(upstream_task_ids, Iterable) and not isinstance(
            upstream_task_ids, (str, bytes, Mapping)
        ):
            upstream = tuple(upstream_task_ids)
        else:
            raise TypeError(
                f"upstream_task_ids must be a list of task ids, got {upstream_task_ids!r}"
            )
        if name is None:
            name = _name_of(fn)
        elif not isinstance(name, str):
            raise TypeError(f"name must be a string, got {name!r}")

        # This thread already holds the lock: a finalizer that the garbage
        # collector runs under it is adding a task.
        reentrant = self._lock._is_owned()  # type: ignore[attr-defined]
        with self._lock:
            if self._closed:
                raise RuntimeError("this task manager has been shut down; it accepts no new tasks")
            next_uid = self._next_uid
            for up in upstream:
                if type(up) is not int or not 0 < up < next_uid:
                    raise ValueError(
                        f"upstream task {up!r} is unknown: "
                        "upstream_task_ids must name tasks of this manager"
                    )
            if opts.resources:
                for res in opts.resources:
                    if res not in self._limits:
                        raise ValueError(
                            f"resource {res!r} is unknown: set_resource_limit({res!r}, n) first"
                        )
            if group is not None and group is not _HIDDEN:
                # Look the group up before anything changes: a group whose
                # __eq__ raises is refused here, with nothing registered.
                self._groups.get(group)
                if self._group_policy:
                    self._group_policy.get(group)
            uid = next_uid
            self._next_uid = uid + 1
            task = Task(uid, name, fn, args, kwargs, prio, group, upstream, opts)
            if handle is not None:
                task.handles = [handle]
            if reentrant:
                # A finalizer run under the lock: the uid is reserved, the rest
                # waits until the lock is released.
                self._deferred.append((self._add_reserved, (task, exclusive)))
                return uid
            self._add_locked(task, exclusive)
            spawn = self._spawn_count()
            self._flush_wake()
        if spawn:
            self._spawn(spawn)
        if self._grave:
            self._bury()
        if self._deferred:
            self._run_deferred()
        return uid

    def _add_locked(self, task: Task, exclusive: bool) -> None:
        self._register(task)
        if exclusive:
            self._cancel_older(task)
        if task.opts.key is not None:
            self._attach_to_key(task)
        else:
            self._wire_upstream(task)

    def _add_reserved(self, task: Task, exclusive: bool) -> None:
        """A deferred add (see add): register a task whose uid was reserved."""
        with self._lock:
            if self._closed:
                log.warning("task %d was not added: the manager shut down first", task.uid)
                return
            self._add_locked(task, exclusive)
            spawn = self._spawn_count()
            self._flush_wake()
        if spawn:
            self._spawn(spawn)

    # ------------------------------------------------------------------ re-entry and the graveyard

    def _defer(self, fn: Callable[..., Any], *args: Any) -> bool:
        """Not under the lock: if this thread holds it, queue ``fn(*args)`` for
        when it is released and return True."""
        if self._lock._is_owned():  # type: ignore[attr-defined]
            self._deferred.append((fn, args))
            return True
        return False

    def _run_deferred(self) -> None:
        """Run the calls deferred by _defer; the lock is not held here."""
        if self._lock._is_owned():  # type: ignore[attr-defined]
            return  # still inside an outer hold: its release runs them
        deferred = self._deferred
        while deferred:
            try:
                fn, args = deferred.pop(0)
            except IndexError:  # another thread took the last one
                return
            try:
                fn(*args)
            except Exception:
                log.exception("bgtasks: a call deferred from a finalizer failed: %r%r", fn, args)

    def _bury(self) -> None:
        """Release the references dropped under the lock; the lock is not held here."""
        if self._lock._is_owned():  # type: ignore[attr-defined]
            return
        grave, self._grave = self._grave, []
        grave.clear()

    def next_group_id(self) -> int:
        return next(self._group_ids)

    # ------------------------------------------------------------------ control

    def start(self) -> None:
        with self._lock:
            self._paused = False
            spawn = self._spawn_count()
        if spawn:
            self._spawn(spawn)

    def pause(self) -> None:
        with self._lock:
            self._paused = True

    def stop(
        self, task_id: object, stop_upstream: bool = True, stop_downstream: bool = True
    ) -> bool:
        """Stop a task; False if it had already ended (or the call was deferred, see _defer)."""
        if self._defer(self.stop, task_id, stop_upstream, stop_downstream):
            return False
        with self._lock:
            task = self._get(task_id, "stop_task")
            if task.state.is_terminal or task.state is CANCELLING:
                return False
            self._stop_many([task], stop_upstream, stop_downstream)
        self._after()
        return True

    def stop_group(
        self, group: Hashable, stop_upstream: bool = True, stop_downstream: bool = True
    ) -> None:
        _check_hashable(group, "group")
        if self._defer(self.stop_group, group, stop_upstream, stop_downstream):
            return
        with self._lock:
            members = self._groups.get(group)
            if members:
                self._stop_many(list(members.values()), stop_upstream, stop_downstream)
        self._after()

    def stop_all(self) -> None:
        if self._defer(self.stop_all):
            return
        with self._lock:
            live = [t for t in self._tasks.values() if not t.state.is_terminal]
            self._stop_many(live, False, False)
        self._after()

    def stop_uids(self, uids: Iterable[int]) -> None:
        """Stop these tasks (those not yet forgotten) and their dependents."""
        uids = list(uids)
        if self._defer(self.stop_uids, uids):
            return
        with self._lock:
            tasks = [t for t in map(self._tasks.get, uids) if t is not None]
            self._stop_many([t for t in tasks if not t.state.is_terminal], False, True)
        self._after()

    def set_priority(self, uid: object, priority: object) -> None:
        prio = _check_priority(priority)
        if self._defer(self.set_priority, uid, priority):
            return
        with self._lock:
            task = self._get(uid, "set_priority")
            if task.state not in (PENDING, QUEUED):
                raise ValueError(
                    f"task {uid} is {task.state.name}: only pending or queued tasks change priority"
                )
            self._reprioritise(task, prio)
        self._after()

    def set_group_priority(self, group: Hashable, priority: object) -> int:
        """Give every pending or queued task of ``group`` this priority; returns how many."""
        _check_hashable(group, "group")
        prio = _check_priority(priority)
        if self._defer(self.set_group_priority, group, priority):
            return 0
        with self._lock:
            members = self._groups.get(group, {})
            changed = 0
            for task in members.values():
                if task.state is PENDING or task.state is QUEUED:
                    self._reprioritise(task, prio)
                    changed += 1
        self._after()
        return changed

    def retry(self, uid: object, handle: Any = None) -> None:
        """Run a failed or cancelled task again, with the failed or cancelled
        tasks upstream of it (repair and re-run).  ``handle`` follows the new run."""
        if self._defer(self.retry, uid, handle):
            return
        with self._lock:
            if self._closed:
                raise RuntimeError("this task manager has been shut down; it accepts no new tasks")
            task = self._get(uid, "retry")
            if task.state not in (FAILED, CANCELLED):
                raise ValueError(
                    f"task {uid} is {task.state.name}: only failed or cancelled tasks can be retried"
                )
            if task.fn is None:
                raise ValueError(f"task {uid} can no longer be retried: its function was released")
            self._revive(task, handle)
            spawn = self._spawn_count()
            self._flush_wake()
        if spawn:
            self._spawn(spawn)
        self._after()

    def _after(self) -> None:
        """After a lock hold: release what died under it, run what was deferred."""
        if self._grave:
            self._bury()
        if self._deferred:
            self._run_deferred()

    def close(self) -> bool:
        """Refuse new tasks, drop every queued task and every undelivered event.

        Running tasks finish, but nothing they return is reported.  Returns
        False if the scheduler was already closed.
        """
        with self._lock:
            if self._closed:
                return False
            self._closed = True
            grave = self._grave
            # Records stay (task_state, info) without what they would run.
            for task in self._tasks.values():
                if task.state.is_terminal:
                    continue
                if task.state is RUNNING:
                    task.state = CANCELLING  # so the task sees it is cancelled
                elif task.state is not CANCELLING:
                    task.state = CANCELLED
                if task.cancel_event is not None:
                    task.cancel_event.set()
                if task.handles:  # nobody waits for ever on a task that will not report
                    self._resolve_handles(task)
            for task in self._tasks.values():
                grave.append((task.fn, task.args, task.kwargs, task.result))
                task.fn = task.args = task.kwargs = task.result = None
                task.downstream = ()
            self._finished.clear()
            grave.append(self._ready)
            self._ready = []
            self._n_ready = 0
            self._groups.clear()
            self._groups_reported.clear()
            self._parked.clear()
            self._n_parked = 0
            self._keys.clear()
            grave.append(self._cache)
            self._cache = OrderedDict()
            grave.append(self._timers)
            self._timers = []
            self._timer_wakeup.notify_all()
            grave.append(self._outbox)
            grave.append(self._taken)
            self._outbox = []
            self._taken = []
        self._after()
        return True

    @property
    def closed(self) -> bool:
        return self._closed

    def workers_running(self) -> bool:
        """Whether a worker is running or about to run tasks (a racy read)."""
        return self._active > 0

    # ------------------------------------------------------------------ tasks talk to us

    def is_cancelled(self, task: Task) -> bool:
        return task.state is not RUNNING

    def wait_cancelled(self, task: Task, seconds: float) -> bool:
        """Block up to ``seconds``; True as soon as a stop is requested."""
        with self._lock:
            if task.state is not RUNNING:
                return True
            event = task.cancel_event
            if event is None:
                event = task.cancel_event = threading.Event()
        # A thread cannot wait beyond TIMEOUT_MAX at once (inf: until a stop).
        deadline = time.monotonic() + seconds
        while True:
            if event.wait(min(seconds, _MAX_WAIT)):
                return True
            seconds = deadline - time.monotonic()
            if seconds <= 0:
                return False

    def report_progress(self, task: Task, fraction: float, message: str | None) -> None:
        # Called in a tight loop by the task: while an event or a timer will
        # carry the latest value anyway, only store it (no lock), and every
        # half millisecond let other threads have the GIL: without that, a few
        # tasks looping in pure Python starve the UI thread for 100s of ms.
        task.progress = fraction
        if message is not None:
            task.progress_message = message
        if task.progress_queued or task.progress_dirty:
            now = time.monotonic()
            gate = self.gate
            if now - gate.beat_at > gate.stale_after and gate.starved(now):
                gate.give_way()
                task.yielded_at = time.monotonic()
            elif now - task.yielded_at > YIELD_EVERY:
                task.yielded_at = now
                time.sleep(0)
            return
        with self._lock:
            if self._closed or task.progress_queued or task.progress_dirty:
                return
            now = time.monotonic()
            wait = task.progress_at + self.progress_interval - now
            if wait <= 0:
                self._queue_progress(task, now)
            else:  # at most one event per interval: a timer sends the latest later
                task.progress_dirty = True
                self._add_timer(wait, "progress", task)
            self._flush_wake()

    def set_status(self, task: Task, status: Any) -> None:
        old = task.status  # read by the task's own thread, its only writer
        try:  # user code (__ne__, __bool__): never under the lock
            changed = bool(old != status)
        except Exception:  # noqa: BLE001 - e.g. an array: compare by identity
            changed = old is not status
        with self._lock:
            task.status = status
            if changed and TASK_STATUS in self._watched and task.state is RUNNING:
                for t in task.mirrors if task.mirrors is not None else (task,):
                    if t.group is not _HIDDEN:
                        self._outbox.append((TASK_STATUS, t, status))
                self._flush_wake()
        del old  # dies here, not under the lock

    def set_settings(self, uid: object, value: Any) -> None:
        if self._defer(self.set_settings, uid, value):
            return
        with self._lock:
            task = self._get(uid, "set_settings")
            if task.work is not None:
                task = task.work
            old, task.settings_pending = task.settings_pending, value
        del old

    def take_settings(self, task: Task) -> bool:
        with self._lock:
            if task.settings_pending is _NOTHING:
                return False
            old = task.settings
            task.settings, task.settings_pending = task.settings_pending, _NOTHING
        del old
        return True

    # ------------------------------------------------------------------ workers

    def claim(self) -> Task | None:
        """Called by a freshly spawned worker: its first task, or None (it retires)."""
        with self._lock:
            task = self._claim()
            if task is None:
                self._active -= 1
            self._flush_wake()
        if self._grave or self._deferred:
            self._after()
        return task

    def claim_next(self) -> Task | None:
        """A worker's next task after ``finish(claim_next=False)``, or None (it retires)."""
        with self._lock:
            task = self._claim() if self._active <= self._target and not self._closed else None
            if task is None:
                self._active -= 1
            self._flush_wake()
        if self._grave or self._deferred:
            self._after()
        return task

    def finish(
        self,
        task: Task,
        ok: bool,
        value: Any,
        error: BaseException | None = None,
        tb: str = "",
        claim_next: bool = True,
        merge: dict[str, Any] | None = None,
    ) -> Task | None:
        """Record the outcome of a task a worker ran, and claim the worker's next one.

        ``ok``: it returned ``value``.  Otherwise it raised ``error`` (a
        ``TaskCancelled`` means it honoured a stop, or cancelled itself).
        Returns the worker's next task, or None if it should retire.  With
        ``claim_next=False`` it claims nothing and the worker stays: it calls
        :meth:`claim_next` later.  ``merge``: see :func:`_merge_of` (the worker
        makes it, outside the lock).
        """
        with self._lock:
            if self._closed:
                # Shut down while it ran: it ends CANCELLED (its handles were
                # resolved so at close), and nothing is reported.
                if task.state is CANCELLING:
                    task.state = CANCELLED
                    task.ended = time.time()
                if claim_next:
                    self._active -= 1
                return None
            if task.opts.resources:
                self._release_resources(task)
            self._finish_count += 1
            if time.time() - task.started < SHORT_TASK:  # type: ignore[operator]
                if self._target > self._floor:
                    self._target -= 1
            else:
                self._target = self._max_workers
            state = task.state
            if state is CANCELLING:
                if task.timed_out:
                    self._fail(
                        task,
                        TimeoutError(f"task {task.uid} timed out after {task.opts.timeout} s"),
                        "",
                    )
                else:
                    self._end_cancelled(task)
            elif ok:
                self._complete(task, value, merge)
            elif isinstance(error, TaskCancelled):
                self._end_cancelled(task)
            elif self._should_retry(task, error):
                self._move(task, PENDING)
                exponent = min(task.attempts - task.retry_base - 1, 60)  # never overflows
                delay = task.opts.backoff * (2.0**exponent) * (0.5 + random.random())
                self._add_timer(delay, "retry", task)
            else:
                self._fail(task, error, tb)  # type: ignore[arg-type]
            if not claim_next:
                nxt = None
                spawn = self._spawn_count() if self._n_ready > self._n_parked else 0
            elif (nxt := self._claim() if self._active <= self._target else None) is None:
                self._active -= 1
                spawn = self._spawn_count()
            else:
                spawn = self._spawn_count() if self._n_ready > self._n_parked else 0
            if self._outbox and not self._wake_pending:
                self._wake_pending = True
                self._wake()
        if spawn:
            self._spawn(spawn)
        if self._grave or self._deferred:
            self._after()
        return nxt

    # ------------------------------------------------------------------ owner

    def take_events(self) -> list[tuple[Any, ...]]:
        """Take every undelivered event, oldest first; called on the owner's thread.

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
                for event in delivered:
                    kind = event[0]
                    if kind <= TASK_FAILED or kind == TASK_CANCELLED:  # an end
                        task = event[1]
                        task.pending -= 1
                        if kind == TASK_COMPLETED and task.result is not None:
                            grave.append(task.result)
                            task.result = None  # delivered: later tasks don't merge it
                            if task.merge is not None:
                                task.merge = None
                grave.append(delivered)
            if len(self._finished) > self.keep_finished:
                self._trim_finished()  # delivery caught up: keep_finished holds again
            events = self._outbox
            if not events:
                self._wake_pending = False
                events = []  # never the live outbox: a worker may append to it now
            else:
                self._outbox = []
                if self._n_progress:
                    events = self._snapshot_progress(events)
                self._taken = events
        if self._grave or self._deferred:
            self._after()
        return events

    def _snapshot_progress(self, events: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        """Progress events get the values to deliver (lock held)."""
        self._n_progress = 0
        out: list[tuple[Any, ...]] = []
        append = out.append
        for event in events:
            if event[0] == TASK_PROGRESS:
                source = event[1]
                source.progress_queued = False  # a newer value queues a new event
                if source.progress is None:
                    continue  # retried since: the new run has reported nothing yet
                event = (TASK_PROGRESS, source, event[2], source.progress, source.progress_message)
            append(event)
        return out

    def tick(self) -> None:
        """Start retries whose backoff is over, and stop tasks past their timeout."""
        now = time.monotonic()
        with self._lock:
            timers = self._timers
            while timers and timers[0][0] <= now:
                _, _, kind, task, attempt = heapq.heappop(timers)
                if kind == "widen":
                    if (
                        self._finish_count == self._widen_mark
                        and self._n_ready > self._n_parked
                        and not self.gate.parked_within(now, WIDEN_AFTER)
                    ):  # workers are blocked (not waiting for the UI thread): widen
                        self._target = self._max_workers
                    self._widen_mark = -1
                    continue
                if task.attempts != attempt:
                    continue
                if kind == "retry" and task.state is PENDING:
                    self._queue(task)
                elif kind == "timeout" and task.state is RUNNING:
                    task.timed_out = True
                    self._request_stop(task)
                elif kind == "progress" and task.progress_dirty:
                    task.progress_dirty = False
                    if not task.progress_queued:
                        self._queue_progress(task, now)
            spawn = self._spawn_count()
            self._flush_wake()
        if spawn:
            self._spawn(spawn)
        self._after()

    # ------------------------------------------------------------------ registry

    def state(self, uid: object) -> TaskState:
        with self._lock:
            return self._get(uid, "task_state").state

    def info(self, uid: object) -> TaskInfo:
        with self._lock:
            return self._info(self._get(uid, "info"))

    def infos_of(self, uids: Iterable[int]) -> dict[int, TaskInfo]:
        """Snapshots of these tasks in one lock hold; forgotten or unknown uids are left out."""
        with self._lock:
            tasks = self._tasks
            return {
                uid: self._info(task)
                for uid in uids
                if (task := tasks.get(uid)) is not None and task.group is not _HIDDEN
            }

    def infos(self, group: object = ANY_GROUP, state: TaskState | None = None) -> list[TaskInfo]:
        if state is not None and not isinstance(state, TaskState):
            raise TypeError(
                f"state must be a TaskState or None, got {state!r}"
                + (f" (use TaskState.{state})" if state in TaskState.__members__ else "")
            )
        if group is not ANY_GROUP:
            _check_hashable(group, "group")
        with self._lock:
            return [
                self._info(t)
                for t in self._tasks.values()
                if t.group is not _HIDDEN
                and (group is ANY_GROUP or t.group == group)
                and (state is None or t.state is state)
            ]

    def state_counts(self) -> dict[TaskState, int]:
        with self._lock:
            counts = dict.fromkeys(TaskState, 0)
            for t in self._tasks.values():
                if t.group is not _HIDDEN:
                    counts[t.state] += 1
            return counts

    def clear_finished(self) -> int:
        """Forget every finished task; returns how many."""
        with self._lock:
            n = len(self._finished)
            while self._finished:
                self._forget_oldest()
            self._flush_wake()
        self._after()
        return n

    def add_handle(self, uid: object, handle: Any) -> TaskState:
        with self._lock:
            task = self._get(uid, "handle")
            if task.state.is_terminal:
                self._resolve_one(handle, task)
            elif task.handles is None:
                task.handles = [handle]
            else:
                task.handles.append(handle)
            return task.state

    def counts(self) -> dict[str, int]:
        with self._lock:
            return {
                "live": sum(1 for t in self._tasks.values() if not t.state.is_terminal),
                "queued": self._n_ready,
                "workers": self._active,
                "keys": len(self._keys),
                "cached": len(self._cache),
            }

    def graph(self) -> list[tuple[int, str, TaskState, tuple[int, ...]]]:
        """(uid, name, state, upstream uids) of every task still registered."""
        with self._lock:
            return [
                (t.uid, t.name, t.state, t.upstream if t.work is None else (t.work.uid,))
                for t in self._tasks.values()
            ]

    # ------------------------------------------------------------------ internals (lock held)

    def _get(self, uid: object, what: str) -> Task:
        if not isinstance(uid, int) or isinstance(uid, bool):
            raise TypeError(f"{what} takes a task uid (an int), got {uid!r}")
        task = self._tasks.get(uid)
        if task is None:
            if type(uid) is int and 0 < uid < self._next_uid:
                raise KeyError(
                    f"task {uid} was forgotten: it finished more than keep_finished tasks ago"
                )
            raise KeyError(f"task {uid!r} is unknown: {what} takes a uid of this manager")
        return task

    def _info(self, t: Task) -> TaskInfo:
        started, ended = t.started, t.ended
        runtime = None
        if started is not None:
            runtime = (ended if ended is not None and ended >= started else time.time()) - started
        work = t.work
        src = work if work is not None else t
        return TaskInfo(
            uid=t.uid, name=t.name, group=t.group, state=t.state, priority=t.priority,
            key=t.opts.key, upstream=t.upstream, created=t.created, started=src.started,
            ended=ended, runtime=runtime, progress=src.progress,
            message=src.progress_message, status=src.status, error=t.message,
            traceback=t.traceback, attempts=src.attempts,
        )  # fmt: skip

    def _register(self, task: Task) -> None:
        self._tasks[task.uid] = task
        group = task.group
        if group is not _HIDDEN:
            members = self._groups.get(group)
            if members is None:
                members = self._groups[group] = {}
            members[task.uid] = task
            if TASK_ADDED in self._watched:
                self._outbox.append((TASK_ADDED, task))

    def _wire_upstream(self, task: Task) -> None:
        """Count the upstream tasks a new (or revived) task waits for."""
        failed_by: tuple[int, str, str] | None = None
        cancelled_by = False
        waiting = 0
        kwargs = task.kwargs
        tasks = self._tasks
        for up in task.upstream:
            parent = tasks.get(up)
            if parent is None:  # forgotten: it finished long ago
                ended = self._ended.get(up)
                if ended is None:
                    continue  # completed (or forgotten beyond ENDED_MEMORY)
                if ended[0] is FAILED:
                    failed_by = failed_by or (up, ended[1], ended[2])
                else:
                    cancelled_by = True
                continue
            state = parent.state
            if state is COMPLETED:
                result = parent.result
                if type(result) is dict:
                    kwargs.update(result)  # type: ignore[union-attr]
                elif result is not None and parent.merge is not None:
                    kwargs.update(parent.merge)  # type: ignore[union-attr]
            elif state is FAILED:
                failed_by = failed_by or (parent.uid, parent.message, parent.traceback)
            elif state is CANCELLED or state is CANCELLING:
                cancelled_by = True
            else:
                if parent.downstream:
                    parent.downstream.append(task)
                else:
                    parent.downstream = [task]
                waiting += 1
        task.waiting = waiting
        if failed_by is not None:
            up, message, tb = failed_by
            if self._policy(task) == "cancel":
                self._cancel(task)
            else:
                self._fail(task, UpstreamFailed(task.uid, up, message), tb, message)
        elif cancelled_by:
            self._cancel(task)
        elif waiting == 0:
            self._queue(task)

    def _attach_to_key(self, request: Task) -> None:
        """A keyed task: share the live work for its key, or the cached result."""
        key = request.opts.key
        if key in self._cache:
            self._cache.move_to_end(key)
            request.fn = request.args = request.kwargs = None
            value, merge = self._cache[key]
            self._complete(request, value, merge)
            return
        work = self._keys.get(key)
        if work is None or work.state is CANCELLING:
            # The work is a hidden task that runs the function; every request
            # (this one included) mirrors its outcome.  Work that is being
            # cancelled is not joined: it stays the key's until it ends.
            work = Task(self._next_uid, request.name, request.fn, request.args, request.kwargs,
                        request.priority, _HIDDEN, request.upstream, request.opts)  # fmt: skip
            self._next_uid += 1
            work.mirrors = []
            self._register(work)
            self._keys[key] = work
            self._wire_upstream(work)
        elif request.priority > work.priority and work.state in (PENDING, QUEUED):
            self._reprioritise(work, request.priority)
        request.fn = request.args = request.kwargs = None
        request.upstream = ()  # stopping a request must not stop the shared work's upstream
        request.work = work
        if work.state.is_terminal:  # failed or cancelled at once (its upstream)
            self._mirror(request, work)
        else:
            work.mirrors.append(request)  # type: ignore[union-attr]

    def _mirror(self, request: Task, work: Task) -> None:
        if work.state is FAILED:
            self._fail(request, work.error, work.traceback, work.message)  # type: ignore[arg-type]
        else:
            self._end_cancelled(request)

    def _cancel_older(self, task: Task) -> None:
        """Exclusive: the group's older tasks that have not started are cancelled,
        except those the new task waits for (directly or not)."""
        members = self._groups.get(task.group)
        if not members:
            return
        older = [t for t in members.values() if t is not task and t.state in (PENDING, QUEUED)]
        if not older:
            return
        ancestors: set[int] = set()
        todo = list(task.upstream)
        tasks = self._tasks
        while todo:
            up = todo.pop()
            if up in ancestors:
                continue
            ancestors.add(up)
            parent = tasks.get(up)
            if parent is not None and not parent.state.is_terminal:
                todo.extend(parent.upstream)
                if parent.work is not None:  # a keyed request waits through its shared work
                    todo.append(parent.work.uid)
        for t in older:
            if t.uid not in ancestors and t.state in (PENDING, QUEUED):
                self._cancel(t)

    def _move(self, task: Task, new: TaskState) -> None:
        if new not in TRANSITIONS[task.state]:
            raise IllegalTransition(task.uid, task.state, new)
        task.state = new
        if self._watch_states and task.group is not _HIDDEN:
            self._outbox.append((TASK_STATE, task, new))

    def _queue(self, task: Task) -> None:
        self._move(task, QUEUED)
        heapq.heappush(self._ready, (-task.priority, task.uid, task))
        self._n_ready += 1

    def _reprioritise(self, task: Task, priority: float) -> None:
        if priority == task.priority:
            return  # nothing changes: no new heap entry
        task.priority = priority
        if task.state is QUEUED and not task.parked:  # the old heap entry goes stale
            ready = self._ready
            heapq.heappush(ready, (-priority, task.uid, task))
            if len(ready) > 2 * self._n_ready + 1024:
                self._compact_ready()
        work = task.work
        if work is not None and work.mirrors and work.state in (PENDING, QUEUED):
            # a keyed request: its shared work runs at its requesters' highest priority
            top = max(m.priority for m in work.mirrors)
            if top != work.priority:
                self._reprioritise(work, top)

    def _compact_ready(self) -> None:
        """Drop the ready heap's stale entries (priority changes leave them)."""
        seen: set[int] = set()
        live = []
        for entry in self._ready:
            prio, uid, task = entry
            if task.state is QUEUED and -prio == task.priority and not task.parked:
                if uid not in seen:
                    seen.add(uid)
                    live.append(entry)
        heapq.heapify(live)
        self._grave.append(self._ready)
        self._ready = live

    def _claim(self) -> Task | None:
        if self._paused or self._closed:
            return None
        ready = self._ready
        while ready:
            prio, _, task = heapq.heappop(ready)
            if task.state is not QUEUED or -prio != task.priority or task.parked:
                continue  # stale entry
            res = task.opts.resources
            if res and not self._acquire(task, res):
                continue  # parked until a resource frees up
            self._n_ready -= 1
            task.attempts += 1
            task.started = time.time()
            task.state = RUNNING  # QUEUED -> RUNNING, always allowed
            if self._watched:
                self._announce_start(task)
            timeout = task.opts.timeout
            if timeout is not None:
                self._add_timer(timeout, "timeout", task)
            return task
        return None

    def _announce_start(self, task: Task) -> None:
        if task.group is _HIDDEN:
            pass
        elif self._watch_states:
            self._outbox.append((TASK_STATE, task, RUNNING))
        if TASK_STARTED in self._watched:
            if task.mirrors is None:
                self._outbox.append((TASK_STARTED, task))
            else:
                for m in task.mirrors:
                    m.started = task.started
                    self._outbox.append((TASK_STARTED, m))

    def _acquire(self, task: Task, res: dict[str, int]) -> bool:
        in_use, limits = self._in_use, self._limits
        for name, amount in res.items():
            if in_use.get(name, 0) + amount > limits[name]:
                self._parked.setdefault(name, []).append(task)
                task.parked = True
                self._n_parked += 1
                return False
        for name, amount in res.items():
            in_use[name] = in_use.get(name, 0) + amount
        return True

    def _release_resources(self, task: Task) -> None:
        res = task.opts.resources
        if res:
            for name, amount in res.items():
                self._in_use[name] -= amount
                self._unpark(name)

    def _unpark(self, name: str) -> None:
        parked = self._parked.pop(name, None)
        if parked:
            for t in parked:
                if t.parked:  # not cancelled (or claimed) since
                    t.parked = False
                    self._n_parked -= 1
                    if t.state is QUEUED:
                        heapq.heappush(self._ready, (-t.priority, t.uid, t))

    def _spawn_count(self) -> int:
        if self._paused or self._closed:
            return 0
        # Active workers may all be busy with long tasks: every ready task may
        # get a new worker, up to the target.
        ready = self._n_ready - self._n_parked
        want = min(ready, self._target - self._active)
        if (
            ready
            and self._active >= self._target
            and self._target < self._max_workers
            and self._widen_mark < 0
        ):
            self._widen_mark = self._finish_count
            self._add_timer(WIDEN_AFTER, "widen", None)  # type: ignore[arg-type]
        if want > 0:
            self._active += want
            return want
        return 0

    def _flush_wake(self) -> None:
        if self._outbox and not self._wake_pending:
            self._wake_pending = True
            self._wake()

    def _add_timer(self, delay: float, kind: str, task: Task) -> None:
        due = time.monotonic() + delay
        first = not self._timers or due < self._timers[0][0]
        attempt = task.attempts if task is not None else 0
        heapq.heappush(self._timers, (due, next(self._timer_seq), kind, task, attempt))
        if self._timer_thread is None:
            self._timer_thread = threading.Thread(
                target=self._run_timers, name="bgtasks-timers", daemon=True
            )
            self._timer_thread.start()
        elif first:
            self._timer_wakeup.notify()

    def _run_timers(self) -> None:
        # Nothing may end this thread but close(): every later timeout and
        # retry of the scheduler depends on it.
        while True:
            try:
                with self._lock:
                    while True:
                        if self._closed:
                            return
                        if self._timers:
                            wait = self._timers[0][0] - time.monotonic()
                            if wait <= 0:
                                break
                            self._timer_wakeup.wait(min(wait, _MAX_WAIT))
                        else:
                            self._timer_wakeup.wait()
                self.tick()
            except Exception:  # noqa: BLE001 - logged, and the timers go on
                log.exception("bgtasks: the timer thread caught an error; it goes on")

    def _should_retry(self, task: Task, error: BaseException | None) -> bool:
        opts = task.opts
        return (
            opts.retries >= task.attempts - task.retry_base
            and error is not None
            and isinstance(error, opts.retry_on)
        )

    def _end(self, task: Task, state: TaskState, event: tuple[Any, ...] | None) -> None:
        """Move a task to a terminal state, queue its event, account for its group."""
        if state not in TRANSITIONS[task.state]:
            raise IllegalTransition(task.uid, task.state, state)
        task.state = state
        group = task.group
        if self._watch_states and group is not _HIDDEN:
            self._outbox.append((TASK_STATE, task, state))
        task.ended = time.time()
        if state is COMPLETED or task.work is not None:
            # failed/cancelled keep them for retry.  A worker that ran the task
            # still holds them: they never die here, under the lock.
            task.fn = task.args = task.kwargs = None
        if task.progress_dirty:  # the final progress goes out before the end
            task.progress_dirty = False
            if not task.progress_queued:
                self._queue_progress(task, time.monotonic())
        if event is not None and group is not _HIDDEN:
            self._outbox.append(event)
            task.pending += 1
        if task.mirrors is not None:
            if self._keys.get(task.opts.key) is task:
                del self._keys[task.opts.key]
        elif group is not _HIDDEN:
            members = self._groups[group]
            del members[task.uid]
            if state is not CANCELLED:
                self._groups_reported.add(group)
            if not members:
                del self._groups[group]
                if group in self._groups_reported:
                    self._groups_reported.discard(group)
                    self._outbox.append((GROUP_FINISHED, group))
        finished = self._finished
        finished.append(task.uid)
        if len(finished) > self.keep_finished and not self._tasks[finished[0]].pending:
            self._trim_finished()

    def _trim_finished(self) -> None:
        # Oldest first, and never one whose end is not delivered yet (its
        # result may still be merged into a task added before delivery).
        finished, tasks = self._finished, self._tasks
        while len(finished) > self.keep_finished:
            if tasks[finished[0]].pending:
                return
            self._forget_oldest()

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

    def _queue_progress(self, source: Task, now: float) -> None:
        source.progress_queued = True
        source.progress_at = now
        for t in source.mirrors if source.mirrors is not None else (source,):
            if t.group is not _HIDDEN:
                self._outbox.append((TASK_PROGRESS, source, t))
                self._n_progress += 1

    def _complete(self, task: Task, value: Any, merge: dict[str, Any] | None = None) -> None:
        """Complete a task with ``value``; ``merge`` is the dict its dependents
        merge when ``value`` is a dict subclass (made outside the lock)."""
        task.result = value
        if type(value) is dict:
            merge = value
        elif merge is not None:
            task.merge = merge
        self._end(task, COMPLETED, (TASK_COMPLETED, task, value))
        if task.handles:
            self._resolve_handles(task)
        for child in task.downstream:
            if child.state is PENDING:
                if merge:
                    child.kwargs.update(merge)  # type: ignore[union-attr]
                child.waiting -= 1
                if child.waiting == 0:
                    self._queue(child)
        task.downstream = ()
        mirrors = task.mirrors
        if mirrors is not None:
            if self.cache_size > 0:
                cache = self._cache
                cache[task.opts.key] = (value, merge if type(value) is not dict else None)
                cache.move_to_end(task.opts.key)
                while len(cache) > self.cache_size:
                    self._grave.append(cache.popitem(last=False))
            task.mirrors = []
            for m in mirrors:
                if m.state is PENDING:
                    self._complete(m, value, merge)
            # The shared work's result is the requests' now: not kept here.
            task.result = None
            if merge is not None and task.merge is not None:
                task.merge = None
            self._grave.append(value)

    def _fail(self, task: Task, error: BaseException, tb: str, message: str | None = None) -> None:
        """Fail a task; every task downstream of it fails (or is cancelled, by
        policy), and so do the requests mirroring a failed shared work.  A work
        list, not recursion: chains of any length."""
        if message is None:
            message = str(error) or type(error).__name__
        # (task, its error, the uid its dependents name as the failed upstream)
        todo: deque[tuple[Task, BaseException | None, int]] = deque([(task, error, task.uid)])
        first = True
        while todo:
            t, err, origin = todo.popleft()
            if first:
                first = False
            elif t.state is not PENDING:
                continue  # ended already, e.g. reached twice through a diamond
            if err is None:  # downstream of a failed task
                if self._policy(t) == "cancel":
                    self._cancel(t)
                    continue
                err = UpstreamFailed(t.uid, origin, message)
            else:
                origin = t.uid
            t.error = err
            t.message = message
            t.traceback = tb
            self._end(t, FAILED, (TASK_FAILED, t, message, tb))
            if t.handles:
                self._resolve_handles(t)
            children, t.downstream = t.downstream, ()
            for child in children:
                todo.append((child, None, origin))
            mirrors = t.mirrors
            if mirrors:
                t.mirrors = []
                for m in mirrors:
                    todo.append((m, err, origin))

    def _policy(self, task: Task) -> str:
        if task.opts is not _NO_OPTIONS and task.opts.policy != "fail":
            return task.opts.policy
        return self._group_policy.get(task.group, "fail") if self._group_policy else "fail"

    def _end_cancelled(self, task: Task, todo: list[Task] | None = None) -> None:
        """End a task CANCELLED; what depends on it is stopped too: pushed onto
        ``todo`` (for _cancel_all's loop), or stopped here."""
        self._end(task, CANCELLED, (TASK_CANCELLED, task))
        if task.handles:
            self._resolve_handles(task)
        children, task.downstream = task.downstream, ()
        mirrors = task.mirrors
        if mirrors:  # the shared work was cancelled: so are its requests
            task.mirrors = []
        if todo is None:
            todo = []
            self._push_dependents(todo, children, mirrors)
            if todo:
                self._cancel_loop(todo)
        else:
            self._push_dependents(todo, children, mirrors)

    @staticmethod
    def _push_dependents(todo: list[Task], children: Any, mirrors: list[Task] | None) -> None:
        # reversed: the stack pops them in their own order (depth first)
        if mirrors:
            todo.extend(m for m in reversed(mirrors) if m.state is PENDING)
        if children:
            todo.extend(c for c in reversed(children) if c.state is PENDING)

    def _request_stop(self, task: Task) -> None:
        self._move(task, CANCELLING)
        if task.cancel_event is not None:
            task.cancel_event.set()

    def _cancel(self, task: Task) -> None:
        """Stop a task; its dependents can never run, so stop them too."""
        self._cancel_loop([task])

    def _cancel_loop(self, todo: list[Task]) -> None:
        while todo:
            t = todo.pop()
            state = t.state
            if state is RUNNING:
                self._request_stop(t)  # the worker ends it in finish()
                children, t.downstream = t.downstream, ()
                self._push_dependents(todo, children, None)
            elif state is PENDING or state is QUEUED:
                if state is QUEUED:
                    self._n_ready -= 1
                    if t.parked:
                        t.parked = False
                        self._n_parked -= 1
                self._end_cancelled(t, todo)
                work = t.work
                if work is not None and work.mirrors:
                    try:
                        work.mirrors.remove(t)
                    except ValueError:
                        pass
                    if not work.mirrors and not work.state.is_terminal:
                        todo.append(work)  # the last requester gave up

    def _stop_many(self, tasks: list[Task], stop_upstream: bool, stop_downstream: bool) -> None:
        targets: dict[int, Task] = {}
        todo = list(tasks)
        while todo:
            t = todo.pop()
            if t.uid in targets or t.state.is_terminal:
                continue
            targets[t.uid] = t
            if stop_upstream:
                for up in t.upstream:
                    parent = self._tasks.get(up)
                    if parent is not None:
                        todo.append(parent)
            if stop_downstream:
                todo.extend(t.downstream)
        for t in targets.values():
            self._cancel(t)
        self._flush_wake()

    def _revive(self, task: Task, handle: Any = None) -> None:
        """retry(): back to PENDING, the failed or cancelled tasks upstream first
        (an iterative post-order walk: chains of any length)."""
        tasks = self._tasks
        order: list[Task] = []
        seen = {task.uid}
        stack = [(task, iter(task.upstream))]
        while stack:
            t, ups = stack[-1]
            for up in ups:
                parent = tasks.get(up)
                if (
                    parent is not None
                    and parent.uid not in seen
                    and parent.state in (FAILED, CANCELLED)
                    and parent.fn is not None
                ):
                    seen.add(parent.uid)
                    stack.append((parent, iter(parent.upstream)))
                    break
            else:
                stack.pop()
                order.append(t)
        revived = {t.uid for t in order}
        self._finished = deque(u for u in self._finished if u not in revived)
        grave = self._grave
        for t in order:
            grave.append((t.error, t.handles))
            self._move(t, PENDING)
            t.error = None
            t.handles = [handle] if handle is not None and t is task else None
            t.cancel_event = None  # a stop of the last run is not a stop of this one
            t.retry_base = t.attempts
            t.message = t.traceback = ""
            t.ended = None
            t.timed_out = False
            t.progress = None
            t.progress_message = ""
            members = self._groups.get(t.group)
            if members is None:
                members = self._groups[t.group] = {}
            members[t.uid] = t
            # It may still be listed downstream of a live upstream task (it was
            # stopped while that one ran): wired once, counted once.
            for up in t.upstream:
                parent = tasks.get(up)
                if parent is not None and parent.downstream and t in parent.downstream:
                    parent.downstream = [c for c in parent.downstream if c is not t]
            self._wire_upstream(t)

    def _resolve_handles(self, task: Task) -> None:
        handles = task.handles
        if handles:
            for h in handles:
                self._resolve_one(h, task)
            # resolved once: the task keeps no handle (nor its result) alive
            task.handles = None
            self._grave.append(handles)

    def _resolve_one(self, handle: Any, task: Task) -> None:
        state = task.state
        if handle.done():
            return
        if state is COMPLETED:
            handle._resolve(state, task.result, None)
        elif state is FAILED:
            handle._resolve(state, None, task.error)
        else:  # CANCELLED, or CANCELLING after close(): its outcome will not be reported
            handle._resolve(CANCELLED, None, TaskCancelled(f"task {task.uid} was cancelled"))


def _merge_of(value: Any) -> dict[str, Any] | None:
    """The dict that dependents merge for a result: a plain copy of a dict
    subclass (OrderedDict, defaultdict...); None for anything else.  Call it
    outside the scheduler's lock (a subclass may run Python code)."""
    if isinstance(value, dict) and type(value) is not dict and value:
        return dict(value)
    return None


# ---------------------------------------------------------------------- workers


def current() -> tuple[Scheduler, Task] | None:
    """The (scheduler, task) the calling worker thread is running, if any."""
    task = getattr(_local, "task", None)
    return None if task is None else (_local.scheduler, task)


def run_worker(scheduler: Scheduler) -> None:
    """A worker's whole life: run tasks until the scheduler has none for it.

    Any exception a task raises, ``SystemExit`` and ``KeyboardInterrupt``
    included, fails that task and never ends the worker.
    """
    local = _local
    local.scheduler = scheduler
    monotonic, sleep = time.monotonic, time.sleep
    gate = scheduler.gate
    # If the UI thread has not had the GIL for a while, wait (without it) until
    # it has: before claiming a task, so the wait is not counted as the task's
    # run time, and a waiting task is not shown running.
    if gate.starved(monotonic()):
        gate.give_way()
    yielded = monotonic()
    task = scheduler.claim()
    while task is not None:
        # Every half millisecond let other threads have the GIL: a flood of
        # short tasks must not starve the UI thread.
        now = monotonic()
        if now - yielded > YIELD_EVERY:
            yielded = now
            sleep(0)
        local.task = task
        # Held here until finish() returns: what the scheduler drops when the
        # task ends must not die under its lock (a finalizer may call it).
        fn, args, kwargs = task.fn, task.args, task.kwargs
        merge = None
        error: BaseException | None
        try:
            value = fn(*args, **kwargs)  # type: ignore[misc, arg-type]  # the task runs here
        except BaseException as exc:  # noqa: BLE001 - a task must never kill its worker
            tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
            exc.__traceback__ = None
            ok, value, error = False, None, exc
            del exc
        else:
            ok, error, tb = True, None, ""
            if value.__class__ is not dict and isinstance(value, dict):
                try:
                    merge = _merge_of(value)
                except BaseException as exc:  # noqa: BLE001 - a broken dict subclass
                    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
                    exc.__traceback__ = None
                    ok, value, error = False, None, exc
                    del exc
        now = monotonic()
        if now - gate.beat_at > gate.stale_after and gate.starved(now):
            scheduler.finish(task, ok, value, error, tb, claim_next=False, merge=merge)
            del value, error, fn, args, kwargs, merge
            gate.give_way()
            yielded = monotonic()
            task = scheduler.claim_next()
        else:
            nxt = scheduler.finish(task, ok, value, error, tb, merge=merge)
            del value, error, fn, args, kwargs, merge
            task = nxt
    local.task = None
