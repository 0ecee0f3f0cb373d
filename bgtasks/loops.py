"""Loop tasks: work repeated at a fixed rate in a manager's worker thread (QMI's loop task).

Subclass ``LoopTask``, override the hooks you need and submit an
instance, which is callable.  Example (runs as written)::

    import sys
    from PySide6.QtCore import QCoreApplication
    from bgtasks import BackgroundTaskManager
    from bgtasks.loops import LoopPolicy, LoopTask

    class Counter(LoopTask):
        def loop_prepare(self):               # once, in the worker thread
            self.total = 0

        def loop_iteration(self):             # every 10 ms, in the worker thread
            self.total += self.settings       # manager.set_settings(uid, 5) changes it
            self.status = f"total {self.total}"

        def loop_result(self):
            return self.total

    app = QCoreApplication(sys.argv)
    manager = BackgroundTaskManager(start_processing=True)
    loop = Counter(period=0.01, policy=LoopPolicy.SKIP, max_iterations=50, settings=2)
    handle = manager.submit(loop)
    handle.add_done_callback(lambda h: app.quit())  # on the UI thread
    app.exec()
    print(handle.result(), manager.info(handle.uid).status)  # 100 total 100

The loop runs in the worker thread that runs the task.  In that thread it
calls, in this order::

    loop_prepare()                                   once
    each pass:
        adopt settings  -> process_new_settings(s)   if set_settings() posted a value
        loop_iteration()
        update_status() -> publish self.status       the UI reads info(uid).status
        wait for the next start                      interrupted at once by a stop
    loop_finalize()                                  always, once loop_prepare() was entered

Starts follow a fixed grid ``t0 + k * period`` (``t0``: the end of
``loop_prepare``), computed by multiplication, so waits and late wake-ups
never make it drift.  An iteration that ends after the next start has
*missed* it; ``LoopPolicy`` says what happens then.

How a loop ends:

* by itself (``LoopTask.stop_loop``, ``max_iterations``, or
  ``LoopPolicy.TERMINATE`` on a missed start): ``loop_finalize`` runs and
  the task COMPLETES with ``LoopTask.loop_result`` (``task_completed``,
  ``handle.result()``);
* on a stop from outside (``manager.stop_task``, ``handle.cancel()``, a
  ``timeout``, shut down): the current wait ends at once, ``loop_finalize``
  runs, and the task ends CANCELLED like every other bgtasks task
  (``task_cancelled``; ``handle.result()`` raises ``TaskCancelled``; a
  ``timeout`` makes it FAILED with ``TimeoutError``).  QMI counts a stop as a
  normal finish; bgtasks does not, so the UI can tell "the user stopped it"
  from "it finished".  Python code cannot be interrupted: a stop that
  arrives during ``loop_iteration`` takes effect when the iteration returns
  (or at once, if the iteration waits with ``current_task().sleep``);
* on an error in a hook: ``loop_finalize`` runs, then the error fails the
  task with its original type and traceback (``task_failed``).  An error
  raised by ``loop_finalize`` itself while another error or a stop is
  propagating is logged and the first outcome is kept.
"""

from __future__ import annotations

import enum
import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Any

from .core._context import TaskContextProtocol
from .core._validate import check_callable, check_count, check_seconds

__all__ = ["LoopContext", "LoopPolicy", "LoopSchedule", "LoopTask"]

log = logging.getLogger(__name__)


class LoopPolicy(enum.Enum):
    """What a loop does when an iteration ends after the next scheduled start.

    Example (period 0.1 s, starts at 0.0 and 0.1, the second iteration ends
    at 0.351):

    * ``IMMEDIATE``: start the next iteration at once (0.351) and move the
      grid there: 0.451, 0.551, ...  The phase shifts; the rate is kept.
    * ``SKIP``: leave out the missed starts and wait for the next start of
      the original grid (0.4, 0.5, ...).  The phase is kept.  (QMI's code
      instead runs one extra iteration at once and then returns to the grid;
      bgtasks does what QMI documents, so two iterations never start closer
      than one period and a slow iteration causes no burst.)
    * ``TERMINATE``: end the loop: ``loop_finalize`` runs and the task
      completes normally with ``loop_result()``.

    Plain enum values: any thread.
    """

    IMMEDIATE = "immediate"
    SKIP = "skip"
    TERMINATE = "terminate"


def _check_period(period: object) -> float:
    return float(check_seconds("period", period, positive=True))


def _check_policy(policy: object) -> LoopPolicy:
    if not isinstance(policy, LoopPolicy):
        raise TypeError(f"policy must be a LoopPolicy, got {policy!r}")
    return policy


