"""Run tasks in a pool of worker processes, with hard cancel: :class:`ProcessExecutor`.

CPU-bound Python does not scale across threads (the GIL); it does across
processes.  ``manager.submit(fn, *args, executor="process")`` runs ``fn`` in a
spawned worker process and keeps everything else of a task: uid, signals,
group, dependencies, priority, handle, retries.  Stopping a running process
task really stops it: the worker is terminated and replaced.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import inspect
import logging
import multiprocessing
import multiprocessing.connection
import os
import pickle
import select
import signal
import sys
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

from ..core._errors import BgTasksError, TaskCancelled
from ..core._validate import callable_name, check_callable, check_count, check_seconds
from . import _process_worker
from ._contract import Executor
from ._process_worker import RemoteTraceback, UnpicklableError

if TYPE_CHECKING:
    from ..core._context import TaskContext

__all__ = ["ProcessExecutor", "RemoteTraceback", "UnpicklableError", "WorkerDied"]

logger = logging.getLogger("bgtasks.processes")

_EOF = ("eof",)
POLL = 0.02  # how often a waiting run() looks at context.cancelled, in seconds


class WorkerDied(BgTasksError, RuntimeError):
    """The worker process running a task died (a crash, ``os._exit``, killed from outside).

    ``exitcode`` is the process's exit code, negative for a signal (``-11``: SIGSEGV).
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


def _pickles(value: Any) -> str | None:
    """None if ``value`` pickles, else why not."""
    try:
        pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def _check_callable(fn: Callable[..., Any]) -> None:
    """Raise ``TypeError`` saying why ``fn`` cannot be sent to a worker process."""
    if isinstance(fn, functools.partial):
        _check_callable(fn.func)
        _check_arguments(fn.func, fn.args, fn.keywords)
    name = callable_name(fn)
    prefix = f"cannot run {name} in a worker process"
    if not callable(fn):
        raise TypeError(f"{prefix}: {fn!r} is not callable")
    if getattr(fn, "__name__", None) == "<lambda>":
        raise TypeError(
            "cannot run <lambda> in a worker process: it is a lambda; define it at module level"
        )
    if "<locals>" in getattr(fn, "__qualname__", ""):
        outer = name.split(".<locals>", 1)[0]
        raise TypeError(
            f"{prefix}: it is a local function defined inside {outer}(); define it at module level"
        )
    module = getattr(fn, "__module__", None)
    if module == "__main__" and not hasattr(sys.modules.get("__main__"), "__file__"):
        raise TypeError(
            f"{prefix}: it is defined in an interactive session, which a worker process cannot "
            "import; define it in a module"
        )
    if inspect.ismethod(fn):
        why = _pickles(fn.__self__)
        if why is not None:
            raise TypeError(
                f"{prefix}: it is a bound method of {type(fn.__self__).__qualname__} object "
                f"that cannot be pickled ({why})"
            )
    why = _pickles(fn)
    if why is not None:
        raise TypeError(f"{prefix}: it cannot be pickled ({why})")


