"""What a running task sees of its controller: ``bgtasks.current_task()``.

:class:`TaskContextProtocol` is what every task context provides, wherever the
task runs; :class:`TaskContext` is the context of a task in a manager's thread.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from . import Scheduler, Task, current
from ._errors import TaskCancelled


@runtime_checkable
class TaskContextProtocol(Protocol):
    """What :func:`current_task` returns, wherever the task runs.

    Every task context implements it with these signatures and meanings: a
    task in a manager's thread (:class:`TaskContext`), in a ProcessExecutor
    worker process, on a Dask worker (in this process or another), and what a
    :class:`bgtasks.loops.LoopTask` is given.  A backend that cannot forward
    something keeps the member and documents what it does instead (a Dask
    worker process forwards no settings: ``update_settings()`` returns False).
    """

    @property
    def uid(self) -> int:
        """The task's uid."""
        ...

    @property
    def group(self) -> Any:
        """The task's group (in another process: None, or its repr on Dask, if it could
        not be sent there)."""
        ...

    @property
    def priority(self) -> float:
        """The task's priority."""
        ...

    @property
    def cancelled(self) -> bool:
        """True once a stop was requested (``stop_task``, a timeout, shut down)."""
        ...

    def raise_if_cancelled(self) -> None:
        """Raise :class:`TaskCancelled` if a stop was requested."""
        ...

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` (``inf``: until a stop); raise :class:`TaskCancelled` as soon as
        a stop is requested.  ``ValueError`` unless ``seconds`` is a non-negative number."""
        ...

    def report_progress(
        self, done: float, total: float | None = None, message: str | None = None
    ) -> None:
        """Report progress: a fraction in [0, 1], or ``done`` out of ``total`` (checked by
        :func:`progress_fraction`); the latest value wins, the last always arrives."""
        ...

    @property
    def status(self) -> Any:
        """A value the task publishes for others (``info(uid).status``)."""
        ...

    @status.setter
    def status(self, value: Any) -> None: ...

    @property
    def settings(self) -> Any:
        """The settings adopted by the last :meth:`update_settings` (None before)."""
        ...

    def update_settings(self) -> bool:
        """Adopt the latest value sent with ``set_settings(uid, value)``; True if there was
        a new one."""
        ...


class TaskContext:
    """The running task's view of its manager.

    Get it with :func:`current_task` from inside a task function (any worker
    thread).  Python code cannot be interrupted from outside: a task that wants
    to be stoppable checks :attr:`cancelled`, calls :meth:`raise_if_cancelled`
    between steps, or waits with :meth:`sleep`, which wakes at once on a stop.
    A task that lets :class:`TaskCancelled` propagate ends CANCELLED.
    """

    __slots__ = ("_scheduler", "_task")

    def __init__(self, scheduler: Scheduler, task: Task) -> None:
        self._scheduler = scheduler
        self._task = task

    @property
    def uid(self) -> int:
        return self._task.uid

    @property
    def group(self) -> Any:
        return self._task.group

    @property
    def priority(self) -> float:
        return self._task.priority

    @property
    def cancelled(self) -> bool:
        """True once a stop was requested (``stop_task``, a timeout, shut down)."""
        return self._scheduler.is_cancelled(self._task)

    def raise_if_cancelled(self) -> None:
        """Raise :class:`TaskCancelled` if a stop was requested."""
        if self._scheduler.is_cancelled(self._task):
            raise TaskCancelled(f"task {self._task.uid} was asked to stop")

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds``; raise :class:`TaskCancelled` as soon as a stop is requested."""
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not seconds >= 0:
            raise ValueError(f"seconds must be a non-negative number, got {seconds!r}")
        if self._scheduler.wait_cancelled(self._task, seconds):
            raise TaskCancelled(f"task {self._task.uid} was asked to stop")

    def report_progress(
        self, done: float, total: float | None = None, message: str | None = None
    ) -> None:
        """Report progress: a fraction in [0, 1], or ``done`` out of ``total``.

        Cheap enough to call in a tight loop: the UI gets the latest value at
        most ~25 times a second, and the final one before the task's result.
        """
        fraction = progress_fraction(done, total, message)
        self._scheduler.report_progress(self._task, fraction, message)

    @property
    def status(self) -> Any:
        """A value the task publishes for others (``info(uid).status``)."""
        return self._task.status

    @status.setter
    def status(self, value: Any) -> None:
        self._scheduler.set_status(self._task, value)

    @property
    def settings(self) -> Any:
        """The settings adopted by the last :meth:`update_settings` (None before)."""
        return self._task.settings

    def update_settings(self) -> bool:
        """Adopt the latest value sent with ``set_settings(uid, value)``.

        Latest wins: values sent since the last call are replaced by the newest.
        Returns True if there was a new value.
        """
        return self._scheduler.take_settings(self._task)


def progress_fraction(done: float, total: float | None, message: str | None) -> float:
    """Check the arguments of ``report_progress`` (every context's) and give the fraction."""
    if total is not None:
        if (
            isinstance(total, bool)
            or not isinstance(total, (int, float))
            or not 0 < total < math.inf
        ):
            raise ValueError(f"total must be a positive finite number, got {total!r}")
        fraction = done / total
    else:
        fraction = done
    if (
        isinstance(fraction, bool)
        or not isinstance(fraction, (int, float))
        or not 0.0 <= fraction <= 1.0
    ):
        raise ValueError(f"progress must be a fraction between 0 and 1, got {fraction!r}")
    if message is not None and not isinstance(message, str):
        raise TypeError(f"message must be a string, got {message!r}")
    return float(fraction)


#: Set by a backend that runs tasks outside the manager's threads (a worker
#: process): returns that process's view of its running task, or None.
remote_context: Callable[[], Any] | None = None


def current_task() -> TaskContextProtocol:
    """The context of the task running in the calling thread: a :class:`TaskContext` in a
    manager's thread, a backend's own :class:`TaskContextProtocol` elsewhere (a worker
    process, a Dask worker).

    ``RuntimeError`` outside a task function.
    """
    running = current()
    if running is None:
        remote: TaskContextProtocol | None = remote_context() if remote_context is not None else None
        if remote is not None:
            return remote
        raise RuntimeError("current_task() was called outside a running task")
    return TaskContext(*running)
