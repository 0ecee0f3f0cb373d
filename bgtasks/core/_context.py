"""What a running task sees of its controller: ``bgtasks.current_task()``.

``TaskContextProtocol`` is what every task context provides, wherever the
task runs; ``TaskContext`` is the context of a task in a manager's thread.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from . import Scheduler, Task, current
from ._errors import TaskCancelled


@runtime_checkable
class TaskContextProtocol(Protocol):
    """What ``current_task`` returns, wherever the task runs.

    Every task context implements it with these signatures and meanings: a
    task in a manager's thread (``TaskContext``), in a ProcessExecutor
    worker process, on a Dask worker (in this process or another), and what a
    ``bgtasks.loops.LoopTask`` is given.  A backend that cannot forward
    something keeps the member and documents what it does instead (a Dask
    worker process forwards no settings: ``update_settings()`` returns False).

    Threads: a context belongs to its running task.  Use it in the thread that
    runs the task (the one ``current_task`` was called in); none of it is
    meant for the UI thread, which uses the manager (``stop_task``,
    ``set_settings``, ``info``) instead.  It is ``runtime_checkable``:
    ``isinstance(obj, TaskContextProtocol)`` checks the members are present.
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
        """Raise ``TaskCancelled`` if a stop was requested.  The task's own thread.

        Raises:
            TaskCancelled: A stop was requested (``stop_task``, a timeout, shut down).
        """
        ...

    def sleep(self, seconds: float) -> None:
        """Wait, waking at once if a stop is requested.  The task's own thread.

        Args:
            seconds: How long to wait; ``inf`` waits until a stop.

        Raises:
            TaskCancelled: A stop was requested (before or during the wait).
            ValueError: ``seconds`` is not a non-negative number.
        """
        ...

    def report_progress(
        self, done: float, total: float | None = None, message: str | None = None
    ) -> None:
        """Report progress; the latest value wins and the last one always arrives.

        Call it in the task's own thread.

        Args:
            done: A fraction in [0, 1], or the amount done out of ``total``.
            total: The whole amount (a positive finite number); None when ``done``
                is a fraction.
            message: A text to show with the progress, or None.

        Raises:
            ValueError: ``total`` is not a positive finite number, or the fraction
                is outside [0, 1].
            TypeError: ``message`` is not a string.
        """
        ...

    @property
    def status(self) -> Any:
        """A value the task publishes for others (``info(uid).status``)."""
        ...

    @status.setter
    def status(self, value: Any) -> None: ...

    @property
    def settings(self) -> Any:
        """The settings adopted by the last ``update_settings`` (None before)."""
        ...

    def update_settings(self) -> bool:
        """Adopt the latest value sent with ``set_settings(uid, value)``.  The task's own thread.

        Returns:
            True if there was a new value (now in ``settings``), else False.
        """
        ...


class SentTaskIdentity:
    """``uid``, ``group`` and ``priority`` of a task whose context lives in another
    process (a process worker, a Dask worker): copies made when the task was sent.
    """

    _uid: int
    _group: Any
    _priority: float

    @property
    def uid(self) -> int:
        """The task's uid.  Any thread."""
        return self._uid

    @property
    def group(self) -> Any:
        """The task's group (None, or its repr on Dask, if it could not be sent
        to this process).  Any thread."""
        return self._group

    @property
    def priority(self) -> float:
        """The task's priority when it was sent.  Any thread."""
        return self._priority