def _check_arguments(fn: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    """Raise ``TypeError`` naming the first argument of ``fn`` that cannot be pickled."""
    items = [(f"argument {i}", value) for i, value in enumerate(args)]
    items += [(f"argument {key!r}", value) for key, value in kwargs.items()]
    for label, value in items:
        why = _pickles(value)
        if why is not None:
            try:
                text = f"{value!r:.80}"
            except Exception:
                text = f"<{type(value).__qualname__}>"
            raise TypeError(
                f"cannot send {label} of {callable_name(fn)} to a worker process: "
                f"{text} cannot be pickled ({why})"
            )


class _Worker:
    """One worker process and the parent's end of its pipe."""

    __slots__ = ("conn", "holder", "idle_since", "poller", "process")

    def __init__(self, process: Any, conn: Connection) -> None:
        self.process = process
        self.conn = conn
        self.holder: object = None  # the run() call using it; None while idle
        self.idle_since = 0.0
        self.poller = select.poll()  # the pipe and the process sentinel
        self.poller.register(conn.fileno(), select.POLLIN)
        self.poller.register(process.sentinel, select.POLLIN)

    @property
    def pid(self) -> int:
        return self.process.pid

    def send(self, message: tuple[Any, ...]) -> bool:
        """Send ``message``; False if the worker is gone."""
        try:
            self.conn.send_bytes(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))
        except (OSError, ValueError):
            return False
        return True

    def signal_group(self, signum: int) -> None:
        """Send ``signum`` to the worker's session: the worker and every process its tasks
        started (they inherit its process group), whether or not the worker still lives.

        Falls back to the worker alone while it has not yet made its session (the first
        instants of its start, before any task could start a process)."""
        try:
            os.killpg(self.process.pid, signum)
        except OSError:
            if self.process.exitcode is None:
                with contextlib.suppress(OSError):
                    os.kill(self.process.pid, signum)

    def wait_exit(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the worker to exit, without reaping it (so
        its pid, which names its process group, cannot be reused meanwhile)."""
        with contextlib.suppress(OSError, ValueError):
            return bool(multiprocessing.connection.wait([self.process.sentinel], timeout))
        return True

    def stop(self, grace: float) -> None:
        """Terminate the worker and its descendants (SIGTERM to its process group), kill
        the group (SIGKILL) once the worker exited or after ``grace`` seconds, reap;
        never hangs.  Kills whatever its tasks left running in its group, too."""
        process = self.process
        if not self.wait_exit(0):
            self.signal_group(signal.SIGTERM)
            self.wait_exit(grace)
        self.signal_group(signal.SIGKILL)  # the worker if still alive, and what it started
        with contextlib.suppress(Exception):
            process.join(5.0)  # SIGKILL cannot be refused; only a kernel wait delays it
        with contextlib.suppress(Exception):
            self.conn.close()


class _Pool:
    """The workers of one executor; shared by the threads calling ``run``.

    Holds no reference to the executor, so the executor can be collected
    (which shuts the pool down) while the reaper thread runs.
    """

    def __init__(
        self,
        min_workers: int,
        max_workers: int,
        idle_timeout: float,
        clock: Callable[[], float],
    ) -> None:
        self.min_workers = min_workers
        self.max_workers = max_workers
        self.idle_timeout = idle_timeout
        self.clock = clock
        self.context = multiprocessing.get_context("spawn")
        self.lock = threading.Condition()
        self.idle: list[_Worker] = []  # a stack: the most recently used on top
        self.busy: set[_Worker] = set()
        self.starting = 0
        self.closed = False
        self.reaper: threading.Thread | None = None
        self.spawned = 0

    def size(self) -> int:
        return len(self.idle) + len(self.busy) + self.starting

    def spawn(self) -> _Worker:
        parent_end, child_end = self.context.Pipe(duplex=True)
        process = self.context.Process(
            target=_process_worker.main,
            args=(child_end,),
            name="bgtasks-process-worker",
            daemon=False,  # so tasks may start processes of their own; stopped at exit below
        )
        try:
            process.start()
        except BaseException:
            parent_end.close()
            raise
        finally:
            child_end.close()
        with self.lock:
            self.spawned += 1
        return _Worker(process, parent_end)

    def acquire(self, context: TaskContext) -> _Worker:
        """An idle worker, a new one while below max_workers, or wait for one."""
        with self.lock:
            while True:
                if self.closed:
                    raise RuntimeError("the ProcessExecutor was shut down")
                if context.cancelled:
                    raise TaskCancelled(f"task {context.uid} was asked to stop")
                while self.idle:
                    worker = self.idle.pop()
                    if worker.process.exitcode is None:
                        self.busy.add(worker)
                        return worker
                    worker.stop(0)  # died while idle (killed from outside)
                if self.size() < self.max_workers:
                    self.starting += 1
                    break
                self.lock.wait(POLL)
        try:
            worker = self.spawn()
        except BaseException:
            with self.lock:
                self.starting -= 1
                self.lock.notify_all()
            raise
        with self.lock:
            self.starting -= 1
            if self.closed:
                worker.stop(0)
                raise RuntimeError("the ProcessExecutor was shut down")
            self.busy.add(worker)
            self._start_reaper()
        return worker

    def release(self, worker: _Worker) -> None:
        """Put a healthy worker back."""
        with self.lock:
            worker.holder = None
            self.busy.discard(worker)
            if self.closed:
                worker.stop(0)
                return
            worker.idle_since = self.clock()
            self.idle.append(worker)
            self.lock.notify_all()

    def discard(self, worker: _Worker, grace: float) -> None:
        """Stop a worker that must not run anything more, and start its replacement."""
        with self.lock:
            worker.holder = None
            self.busy.discard(worker)
            self.starting += 1  # keep its place for the replacement
        try:
            worker.stop(grace)
        finally:
            with self.lock:
                self.starting -= 1
                self.lock.notify_all()
        self.prestart()

    def prestart(self, up_to: int | None = None) -> bool:
        """Start one idle worker unless the pool has ``up_to`` (max_workers); True if started."""
        with self.lock:
            if self.closed or self.size() >= (self.max_workers if up_to is None else up_to):
                return False
            self.starting += 1
        try:
            worker = self.spawn()
        finally:
            with self.lock:
                self.starting -= 1
        self.release(worker)
        with self.lock:
            self._start_reaper()
        return True

    def reap_idle(self) -> int:
        """Stop workers idle longer than idle_timeout, keeping min_workers; how many stopped."""
        now = self.clock()
        with self.lock:
            keep = max(self.min_workers - len(self.busy) - self.starting, 0)
            # The stack's bottom holds the longest idle.
            old = [w for w in self.idle if now - w.idle_since >= self.idle_timeout]
            old = old[: max(len(self.idle) - keep, 0)]
            for worker in old:
                self.idle.remove(worker)
        for worker in old:
            worker.send(("stop",))
            worker.stop(1.0)
        return len(old)

    def _start_reaper(self) -> None:
        if self.reaper is None and not self.closed:
            self.reaper = threading.Thread(
                target=self._reap_loop, name="bgtasks-process-reaper", daemon=True
            )
            self.reaper.start()

    def _reap_loop(self) -> None:
        while True:
            with self.lock:
                if self.closed:
                    return
                keep = max(self.min_workers - len(self.busy) - self.starting, 0)
                if len(self.idle) > keep:
                    delay = self.idle[0].idle_since + self.idle_timeout - self.clock()
                    self.lock.wait(min(max(delay, 0.01), 60.0))
                else:
                    self.lock.wait(60.0)
                if self.closed:
                    return
            self.reap_idle()

    def shut_down(self, timeout: float) -> None:
        """Terminate every worker, kill what is left after ``timeout``; never hangs."""
        with self.lock:
            self.closed = True
            workers = self.idle + list(self.busy)
            self.idle.clear()
            self.lock.notify_all()
        for worker in workers:
            with contextlib.suppress(Exception):
                if not worker.wait_exit(0):
                    worker.signal_group(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for worker in workers:
            worker.wait_exit(max(deadline - time.monotonic(), 0))
        for worker in workers:
            with contextlib.suppress(Exception):
                worker.stop(0)


_pools: weakref.WeakSet[_Pool] = weakref.WeakSet()


@atexit.register
def _stop_all_at_exit() -> None:
    # Runs before multiprocessing's own exit hook (registered earlier), which
    # joins non-daemon children and would wait for ever on a busy worker.
    for pool in list(_pools):
        pool.shut_down(1.0)


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
    task with :class:`WorkerDied` and is replaced.  Lines the worker writes to
    its stdout / stderr (file descriptors 1 and 2, so C code is caught too) go
    to the ``bgtasks.executors.processes`` logger at INFO / WARNING, as
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
    workers.  ``clock`` (seconds, monotonic) is for tests.
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
        self._pool = _Pool(min_workers, max_workers, float(idle_timeout), clock)
        _pools.add(self._pool)
        weakref.finalize(self, self._pool.shut_down, 1.0)

    # ------------------------------------------------------------ introspection

    @property
    def max_workers(self) -> int:
        return self._pool.max_workers

    @property
    def min_workers(self) -> int:
        return self._pool.min_workers

    @property
    def idle_timeout(self) -> float:
        return self._pool.idle_timeout

    def worker_pids(self) -> list[int]:
        """The process ids of the live workers, idle and busy (any thread)."""
        with self._pool.lock:
            workers = self._pool.idle + list(self._pool.busy)
            return sorted(w.pid for w in workers)

    @property
    def workers_started(self) -> int:
        """How many worker processes this executor has started so far."""
        return self._pool.spawned

    def start_workers(self, n: int | None = None) -> int:
        """Start idle workers now, up to ``n`` in all (default ``max_workers``),
        rather than on first use; returns how many were started.

        Any thread.  Returns once the processes are launched; they finish
        starting (importing) in the background, so the first tasks need not wait
        for it.  Workers beyond ``min_workers`` are still stopped when idle for
        ``idle_timeout``.
        """
        if n is None:
            n = self._pool.max_workers
        check_count("n", n)
        started = 0
        while self._pool.prestart(min(n, self._pool.max_workers)):
            started += 1
        return started

    def reap_idle(self) -> int:
        """Stop the workers idle for ``idle_timeout`` or longer (by ``clock``), keeping
        ``min_workers``; returns how many were stopped.  Runs by itself in a
        background thread; any thread may call it."""
        return self._pool.reap_idle()

    # ---------------------------------------------------------------- contract

    def check(
        self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: Mapping[str, Any]
    ) -> None:
        """Raise ``TypeError`` saying why ``fn(*args, **kwargs)`` cannot run in a worker
        process (a lambda, a local function, something that does not pickle).

        Called on the submitting thread (any thread).  Pickles the arguments
        once to find out, so a huge argument costs that much at submit.
        """
        _check_callable(fn)
        _check_arguments(fn, args, kwargs)

    def run(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: Mapping[str, Any],
        context: TaskContext,
    ) -> Any:
        """Run ``fn(*args, **kwargs)`` in a worker process and return its result.

        Called in a manager worker thread (any thread works); blocks it until
        the task ends.  Progress, status and settings requests from the worker
        are forwarded to ``context`` on this thread.  Raises the task's own
        exception (its type kept, the remote traceback as ``__cause__``),
        :class:`bgtasks.TaskCancelled` once ``context.cancelled`` turned true,
        :class:`WorkerDied` if the worker died, ``TypeError`` if something
        cannot be pickled.
        """
        try:
            payload = pickle.dumps(
                (fn, tuple(args), dict(kwargs)), protocol=pickle.HIGHEST_PROTOCOL
            )
        except Exception:
            self.check(fn, tuple(args), dict(kwargs))  # raises the precise TypeError
            raise
        group = context.group
        if _pickles(group) is not None:
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
        """
        self._pool.shut_down(timeout)

    # --------------------------------------------------------------- internals

    def _wait(self, worker: _Worker, uid: int, context: TaskContext) -> Any:
        conn, sentinel = worker.conn, worker.process.sentinel
        conn_fd, poll, timeout_ms = conn.fileno(), worker.poller.poll, int(POLL * 1000)
        cancel_at: float | None = None
        while True:
            ready = [fd for fd, _ in poll(timeout_ms)]
            if conn_fd in ready:
                outcome = self._receive(worker, uid, context)
                if outcome is _EOF:  # its end of the pipe closed: it is dying
                    worker.process.join(self.grace)
                    return self._died(worker, uid, context)
                if outcome is not None:
                    return self._finish(worker, uid, outcome, cancel_at is not None)
            elif sentinel in ready:
                while conn.poll():  # lines written before it died
                    if self._receive(worker, uid, context) is not None:
                        break
                return self._died(worker, uid, context)
            if cancel_at is None:
                if context.cancelled:
                    worker.send(("cancel", uid))
                    cancel_at = time.monotonic()
            elif time.monotonic() - cancel_at >= self.cancel_window:
                self._pool.discard(worker, self.grace)
                raise TaskCancelled(f"task {uid} was stopped: its worker process was terminated")

    def _receive(self, worker: _Worker, uid: int, context: TaskContext) -> tuple[Any, ...] | None:
        """Handle one message; the ("ok"/"error", ...) that ends the task, else None."""
        try:
            data = worker.conn.recv_bytes()
        except (EOFError, OSError):
            return _EOF
        message = pickle.loads(data)  # plain types only: values travel as inner pickles
        kind = message[0]
        if kind == "output":
            _, task_uid, stream, line = message
            tag = f"task {task_uid}" if task_uid is not None else f"worker {worker.pid}"
            level = logging.INFO if stream == "stdout" else logging.WARNING
            logger.log(level, "[%s] %s", tag, line)
            return None
        if message[1] != uid:
            return None  # left over from an earlier task (a thread it started)
        if kind in ("ok", "error"):
            return message
        if kind == "progress":
            with contextlib.suppress(ValueError, TypeError):
                context.report_progress(message[2], message=message[3])
        elif kind == "status":
            try:
                context.status = pickle.loads(message[2])
            except Exception as exc:
                logger.warning("[task %s] status could not be unpickled: %s", uid, exc)
        elif kind == "update_settings":
            changed = context.update_settings()
            try:
                value = pickle.dumps(context.settings if changed else None)
            except Exception as exc:
                logger.warning("[task %s] settings could not be pickled: %s", uid, exc)
                changed, value = False, pickle.dumps(None)
            worker.send(("settings", uid, changed, value))
        return None

    def _finish(self, worker: _Worker, uid: int, outcome: tuple[Any, ...], cancelling: bool) -> Any:
        self._pool.release(worker)
        if cancelling:
            raise TaskCancelled(f"task {uid} was asked to stop")
        if outcome[0] == "ok":
            try:
                return pickle.loads(outcome[2])
            except Exception as exc:
                raise TypeError(
                    f"the result of task {uid} cannot be unpickled in the parent process: "
                    f"{type(exc).__name__}: {exc}"
                ) from None
        _, _, data, tb = outcome
        try:
            error = pickle.loads(data)
        except Exception as exc:
            error = UnpicklableError("exception", "<unknown>", f"{type(exc).__name__}: {exc}")
        error.__cause__ = RemoteTraceback(tb)
        try:
            raise error
        finally:
            del error

    def _died(self, worker: _Worker, uid: int, context: TaskContext) -> Any:
        self._pool.discard(worker, 0)
        exitcode, pid = worker.process.exitcode, worker.pid
        if self._pool.closed or context.cancelled:
            raise TaskCancelled(f"task {uid} was stopped: its worker process was terminated")
        raise WorkerDied(
            f"worker process {_describe_exit(exitcode)} while running task {uid} (pid {pid})",
            exitcode,
        )
