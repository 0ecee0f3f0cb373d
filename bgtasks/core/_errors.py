"""Exceptions raised by bgtasks.

Every exception class of the package derives from ``BgTasksError``; those that
also derive from a builtin keep it, so ``except RuntimeError`` still works::

    BgTasksError
     ├── TaskCancelled       (also concurrent.futures.CancelledError)
     ├── UpstreamFailed      (also RuntimeError)
     ├── IllegalTransition   (also RuntimeError)     bgtasks.core._state
     ├── WorkerDied          (also RuntimeError)     bgtasks.executors.processes
     ├── RemoteTraceback                             bgtasks.executors._process_worker
     ├── UnpicklableError                            bgtasks.executors._process_worker
     ├── JobError            (also RuntimeError)     bgtasks.jobs
     │    ├── JobLaunchError
     │    └── JobMonitorError
     ├── JournalError                                bgtasks.persistence
     │    └── InUse          (internal: the journal is open in another process)
     └── ThumbnailError      (also OSError)          bgtasks.thumbnails

``RemoteTraceback`` is the ``__cause__`` of an exception raised in a worker
process, ``UnpicklableError`` stands in for one that could not be sent back.
Every one pickles (a worker process sends them to its parent).

Bad arguments raise the builtin ``TypeError``, ``ValueError`` or ``KeyError``
(the checks are in ``bgtasks.core._validate``); a task that overruns its
``timeout`` fails with the builtin ``TimeoutError``.

Qt-free: a process worker imports this module.
"""

from __future__ import annotations

import concurrent.futures
from typing import Any


class BgTasksError(Exception):
    """Base class of the exceptions bgtasks defines."""


class TaskCancelled(BgTasksError, concurrent.futures.CancelledError):
    """The task was stopped.

    Raised in the task's own thread by ``current_task().raise_if_cancelled()`` and
    ``current_task().sleep()`` (a task that lets it propagate ends CANCELLED), and by
    ``TaskHandle.result()`` / ``exception()`` for a cancelled task, in the thread that
    calls them.  It is a ``concurrent.futures.CancelledError``, so code written for
    futures catches it.
    """


class UpstreamFailed(BgTasksError, RuntimeError):
    """A task did not run because a task upstream of it failed.

    What ``TaskHandle.exception()`` returns (and ``result()`` raises) for such a
    task.  It pickles, so it crosses process boundaries.

    Args:
        uid: The task that did not run.
        upstream: The uid of the upstream task that failed first.
        message: That task's error message.

    Attributes:
        uid: The task that did not run.
        upstream: The uid of the upstream task that failed first.
        message: That task's error message.
    """

    def __init__(self, uid: int, upstream: int, message: str) -> None:
        super().__init__(f"task {uid} did not run: upstream task {upstream} failed: {message}")
        self.uid = uid
        self.upstream = upstream
        self.message = message

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.uid, self.upstream, self.message), self.__dict__)


def text_of(value: object) -> str:
    """``str(value)``, or ``"<type> (str() failed)"`` when its ``__str__``
    raises: for a user's value shown in a cell, a combo box or a log line
    (a group key), where an exception would break the caller.  Any thread;
    it runs the value's own ``__str__``, so never under the scheduler's lock.
    """
    try:
        return str(value)
    except Exception:  # noqa: BLE001 - a broken __str__ must not break the display
        return f"{type(value).__name__} (str() failed)"


def repr_of(value: object) -> str:
    """``repr(value)``, or ``"<type> (repr() failed)"`` when its ``__repr__``
    raises (see ``text_of``).  Any thread, never under the scheduler's lock."""
    try:
        return repr(value)
    except Exception:  # noqa: BLE001 - a broken __repr__ must not break the display
        return f"{type(value).__name__} (repr() failed)"


def describe(error: BaseException) -> str:
    """A failure's message: ``str(error)``, its type's name when that is empty,
    and ``"<type> (str() failed)"`` when ``str()`` itself raises.  Any thread;
    it runs the exception's own ``__str__``, so never under the scheduler's lock.
    """
    return text_of(error) or type(error).__name__
