"""``TaskHandle``: one task as a ``concurrent.futures.Future``.

A handle knows its task only by uid and asks the object that issued it, its
``HandleOwner``, for everything else.  ``BackgroundTaskManager`` is the
owner in the library; any object with these five methods will do (the core's
tests use a fake over a bare ``Scheduler``).  The scheduler resolves a handle
it was given (``Scheduler.add(..., handle)``) by calling ``_resolve`` once per
run, under its lock, in the worker that ended the task: ``result()``,
``concurrent.futures.wait`` and ``as_completed`` wake at once, without waiting
for the owner's thread to deliver anything.  Done-callbacks are different:
they run on the owner's thread (``add_handle_callback``).

Memory: the ``Future`` fields live in slots, and the condition that waiters
block on (with the list ``concurrent.futures.wait`` installs its waiters in) is
made only when someone blocks, so a handle nobody waits on stays small.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Callable, Generator
from concurrent.futures._base import CANCELLED_AND_NOTIFIED, FINISHED, PENDING
from typing import Any, Protocol, TypeVar

from ._errors import TaskCancelled
from ._state import TaskInfo, TaskState

T = TypeVar("T")

log = logging.getLogger("bgtasks")

#: Makes a handle's condition on first use (rare: only when someone blocks).
_MAKE_CONDITION = threading.Lock()
#: Guards the hand-over of an unobserved failure between delivery and a handle.
_WATCH_LOCK = threading.Lock()
_DONE = (FINISHED, CANCELLED_AND_NOTIFIED)


class HandleOwner(Protocol):
    """What a ``TaskHandle`` needs from the object that issued it.

    Every method may be called from any thread, a running task included.
    """

    def task_state(self, uid: int) -> TaskState:
        """The task's state; ``KeyError`` for a uid the owner does not know."""
        ...

    def info(self, uid: int) -> TaskInfo:
        """A frozen snapshot of the task; ``KeyError`` as ``task_state``."""
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

    def add_handle_callback(
        self, handle: TaskHandle[Any], fn: Callable[[TaskHandle[Any]], Any]
    ) -> None:
        """Call ``fn(handle)`` on the owner's thread once ``handle`` is done
        (soon, if it already is); exceptions from ``fn`` are logged."""
        ...


class FailureReport:
    """An unobserved failure that the handles of its task report if they are
    dropped unconsulted (made by the owner's delivery, shared by those handles).

    Logged once, at ERROR on the ``bgtasks`` logger, when the last of them is
    garbage collected, unless one was consulted first.
    """

    __slots__ = ("uid", "name", "message", "traceback", "observed")

    def __init__(self, uid: int, name: str, message: str, traceback: str) -> None:
        self.uid = uid
        self.name = name
        self.message = message
        self.traceback = traceback
        self.observed = False

    def __del__(self) -> None:
        if not self.observed:
            try:
                log.error(
                    "task %s (%s) failed, and its handle was dropped without result(), "
                    "exception(), await or a done-callback: %s\n%s",
                    self.uid, self.name, self.message, self.traceback.rstrip("\n"),
                )  # fmt: skip
            except Exception:  # noqa: BLE001 - interpreter shutdown: logging may be gone
                pass


class _Waiters(list):  # type: ignore[type-arg]
    """A handle's waiter list: ``concurrent.futures.wait`` and ``as_completed``
    append to it just before they block, so the owner hears of it first."""

    __slots__ = ("owner",)

    def __init__(self, owner: HandleOwner) -> None:
        super().__init__()
        self.owner = owner

    def append(self, waiter: Any) -> None:
        super().append(waiter)
        # under the handle's condition: the owner's method takes no lock
        self.owner.handle_will_block()


