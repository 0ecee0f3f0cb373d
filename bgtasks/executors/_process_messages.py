"""The parent's side of a worker's messages (the protocol is in ``_process_worker``).

``receive`` handles one message while a task runs: output lines go to the
``bgtasks.processes`` logger, progress, status and settings requests to the
task's context; ``outcome`` turns the message that ends a task into its
result or its exception.
"""

from __future__ import annotations

import contextlib
import logging
import pickle
from typing import TYPE_CHECKING, Any

from ._process_worker import RemoteTraceback, UnpicklableError

if TYPE_CHECKING:
    from ..core._context import TaskContextProtocol
    from ._process_pool import Worker

logger = logging.getLogger("bgtasks.processes")

#: What ``receive`` returns when the worker's end of the pipe closed.
EOF_MARK = ("eof",)


def receive(worker: Worker, uid: int, context: TaskContextProtocol) -> tuple[Any, ...] | None:
    """Handle one message; the ("ok"/"error", ...) that ends the task, ``EOF_MARK``
    if the pipe closed, else None."""
    try:
        data = worker.conn.recv_bytes()
    except (EOFError, OSError):
        return EOF_MARK
    # plain types only: values travel as inner pickles
    message: tuple[Any, ...] = pickle.loads(data)
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
        _answer_settings(worker, uid, context)
    return None


def _answer_settings(worker: Worker, uid: int, context: TaskContextProtocol) -> None:
    changed = context.update_settings()
    try:
        value = pickle.dumps(context.settings if changed else None)
    except Exception as exc:
        logger.warning("[task %s] settings could not be pickled: %s", uid, exc)
        changed, value = False, pickle.dumps(None)
    worker.send(("settings", uid, changed, value))


def outcome(uid: int, message: tuple[Any, ...]) -> Any:
    """The task's result for an ("ok", ...) message; raise its exception for ("error", ...),
    with the remote traceback as ``__cause__``."""
    if message[0] == "ok":
        try:
            return pickle.loads(message[2])
        except Exception as exc:
            raise TypeError(
                f"the result of task {uid} cannot be unpickled in the parent process: "
                f"{type(exc).__name__}: {exc}"
            ) from None
    _, _, data, tb = message
    try:
        error = pickle.loads(data)
    except Exception as exc:
        error = UnpicklableError("exception", "<unknown>", f"{type(exc).__name__}: {exc}")
    error.__cause__ = RemoteTraceback(tb)
    try:
        raise error
    finally:
        del error
