"""The main loop of a ProcessExecutor worker process (the child side).

Protocol, one pickled tuple per message over a duplex pipe:

parent -> child:
    ("run", uid, group, priority, payload)   payload = pickle of (fn, args, kwargs)
    ("cancel", uid)                          the parent asked the task to stop
    ("settings", uid, changed, value_pickle) reply to an "update_settings" request
    ("stop",)                                leave the loop

child -> parent:
    ("ok", uid, result_pickle)
    ("error", uid, exception_pickle, traceback_text)
    ("progress", uid, fraction, message)
    ("status", uid, value_pickle)
    ("update_settings", uid)
    ("output", uid_or_None, stream, line)    a line the process wrote to fd 1 or 2

The main thread runs tasks; a reader thread receives messages (so a cancel
reaches a running task) and one thread per output stream forwards lines.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import queue
import select
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from ..core import _context
from ..core._context import progress_fraction
from ..core._errors import BgTasksError, TaskCancelled
from ..core._validate import TIMEOUT_MAX, callable_name, check_count, check_seconds

PROGRESS_INTERVAL = 0.02  # at most ~50 progress messages a second per task


class RemoteTraceback(BgTasksError):
    """The traceback of an exception raised in a worker process (the ``__cause__``)."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return f'\n"""\n{self.text}"""'


class UnpicklableError(BgTasksError):
    """Stands in for an exception raised in a worker process that could not be pickled.

    ``type_name`` is the original exception's qualified type name, ``repr`` its repr;
    the remote traceback is chained as ``__cause__``.
    """

    def __init__(self, type_name: str, text: str, reason: str) -> None:
        super().__init__(f"{text} (a {type_name} that could not be sent back: {reason})")
        self.type_name = type_name
        self.repr = text

    def __reduce__(self) -> tuple[Any, ...]:
        return (_make_unpicklable_error, (self.type_name, self.repr, self.args[0]), self.__dict__)


def _make_unpicklable_error(type_name: str, text: str, message: str) -> UnpicklableError:
    error = UnpicklableError.__new__(UnpicklableError)
    Exception.__init__(error, message)
    error.type_name, error.repr = type_name, text
    return error


class _Channel:
    """The child's end of the pipe: sends from any thread, one at a time."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.lock = threading.Lock()

    def send(self, message: tuple[Any, ...]) -> None:
        data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        with self.lock:
            self.conn.send_bytes(data)


