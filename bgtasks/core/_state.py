"""Task states, the transitions allowed between them, and task snapshots.

The states separate what was *asked* from what was *reached*: a running task
that is asked to stop is CANCELLING until its function returns, and only then
CANCELLED.  Every run of a task ends in exactly one of the terminal states;
``retry`` (or an automatic retry) takes a FAILED or CANCELLED task back to
PENDING.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from ._errors import BgTasksError


class TaskState(enum.Enum):
    """Where a task is in its life.

    Read it with ``BackgroundTaskManager.task_state(uid)`` (any thread) or from a
    ``TaskInfo``; ``task_state_changed`` reports each change on the manager's
    thread.  Members compare by identity and are plain enum values, safe to share
    between threads.
    """

    PENDING = "pending"  #: waiting for upstream tasks (or for a retry's backoff)
    QUEUED = "queued"  #: ready, waiting for a worker
    RUNNING = "running"  #: a worker is running its function
    CANCELLING = "cancelling"  #: running, and asked to stop; its result will be dropped
    COMPLETED = "completed"  #: returned a result (terminal)
    FAILED = "failed"  #: raised, timed out, or an upstream task failed (terminal)
    CANCELLED = "cancelled"  #: stopped before or while running (terminal)

    # Members are singletons: hash by identity, in C, not by name in Python
    # (the scheduler checks a transition table on every state change).
    __hash__ = object.__hash__

    @property
    def is_terminal(self) -> bool:
        """True for COMPLETED, FAILED and CANCELLED: the states a run ends in."""
        return self in _TERMINAL


_TERMINAL = frozenset({TaskState.COMPLETED, TaskState.FAILED, TaskState.CANCELLED})

P, Q, R, CG, D, F, C = (
    TaskState.PENDING,
    TaskState.QUEUED,
    TaskState.RUNNING,
    TaskState.CANCELLING,
    TaskState.COMPLETED,
    TaskState.FAILED,
    TaskState.CANCELLED,
)

# Allowed transitions.  The scheduler checks every one (Scheduler._move): an
# illegal one raises IllegalTransition and leaves the state as it was.
TRANSITIONS: dict[TaskState, frozenset[TaskState]] = {
    P: frozenset({Q, D, F, C}),  # D: a deduplicated request completes with its key's work
    Q: frozenset({R, C}),
    R: frozenset({D, F, CG, C, P}),  # C: the task cancelled itself; P: retry after backoff
    CG: frozenset({C, F}),  # F: the stop was a timeout
    D: frozenset(),
    F: frozenset({P}),  # retry()
    C: frozenset({P}),  # retry()
}
del P, Q, R, CG, D, F, C


class IllegalTransition(BgTasksError, RuntimeError):
    """A state change the transition table does not allow.

    Raised where the change was attempted (``retry`` of a task that has not ended,
    for example), leaving the task's state as it was.

    Args:
        uid: The task.
        old: Its state.
        new: The state it was refused.

    Attributes:
        uid: The task.
        old: Its state.
        new: The state it was refused.
    """

    def __init__(self, uid: int, old: TaskState, new: TaskState) -> None:
        super().__init__(f"task {uid}: illegal transition {old.name} -> {new.name}")
        self.uid = uid
        self.old = old
        self.new = new

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.uid, self.old, self.new), self.__dict__)


@dataclass(frozen=True, slots=True)
class TaskInfo:
    """A frozen snapshot of one task (``BackgroundTaskManager.info``).

    Taken under the scheduler's lock, so its fields agree with each other; it
    never changes afterwards and may be read and passed on from any thread.
    Times are seconds since the epoch (``time.time()``); ``runtime`` is the
    time from the last start to the end, or to now while running.

    Attributes:
        uid: The task's uid.
        name: A readable name (the function's qualified name unless given).
        group: The task's group (None if it has none).
        state: Its state when the snapshot was taken.
        priority: Its priority (higher runs first).
        key: Its deduplication key, or None.
        upstream: The uids of the tasks it waits for.
        created: When it was added.
        started: When its function last started; None if it never ran.
        ended: When its last run ended; None while it has not.
        runtime: Seconds from the last start to the end (or to now); None if it
            never ran.
        progress: The latest progress fraction in [0, 1]; None if none was reported.
        message: The latest progress message.
        status: What the task last set as its status.
        error: The error message of a failed task ("" otherwise).
        traceback: The traceback of a failed task ("" otherwise).
        attempts: How many times the function started.
    """

    uid: int
    name: str
    group: Any
    state: TaskState
    priority: float
    key: Any
    upstream: tuple[int, ...]
    created: float
    started: float | None
    ended: float | None
    runtime: float | None
    progress: float | None
    message: str  #: the latest progress message
    status: Any  #: what the task last set as its status
    error: str  #: the error message of a failed task
    traceback: str
    attempts: int  #: how many times the function started
