"""Where a task runs: the contract between the manager and a backend (processes, Dask).

A task submitted with ``executor=`` keeps everything the manager gives a
thread task (its uid, signals, group, dependencies, priority, handle, retries)
and runs, in a worker thread, a small proxy that hands the call to the backend
and waits for it.  The manager calls ``Executor.check`` at submit (so bad
input is refused at the call) and ``Executor.run`` in the worker thread.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..core._context import TaskContextProtocol


class Executor(ABC):
    """A place other than the manager's threads where a task can run.

    Register an instance with ``BackgroundTaskManager.set_executor(name, executor)``
    or pass it as ``options(executor=instance)``.  The manager calls ``check``
    on the submitting thread, ``run`` in one of its worker threads (several at
    once, up to ``slots``), and ``shut_down`` once when it shuts down
    (normally on its own thread): an implementation must be thread-safe.
    """

    #: How many of its tasks may run at once: the manager keeps the rest queued
    #: (in priority order, cheaply cancellable).  None: no limit beyond ``max_threads``.
    slots: int | None = None

    @abstractmethod
    def check(
        self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: Mapping[str, Any]
    ) -> None:
        """Refuse a call that cannot run here, before anything is registered.

        Called by ``submit`` on the submitting thread (any thread).

        Args:
            fn: The task's function.
            args: Its positional arguments.
            kwargs: Its keyword arguments (without those upstream tasks will add).

        Raises:
            TypeError: The call cannot run here (the message says why, e.g. the
                function or an argument does not pickle).
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

        Blocks that worker thread until the call ends.  Forward progress with
        ``context.report_progress``.

        Args:
            fn: The task's function.
            args: Its positional arguments.
            kwargs: Its keyword arguments, including results merged from upstream
                tasks.
            context: The running task's context (the worker thread's
                ``current_task()``).

        Returns:
            The call's result.

        Raises:
            TaskCancelled: ``context.cancelled`` became true and the remote work
                was stopped.
            Exception: The call's own exception, of its original type, with the
                remote traceback chained.
        """

    def shut_down(self, timeout: float) -> None:  # noqa: B027 - optional hook
        """Stop the backend within ``timeout`` seconds.

        Called once by the manager's ``shut_down`` (on the manager's thread), or
        with 0.0 for an executor the manager made and never used.  The default
        does nothing.

        Args:
            timeout: The most seconds to wait for running calls.
        """


class RemoteCall:
    """The function a proxy task runs: ``executor.run(fn, args, kwargs, current_task())``.

    The manager makes one for each task submitted to an executor and calls it in a
    worker thread, like any task function.

    Args:
        executor: Where the call runs.
        fn: The task's function.

    Attributes:
        executor: Where the call runs.
        fn: The task's function.
    """

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
