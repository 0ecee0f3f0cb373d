"""``bgtasks.current_task()`` inside a call that a DaskExecutor runs.

``run_call`` is what the Dask worker runs.  On an in-process worker the
call sees the task's own context (a ``LocalContext`` around it); in
another process (a real cluster, ``processes=True``) a ``RemoteContext``
sends progress and status back as Dask events and reads cancellation from the
Dask worker's state.  Importing this module installs the hook that
``current_task()`` asks on a thread that runs no manager task.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..core import _context
from ..core._context import SentTaskIdentity, progress_fraction
from ..core._errors import TaskCancelled
from ..core._validate import check_seconds

if TYPE_CHECKING:
    from ..core._context import TaskContextProtocol

from ._dask_extra import distributed

REMOTE_PROGRESS_INTERVAL = 0.04
"""The least time, in seconds, between two progress events a task sends from a Dask
worker process (in-process workers use the manager's ``progress_interval``)."""

# Dask worker states in which a task is still wanted.
_RUNNING_STATES = frozenset({"executing", "long-running"})

#: Contexts of calls running on this process's in-process workers, by Dask key.
in_process: dict[str, LocalContext] = {}
_running = threading.local()


def run_call(
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    key: str,
    meta: tuple[str, int, Any, float],
) -> tuple[Any, tuple[float, str | None] | None]:
    """What the Dask worker runs: the call, with ``current_task()`` answering inside it."""
    context: Any = in_process.get(key)
    remote = None
    if context is None:  # another process
        remote = context = RemoteContext(key, *meta)
    previous = getattr(_running, "context", None)
    _running.context = context
    try:
        result = fn(*args, **kwargs)
    finally:
        _running.context = previous
    return result, (remote.last_progress if remote is not None else None)


class LocalContext:
    """The task's own context (a ``bgtasks.TaskContextProtocol``), seen from an
    in-process Dask worker thread.

    After the manager's call ended (the task was cancelled while the Dask
    thread still runs), progress and status are dropped and ``cancelled`` is True.
    """

    __slots__ = ("_context", "_ended")

    def __init__(self, context: TaskContextProtocol) -> None:
        self._context = context
        self._ended = False

    def end(self) -> None:
        self._ended = True

    @property
    def uid(self) -> int:
        return self._context.uid

    @property
    def group(self) -> Any:
        return self._context.group

    @property
    def priority(self) -> float:
        return self._context.priority

    @property
    def cancelled(self) -> bool:
        return self._ended or self._context.cancelled

    def raise_if_cancelled(self) -> None:
        if self.cancelled:
            raise TaskCancelled(f"task {self.uid} was asked to stop")

    def sleep(self, seconds: float) -> None:
        self._context.sleep(seconds)
        self.raise_if_cancelled()

    def report_progress(
        self, done: float, total: float | None = None, message: str | None = None
    ) -> None:
        if not self._ended:
            self._context.report_progress(done, total, message)

    @property
    def status(self) -> Any:
        return self._context.status

    @status.setter
    def status(self, value: Any) -> None:
        if not self._ended:
            self._context.status = value

    @property
    def settings(self) -> Any:
        return self._context.settings

    def update_settings(self) -> bool:
        return False if self._ended else self._context.update_settings()


class RemoteContext(SentTaskIdentity):
    """``current_task()`` in a Dask worker process: progress and status travel as events,
    ``cancelled`` follows the Dask future; settings are not forwarded (``settings`` stays
    None, ``update_settings()`` returns False)."""

    def __init__(self, key: str, topic: str, uid: int, group: Any, priority: float) -> None:
        self._uid, self._group, self._priority = uid, group, priority
        self._key, self._topic = key, topic
        self._status: Any = None
        self._sent_at = 0.0
        self.last_progress: tuple[float, str | None] | None = None
        self._worker = distributed.get_worker()

    @property
    def cancelled(self) -> bool:
        task = self._worker.state.tasks.get(self._key)
        return task is None or task.state not in _RUNNING_STATES

    def raise_if_cancelled(self) -> None:
        if self.cancelled:
            raise TaskCancelled(f"task {self.uid} was asked to stop")

    def sleep(self, seconds: float) -> None:
        check_seconds("seconds", seconds, infinite=True)  # inf: until stopped
        deadline = time.monotonic() + seconds
        while True:
            self.raise_if_cancelled()
            left = deadline - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, 0.05))

    def report_progress(
        self, done: float, total: float | None = None, message: str | None = None
    ) -> None:
        fraction = progress_fraction(done, total, message)
        if message is None and self.last_progress is not None:
            message = self.last_progress[1]
        self.last_progress = (fraction, message)
        now = time.monotonic()
        if now - self._sent_at >= REMOTE_PROGRESS_INTERVAL:
            self._sent_at = now
            self._worker.log_event(self._topic, [self._key, "progress", fraction, message])

    @property
    def status(self) -> Any:
        return self._status

    @status.setter
    def status(self, value: Any) -> None:
        self._worker.log_event(self._topic, [self._key, "status", value, None])
        self._status = value

    @property
    def settings(self) -> Any:
        return None

    def update_settings(self) -> bool:
        return False


def _dask_context() -> Any:
    context = getattr(_running, "context", None)
    if context is None and _previous_hook is not None:
        return _previous_hook()
    return context


# current_task() asks this hook when the calling thread runs no manager task;
# a hook installed before this module is still asked.
_previous_hook = _context.remote_context
if _previous_hook is not None and getattr(_previous_hook, "__name__", "") == "_dask_context":
    _previous_hook = None  # this module reloaded
_context.remote_context = _dask_context
