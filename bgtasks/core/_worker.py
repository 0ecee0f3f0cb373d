"""The worker loop: what a pool thread runs, and which task it is running."""

from __future__ import annotations

import threading
import time
import traceback
from typing import TYPE_CHECKING

from ._fields import YIELD_EVERY
from ._task import Task, _merge_of

if TYPE_CHECKING:
    from ._scheduler import Scheduler


_local = threading.local()


def current() -> tuple[Scheduler, Task] | None:
    """The (scheduler, task) the calling worker thread is running, if any."""
    task = getattr(_local, "task", None)
    return None if task is None else (_local.scheduler, task)


def run_worker(scheduler: Scheduler) -> None:
    """A worker's whole life: run tasks until the scheduler has none for it.

    Any exception a task raises, ``SystemExit`` and ``KeyboardInterrupt``
    included, fails that task and never ends the worker.
    """
    local = _local
    local.scheduler = scheduler
    monotonic, sleep = time.monotonic, time.sleep
    gate = scheduler.gate
    # If the UI thread has not had the GIL for a while, wait (without it) until
    # it has: before claiming a task, so the wait is not counted as the task's
    # run time, and a waiting task is not shown running.
    if gate.starved(monotonic()):
        gate.give_way()
    yielded = monotonic()
    task = scheduler.claim()
    while task is not None:
        # Every half millisecond let other threads have the GIL: a flood of
        # short tasks must not starve the UI thread.
        now = monotonic()
        if now - yielded > YIELD_EVERY:
            yielded = now
            sleep(0)
        local.task = task
        # Held here until finish() returns: what the scheduler drops when the
        # task ends must not die under its lock (a finalizer may call it).
        fn, args, kwargs = task.fn, task.args, task.kwargs
        merge = None
        error: BaseException | None
        try:
            value = fn(*args, **kwargs)  # type: ignore[misc, arg-type]  # the task runs here
        except BaseException as exc:  # noqa: BLE001 - a task must never kill its worker
            tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
            exc.__traceback__ = None
            ok, value, error = False, None, exc
            del exc
        else:
            ok, error, tb = True, None, ""
            if value.__class__ is not dict and isinstance(value, dict):
                try:
                    merge = _merge_of(value)
                except BaseException as exc:  # noqa: BLE001 - a broken dict subclass
                    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
                    exc.__traceback__ = None
                    ok, value, error = False, None, exc
                    del exc
        now = monotonic()
        if now - gate.beat_at > gate.stale_after and gate.starved(now):
            scheduler.finish(task, ok, value, error, tb, claim_next=False, merge=merge)
            del value, error, fn, args, kwargs, merge
            gate.give_way()
            yielded = monotonic()
            task = scheduler.claim_next()
        else:
            nxt = scheduler.finish(task, ok, value, error, tb, merge=merge)
            del value, error, fn, args, kwargs, merge
            task = nxt
    local.task = None