class WorkerContext:
    """What ``bgtasks.current_task()`` returns inside a worker process.

    Same names as :class:`bgtasks.TaskContext`: progress, status and settings
    travel to the parent; ``cancelled`` turns true when the parent asks the task
    to stop (before it terminates the process), which also wakes :meth:`sleep`.
    Usable from any thread of the worker process.
    """

    def __init__(self, channel: _Channel, uid: int, group: Any, priority: float) -> None:
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
    def uid(self) -> int:
        return self._uid

    @property
    def group(self) -> Any:
        """The task's group (None if it could not be sent to the worker)."""
        return self._group

    @property
    def priority(self) -> float:
        return self._priority

    @property
    def cancelled(self) -> bool:
        """True once the parent asked the task to stop."""
        return self._stop.is_set()

    def raise_if_cancelled(self) -> None:
        """Raise :class:`bgtasks.TaskCancelled` if a stop was requested."""
        if self._stop.is_set():
            raise TaskCancelled(f"task {self._uid} was asked to stop")

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds``; raise :class:`bgtasks.TaskCancelled` as soon as a stop is requested."""
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
        """The settings adopted by the last :meth:`update_settings` (None before)."""
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

    def answer_settings(self, changed: bool, data: bytes) -> None:
        self._replies.put((changed, data))


#: The longest line forwarded as one message, in bytes: a longer one (a progress bar
#: redrawn with ``\r``, binary data) is forwarded in pieces of at most this size, so a
#: worker never holds more than this per stream and nothing written is dropped.
MAX_LINE = 1 << 20


class LineSplitter:
    """Splits a byte stream into lines, in time and memory linear in what it is fed.

    :meth:`feed` returns the complete lines in a chunk (without their ``\n``); only
    the new chunk is searched for newlines, and the unfinished line is kept in one
    ``bytearray``.  A line longer than ``limit`` bytes comes out in pieces of at most
    ``limit`` bytes, cut before a UTF-8 sequence rather than inside it, as soon as
    that much is pending.  :meth:`flush` returns the unfinished rest.
    """

    def __init__(self, limit: int = MAX_LINE) -> None:
        self.limit = check_count("limit", limit, minimum=4)  # bytes: one UTF-8 sequence at least
        self.pending = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        lines: list[bytes] = []
        pending, start = self.pending, 0
        while True:
            end = data.find(b"\n", start)
            if end < 0:
                break
            if pending:
                pending += memoryview(data)[start:end]
                self._cut(lines, 0)
                lines.append(bytes(pending))
                pending.clear()
            else:
                self._pieces(lines, data, start, end)
            start = end + 1
        if start < len(data):
            pending += memoryview(data)[start:]
            self._cut(lines, self.limit)
        return lines

    def flush(self) -> list[bytes]:
        """The unfinished line, if any (as pieces of at most ``limit`` bytes)."""
        lines: list[bytes] = []
        if self.pending:
            self._cut(lines, 0)
            lines.append(bytes(self.pending))
            self.pending.clear()
        return lines

    def _boundary(self, buffer: Any, start: int) -> int:
        """Where to end a piece that starts at ``start``: at most ``limit`` bytes on,
        not inside a UTF-8 sequence (unless the bytes are not UTF-8)."""
        cut = start + self.limit
        for _ in range(3):
            if buffer[cut] & 0xC0 != 0x80:  # not a continuation byte: a sequence starts
                return cut
            cut -= 1
        return cut if buffer[cut] & 0xC0 != 0x80 else start + self.limit

    def _pieces(self, lines: list[bytes], data: bytes, start: int, end: int) -> None:
        """Append ``data[start:end]`` (a whole line) as pieces of at most ``limit`` bytes."""
        while end - start > self.limit:
            cut = self._boundary(data, start)
            lines.append(data[start:cut])
            start = cut
        lines.append(data[start:end])

    def _cut(self, lines: list[bytes], keep: int) -> None:
        """Move full pieces out of ``pending`` while more than ``max(keep, limit)`` bytes
        stay (``keep=0``: until at most ``limit`` bytes stay)."""
        pending = self.pending
        keep = max(keep, self.limit)
        if len(pending) <= keep:
            return
        start = 0
        while len(pending) - start > keep:
            cut = self._boundary(pending, start)
            lines.append(bytes(pending[start:cut]))
            start = cut
        del pending[:start]  # once per call: pending stays within limit + one chunk


class _Output:
    """Sends each line written to a file descriptor to the parent, tagged with the task's uid.

    A pump thread forwards lines while the task runs; at the task's end the
    main thread drains what is left itself (under the same lock), so the last
    lines always precede the result and a quiet task pays two system calls.
    Lines longer than :data:`MAX_LINE` bytes are forwarded in pieces.
    """

    def __init__(self, fd: int, stream: str, channel: _Channel, task_uid: Callable[[], Any]):
        self.stream = stream
        self.channel = channel
        self.task_uid = task_uid
        self.lock = threading.Lock()
        self.splitter = LineSplitter()
        read_fd, write_fd = os.pipe()
        os.set_blocking(read_fd, False)
        os.dup2(write_fd, fd)
        os.close(write_fd)
        self.read_fd = read_fd
        self.poller = select.poll()
        self.poller.register(read_fd, select.POLLIN)
        threading.Thread(target=self._pump, name=f"bgtasks-{stream}", daemon=True).start()

    def _pump(self) -> None:
        while True:
            self.poller.poll()
            with self.lock:
                if not self._read(final=False):
                    return

    def _read(self, final: bool) -> bool:
        """Forward the complete lines available now (all of it if ``final``); False at EOF."""
        alive = True
        while True:
            try:
                chunk = os.read(self.read_fd, 65536)
            except BlockingIOError:
                break
            except OSError:
                alive = False
                break
            if not chunk:
                alive = False
                break
            self._send(self.splitter.feed(chunk))
        if final:
            self._send(self.splitter.flush())
        return alive

    def _send(self, lines: list[bytes]) -> None:
        if not lines:
            return
        uid = self.task_uid()
        for line in lines:
            text = line.decode("utf-8", "replace").rstrip("\r")
            with contextlib.suppress(OSError, ValueError):
                self.channel.send(("output", uid, self.stream, text))

    def flush(self) -> None:
        """Send everything written to the descriptor so far (on the calling thread)."""
        with self.lock:
            self._read(final=True)


_libc_fflush: Any = None


def _flush_stdio() -> None:
    global _libc_fflush
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    if _libc_fflush is None:
        try:
            import ctypes

            _libc_fflush = ctypes.CDLL(None).fflush
        except Exception:
            _libc_fflush = False
    if _libc_fflush:
        _libc_fflush(None)  # C stdio buffers of extension modules


def _exception_message(uid: int, exc: BaseException) -> tuple[Any, ...]:
    """("error", uid, pickle, traceback) for ``exc``, or a substitute that pickles."""
    frames = exc.__traceback__
    if frames is not None and frames.tb_next is not None:
        frames = frames.tb_next  # the worker loop's own frame says nothing
    tb = "".join(traceback.format_exception(type(exc), exc, frames))
    try:
        data = pickle.dumps(exc, protocol=pickle.HIGHEST_PROTOCOL)
        pickle.loads(data)  # some exceptions pickle but cannot be rebuilt
    except Exception as reason:
        name = f"{type(exc).__module__}.{type(exc).__qualname__}"
        try:
            text = repr(exc)
        except Exception:
            text = f"<{name}>"
        substitute = UnpicklableError(name, text, f"{type(reason).__name__}: {reason}")
        data = pickle.dumps(substitute, protocol=pickle.HIGHEST_PROTOCOL)
    return ("error", uid, data, tb)


def main(conn: Connection) -> None:
    """Run tasks the parent sends until it says stop or goes away."""
    channel = _Channel(conn)
    current: list[WorkerContext | None] = [None]
    cancelled: list[int | None] = [None]  # the uid of the last task the parent cancelled
    runs: queue.SimpleQueue[tuple[Any, ...] | None] = queue.SimpleQueue()
    # A session (and process group) of its own, named by this pid: the parent stops
    # the worker and every process its tasks started with one killpg, and Ctrl+C in
    # a terminal (which signals the foreground group) never stops a task midway.
    try:
        os.setsid()
    except OSError:
        with contextlib.suppress(OSError):
            os.setpgrp()
    own_group = os.getpgrp() == os.getpid()
    _context.remote_context = lambda: current[0]

    def task_uid() -> int | None:
        ctx = current[0]
        return None if ctx is None else ctx.uid

    for fd, name in ((1, "stdout"), (2, "stderr")):
        stream = getattr(sys, name)
        if stream is None or not hasattr(stream, "reconfigure"):
            setattr(sys, name, open(fd, "w", buffering=1, closefd=False))  # noqa: SIM115
        else:
            stream.reconfigure(line_buffering=True)
    outputs = [_Output(1, "stdout", channel, task_uid), _Output(2, "stderr", channel, task_uid)]

    def receive() -> None:
        while True:
            try:
                message = pickle.loads(conn.recv_bytes())  # plain types only
            except (EOFError, OSError):
                # The parent is gone (even killed by SIGKILL, when no exit hook of its
                # ran): so is this worker, with whatever its tasks started.
                if own_group:
                    with contextlib.suppress(OSError):
                        os.killpg(os.getpid(), signal.SIGKILL)
                os._exit(0)
            kind = message[0]
            ctx = current[0]
            if kind == "run":
                runs.put(message)
            elif kind == "cancel":
                cancelled[0] = message[1]  # in case its run has not begun yet
                if ctx is not None and ctx.uid == message[1]:
                    ctx._stop.set()
            elif kind == "settings":
                if ctx is not None and ctx.uid == message[1]:
                    ctx.answer_settings(message[2], message[3])
            elif kind == "stop":
                runs.put(None)
                return

    threading.Thread(target=receive, name="bgtasks-receive", daemon=True).start()
    while True:
        message = runs.get()
        if message is None:
            break
        _, uid, group, priority, payload = message
        ctx = WorkerContext(channel, uid, group, priority)
        current[0] = ctx
        if cancelled[0] == uid:
            ctx._stop.set()
        try:
            fn, args, kwargs = pickle.loads(payload)
            value = fn(*args, **kwargs)
            try:
                result = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
            except Exception as exc:
                raise TypeError(
                    f"the result of {callable_name(fn)} cannot be sent back from the worker process: "
                    f"{value!r:.200} cannot be pickled ({type(exc).__name__}: {exc})"
                ) from None
            del value
            data = pickle.dumps(("ok", uid, result), protocol=pickle.HIGHEST_PROTOCOL)
            del result
        except BaseException as exc:  # noqa: BLE001 - a task must never kill its worker
            data = pickle.dumps(_exception_message(uid, exc), protocol=pickle.HIGHEST_PROTOCOL)
            del exc
        _flush_stdio()
        for output in outputs:
            output.flush()
        ctx.flush_progress()
        ctx.active = False
        current[0] = None
        with channel.lock:
            conn.send_bytes(data)
        del data