class LoopSchedule:
    """The start times of a fixed-rate loop: pure arithmetic, no clock, no waiting.

    Starts are ``origin + k * period``; ``origin`` begins as ``start`` and
    only ``LoopPolicy.IMMEDIATE`` moves it (to the end of a late
    iteration).  Not thread-safe: one loop owns it (a ``LoopTask`` makes
    one per run, in its worker thread).

    Args:
        period: Seconds between starts (positive).
        policy: What to do when an iteration ends after the next start.
        start: The first start, on the loop's clock.

    Raises:
        TypeError: ``period`` is not a number or ``policy`` not a ``LoopPolicy``.
        ValueError: ``period`` is not positive.

    Attributes:
        period: Seconds between starts.
        policy: What to do when an iteration ends after the next start.
        missed: How many scheduled starts were missed so far (late iterations
            count one each for IMMEDIATE and TERMINATE, every skipped slot for SKIP).
    """

    __slots__ = ("_index", "_origin", "missed", "period", "policy")

    def __init__(self, period: float, policy: LoopPolicy, start: float) -> None:
        self.period = _check_period(period)
        self.policy = _check_policy(policy)
        self._origin = float(start)
        self._index = 0
        #: How many scheduled starts were missed so far (late iterations
        #: count one each for IMMEDIATE and TERMINATE, every skipped slot for SKIP).
        self.missed = 0

    @property
    def current_start(self) -> float:
        """When the current (or first) iteration was scheduled to start."""
        return self._origin + self._index * self.period

    def next_start(self, end: float) -> float | None:
        """The start of the next iteration, given when the current one ended.

        Moves the schedule on.  An iteration that ends exactly at the next start
        has not missed it.  The thread of the loop that owns the schedule.

        Args:
            end: When the current iteration ended, on the loop's clock.

        Returns:
            The next start; None when the loop must terminate (``TERMINATE`` and a
            missed start).
        """
        following = self._origin + (self._index + 1) * self.period
        if end <= following:
            self._index += 1
            return following
        if self.policy is LoopPolicy.IMMEDIATE:
            self.missed += 1
            self._origin, self._index = float(end), 0
            return self._origin
        if self.policy is LoopPolicy.SKIP:
            # The first slot at or after `end`; the small tolerance keeps an
            # end that lies on the grid (0.4 / 0.1 = 4.000000000000001) there.
            index = math.ceil((end - self._origin) / self.period - 1e-9)
            self.missed += index - self._index - 1
            self._index = index
            return self.current_start
        self.missed += 1
        return None


LoopContext = TaskContextProtocol
"""What a loop is given for stop, settings and status: a task context
(``bgtasks.TaskContextProtocol``, which every task context implements).
The name is kept for code written against it."""


