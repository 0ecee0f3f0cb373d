"""Task states and the transitions allowed between them.

The states separate what was *asked* from what was *reached*: a running task
that is asked to stop is CANCELLING until its function returns, and only then
CANCELLED.  Every task ends in exactly one of the terminal states.
"""

from __future__ import annotations

import enum


class TaskState(enum.Enum):
    """Where a task is in its life."""

    PENDING = "pending"  #: waiting for upstream tasks
    QUEUED = "queued"  #: ready, waiting for a worker
    RUNNING = "running"  #: a worker is running its function
    CANCELLING = "cancelling"  #: running, and asked to stop; its result will be dropped
    COMPLETED = "completed"  #: returned a result (terminal)
    FAILED = "failed"  #: raised, or an upstream task failed (terminal)
    CANCELLED = "cancelled"  #: stopped before or while running (terminal)

    @property
    def is_terminal(self) -> bool:
        return self in _TERMINAL


_TERMINAL = frozenset({TaskState.COMPLETED, TaskState.FAILED, TaskState.CANCELLED})

# Allowed transitions.  The scheduler checks each one (see Scheduler._move), so
# a bug that would end a task twice raises instead of emitting twice.
TRANSITIONS: dict[TaskState, frozenset[TaskState]] = {
    TaskState.PENDING: frozenset({TaskState.QUEUED, TaskState.FAILED, TaskState.CANCELLED}),
    TaskState.QUEUED: frozenset({TaskState.RUNNING, TaskState.CANCELLED}),
    TaskState.RUNNING: frozenset(
        {TaskState.COMPLETED, TaskState.FAILED, TaskState.CANCELLING}
    ),
    TaskState.CANCELLING: frozenset({TaskState.CANCELLED}),
    TaskState.COMPLETED: frozenset(),
    TaskState.FAILED: frozenset(),
    TaskState.CANCELLED: frozenset(),
}


class IllegalTransition(RuntimeError):
    """A state change the transition table does not allow (a bgtasks bug)."""

    def __init__(self, uid: int, old: TaskState, new: TaskState) -> None:
        super().__init__(f"task {uid}: illegal transition {old.name} -> {new.name}")
        self.uid = uid
        self.old = old
        self.new = new
