"""Where a task runs: the contract between the manager and a backend (processes, Dask).

A task submitted with ``executor=`` keeps everything the manager gives a
thread task (its uid, signals, group, dependencies, priority, handle, retries)
and runs, in a worker thread, a small proxy that hands the call to the backend
and waits for it.  The manager calls :meth:`Executor.check` at submit (so bad
input is refused at the call) and :meth:`Executor.run` in the worker thread.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..core._context import TaskContextProtocol


class Executor(ABC):
    """A place other than the manager's threads where a task can run.

    Subclasses are registered with :meth:`BackgroundTaskManager.set_executor`.
    """

    #: How many of its tasks may run at once: the manager keeps the rest queued
    #: (in priority order, cheaply cancellable).  None: no limit beyond ``max_threads``.
    slots: int | None = None

    @abstractmethod
    def check(
        self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: Mapping[str, Any]
    ) -> None:
        """Raise ``TypeError`` saying why ``fn(*args, **kwargs)`` cannot run here.

        Called by ``submit`` on the submitting thread, before anything is registered.
        """

    @abstractmethod
    def run(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: Mapping[str, Any],
        context: TaskContextProtocol,
    ) -> Any:
        """Run the call and return its result; called in a manager worker thread.

        ``kwargs`` include results merged from upstream tasks.  Raise the
        call's own exception (its original type, with the remote traceback
        chained), raise :class:`bgtasks.TaskCancelled` once ``context.cancelled``
        is true and the remote work is stopped, and forward progress with
        ``context.report_progress``.
        """

    def shut_down(self, timeout: float) -> None:  # noqa: B027 - optional hook
        """Stop the backend within ``timeout`` seconds; called once by the manager's shut_down."""


class RemoteCall:
    """The function a proxy task runs: ``executor.run(fn, args, kwargs, current_task())``."""

    __slots__ = ("__name__", "executor", "fn")

    def __init__(self, executor: Executor, fn: Callable[..., Any]) -> None:
        self.executor = executor
        self.fn = fn
        self.__name__ = getattr(fn, "__name__", type(fn).__name__)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from ..core._context import current_task

        return self.executor.run(self.fn, args, kwargs, current_task())

    def __repr__(self) -> str:
        return f"<{type(self.executor).__name__} call of {self.fn!r}>"
