"""The scheduling core: ready queue, dependency graph, groups and states.

Nothing here imports Qt.  The Qt layer (``_manager.py``) gives the scheduler two
callbacks and runs :func:`run_worker` in its thread pool:

* ``spawn(n)`` starts ``n`` more workers.  It is called *outside* the lock, by
  whichever thread made tasks ready (a submitter or a worker that finished an
  upstream task).  The scheduler counts its workers, so never more than
  ``max_workers`` run at once.
* ``wake()`` asks the owner's thread to call :meth:`Scheduler.take_events`.  It
  is called *under* the lock, at most once until ``take_events`` finds the
  outbox empty, so a flood of results costs one wake-up, not one per task.

Design:

* One lock (``Scheduler._lock``) guards every field below.  No user code runs
  under it: task functions run in workers between :meth:`Scheduler.finish`
  calls, and signals are emitted by the owner after ``take_events`` returns.
* The ready queue is a heap of ``(-priority, uid, task)``: higher priority
  first, FIFO among equals because uids only grow.  A task cancelled while
  queued stays in the heap and is skipped when popped (lazy deletion), so a
  stop is O(1) and a dispatch O(log n).
* A task knows how many upstream tasks it still waits for and its downstream
  tasks know it; finishing a task touches only its own dependents, so chains,
  fan-in and distinct priorities all dispatch in O(log n) per task.
* Workers take their next task themselves in the same lock hold that records
  the result (:meth:`Scheduler.finish`): they never wait for the UI thread.
* Events (completed, failed, group finished) go to one outbox in the order they
  happen; the owner drains it in batches.
"""

from __future__ import annotations

import heapq
import itertools
import math
import threading
import traceback
from collections import deque
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from typing import Any

from ._state import TRANSITIONS, IllegalTransition, TaskState

PENDING = TaskState.PENDING
QUEUED = TaskState.QUEUED
RUNNING = TaskState.RUNNING
CANCELLING = TaskState.CANCELLING
COMPLETED = TaskState.COMPLETED
FAILED = TaskState.FAILED
CANCELLED = TaskState.CANCELLED

#: Outbox event kinds.  An event is ``(kind, task)`` or ``(GROUP_FINISHED, group)``.
TASK_COMPLETED = 0
TASK_FAILED = 1
GROUP_FINISHED = 2

#: How many failed or stopped tasks' outcomes are remembered after delivery.  A
#: task added with an upstream task forgotten longer ago treats it as completed.
ENDED_MEMORY = 100_000


_STOPPED = (CANCELLED, "", "")


def _pass_through(**kwargs: Any) -> dict[str, Any]:
    return kwargs


class Task:
    """One task's record.  Fields are guarded by the scheduler's lock, except
    ``fn``/``args``/``kwargs``, which the worker that claimed the task reads
    while it is RUNNING (nothing writes them then)."""

    __slots__ = (
        "uid",
        "fn",
        "args",
        "kwargs",
        "priority",
        "group",
        "state",
        "waiting",
        "upstream",
        "downstream",
        "result",
        "message",
        "traceback",
    )

    def __init__(
        self,
        uid: int,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        priority: float,
        group: Hashable,
        upstream: tuple[int, ...],
    ) -> None:
        self.uid = uid
        self.fn: Callable[..., Any] | None = fn
        self.args: tuple[Any, ...] | None = args
        self.kwargs: dict[str, Any] | None = kwargs
        self.priority = priority
        self.group = group
        self.state = PENDING
        self.waiting = 0  # upstream tasks not yet completed
        self.upstream = upstream
        self.downstream: list[Task] = []
        self.result: Any = None
        self.message = ""
        self.traceback = ""

    def __repr__(self) -> str:
        return f"<Task {self.uid} {self.state.name} group={self.group!r}>"


def _check_priority(priority: object) -> float:
    if priority is None:
        return 0
    if isinstance(priority, (int, float)) and not (
        isinstance(priority, float) and math.isnan(priority)
    ):
        return priority
    raise TypeError(f"priority must be a number or None, got {priority!r}")


