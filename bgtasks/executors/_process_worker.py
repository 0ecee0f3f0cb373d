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
This module holds the loop; the task's context is in ``_process_context``,
the output forwarding in ``_process_output``.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import queue
import signal
import sys
import threading
import traceback
from multiprocessing.connection import Connection
from typing import Any, NoReturn

from ..core import _context
from ..core._errors import BgTasksError
from ..core._validate import callable_name
from ._process_context import Channel, WorkerContext
from ._process_output import Output, flush_stdio


class RemoteTraceback(BgTasksError):
    """The traceback of an exception raised in a worker process (the ``__cause__``).

    Made in the parent process when a task's exception comes back, so the error
    the handle or ``task_failed`` reports shows where it was raised remotely.

    Args:
        text: The formatted remote traceback.

    Attributes:
        text: The formatted remote traceback.
    """

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return f'\n"""\n{self.text}"""'


class UnpicklableError(BgTasksError):
    """Stands in for an exception raised in a worker process that could not be pickled.

    The remote traceback is chained as ``__cause__``.

    Args:
        type_name: The original exception's qualified type name.
        text: The original exception's repr.
        reason: Why it could not be pickled.

    Attributes:
        type_name: The original exception's qualified type name.
        repr: The original exception's repr.
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


def _exception_message(uid: int, exc: BaseException) -> tuple[Any, ...]:
    """("error", uid, pickle, traceback) for ``exc``, or a substitute that pickles."""
    frames = exc.__traceback__
    while (
        frames is not None
        and frames.tb_next is not None
        and frames.tb_frame.f_globals.get("__name__") == __name__
    ):
        frames = frames.tb_next  # the worker loop's own frames say nothing
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
    _WorkerLoop(conn).serve()


def _lead_session() -> bool:
    """Make this process lead a session (and process group) of its own, named by its pid:
    the parent stops the worker and every process its tasks started with one killpg,
    and Ctrl+C in a terminal (which signals the foreground group) never stops a task
    midway.  True if this process leads its group."""
    try:
        os.setsid()
    except OSError:
        with contextlib.suppress(OSError):
            os.setpgrp()
    return os.getpgrp() == os.getpid()


def _capture_output(channel: Channel, task_uid: Any) -> list[Output]:
    """Line-buffered ``sys.stdout`` / ``sys.stderr``, and descriptors 1 and 2 forwarded."""
    for fd, name in ((1, "stdout"), (2, "stderr")):
        stream = getattr(sys, name)
        if stream is None or not hasattr(stream, "reconfigure"):
            setattr(sys, name, open(fd, "w", buffering=1, closefd=False))  # noqa: SIM115
        else:
            stream.reconfigure(line_buffering=True)
    return [Output(1, "stdout", channel, task_uid), Output(2, "stderr", channel, task_uid)]


class _WorkerLoop:
    """The worker's state: the running task's context, and the runs the parent sent."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.channel = Channel(conn)
        self.current: WorkerContext | None = None
        self.cancelled: int | None = None  # the uid of the last task the parent cancelled
        self.runs: queue.SimpleQueue[tuple[Any, ...] | None] = queue.SimpleQueue()
        self.own_group = _lead_session()
        _context.remote_context = lambda: self.current
        self.outputs = _capture_output(self.channel, self.task_uid)

    def task_uid(self) -> int | None:
        ctx = self.current
        return None if ctx is None else ctx.uid

    def serve(self) -> None:
        threading.Thread(target=self.receive, name="bgtasks-receive", daemon=True).start()
        while True:
            message = self.runs.get()
            if message is None:
                break
            data = self.run(*message[1:])
            with self.channel.lock:
                self.conn.send_bytes(data)
            del data

    def receive(self) -> None:
        """The reader thread: queue runs, hand cancels and settings to the running task."""
        while True:
            try:
                message = pickle.loads(self.conn.recv_bytes())  # plain types only
            except (EOFError, OSError):
                self.parent_gone()
            kind = message[0]
            ctx = self.current
            if kind == "run":
                self.runs.put(message)
            elif kind == "cancel":
                self.cancelled = message[1]  # in case its run has not begun yet
                if ctx is not None and ctx.uid == message[1]:
                    ctx.request_stop()
            elif kind == "settings":
                if ctx is not None and ctx.uid == message[1]:
                    ctx.answer_settings(message[2], message[3])
            elif kind == "stop":
                self.runs.put(None)
                return

    def parent_gone(self) -> NoReturn:
        """The parent is gone (even killed by SIGKILL, when no exit hook of its ran):
        so is this worker, with whatever its tasks started."""
        if self.own_group:
            with contextlib.suppress(OSError):
                os.killpg(os.getpid(), signal.SIGKILL)
        os._exit(0)

    def run(self, uid: int, group: Any, priority: float, payload: bytes) -> bytes:
        """Run one task; the pickled ("ok"/"error", ...) message that ends it, sent after
        its last output lines and progress."""
        ctx = WorkerContext(self.channel, uid, group, priority)
        self.current = ctx
        if self.cancelled == uid:
            ctx.request_stop()
        try:
            data = pickle.dumps(("ok", uid, _call(payload)), protocol=pickle.HIGHEST_PROTOCOL)
        except BaseException as exc:  # noqa: BLE001 - a task must never kill its worker
            data = pickle.dumps(_exception_message(uid, exc), protocol=pickle.HIGHEST_PROTOCOL)
            del exc
        flush_stdio()
        for output in self.outputs:
            output.flush()
        ctx.flush_progress()
        ctx.active = False
        self.current = None
        return data


def _call(payload: bytes) -> bytes:
    """Unpickle ``(fn, args, kwargs)``, call it, and pickle the result."""
    fn, args, kwargs = pickle.loads(payload)
    value = fn(*args, **kwargs)
    try:
        return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:
        raise TypeError(
            f"the result of {callable_name(fn)} cannot be sent back from the worker process: "
            f"{value!r:.200} cannot be pickled ({type(exc).__name__}: {exc})"
        ) from None
