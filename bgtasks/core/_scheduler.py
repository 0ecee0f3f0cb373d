"""The scheduler: the one lock, adding, claiming and finishing tasks, closing."""

from __future__ import annotations

import itertools
import os
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable
from threading import get_ident
from typing import Any

from ._checks import _check_args, _check_kwargs, _check_name, _check_upstream
from ._configure import Configuration
from ._control import Control
from ._errors import TaskCancelled, describe
from ._fields import (
    MAX_WORKERS,
    SHORT_TASK,
    log,
)
from ._gil_gate import GilGate
from ._keys import Keys
from ._outbox import Outbox
from ._ready import Ready
from ._reentry import Reentry
from ._registry import Registry
from ._resources import Resources
from ._retention import Retention
from ._running import Running
from ._state import TaskState
from ._task import (
    _HIDDEN,
    _NO_OPTIONS,
    CANCELLED,
    CANCELLING,
    RUNNING,
    Options,
    Task,
    _name_of,
    _pass_through,
)
from ._timers import Timers
from ._transitions import Transitions
from ._validate import check_count, check_hashable, check_priority


class Scheduler(
    Configuration,
    Control,
    Running,
    Keys,
    Resources,
    Timers,
    Retention,
    Registry,
    Outbox,
    Ready,
    Transitions,
    Reentry,
):
    """Thread-safe task scheduler; every public method may be called from any thread.

    Assembled from one mixin per concern (see the package docstring); this
    class holds the lifecycle: add, claim, finish, close.
    """

    def __init__(
        self,
        max_workers: int,
        spawn: Callable[[int], None],
        wake: Callable[[], None],
        keep_finished: int = 10_000,
    ) -> None:
        check_count("max_threads", max_workers, minimum=1, maximum=MAX_WORKERS)
        self._spawn = spawn
        self._wake = wake
        self._init_reentry()
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
        self._ready: list[tuple[float, int]] = []
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
        self._init_timers()

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
        prio = check_priority("priority", priority)
        args = _check_args(task_args)
        kwargs = _check_kwargs(task_kwargs)
        if group is not None:  # (calls spared on the common path: no group, no upstream)
            check_hashable("group", group)
        upstream = () if upstream_task_ids is None else _check_upstream(upstream_task_ids)
        name = _name_of(fn) if name is None else _check_name(name)

        # This thread already holds the lock: a finalizer that the garbage
        # collector runs under it is adding a task.
        reentrant = self._lock._is_owned()  # type: ignore[attr-defined]
        with self._lock:
            if self._closed:
                raise RuntimeError("this task manager has been shut down; it accepts no new tasks")
            if upstream or opts.resources or group is not None or opts.key is not None:
                self._check_refs(upstream, opts, group)
            uid = self._next_uid
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

    def _check_refs(self, upstream: tuple[int, ...], opts: Options, group: object) -> None:
        """What add() can only check under the lock; raises before anything changes."""
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
        key = opts.key
        if key is not None:  # the same for a key (the cache is looked up first)
            if self._cache:
                self._cache.get(key)
            self._keys.get(key)

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

    def next_group_id(self) -> int:
        return next(self._group_ids)

    def start(self) -> None:
        with self._lock:
            self._paused = False
            spawn = self._spawn_count()
        if spawn:
            self._spawn(spawn)

    def pause(self) -> None:
        with self._lock:
            self._paused = True

    def claim(self) -> Task | None:
        """Called by a freshly spawned worker: its first task, or None (it retires)."""
        with self._lock:
            task = self._claim()
            if task is None:
                self._active -= 1
            self._flush_wake()
        # A worker never buries (only the owner's thread does): skip _after()
        # and its calls unless there is something this thread may do.
        if self._deferred or (self._grave and get_ident() == self._owner_ident):
            self._after()
        return task

    def claim_next(self) -> Task | None:
        """A worker's next task after ``finish(claim_next=False)``, or None (it retires)."""
        with self._lock:
            task = self._claim() if self._active <= self._target and not self._closed else None
            if task is None:
                self._active -= 1
            self._flush_wake()
        # A worker never buries (only the owner's thread does): skip _after()
        # and its calls unless there is something this thread may do.
        if self._deferred or (self._grave and get_ident() == self._owner_ident):
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
        ``claim_next`` later.  ``merge``: see ``_merge_of`` (the worker
        makes it, outside the lock).
        """
        # The message runs the exception's __str__: user code, never under the lock.
        message = (
            None if ok or error is None or isinstance(error, TaskCancelled) else describe(error)
        )
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
                self._end_stopped(task)
            elif ok:
                self._complete(task, value, merge)
            elif isinstance(error, TaskCancelled):
                self._end_cancelled(task)
            elif self._should_retry(task, error):
                self._schedule_retry(task)
            else:
                self._fail(task, error, tb, message)  # type: ignore[arg-type]
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
        # A worker never buries (only the owner's thread does): skip _after()
        # and its calls unless there is something this thread may do.
        if self._deferred or (self._grave and get_ident() == self._owner_ident):
            self._after()
        return nxt

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
