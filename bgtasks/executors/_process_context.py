"""What ``bgtasks.current_task()`` returns inside a ProcessExecutor worker process.

``WorkerContext`` sends progress, status and settings requests to the
parent over the worker's end of the pipe (a ``Channel``); the parent's
cancel request makes its ``cancelled`` true and wakes its ``sleep``.
"""

from __future__ import annotations

import pickle
import queue
import threading
import time
from multiprocessing.connection import Connection
from typing import Any

from ..core._context import SentTaskIdentity, progress_fraction
from ..core._errors import TaskCancelled
from ..core._validate import TIMEOUT_MAX, check_seconds

PROGRESS_INTERVAL = 0.02  # at most ~50 progress messages a second per task


class Channel:
    """The child's end of the pipe: sends from any thread, one at a time."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.lock = threading.Lock()

    def send(self, message: tuple[Any, ...]) -> None:
        data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        with self.lock:
            self.conn.send_bytes(data)


class WorkerContext(SentTaskIdentity):
    """What ``bgtasks.current_task()`` returns inside a worker process.

    A ``bgtasks.TaskContextProtocol``, as ``bgtasks.TaskContext`` is:
    progress, status and settings travel to the parent; ``cancelled`` turns
    true when the parent asks the task to stop (before it terminates the
    process), which also wakes ``sleep``.  Usable from any thread of the
    worker process.
    """

    def __init__(self, channel: Channel, uid: int, group: Any, priority: float) -> None:
        self._channel = channel
        self._uid = uid
        self._group = group
        self._priority = priority
        self._stop = threading.Event()
        self._status: Any = None
        self._settings: Any = None
        self._replies: queue.SimpleQueue[tuple[bool, bytes]] = queue.SimpleQueue()
        self._pending: tuple[float, str | None] | None = None
        self._sent_at = 0.0
        self.active = True

    @property
    def cancelled(self) -> bool:
        """True once the parent asked the task to stop."""
        return self._stop.is_set()

    def raise_if_cancelled(self) -> None:
        """Raise ``bgtasks.TaskCancelled`` if a stop was requested."""
        if self._stop.is_set():
            raise TaskCancelled(f"task {self._uid} was asked to stop")

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds``; raise ``bgtasks.TaskCancelled`` as soon as a stop is requested."""
        check_seconds("seconds", seconds, infinite=True)
        # A thread cannot wait beyond TIMEOUT_MAX at once (inf: until a stop).
        deadline = time.monotonic() + seconds
        while not self._stop.wait(min(seconds, TIMEOUT_MAX)):
            seconds = deadline - time.monotonic()
            if seconds <= 0:
                return
        raise TaskCancelled(f"task {self._uid} was asked to stop")

    def report_progress(
        self, done: float, total: float | None = None, message: str | None = None
    ) -> None:
        """Report progress: a fraction in [0, 1], or ``done`` out of ``total``.

        Sent to the parent at most every 20 ms (latest wins); the last value is
        always sent before the task's result.
        """
        self._pending = (progress_fraction(done, total, message), message)
        now = time.monotonic()
        if now - self._sent_at >= PROGRESS_INTERVAL:
            self.flush_progress(now)

    def flush_progress(self, now: float | None = None) -> None:
        pending, self._pending = self._pending, None
        if pending is not None and self.active:
            self._sent_at = time.monotonic() if now is None else now
            self._channel.send(("progress", self._uid, *pending))

    @property
    def status(self) -> Any:
        """A value the task publishes (``info(uid).status`` in the parent); must pickle."""
        return self._status

    @status.setter
    def status(self, value: Any) -> None:
        try:
            data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            raise TypeError(
                f"status {value!r} cannot be sent to the parent process: {exc}"
            ) from None
        self._status = value
        if self.active:
            self._channel.send(("status", self._uid, data))

    @property
    def settings(self) -> Any:
        """The settings adopted by the last ``update_settings`` (None before)."""
        return self._settings

    def update_settings(self) -> bool:
        """Adopt the latest value the parent's ``set_settings(uid, value)`` sent (a round trip)."""
        if not self.active:
            return False
        self._channel.send(("update_settings", self._uid))
        changed, data = self._replies.get()
        if changed:
            self._settings = pickle.loads(data)
        return changed

    def request_stop(self) -> None:
        """The parent asked the task to stop: ``cancelled`` turns true, ``sleep`` wakes."""
        self._stop.set()

    def answer_settings(self, changed: bool, data: bytes) -> None:
        """The parent's reply to the request ``update_settings`` is waiting on."""
        self._replies.put((changed, data))
