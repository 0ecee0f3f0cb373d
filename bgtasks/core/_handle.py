"""``TaskHandle``: one task seen through the futures vocabulary.

A handle knows its task only by uid and asks the object that issued it, its
:class:`HandleOwner`, for everything else.  ``BackgroundTaskManager`` is the
owner in the library; any object with these five methods will do (the core's
tests use a fake over a bare ``Scheduler``).  The scheduler resolves a handle
it was given (``Scheduler.add(..., handle)``) by calling ``_resolve`` once per
run, under its lock.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Generator
from typing import Any, Protocol

from ._errors import TaskCancelled
from ._state import TaskInfo, TaskState


class HandleOwner(Protocol):
    """What a :class:`TaskHandle` needs from the object that issued it.

    Every method may be called from any thread, a running task included.
    """

    def task_state(self, uid: int) -> TaskState:
        """The task's state; ``KeyError`` for a uid the owner does not know."""
        ...

    def info(self, uid: int) -> TaskInfo:
        """A frozen snapshot of the task; ``KeyError`` as :meth:`task_state`."""
        ...

    def stop_handle(self, uid: int) -> bool:
        """Stop the task and the tasks downstream of it (not those upstream);
        False if it had already ended."""
        ...

    def handle_will_block(self) -> None:
        """The calling thread is about to block until a task ends: if it is the
        thread that workers give the GIL way to, they must stop doing so (they
        may be what it waits for)."""
        ...

    def add_handle_callback(self, handle: TaskHandle, fn: Callable[[TaskHandle], Any]) -> None:
        """Call ``fn(handle)`` on the owner's thread once ``handle`` is done
        (soon, if it already is); exceptions from ``fn`` are logged."""
        ...


class TaskHandle:
    """The outcome of one task, like ``concurrent.futures.Future``.

    Returned by ``BackgroundTaskManager.submit`` and ``handle(uid)``.  Every
    method may be called from any thread; ``result()`` and ``exception()``
    block until the task ends (they do not need the event loop to run).
    ``await handle`` works in a coroutine on an asyncio loop running on the
    manager's thread (PySide6's QtAsyncio).
    """

    __slots__ = ("_owner", "uid", "_done", "_state", "_value", "_error", "__weakref__")

    def __init__(self, owner: HandleOwner) -> None:
        self._owner = owner
        self.uid = 0  # set by the owner once the task is registered
        self._done = threading.Event()
        self._state: TaskState | None = None
        self._value: Any = None
        self._error: BaseException | None = None

    def __repr__(self) -> str:
        state = self._state.name if self._state else "live"
        return f"<TaskHandle {self.uid} {state}>"

    def _resolve(self, state: TaskState, value: Any, error: BaseException | None) -> None:
        # Called by the scheduler, under its lock, once per run of the task.
        self._state, self._value, self._error = state, value, error
        self._done.set()

    def done(self) -> bool:
        """True once the task completed, failed or was cancelled."""
        return self._done.is_set()

    def cancelled(self) -> bool:
        return self._done.is_set() and self._state is TaskState.CANCELLED

    def running(self) -> bool:
        return self.state in (TaskState.RUNNING, TaskState.CANCELLING)

    @property
    def state(self) -> TaskState:
        return self._owner.task_state(self.uid)

    def info(self) -> TaskInfo:
        return self._owner.info(self.uid)

    def cancel(self) -> bool:
        """Ask the task to stop; False if it had already ended.

        A queued task never runs.  A running one is asked to stop
        (``TaskContext.cancelled``) and ends CANCELLED when its function
        returns, whatever it returns.
        """
        if self._done.is_set():
            return False
        return self._owner.stop_handle(self.uid)

    def _wait(self, timeout: float | None) -> None:
        if not self._done.is_set():
            # a UI thread blocked here beats no more: workers must not wait for it
            self._owner.handle_will_block()
        if not self._done.wait(timeout):
            raise TimeoutError(f"task {self.uid} did not end within {timeout} s")

    def result(self, timeout: float | None = None) -> Any:
        """The task's result; raises its exception, ``TaskCancelled``, or
        ``TimeoutError`` if it does not end within ``timeout`` seconds."""
        self._wait(timeout)
        if self._state is TaskState.COMPLETED:
            return self._value
        raise self._error  # type: ignore[misc]

    def exception(self, timeout: float | None = None) -> BaseException | None:
        """The task's exception (None if it completed); ``TaskCancelled`` is raised."""
        self._wait(timeout)
        if isinstance(self._error, TaskCancelled):
            raise self._error
        return self._error

    def add_done_callback(self, fn: Callable[[TaskHandle], Any]) -> None:
        """Call ``fn(handle)`` on the owner's thread once the task has ended
        (soon, if it has already).  Exceptions from ``fn`` are logged."""
        if not callable(fn):
            raise TypeError(f"fn must be callable, got {fn!r}")
        self._owner.add_handle_callback(self, fn)

    def __await__(self) -> Generator[Any, None, Any]:
        loop = asyncio.get_running_loop()
        future = loop.create_future()

        def settle(handle: TaskHandle) -> None:
            if future.done():
                return
            if handle._state is TaskState.COMPLETED:
                future.set_result(handle._value)
            else:
                future.set_exception(handle._error)  # type: ignore[arg-type]

        self.add_done_callback(lambda h: loop.call_soon_threadsafe(settle, h))
        try:
            return (yield from future.__await__())
        except asyncio.CancelledError:
            self.cancel()  # the awaiting coroutine was cancelled: so is the task
            raise