def _check_args(task_args: object) -> tuple[Any, ...]:
    if task_args is None:
        return ()
    if type(task_args) is tuple:
        return task_args  # type: ignore[return-value]
    if type(task_args) is list or (
        isinstance(task_args, Sequence) and not isinstance(task_args, (str, bytes))
    ):
        return tuple(task_args)  # type: ignore[arg-type]
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


class Scheduler:
    """Thread-safe task scheduler; every public method may be called from any thread."""

    def __init__(
        self,
        max_workers: int,
        spawn: Callable[[int], None],
        wake: Callable[[], None],
    ) -> None:
        if isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1:
            raise ValueError(f"max_threads must be a positive integer, got {max_workers!r}")
        self._spawn = spawn
        self._wake = wake
        self._lock = threading.Lock()
        # All guarded by _lock:
        self._max_workers = max_workers
        self._tasks: dict[int, Task] = {}  # live tasks, and ended ones not yet taken as events
        # Outcomes of released tasks that did not complete, for tasks added later
        # with them upstream; the oldest are forgotten past ENDED_MEMORY.
        self._ended: dict[int, tuple[TaskState, str, str]] = {}
        self._next_uid = 1
        self._ready: list[tuple[float, int, Task]] = []
        self._n_ready = 0  # QUEUED tasks; the heap may also hold stale entries
        self._groups: dict[Hashable, dict[int, Task]] = {}  # live tasks of each group
        self._groups_reported: set[Hashable] = set()  # had a completion/failure this round
        self._outbox: list[tuple[int, Any]] = []
        self._wake_pending = False
        self._active = 0  # workers started and not yet retired
        self._paused = True
        self._closed = False
        self._group_ids = itertools.count()

    # ------------------------------------------------------------------ submit

    def add(
        self,
        fn: Callable[..., Any] | None,
        priority: object = None,
        group: object = None,
        upstream_task_ids: object = None,
        task_args: object = None,
        task_kwargs: object = None,
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
        try:
            hash(group)
        except TypeError:
            raise TypeError(f"group must be hashable, got {group!r}") from None
        if upstream_task_ids is None:
            upstream: tuple[int, ...] = ()
        elif isinstance(upstream_task_ids, Iterable) and not isinstance(
            upstream_task_ids, (str, bytes, Mapping)
        ):
            upstream = tuple(upstream_task_ids)
        else:
            raise TypeError(
                "upstream_task_ids must be a list of task ids, got " f"{upstream_task_ids!r}"
            )

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
            uid = next_uid
            self._next_uid = uid + 1
            task = Task(uid, fn, args, kwargs, prio, group, upstream)
            self._tasks[uid] = task
            members = self._groups.get(group)
            if members is None:
                members = self._groups[group] = {}
            members[uid] = task

            failed_by: tuple[str, str] | None = None
            cancelled_by = False
            waiting = 0
            for up in upstream:
                parent = self._tasks.get(up)
                if parent is None:  # ended and already delivered
                    ended = self._ended.get(up)
                    if ended is None:
                        continue  # completed
                    if ended[0] is FAILED:
                        failed_by = failed_by or (ended[1], ended[2])
                    else:
                        cancelled_by = True
                    continue
                state = parent.state
                if state is COMPLETED:
                    if type(parent.result) is dict:
                        kwargs.update(parent.result)
                elif state is FAILED:
                    failed_by = failed_by or (parent.message, parent.traceback)
                elif state is CANCELLED or state is CANCELLING:
                    cancelled_by = True
                else:
                    parent.downstream.append(task)
                    waiting += 1
            task.waiting = waiting
            if failed_by is not None:
                self._fail(task, *failed_by)
            elif cancelled_by:
                self._cancel(task)
            elif waiting == 0:
                self._queue(task)
            spawn = self._spawn_count()
            self._flush_wake()
        if spawn:
            self._spawn(spawn)
        return uid

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

    def stop(self, task_id: object, stop_upstream: bool = True, stop_downstream: bool = True) -> None:
        with self._lock:
            if type(task_id) is not int or not 0 < task_id < self._next_uid:
                raise KeyError(f"task {task_id!r} is unknown: stop_task takes a uid of this manager")
            task = self._tasks.get(task_id)
            if task is not None:
                self._stop_many([task], stop_upstream, stop_downstream)

    def stop_group(
        self, group: Hashable, stop_upstream: bool = True, stop_downstream: bool = True
    ) -> None:
        try:
            hash(group)
        except TypeError:
            raise TypeError(f"group must be hashable, got {group!r}") from None
        with self._lock:
            members = self._groups.get(group)
            if members:
                self._stop_many(list(members.values()), stop_upstream, stop_downstream)

    def stop_all(self) -> None:
        with self._lock:
            self._stop_many(list(self._tasks.values()), False, False)

    def close(self) -> bool:
        """Refuse new tasks, drop every queued task and every undelivered event.

        Running tasks finish, but nothing they return is reported.  Returns
        False if the scheduler was already closed.
        """
        with self._lock:
            if self._closed:
                return False
            self._closed = True
            for task in self._tasks.values():
                task.fn = task.args = task.kwargs = None
                task.result = None
            self._tasks.clear()
            self._ended.clear()
            self._ready.clear()
            self._n_ready = 0
            self._groups.clear()
            self._groups_reported.clear()
            self._outbox.clear()
            return True

    @property
    def closed(self) -> bool:
        return self._closed

    # ------------------------------------------------------------------ workers

    def claim(self) -> Task | None:
        """Called by a freshly spawned worker: its first task, or None (it retires)."""
        with self._lock:
            task = self._claim()
            if task is None:
                self._active -= 1
            return task

    def finish(
        self, task: Task, ok: bool, value: Any, message: str = "", tb: str = ""
    ) -> Task | None:
        """Record the outcome of a task a worker ran, and claim the worker's next one.

        ``value`` is the result when ``ok``; otherwise ``message``/``tb``
        describe the error.  Returns the worker's next task, or None if it
        should retire.
        """
        with self._lock:
            if self._closed:
                self._active -= 1
                return None
            if task.state is CANCELLING:
                self._end_cancelled(task)
            elif ok:
                task.result = value
                self._outbox.append((TASK_COMPLETED, task))
                self._end(task, COMPLETED)
                merge = type(value) is dict and value
                for child in task.downstream:
                    if child.state is PENDING:
                        if merge:
                            child.kwargs.update(value)  # type: ignore[union-attr]
                        child.waiting -= 1
                        if child.waiting == 0:
                            self._queue(child)
                task.downstream = []
            else:
                self._fail(task, message, tb)
            nxt = self._claim()
            if nxt is None:
                self._active -= 1
            spawn = self._spawn_count()
            self._flush_wake()
        if spawn:
            self._spawn(spawn)
        return nxt

    # ------------------------------------------------------------------ owner

    def take_events(self) -> list[tuple[int, Any]]:
        """Take every undelivered event, oldest first; called on the owner's thread.

        An empty list means the outbox was empty, and the next event will call
        ``wake()`` again.
        """
        with self._lock:
            events = self._outbox
            if not events:
                self._wake_pending = False
                return events
            self._outbox = []
            tasks = self._tasks
            for kind, task in events:
                if kind == TASK_COMPLETED:
                    del tasks[task.uid]
                elif kind == TASK_FAILED:
                    del tasks[task.uid]
                    self._remember(task.uid, (FAILED, task.message, task.traceback))
            return events

    def state(self, uid: int) -> TaskState | None:
        """The state of a task, or None if it completed and was delivered."""
        with self._lock:
            if type(uid) is not int or not 0 < uid < self._next_uid:
                raise KeyError(f"task {uid!r} is unknown: task_state takes a uid of this manager")
            task = self._tasks.get(uid)
            if task is not None:
                return task.state
            ended = self._ended.get(uid)
            return ended[0] if ended else None

    def counts(self) -> dict[str, int]:
        with self._lock:
            return {
                "live": sum(1 for t in self._tasks.values() if not t.state.is_terminal),
                "queued": self._n_ready,
                "workers": self._active,
            }

    # ------------------------------------------------------------------ internals (lock held)

    def _move(self, task: Task, new: TaskState) -> None:
        if new not in TRANSITIONS[task.state]:
            raise IllegalTransition(task.uid, task.state, new)
        task.state = new

    def _queue(self, task: Task) -> None:
        self._move(task, QUEUED)
        heapq.heappush(self._ready, (-task.priority, task.uid, task))
        self._n_ready += 1

    def _claim(self) -> Task | None:
        if self._paused:
            return None
        ready = self._ready
        while ready:
            task = heapq.heappop(ready)[2]
            if task.state is QUEUED:
                self._n_ready -= 1
                task.state = RUNNING
                return task
        return None

    def _spawn_count(self) -> int:
        if self._paused or self._closed:
            return 0
        want = min(self._n_ready, self._max_workers) - self._active
        if want > 0:
            self._active += want
            return want
        return 0

    def _flush_wake(self) -> None:
        if self._outbox and not self._wake_pending:
            self._wake_pending = True
            self._wake()

    def _end(self, task: Task, state: TaskState) -> None:
        """Move a task to a terminal state and account for its group."""
        self._move(task, state)
        task.fn = task.args = task.kwargs = None
        group = task.group
        members = self._groups[group]
        del members[task.uid]
        if state is not CANCELLED:
            self._groups_reported.add(group)
        if not members:
            del self._groups[group]
            if group in self._groups_reported:
                self._groups_reported.discard(group)
                self._outbox.append((GROUP_FINISHED, group))

    def _end_cancelled(self, task: Task) -> None:
        # A stop emits nothing, so the task is released at once.
        self._end(task, CANCELLED)
        del self._tasks[task.uid]
        self._remember(task.uid, _STOPPED)

    def _remember(self, uid: int, outcome: tuple[TaskState, str, str]) -> None:
        ended = self._ended
        ended[uid] = outcome
        if len(ended) > ENDED_MEMORY:
            del ended[next(iter(ended))]

    def _fail(self, task: Task, message: str, tb: str) -> None:
        """Fail a task and, transitively, every task downstream of it."""
        todo = deque([task])
        while todo:
            t = todo.popleft()
            if t.state.is_terminal:  # reached twice through a diamond
                continue
            t.message = message
            t.traceback = tb
            self._outbox.append((TASK_FAILED, t))
            self._end(t, FAILED)
            for child in t.downstream:
                if child.state is PENDING:
                    todo.append(child)
            t.downstream = []

    def _cancel(self, task: Task) -> None:
        """Stop a task silently; its dependents can never run, so stop them too."""
        todo = [task]
        while todo:
            t = todo.pop()
            state = t.state
            if state is RUNNING:
                self._move(t, CANCELLING)  # the worker ends it in finish()
            elif state is PENDING or state is QUEUED:
                if state is QUEUED:
                    self._n_ready -= 1
                self._end_cancelled(t)
            else:
                continue
            todo.extend(c for c in t.downstream if c.state is PENDING)
            t.downstream = []

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


def run_worker(scheduler: Scheduler) -> None:
    """A worker's whole life: run tasks until the scheduler has none for it.

    Any exception a task raises, ``SystemExit`` and ``KeyboardInterrupt``
    included, fails that task and never ends the worker.
    """
    task = scheduler.claim()
    while task is not None:
        try:
            value = task.fn(*task.args, **task.kwargs)  # type: ignore[misc]
        except BaseException as exc:  # noqa: BLE001 - a task must never kill its worker
            message = str(exc) or type(exc).__name__
            tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
            del exc
            task = scheduler.finish(task, False, None, message, tb)
        else:
            task = scheduler.finish(task, True, value)
            del value
