"""Deadlines (retry backoffs, timeouts, held-back progress, widening) and the timer thread."""

from __future__ import annotations

import heapq
import itertools
import random
import threading
import time

from ._fields import (
    _MAX_WAIT,
    WIDEN_AFTER,
    SchedulerFields,
    log,
)
from ._task import (
    PENDING,
    RUNNING,
    Task,
)


class Timers(SchedulerFields):
    """One heap of deadlines served by one daemon thread that nothing but close() ends."""

    def _init_timers(self) -> None:
        self._timers = []  # (due, seq, kind, task, attempt)
        self._timer_seq = itertools.count()
        # Retries' backoffs, timeouts and held progress fire from one daemon
        # thread, so they never depend on the owner's event loop.
        self._timer_wakeup = threading.Condition(self._lock)
        self._timer_thread = None

    def _schedule_retry(self, task: Task) -> None:
        """Back to PENDING; queued again after its backoff (exponential, jittered)."""
        self._move(task, PENDING)
        exponent = min(task.attempts - task.retry_base - 1, 60)  # never overflows
        delay = task.opts.backoff * (2.0**exponent) * (0.5 + random.random())
        self._add_timer(delay, "retry", task)

    def _add_timer(self, delay: float, kind: str, task: Task) -> None:
        due = time.monotonic() + delay
        first = not self._timers or due < self._timers[0][0]
        attempt = task.attempts if task is not None else 0
        heapq.heappush(self._timers, (due, next(self._timer_seq), kind, task, attempt))
        if self._timer_thread is None:
            self._timer_thread = threading.Thread(
                target=self._run_timers, name="bgtasks-timers", daemon=True
            )
            self._timer_thread.start()
        elif first:
            self._timer_wakeup.notify()

    def _run_timers(self) -> None:
        # Nothing may end this thread but close(): every later timeout and
        # retry of the scheduler depends on it.
        while True:
            try:
                with self._lock:
                    while True:
                        if self._closed:
                            return
                        if self._timers:
                            wait = self._timers[0][0] - time.monotonic()
                            if wait <= 0:
                                break
                            self._timer_wakeup.wait(min(wait, _MAX_WAIT))
                        else:
                            self._timer_wakeup.wait()
                self.tick()
            except Exception:  # noqa: BLE001 - logged, and the timers go on
                log.exception("bgtasks: the timer thread caught an error; it goes on")

    def tick(self) -> None:
        """Start retries whose backoff is over, and stop tasks past their timeout."""
        now = time.monotonic()
        with self._lock:
            timers = self._timers
            while timers and timers[0][0] <= now:
                _, _, kind, task, attempt = heapq.heappop(timers)
                if kind == "widen":
                    if (
                        self._finish_count == self._widen_mark
                        and self._n_ready > self._n_parked
                        and not self.gate.parked_within(now, WIDEN_AFTER)
                    ):  # workers are blocked (not waiting for the UI thread): widen
                        self._target = self._max_workers
                    self._widen_mark = -1
                    continue
                if task.attempts != attempt:
                    continue
                if kind == "retry" and task.state is PENDING:
                    self._queue(task)
                elif kind == "timeout" and task.state is RUNNING:
                    task.timed_out = True
                    self._request_stop(task)
                elif kind == "progress" and task.progress_dirty:
                    task.progress_dirty = False
                    if not task.progress_queued:
                        self._queue_progress(task, now)
            spawn = self._spawn_count()
            self._flush_wake()
        if spawn:
            self._spawn(spawn)
        self._after()

    def _should_retry(self, task: Task, error: BaseException | None) -> bool:
        opts = task.opts
        return (
            opts.retries >= task.attempts - task.retry_base
            and error is not None
            and isinstance(error, opts.retry_on)
        )