class TaskContext:
    """The running task's view of its manager: a ``TaskContextProtocol``.

    Get it with ``current_task`` from inside a task function that runs in a
    manager's worker thread; use it in that thread, while the task runs.
    Python code cannot be interrupted from outside: a task that wants
    to be stoppable checks ``cancelled``, calls ``raise_if_cancelled``
    between steps, or waits with ``sleep``, which wakes at once on a stop.
    A task that lets ``TaskCancelled`` propagate ends CANCELLED.  Progress
    and status reach the manager's thread through its signals
    (``task_progress``, ``task_status_changed``), delivered there in batches.

    Args:
        scheduler: The manager's scheduler (internal: ``current_task`` makes
            the context, user code does not).
        task: The running task (internal).
    """

    __slots__ = ("_scheduler", "_task")

    def __init__(self, scheduler: Scheduler, task: Task) -> None:
        self._scheduler = scheduler
        self._task = task

    @property
    def uid(self) -> int:
        """The task's uid."""
        return self._task.uid

    @property
    def group(self) -> Any:
        """The task's group (None if it has none)."""
        return self._task.group

    @property
    def priority(self) -> float:
        """The task's priority."""
        return self._task.priority

    @property
    def cancelled(self) -> bool:
        """True once a stop was requested (``stop_task``, a timeout, shut down)."""
        return self._scheduler.is_cancelled(self._task)

    def raise_if_cancelled(self) -> None:
        """Raise ``TaskCancelled`` if a stop was requested.  The task's own thread.

        Raises:
            TaskCancelled: A stop was requested (``stop_task``, a timeout, shut down).
        """
        if self._scheduler.is_cancelled(self._task):
            raise TaskCancelled(f"task {self._task.uid} was asked to stop")

    def sleep(self, seconds: float) -> None:
        """Wait, waking at once if a stop is requested.  The task's own thread.

        Args:
            seconds: How long to wait; ``inf`` waits until a stop.

        Raises:
            TaskCancelled: A stop was requested (before or during the wait).
            ValueError: ``seconds`` is not a non-negative number.
        """
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not seconds >= 0:
            raise ValueError(f"seconds must be a non-negative number, got {seconds!r}")
        if self._scheduler.wait_cancelled(self._task, seconds):
            raise TaskCancelled(f"task {self._task.uid} was asked to stop")

    def report_progress(
        self, done: float, total: float | None = None, message: str | None = None
    ) -> None:
        """Report progress: a fraction in [0, 1], or ``done`` out of ``total``.

        Cheap enough to call in a tight loop: the manager's thread gets the
        latest value (``task_progress``) at most ~25 times a second
        (``progress_interval``), and the final one before the task's result.

        Args:
            done: A fraction in [0, 1], or the amount done out of ``total``.
            total: The whole amount (a positive finite number); None when ``done``
                is a fraction.
            message: A text to show with the progress, or None.

        Raises:
            ValueError: ``total`` is not a positive finite number, or the fraction
                is outside [0, 1].
            TypeError: ``message`` is not a string.
        """
        fraction = progress_fraction(done, total, message)
        self._scheduler.report_progress(self._task, fraction, message)

    @property
    def status(self) -> Any:
        """A value the task publishes for others (``info(uid).status``).

        Setting a new value emits ``task_status_changed`` on the manager's thread
        (only while someone is connected to it).
        """
        return self._task.status

    @status.setter
    def status(self, value: Any) -> None:
        self._scheduler.set_status(self._task, value)

    @property
    def settings(self) -> Any:
        """The settings adopted by the last ``update_settings`` (None before)."""
        return self._task.settings

    def update_settings(self) -> bool:
        """Adopt the latest value sent with ``set_settings(uid, value)``.  The task's own thread.

        Latest wins: values sent since the last call are replaced by the newest.

        Returns:
            True if there was a new value (now in ``settings``), else False.
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
    """The context of the task running in the calling thread.

    Call it from inside a task function, in the thread (or process) that runs it.

    Returns:
        A ``TaskContext`` in a manager's worker thread; a backend's own
        ``TaskContextProtocol`` elsewhere (a ProcessExecutor worker process,
        a Dask worker).

    Raises:
        RuntimeError: No task is running in the calling thread.
    """
    running = current()
    if running is None:
        remote: TaskContextProtocol | None = (
            remote_context() if remote_context is not None else None
        )
        if remote is not None:
            return remote
        raise RuntimeError("current_task() was called outside a running task")
    return TaskContext(*running)
