"""Exceptions raised by bgtasks.

    BgTasksError
     ├── TaskCancelled   (also concurrent.futures.CancelledError)
     └── UpstreamFailed  (also RuntimeError)

Bad arguments raise the builtin ``TypeError``, ``ValueError`` or ``KeyError``;
a task that overruns its ``timeout`` fails with the builtin ``TimeoutError``.
"""

from __future__ import annotations

import concurrent.futures


class BgTasksError(Exception):
    """Base class of the exceptions bgtasks defines."""


class TaskCancelled(BgTasksError, concurrent.futures.CancelledError):
    """The task was stopped: raised inside it by ``raise_if_cancelled()`` and
    ``sleep()``, and by ``TaskHandle.result()`` for a cancelled task."""


class UpstreamFailed(BgTasksError, RuntimeError):
    """A task did not run because a task upstream of it failed.

    ``TaskHandle.exception()`` of such a task; ``upstream`` is the uid of the
    task that failed first and ``message`` its message.
    """

    def __init__(self, uid: int, upstream: int, message: str) -> None:
        super().__init__(f"task {uid} did not run: upstream task {upstream} failed: {message}")
        self.upstream = upstream
        self.message = message