class TaskHandle(concurrent.futures.Future[T]):
    """The outcome of one task: a ``concurrent.futures.Future`` its manager resolves.

    Returned by ``BackgroundTaskManager.submit`` and ``handle(uid)``; generic in
    the task's result type (``TaskHandle[int]``).  Being a ``Future``, it works
    with ``concurrent.futures.wait`` and ``as_completed`` (from any thread, the
    manager's own included: a handle is resolved by the worker that ended the
    task, not by the manager's event loop), with ``asyncio.wrap_future``, and
    ``await handle`` works in a coroutine on an asyncio loop running on the
    manager's thread (PySide6's QtAsyncio, qasync).

    Threads: every method may be called from any thread, a running task
    included.  ``result()`` and ``exception()`` block until the task ends;
    they do not need an event loop to run.  Done-callbacks run on the
    manager's thread.

    Only the manager resolves a handle: ``set_result``, ``set_exception`` and
    ``set_running_or_notify_cancel`` raise ``RuntimeError``.

    A failure is never silent: if nothing observes a failed task (no slot on
    ``task_failed``, no done-callback, and ``result()``/``exception()``/await
    never used on a handle of it), it is logged at ERROR on the ``bgtasks``
    logger, with its traceback, once its last handle is garbage collected.

    Attributes:
        uid: The task's uid (0 until the manager has registered the task).
    """

    __slots__ = (
        "_owner", "uid", "_task_state", "_cond", "_wlist", "_state", "_result",
        "_exception", "_watch",
    )  # fmt: skip

    _done_callbacks: tuple[()] = ()  # Future's; callbacks go through the owner

    def __init__(self, owner: HandleOwner) -> None:
        """Made by the manager (any thread); ``uid`` is set once the task is registered.

        Args:
            owner: The object that issued the handle and answers for its task
                (the manager), a ``HandleOwner``.
        """
        # Future.__init__ is not called: it would make the condition eagerly.
        self._owner = owner
        self.uid = 0
        self._task_state: TaskState | None = None
        self._cond: threading.Condition | None = None
        self._wlist: _Waiters | None = None
        self._state = PENDING
        self._result: Any = None
        self._exception: BaseException | None = None
        # None, True (consulted: result/exception/callback) or a FailureReport
        # this handle shares with the task's other handles (see Delivery)
        self._watch: Any = None

    # -- Future's fields that stdlib code reads directly, made on first use

    @property
    def _condition(self) -> threading.Condition:  # type: ignore[override]
        cond = self._cond
        if cond is None:
            with _MAKE_CONDITION:
                cond = self._cond
                if cond is None:
                    cond = self._cond = threading.Condition()
        return cond

    @property
    def _waiters(self) -> _Waiters:  # type: ignore[override]
        # read only under self._condition (stdlib and _resolve do)
        waiters = self._wlist
        if waiters is None:
            waiters = self._wlist = _Waiters(self._owner)
        return waiters

    def __repr__(self) -> str:
        state = self._task_state.name if self._task_state else "live"
        return f"<TaskHandle {self.uid} {state}>"

    def _resolve(self, state: TaskState, value: Any, error: BaseException | None) -> None:
        # Called by the scheduler, under its lock, once per run of the task:
        # no user code here, only the waiters of concurrent.futures.wait.
        self._task_state, self._result, self._exception = state, value, error
        self._state = CANCELLED_AND_NOTIFIED if state is TaskState.CANCELLED else FINISHED
        # A thread that makes the condition after this read sees _state done.
        cond = self._cond
        if cond is not None:
            with cond:
                waiters = self._wlist
                if waiters:
                    for waiter in waiters:
                        if state is TaskState.CANCELLED:
                            waiter.add_cancelled(self)
                        elif state is TaskState.COMPLETED:
                            waiter.add_result(self)
                        else:
                            waiter.add_exception(self)
                cond.notify_all()

    def _consulted(self) -> None:
        # result()/exception()/a done-callback saw (or will see) the outcome
        if self._watch is not True:
            with _WATCH_LOCK:
                report, self._watch = self._watch, True
            if report is not None:
                report.observed = True

    def done(self) -> bool:
        """True once the task completed, failed or was cancelled.  Any thread."""
        return self._state in _DONE

    def cancelled(self) -> bool:
        """True once the task ended CANCELLED.  Any thread."""
        return self._state == CANCELLED_AND_NOTIFIED

    def running(self) -> bool:
        """True while the task runs (or is being stopped).  Any thread."""
        return self.state in (TaskState.RUNNING, TaskState.CANCELLING)

    @property
    def state(self) -> TaskState:
        """The task's current state (asks the manager).  Any thread.

        Raises:
            KeyError: the manager has forgotten the task (see ``keep_finished``).
        """
        return self._owner.task_state(self.uid)

    def info(self) -> TaskInfo:
        """A frozen snapshot of the task (asks the manager).  Any thread.

        Raises:
            KeyError: the manager has forgotten the task.
        """
        return self._owner.info(self.uid)

    def cancel(self) -> bool:
        """Ask the task, and the tasks downstream of it, to stop.  Any thread.

        A queued task never runs.  A running one is asked to stop
        (``TaskContext.cancelled``) and ends CANCELLED when its function
        returns, whatever it returns.  Unlike ``Future.cancel``, the handle is
        done only once the task has ended.

        Returns:
            False if the task had already ended, else True.
        """
        if self._state in _DONE:
            return False
        return self._owner.stop_handle(self.uid)

    def _wait(self, timeout: float | None) -> None:
        if timeout is not None:
            if (
                isinstance(timeout, bool)
                or not isinstance(timeout, (int, float))
                or timeout != timeout
            ):
                raise ValueError(f"timeout must be a number of seconds or None, got {timeout!r}")
            if timeout > threading.TIMEOUT_MAX:
                timeout = None  # inf (or more than a lock can wait): no limit
        if self._state in _DONE:
            return
        # a UI thread blocked here beats no more: workers must not wait for it
        self._owner.handle_will_block()
        with self._condition:
            if self._state not in _DONE:
                self._condition.wait(timeout)
            if self._state not in _DONE:
                raise TimeoutError(f"task {self.uid} did not end within {timeout} s")

    def result(self, timeout: float | None = None) -> T:
        """Block until the task ends and return its result.  Any thread.

        Args:
            timeout: seconds to wait at most; None waits as long as it takes.

        Returns:
            What the task's function returned.

        Raises:
            TaskCancelled: the task was cancelled (a ``CancelledError``).
            TimeoutError: the task did not end within ``timeout`` (naming its uid).
            ValueError: ``timeout`` is NaN or not a number (inf waits without limit).
            BaseException: whatever the task raised (``UpstreamFailed`` if a
                task upstream of it failed, ``TimeoutError`` if it overran
                its own ``timeout`` option).
        """
        self._wait(timeout)
        self._consulted()
        if self._task_state is TaskState.COMPLETED:
            return self._result  # type: ignore[no-any-return]
        try:
            raise self._exception  # type: ignore[misc]
        finally:
            # the traceback holds this frame: no cycle through the handle
            self = None  # type: ignore[assignment]  # noqa: PLW0642

    def exception(self, timeout: float | None = None) -> BaseException | None:
        """Block until the task ends and return its exception.  Any thread.

        Args:
            timeout: seconds to wait at most; None waits as long as it takes.

        Returns:
            The exception the task failed with, or None if it completed.

        Raises:
            TaskCancelled: the task was cancelled.
            TimeoutError: the task did not end within ``timeout``.
            ValueError: ``timeout`` is NaN or not a number (inf waits without limit).
        """
        self._wait(timeout)
        self._consulted()
        error = self._exception
        if isinstance(error, TaskCancelled):
            raise error
        return error

    def add_done_callback(self, fn: Callable[[TaskHandle[T]], object]) -> None:
        """Call ``fn(handle)`` once the task has ended.  Any thread may call this.

        ``fn`` runs on the manager's thread, after the task's end signal
        (soon, if the task has already ended; at once when called on the
        manager's thread for an ended task).  Exceptions from ``fn`` are
        logged on the ``bgtasks`` logger.  A done-callback counts as observing
        a failure.

        Args:
            fn: Called with this handle as its only argument.

        Raises:
            TypeError: ``fn`` is not callable.
        """
        if not callable(fn):
            raise TypeError(f"fn must be callable, got {fn!r}")
        self._consulted()
        self._owner.add_handle_callback(self, fn)

    def set_running_or_notify_cancel(self) -> bool:
        """Refused: only the manager changes a handle.  Any thread (it always raises).

        Raises:
            RuntimeError: always.
        """
        raise RuntimeError(self._refusal("set_running_or_notify_cancel()"))

    def set_result(self, result: Any) -> None:
        """Refused: only the manager resolves a handle.  Any thread (it always raises).

        Args:
            result: Ignored.

        Raises:
            RuntimeError: always.
        """
        raise RuntimeError(self._refusal("set_result()"))

    def set_exception(self, exception: BaseException | None) -> None:
        """Refused: only the manager resolves a handle.  Any thread (it always raises).

        Args:
            exception: Ignored.

        Raises:
            RuntimeError: always.
        """
        raise RuntimeError(self._refusal("set_exception()"))

    def _refusal(self, what: str) -> str:
        return (
            f"{what} on the handle of task {self.uid}: only its manager resolves a "
            "TaskHandle; to stop the task call cancel()"
        )

    def __await__(self) -> Generator[Any, None, T]:
        """``await handle`` in a coroutine on an asyncio loop running on the
        manager's thread (QtAsyncio, qasync): the result, or the task's
        exception (``TaskCancelled`` for a cancelled task).  Cancelling the
        awaiting coroutine cancels the task."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()

        def settle(handle: TaskHandle[T]) -> None:
            if future.done():
                return
            if handle._task_state is TaskState.COMPLETED:
                future.set_result(handle._result)
            else:
                future.set_exception(handle._exception)  # type: ignore[arg-type]

        self.add_done_callback(lambda h: loop.call_soon_threadsafe(settle, h))
        try:
            return (yield from future.__await__())
        except asyncio.CancelledError:
            self.cancel()  # the awaiting coroutine was cancelled: so is the task
            raise