class LoopTask:
    """A task that repeats ``loop_iteration`` every ``period`` seconds.

    Subclass it, override the hooks, and submit an instance to a manager
    (``manager.submit(MyLoop(period=0.5))``).  Every hook runs in the worker
    thread that runs the task; the manager's signals for it (``task_completed``,
    ``task_cancelled``, ``task_failed``, status changes) arrive on the
    manager's thread as for any task.  An instance runs one loop at a time;
    it may be submitted again (or retried) once that loop has ended.

    ``period``: seconds between starts (positive).  ``policy``: what to do when
    an iteration ends after the next start (``LoopPolicy``, default
    ``IMMEDIATE`` as in QMI).  ``max_iterations``: end normally after this
    many iterations (None: run until stopped).  ``settings``: the initial
    value of ``settings``.  ``clock``: a monotonic clock in seconds, for
    tests (default ``time.monotonic``).

    Args:
        period: Seconds between starts (positive).
        policy: What to do when an iteration ends after the next start.
        max_iterations: End normally after this many iterations; None: run until
            stopped.
        settings: The initial value of ``settings``.
        clock: A monotonic clock in seconds, for tests.

    Raises:
        TypeError: An argument of the wrong type.
        ValueError: ``period`` not positive, or ``max_iterations`` below 1.

    Attributes:
        period: Seconds between starts.
        policy: What to do when an iteration ends after the next start.
        max_iterations: The iterations after which the loop ends, or None.
        settings: The settings in effect; replaced by each value
            ``set_settings`` posts (worker thread).
        status: What the loop publishes after each pass (``info(uid).status``).
        iterations: How many iterations have returned in this run.
    """

    def __init__(
        self,
        period: float = 1.0,
        policy: LoopPolicy = LoopPolicy.IMMEDIATE,
        *,
        max_iterations: int | None = None,
        settings: Any = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.period = _check_period(period)
        self.policy = _check_policy(policy)
        self.max_iterations = check_count(
            "max_iterations", max_iterations, minimum=1, optional=True
        )
        check_callable("clock", clock)
        self._clock = clock
        #: The settings in effect; replaced by each value ``set_settings`` posts.
        self.settings: Any = settings
        #: What the loop publishes after each pass (``info(uid).status``).
        self.status: Any = None
        #: How many iterations have returned in this run.
        self.iterations = 0
        self._schedule: LoopSchedule | None = None
        self._stop = threading.Event()
        self._running = threading.Lock()

    # ------------------------------------------------------------------ hooks

    def loop_prepare(self) -> None:
        """Called once before the first iteration (worker thread).  Default: nothing."""

    def process_new_settings(self, settings: Any) -> None:
        """Called at the start of a pass when ``set_settings`` posted a value.

        Worker thread.  Default: nothing.

        Args:
            settings: The latest value posted (latest wins), already stored in
                ``settings``.
        """

    def loop_iteration(self) -> None:
        """The work of one pass (worker thread).  Default: nothing."""

    def update_status(self) -> None:
        """Called after each iteration to bring ``status`` up to date.

        The loop then publishes ``status`` when it differs from the last
        value published (``==``): ``manager.info(uid).status`` returns it and
        the manager emits ``task_status_changed(uid, group, status)`` on its
        thread.  Assign a new value rather than mutating the old one in place.
        Worker thread.  Default: nothing.
        """

    def loop_finalize(self) -> None:
        """Called once at the end, however the loop ends (worker thread).  Default: nothing.

        After a stop, ``current_task().cancelled`` is true and
        ``current_task().sleep`` raises at once: finalize without waiting.
        """

    def loop_result(self) -> Any:
        """The task's result when the loop ends by itself (worker thread).

        Returns:
            The result ``task_completed`` delivers; None by default.
        """
        return None

    # ------------------------------------------------------------------ control

    def stop_loop(self) -> None:
        """End the loop normally after the current pass (no further wait).

        Meant for the hooks (worker thread).  Any thread may call it; from
        another thread it takes effect at the next pass, within one period
        (before the run, the loop runs no iteration).
        To end the loop at once, cancel the task instead (it ends CANCELLED).
        """
        self._stop.set()

    @property
    def scheduled_start(self) -> float:
        """When the current iteration was due to start, on ``clock``'s scale.

        ``clock() - scheduled_start`` in ``loop_iteration`` is how late it
        started.  Worker thread, while the loop runs.

        Raises:
            RuntimeError: The loop is not running.
        """
        if self._schedule is None:
            raise RuntimeError("scheduled_start is only known while the loop runs")
        return self._schedule.current_start

    @property
    def missed(self) -> int:
        """How many scheduled starts this run missed so far (see ``LoopSchedule``).

        Read it in the hooks (worker thread); 0 before the run.
        """
        return 0 if self._schedule is None else self._schedule.missed

    # ------------------------------------------------------------------ running

    def __call__(self) -> Any:
        """Run the loop as the current task (what the manager's worker calls).

        Returns:
            ``loop_result`` when the loop ends by itself.

        Raises:
            RuntimeError: Called outside a task, or the instance is already running.
            TaskCancelled: The task was stopped.
        """
        from .core._context import current_task

        return self.run(current_task())

    def run(self, context: LoopContext) -> Any:
        """Run the loop with ``context`` for stop, settings and status.

        Called in the worker thread by ``__call__``; tests may pass their
        own context.  Blocks until the loop ends.

        Args:
            context: The running task's context (``LoopContext``).

        Returns:
            ``loop_result`` when the loop ends by itself (``stop_loop``,
            ``max_iterations``, ``TERMINATE``).

        Raises:
            RuntimeError: This instance is already running.
            TaskCancelled: A stop was requested (``loop_finalize`` ran first).
            Exception: Whatever a hook raised (``loop_finalize`` ran first).
        """
        if not self._running.acquire(blocking=False):
            raise RuntimeError(f"{self!r} is already running; submit a new instance")
        try:
            self.iterations = 0
            self._schedule = None
            return self._run(context)
        finally:
            self._stop.clear()  # a stop_loop() made before the run counts; a rerun starts afresh
            self._running.release()

    def _run(self, context: LoopContext) -> Any:
        try:
            self.loop_prepare()
            self._publish(context)
            self._loop(context)
        except BaseException:
            try:
                self.loop_finalize()
                self._publish(context)
            except Exception:  # noqa: BLE001 - the first outcome wins
                log.exception("%r: loop_finalize failed while the loop was ending", self)
            raise
        self.loop_finalize()
        self._publish(context)
        return self.loop_result()

    def _loop(self, context: LoopContext) -> None:
        clock = self._clock
        schedule = self._schedule = LoopSchedule(self.period, self.policy, clock())
        while not self._stop.is_set():
            context.raise_if_cancelled()
            if context.update_settings():
                self.settings = context.settings
                self.process_new_settings(self.settings)
            self.loop_iteration()
            self.iterations += 1
            self.update_status()
            self._publish(context)
            if self._stop.is_set() or self.iterations == self.max_iterations:
                return
            start = schedule.next_start(clock())
            if start is None:  # TERMINATE
                return
            wait = start - clock()
            if wait > 0:
                context.sleep(wait)

    def _publish(self, context: LoopContext) -> None:
        status, current = self.status, context.status
        try:
            same = status is current or bool(status == current)
        except Exception:  # noqa: BLE001 - e.g. arrays: publish, the UI compares
            same = False
        if not same:
            context.status = status

    def __repr__(self) -> str:
        return f"<{type(self).__name__} period={self.period} policy={self.policy.name}>"
