"""The worker processes of a ProcessExecutor: one process and its pipe, and the pool.

A ``Pool`` starts workers on demand (up to ``max_workers``), hands an
idle one to each ``run`` call, replaces one that must not run anything more,
and stops workers idle for ``idle_timeout`` from a daemon reaper thread.  Every
stop signals the worker's whole process group, so what its tasks started stops
with it; interpreter exit stops every pool's workers.
"""

from __future__ import annotations

import atexit
import contextlib
import multiprocessing
import multiprocessing.connection
import os
import pickle
import select
import signal
import threading
import time
import weakref
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

from ..core._errors import TaskCancelled
from . import _process_worker

if TYPE_CHECKING:
    from ..core._context import TaskContextProtocol

POLL = 0.02  # how often a waiting run() looks at context.cancelled, in seconds


class Worker:
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
        """The worker process's id (it has started: a Worker is made after its start)."""
        pid: int = self.process.pid
        return pid

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


class Pool:
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
        self.idle: list[Worker] = []  # a stack: the most recently used on top
        self.busy: set[Worker] = set()
        self.starting = 0
        self.closed = False
        self.reaper: threading.Thread | None = None
        self.spawned = 0
        pools.add(self)  # stopped at interpreter exit

    def size(self) -> int:
        return len(self.idle) + len(self.busy) + self.starting

    def spawn(self) -> Worker:
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
        return Worker(process, parent_end)

    def acquire(self, context: TaskContextProtocol) -> Worker:
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

    def release(self, worker: Worker) -> None:
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

    def discard(self, worker: Worker, grace: float) -> None:
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


pools: weakref.WeakSet[Pool] = weakref.WeakSet()


@atexit.register
def _stop_all_at_exit() -> None:
    # Runs before multiprocessing's own exit hook (registered earlier), which
    # joins non-daemon children and would wait for ever on a busy worker.
    for pool in list(pools):
        pool.shut_down(1.0)
