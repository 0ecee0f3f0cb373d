"""``ManagerExecutor``: a manager seen as a ``concurrent.futures.Executor``.

For code written against the standard interface (``loop.run_in_executor``,
``Executor.map``, libraries that take an executor).  A view: its
``shutdown()`` ends the view, not the manager.
"""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from ..core._state import TaskState

if TYPE_CHECKING:
    from ..core._handle import TaskHandle
    from ._manager import BackgroundTaskManager

T = TypeVar("T")

_NOT_STARTED = (TaskState.PENDING, TaskState.QUEUED)


class ManagerExecutor(concurrent.futures.Executor):
    """A ``concurrent.futures.Executor`` view of a ``BackgroundTaskManager``.

    Made by ``manager.executor()``.  ``submit`` is the manager's ``submit``
    (every keyword argument goes to ``fn``) and returns its
    ``TaskHandle``, so tasks submitted here get the manager's
    signals, priorities (0) and pool like any other.  ``map`` is the standard
    one.  ``shutdown`` ends this view only: it accepts no more work, cancels
    its tasks that have not started if asked, and waits for its own tasks;
    the manager and its other tasks go on.

    Threads: every method may be called from any thread.  ``shutdown(wait=True)``
    may be called on the manager's thread too (handles are resolved by the
    workers, not by its event loop), but blocks it until this view's tasks end.
    """

    def __init__(self, manager: BackgroundTaskManager) -> None:
        """Made by ``manager.executor()`` (any thread).

        Args:
            manager: The manager the tasks go to.
        """
        self._manager = manager
        self._lock = threading.Lock()
        self._handles: list[TaskHandle[Any]] = []  # submitted here; ended ones pruned
        self._prune_at = 64
        self._shut = False

    def __repr__(self) -> str:
        state = "shut down" if self._shut else "open"
        return f"<ManagerExecutor of {self._manager!r}, {state}>"

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> TaskHandle[T]:
        """Queue ``fn(*args, **kwargs)`` on the manager.  Any thread.

        The task's signals and its handle's callbacks arrive on the manager's thread.

        Args:
            fn: The callable to run (positional-only).
            *args: Positional arguments for ``fn``.
            **kwargs: Keyword arguments for ``fn``, whatever their names.

        Returns:
            The task's handle, a ``concurrent.futures.Future``.

        Raises:
            RuntimeError: this view was shut down, or the manager was.
            TypeError: ``fn`` is not callable.
        """
        with self._lock:
            if self._shut:
                raise RuntimeError(
                    f"cannot submit {fn!r}: this executor view was shut down "
                    "(the manager was not; manager.executor() gives a new view)"
                )
            handle: TaskHandle[T] = self._manager.submit(fn, *args, **kwargs)
            handles = self._handles
            handles.append(handle)
            if len(handles) >= self._prune_at:
                handles[:] = [h for h in handles if not h.done()]
                self._prune_at = max(64, 2 * len(handles))
        return handle

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop accepting work; the manager goes on.  Any thread.  Idempotent.

        Args:
            wait: block until every task submitted through this view has ended.
            cancel_futures: first cancel this view's tasks that have not started
                (a task that starts meanwhile is asked to stop).
        """
        with self._lock:
            self._shut = True
            handles = [h for h in self._handles if not h.done()]
            self._handles = []
        if cancel_futures:
            for handle in handles:
                try:
                    state = handle.state
                except KeyError:  # forgotten: it ended
                    continue
                if state in _NOT_STARTED:
                    handle.cancel()
        if wait and handles:
            concurrent.futures.wait(handles)
