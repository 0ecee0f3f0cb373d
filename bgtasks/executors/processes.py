"""Run tasks in a pool of worker processes, with hard cancel: ``ProcessExecutor``.

CPU-bound Python does not scale across threads (the GIL); it does across
processes.  ``manager.options(executor="process").submit(fn, *args)`` runs ``fn`` in a
spawned worker process and keeps everything else of a task: uid, signals,
group, dependencies, priority, handle, retries.  Stopping a running process
task really stops it: the worker is terminated and replaced.

This module holds the executor's API; the pool of worker processes is in
``_process_pool``, the parent's handling of their messages (output, progress,
outcome) in ``_process_messages``, what can be sent to them in
``_process_checks``, and the worker's side in ``_process_worker``.
"""

from __future__ import annotations

import logging
import os
import pickle
import select
import signal
import time
import weakref
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ..core._errors import BgTasksError, TaskCancelled
from ..core._validate import check_callable, check_count, check_seconds
from . import _process_messages
from ._contract import Executor
from ._process_checks import check_sendable_arguments, check_sendable_callable, why_unpicklable
from ._process_pool import POLL, Pool, Worker
from ._process_worker import RemoteTraceback, UnpicklableError

if TYPE_CHECKING:
    from ..core._context import TaskContextProtocol

__all__ = ["ProcessExecutor", "RemoteTraceback", "UnpicklableError", "WorkerDied"]

#: Where a worker's output lines go (``_process_messages`` logs them).
logger = logging.getLogger("bgtasks.processes")


class WorkerDied(BgTasksError, RuntimeError):
    """The worker process running a task died (a crash, ``os._exit``, killed from outside).

    The task fails with it (``task_failed`` on the manager's thread; its handle's
    ``exception()``).

    Args:
        message: What happened (the task, the pid, the exit code or signal).
        exitcode: The process's exit code, negative for a signal (``-11``:
            SIGSEGV); None if unknown.

    Attributes:
        exitcode: The process's exit code, negative for a signal; None if unknown.
    """

    def __init__(self, message: str, exitcode: int | None) -> None:
        super().__init__(message)
        self.exitcode = exitcode

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.args[0], self.exitcode), self.__dict__)


def _describe_exit(exitcode: int | None) -> str:
    if exitcode is None:
        return "died"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = str(-exitcode)
        return f"was killed by signal {name}"
    return f"died with exit code {exitcode}"


