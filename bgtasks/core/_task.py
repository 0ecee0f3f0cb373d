"""The task record, its rarely used options, and what a result gives its dependents."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Any

from ._errors import repr_of
from ._state import TaskState

PENDING = TaskState.PENDING
QUEUED = TaskState.QUEUED
RUNNING = TaskState.RUNNING
CANCELLING = TaskState.CANCELLING
COMPLETED = TaskState.COMPLETED
FAILED = TaskState.FAILED
CANCELLED = TaskState.CANCELLED

_NOTHING = object()
_HIDDEN = object()  # the group of a deduplicated key's shared work: in no group


def _pass_through(**kwargs: Any) -> dict[str, Any]:
    return kwargs


class Options:
    """The rarely used per-task options, kept out of Task to keep it small."""

    __slots__ = ("retries", "retry_on", "backoff", "timeout", "resources", "key", "policy")

    def __init__(self) -> None:
        self.retries = 0
        self.retry_on: tuple[type[BaseException], ...] = (Exception,)
        self.backoff = 0.1
        self.timeout: float | None = None
        self.resources: dict[str, int] | None = None
        self.key: Hashable = None
        self.policy = "fail"


_NO_OPTIONS = Options()


class _TaskExtras:
    """Defaults of the fields most tasks never write.  A Task stores one of
    these in its (lazily created) instance dict only once it is set, which
    keeps the common task small and quick to create."""

    error: BaseException | None = None
    message = ""  # error message
    traceback = ""
    progress: float | None = None
    progress_message = ""
    progress_queued = False  # a progress event is in the outbox
    progress_dirty = False  # a newer value waits for the progress interval (a timer)
    progress_at = -1e9  # monotonic time of the last progress event
    yielded_at = 0.0  # monotonic time report_progress last let other threads run
    status: Any = None
    settings: Any = None
    settings_pending: Any = _NOTHING
    cancel_event: threading.Event | None = None
    handles: list[Any] | None = None  # TaskHandles waiting for the outcome
    work: Task | None = None  # a deduplicated request: the shared work
    mirrors: list[Task] | None = None  # shared work: its requests
    parked = False  # waiting in a resource's parked list (counted in _n_parked)
    timed_out = False
    retry_base = 0  # attempts before the last retry(): automatic retries count from there
    merge: dict[str, Any] | None = None  # a dict-subclass result as a plain dict, to merge


class Task(_TaskExtras):
    """One task's record; every field is guarded by the scheduler's lock, except
    ``fn``/``args``/``kwargs``, which the worker running the task reads."""

    __slots__ = (
        "uid", "name", "fn", "args", "kwargs", "priority", "group", "state", "waiting",
        "upstream", "downstream", "result", "created", "started", "ended", "attempts",
        "opts", "pending",
    )  # fmt: skip

    def __init__(self, uid: int, name: str, fn: Any, args: Any, kwargs: Any,
                 priority: float, group: Hashable, upstream: tuple[int, ...],
                 opts: Options) -> None:  # fmt: skip
        self.uid = uid
        self.name = name
        self.fn: Callable[..., Any] | None = fn
        self.args: tuple[Any, ...] | None = args
        self.kwargs: dict[str, Any] | None = kwargs
        self.priority = priority
        self.group = group
        self.state = PENDING
        self.waiting = 0  # upstream tasks not yet completed
        self.upstream = upstream
        self.downstream: list[Task] | tuple[()] = ()  # a list once it has any
        self.result: Any = None
        self.created = time.time()
        self.started: float | None = None
        self.ended: float | None = None
        self.attempts = 0
        self.opts = opts
        self.pending = 0  # terminal events not yet delivered: not to be forgotten

    def __repr__(self) -> str:
        return f"<Task {self.uid} {self.name!r} {self.state.name} group={repr_of(self.group)}>"


def _name_of(fn: Any) -> str:
    if fn is _pass_through:
        return "pass-through"
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None)
    return name if isinstance(name, str) else type(fn).__name__


def _merge_of(value: Any) -> dict[str, Any] | None:
    """The dict that dependents merge for a result: a plain copy of a dict
    subclass (OrderedDict, defaultdict...); None for anything else.  Call it
    outside the scheduler's lock (a subclass may run Python code)."""
    if isinstance(value, dict) and type(value) is not dict and value:
        return dict(value)
    return None
