"""The kinds of events in the scheduler's outbox.

An event is a tuple whose first item is its kind; the owner's thread takes
them in batches (``Scheduler.take_events``) and turns them into signals.
"""

from __future__ import annotations

TASK_COMPLETED = 0  # (kind, uid, group, result): see below
TASK_FAILED = 1  # (kind, task, message, traceback, the handles it resolved or None)
GROUP_FINISHED = 2  # (kind, group)
TASK_CANCELLED = 3  # (kind, task)
TASK_STARTED = 4  # (kind, task)
TASK_PROGRESS = 5  # (kind, source, task); once taken: (..., fraction, message)
TASK_STATE = 6  # (kind, uid, group, state's value): see below
TASK_ADDED = 7  # (kind, uid, group)
TASK_REMOVED = 8  # (kind, uid, group)
TASK_STATUS = 9  # (kind, task, status)
#: Kinds produced only while someone listens (see Scheduler.watch).
OPTIONAL_EVENTS = frozenset({TASK_STARTED, TASK_STATE, TASK_ADDED, TASK_REMOVED, TASK_STATUS})


# TASK_COMPLETED, TASK_STATE and TASK_ADDED carry values, not the task record:
# a flood queues several of them per task, and a tuple that holds only atomic
# values (ints, strings, a group of them) is one the garbage collector stops
# tracking, where one holding the record was traversed by every collection
# until delivered (24,000 of them made a gen-1 collection take 7-14 ms).  A
# state travels as its value (a str); the owner maps it back to the TaskState.