class ProcessExecutor(Executor):
    """Runs tasks in a pool of spawned worker processes, with hard cancel.

    ``max_workers`` (default ``os.cpu_count()``) processes at most; they start
    on first use, more are started while tasks wait and fewer than
    ``max_workers`` exist, and a worker idle for ``idle_timeout`` seconds is
    stopped (``min_workers`` are kept once started).  Functions, arguments and
    results are pickled: ``check`` refuses what cannot be sent.

    Stopping a running task (``stop_task``, ``handle.cancel()``, a timeout)
    first tells the worker (its ``current_task().cancelled`` turns true and its
    ``sleep`` wakes); a task that ends within ``cancel_window`` seconds (0.1)
    keeps its worker.  Otherwise the worker is terminated (SIGTERM), killed
    (SIGKILL) if still alive ``grace`` seconds later, and replaced.  Either way
    the task ends CANCELLED.  Each worker leads a session of its own and every
    signal goes to its whole process group, so processes a task started stop
    with their worker (on a stop, a crash, shut-down, interpreter exit, or when
    this process is killed: a worker whose pipe closes kills its group).

    A worker that dies while running a task (a crash, ``os._exit``) fails that
    task with ``WorkerDied`` and is replaced.  Lines the worker writes to
    its stdout / stderr (file descriptors 1 and 2, so C code is caught too) go
    to the ``bgtasks.processes`` logger at INFO / WARNING, as
    ``"[task 17] line"``.

    Workers are *spawned*: each imports the task's module by name, and the
    application's main module too, so the application's start-up code must sit
    under ``if __name__ == "__main__":``.  POSIX only (Linux, macOS).  A manager
    that was given the executor (``set_executor`` or ``executor=``) shuts it
    down with itself; interpreter exit stops any workers left.

    Threads: ``check`` and ``run`` may be called from any thread, concurrently;
    ``run`` blocks its thread until the task ends and calls ``context``'s
    methods (progress, status, settings) on that thread.  ``shut_down`` may be
    called from any thread and never hangs.  A daemon thread stops idle
    workers.

    Args:
        max_workers: The most worker processes at once (default ``os.cpu_count()``);
            also the executor's ``slots``.
        min_workers: Workers kept once started, even when idle.
        idle_timeout: Seconds a worker may stay idle before it is stopped
            (``inf``: never).
        grace: Seconds between SIGTERM and SIGKILL for a worker being stopped.
        cancel_window: Seconds a stopped task has to end by itself before its
            worker is terminated.
        clock: A monotonic clock in seconds, for tests.

    Raises:
        RuntimeError: Not a POSIX system (no ``select.poll`` or ``os.setpgrp``).
        TypeError: An argument of the wrong type.
        ValueError: An argument out of range (``min_workers > max_workers``).

    Attributes:
        grace: Seconds between SIGTERM and SIGKILL.
        cancel_window: Seconds a stopped task has to end by itself.
    """

    def __init__(
        self,
        max_workers: int | None = None,
        *,
        min_workers: int = 0,
        idle_timeout: float = 60.0,
        grace: float = 3.0,
        cancel_window: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not hasattr(select, "poll") or not hasattr(os, "setpgrp"):
            raise RuntimeError("ProcessExecutor runs on POSIX systems (Linux, macOS) only")
        if max_workers is None:
            max_workers = os.cpu_count() or 1
        check_count("max_workers", max_workers, minimum=1)
        check_count("min_workers", min_workers)
        if min_workers > max_workers:
            raise ValueError(
                f"min_workers ({min_workers}) must not exceed max_workers ({max_workers})"
            )
        check_seconds("idle_timeout", idle_timeout, infinite=True)  # inf: never stopped
        check_seconds("grace", grace)
        check_seconds("cancel_window", cancel_window)
        check_callable("clock", clock)
        self.slots = max_workers
        self.grace = float(grace)
        self.cancel_window = float(cancel_window)
        self._pool = Pool(min_workers, max_workers, float(idle_timeout), clock)
        weakref.finalize(self, self._pool.shut_down, 1.0)

    # ------------------------------------------------------------ introspection

    @property
    def max_workers(self) -> int:
        """The most worker processes at once (any thread)."""
        return self._pool.max_workers

    @property
    def min_workers(self) -> int:
        """How many workers are kept once started, even when idle (any thread)."""
        return self._pool.min_workers

    @property
    def idle_timeout(self) -> float:
        """Seconds a worker may stay idle before it is stopped (any thread)."""
        return self._pool.idle_timeout

    def worker_pids(self) -> list[int]:
        """The process ids of the live workers, idle and busy (any thread)."""
        with self._pool.lock:
            workers = self._pool.idle + list(self._pool.busy)
            return sorted(w.pid for w in workers)

    @property
    def workers_started(self) -> int:
        """How many worker processes this executor has started so far (any thread)."""
        return self._pool.spawned

    def start_workers(self, n: int | None = None) -> int:
        """Start idle workers now rather than on first use.

        Any thread.  Returns once the processes are launched; they finish
        starting (importing) in the background, so the first tasks need not wait
        for it.  Workers beyond ``min_workers`` are still stopped when idle for
        ``idle_timeout``.

        Args:
            n: How many workers to have in all (capped at ``max_workers``);
                default ``max_workers``.

        Returns:
            How many workers were started.

        Raises:
            TypeError: ``n`` is not an int.
            ValueError: ``n`` is negative.
        """
        if n is None:
            n = self._pool.max_workers
        check_count("n", n)
        started = 0
        while self._pool.prestart(min(n, self._pool.max_workers)):
            started += 1
        return started

    def reap_idle(self) -> int:
        """Stop the workers idle for ``idle_timeout`` or longer (by ``clock``).

        Keeps ``min_workers``.  Runs by itself in a background thread; any thread
        may call it.

        Returns:
            How many workers were stopped.
        """
        return self._pool.reap_idle()

    # ---------------------------------------------------------------- contract

    def check(
        self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: Mapping[str, Any]
    ) -> None:
        """Refuse a call that cannot run in a worker process.

        Called on the submitting thread (any thread).  Pickles the arguments
        once to find out, so a huge argument costs that much at submit.

        Args:
            fn: The task's function: importable by name in a new process.
            args: Its positional arguments.
            kwargs: Its keyword arguments.

        Raises:
            TypeError: ``fn(*args, **kwargs)`` cannot be sent to a worker process
                (a lambda, a local function, something that does not pickle);
                the message says why.
        """
        check_sendable_callable(fn)
        check_sendable_arguments(fn, args, kwargs)

    def run(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: Mapping[str, Any],
        context: TaskContextProtocol,
    ) -> Any:
        """Run ``fn(*args, **kwargs)`` in a worker process and return its result.

        Called in a manager worker thread (any thread works); blocks it until
        the task ends.  Progress, status and settings requests from the worker
        are forwarded to ``context`` on this thread.

        Args:
            fn: The task's function.
            args: Its positional arguments.
            kwargs: Its keyword arguments.
            context: The running task's context, polled for a stop and given the
                worker's progress, status and settings requests.

        Returns:
            The function's result, unpickled in this process.

        Raises:
            TaskCancelled: ``context.cancelled`` turned true (the worker was
                terminated if the task did not end within ``cancel_window``).
            WorkerDied: The worker process died while running the task.
            TypeError: The call or its result cannot be pickled.
            RuntimeError: The executor was shut down.
            Exception: The task's own exception, its type kept, the remote
                traceback as ``__cause__``.
        """
        try:
            payload = pickle.dumps(
                (fn, tuple(args), dict(kwargs)), protocol=pickle.HIGHEST_PROTOCOL
            )
        except Exception:
            self.check(fn, tuple(args), dict(kwargs))  # raises the precise TypeError
            raise
        group = context.group
        if why_unpicklable(group) is not None:
            group = None
        uid = context.uid
        pool = self._pool
        worker = pool.acquire(context)
        worker.holder = holder = object()
        try:
            if not worker.send(("run", uid, group, context.priority, payload)):
                return self._died(worker, uid, context)
            del payload
            return self._wait(worker, uid, context)
        except BaseException:
            # An error of ours: do not reuse a worker in doubt, unless it was
            # handed back already (another call may be using it now).
            if worker.holder is holder:
                pool.discard(worker, 0)
            raise

    def shut_down(self, timeout: float = 1.0) -> None:
        """Terminate every worker (SIGTERM), kill those alive after ``timeout`` seconds.

        Any thread; idempotent; never hangs.  Called by the manager's
        ``shut_down``.  A task still running ends CANCELLED; ``run`` raises
        ``RuntimeError`` afterwards.

        Args:
            timeout: Seconds between SIGTERM and SIGKILL.
        """
        self._pool.shut_down(timeout)

    # --------------------------------------------------------------- internals

    def _wait(self, worker: Worker, uid: int, context: TaskContextProtocol) -> Any:
        conn, sentinel = worker.conn, worker.process.sentinel
        conn_fd, poll, timeout_ms = conn.fileno(), worker.poller.poll, int(POLL * 1000)
        receive = _process_messages.receive
        cancel_at: float | None = None
        while True:
            ready = [fd for fd, _ in poll(timeout_ms)]
            if conn_fd in ready:
                outcome = receive(worker, uid, context)
                if outcome is _process_messages.EOF_MARK:  # its end of the pipe closed: dying
                    worker.process.join(self.grace)
                    return self._died(worker, uid, context)
                if outcome is not None:
                    return self._finish(worker, uid, outcome, cancel_at is not None)
            elif sentinel in ready:
                while conn.poll():  # lines written before it died
                    if receive(worker, uid, context) is not None:
                        break
                return self._died(worker, uid, context)
            if cancel_at is None:
                if context.cancelled:
                    worker.send(("cancel", uid))
                    cancel_at = time.monotonic()
            elif time.monotonic() - cancel_at >= self.cancel_window:
                self._pool.discard(worker, self.grace)
                raise TaskCancelled(f"task {uid} was stopped: its worker process was terminated")

    def _finish(self, worker: Worker, uid: int, outcome: tuple[Any, ...], cancelling: bool) -> Any:
        self._pool.release(worker)
        if cancelling:
            raise TaskCancelled(f"task {uid} was asked to stop")
        return _process_messages.outcome(uid, outcome)

    def _died(self, worker: Worker, uid: int, context: TaskContextProtocol) -> Any:
        self._pool.discard(worker, 0)
        exitcode, pid = worker.process.exitcode, worker.pid
        if self._pool.closed or context.cancelled:
            raise TaskCancelled(f"task {uid} was stopped: its worker process was terminated")
        raise WorkerDied(
            f"worker process {_describe_exit(exitcode)} while running task {uid} (pid {pid})",
            exitcode,
        )
