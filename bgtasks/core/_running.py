"""What a running task calls: cancellation, progress, status, settings."""

from __future__ import annotations

import threading
import time
from typing import Any

from ._events import (
    TASK_STATUS,
)
from ._fields import (
    _MAX_WAIT,
    YIELD_EVERY,
    SchedulerFields,
)
from ._task import (
    _HIDDEN,
    _NOTHING,
    RUNNING,
    Task,
)


class Running(SchedulerFields):
    """The running task's side of the scheduler (see bgtasks.current_task)."""

    def is_cancelled(self, task: Task) -> bool:
        return task.state is not RUNNING

    def wait_cancelled(self, task: Task, seconds: float) -> bool:
        """Block up to ``seconds``; True as soon as a stop is requested."""
        with self._lock:
            if task.state is not RUNNING:
                return True
            event = task.cancel_event
            if event is None:
                event = task.cancel_event = threading.Event()
        # A thread cannot wait beyond TIMEOUT_MAX at once (inf: until a stop).
        deadline = time.monotonic() + seconds
        while True:
            if event.wait(min(seconds, _MAX_WAIT)):
                return True
            seconds = deadline - time.monotonic()
            if seconds <= 0:
                return False

    def report_progress(self, task: Task, fraction: float, message: str | None) -> None:
        # Called in a tight loop by the task: while an event or a timer will
        # carry the latest value anyway, only store it (no lock), and every
        # half millisecond let other threads have the GIL: without that, a few
        # tasks looping in pure Python starve the UI thread for 100s of ms.
        task.progress = fraction
        if message is not None:
            task.progress_message = message
        if task.progress_queued or task.progress_dirty:
            now = time.monotonic()
            gate = self.gate
            if now - gate.beat_at > gate.stale_after and gate.starved(now):
                gate.give_way()
                task.yielded_at = time.monotonic()
            elif now - task.yielded_at > YIELD_EVERY:
                task.yielded_at = now
                time.sleep(0)
            return
        with self._lock:
            if self._closed or task.progress_queued or task.progress_dirty:
                return
            now = time.monotonic()
            wait = task.progress_at + self.progress_interval - now
            if wait <= 0:
                self._queue_progress(task, now)
            else:  # at most one event per interval: a timer sends the latest later
                task.progress_dirty = True
                self._add_timer(wait, "progress", task)
            self._flush_wake()

    def set_status(self, task: Task, status: Any) -> None:
        old = task.status  # read by the task's own thread, its only writer
        try:  # user code (__ne__, __bool__): never under the lock
            changed = bool(old != status)
        except Exception:  # noqa: BLE001 - e.g. an array: compare by identity
            changed = old is not status
        with self._lock:
            task.status = status
            if changed and TASK_STATUS in self._watched and task.state is RUNNING:
                for t in task.mirrors if task.mirrors is not None else (task,):
                    if t.group is not _HIDDEN:
                        self._outbox.append((TASK_STATUS, t, status))
                self._flush_wake()
        del old  # dies here, not under the lock

    def set_settings(self, uid: object, value: Any) -> None:
        if self._defer(self.set_settings, uid, value):
            return
        with self._lock:
            task = self._get(uid, "set_settings")
            if task.work is not None:
                task = task.work
            old, task.settings_pending = task.settings_pending, value
        del old

    def take_settings(self, task: Task) -> bool:
        with self._lock:
            if task.settings_pending is _NOTHING:
                return False
            old = task.settings
            task.settings, task.settings_pending = task.settings_pending, _NOTHING
        del old
        return True
