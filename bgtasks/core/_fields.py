"""The scheduler's fields, declared once for the mixins that share them, and its constants.

Every field is guarded by ``_lock`` (see the package docstring); the mixins
(one module per concern) read and write them only while holding it, except
where a method says otherwise.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._gil_gate import GilGate
    from ._state import TaskState
    from ._task import Task

log = logging.getLogger("bgtasks")

UPSTREAM_POLICIES = ("fail", "cancel")
#: A task that ran for less than this is short (see Scheduler._target).
SHORT_TASK = 0.001
#: The most events one take_events hands over.  What a take does besides
#: (marking the batch before it delivered, forgetting finished tasks past
#: keep_finished, freeing what that lets go) is bounded by it too, so one take
#: under the lock never holds up the owner's thread for long (a flood of
#: 20,000 took 10-11 ms at once).  1,024 was measured too small: chains of
#: 5,000 tasks on 8 threads stalled the UI 0.3 ms longer than with 2,048 or more.
TAKE_LIMIT = 2048
#: The most finished tasks one take forgets (past keep_finished): forgetting and
#: freeing a task costs several times what handing over an event does.
TRIM_LIMIT = 1024
#: Ready tasks and no task finished for this long: use every worker.
WIDEN_AFTER = 0.002
#: Workers let other threads have the GIL this often (seconds of running).
YIELD_EVERY = 0.0005
#: How many forgotten failed or cancelled tasks are still remembered as such, for
#: tasks added later with them upstream; older forgotten ones count as completed.
ENDED_MEMORY = 100_000
#: The most worker threads a scheduler accepts (a Qt thread pool's limit is an int).
MAX_WORKERS = 2**31 - 1
#: The longest wait the timer thread makes at once (threading refuses waits
#: beyond TIMEOUT_MAX, and a due time far away is just re-checked).
_MAX_WAIT = 3600.0
ANY_GROUP: Any = object()  # infos(): no group filter


class SchedulerFields:
    """Annotations only: the state every mixin of the scheduler shares."""

    _spawn: Callable[[int], None]
    _wake: Callable[[], None]
    _lock: threading.RLock
    _grave: list[Any]  # references dropped under the lock, released after it
    _owner_ident: int  # the owner's thread: the only one that empties _grave
    _deferred: list[tuple[Callable[..., Any], tuple[Any, ...]]]  # calls from under the lock
    gate: GilGate
    _max_workers: int
    _target: int  # workers to keep busy: fewer for short tasks (GIL contention)
    _floor: int
    _finish_count: int
    _widen_mark: int
    keep_finished: int
    _tasks: dict[int, Task]  # every task not yet forgotten
    _finished: deque[int]  # ended, oldest first
    _ended: dict[int, tuple[TaskState, str, str]]  # forgotten, not COMPLETED
    progress_interval: float
    _next_uid: int
    _ready: list[
        tuple[float, int]
    ]  # (-priority, uid), lazy deletion: atomic, so untracked by the gc
    _n_ready: int  # QUEUED tasks, parked ones included
    _groups: dict[Hashable, dict[int, Task]]  # live tasks of each group
    _groups_reported: set[Hashable]  # had a completion/failure this round
    _group_policy: dict[Hashable, str]
    _outbox: list[tuple[Any, ...]]
    _taken: list[tuple[Any, ...]]  # handed to the owner by the last take_events
    _n_progress: int  # progress events in the outbox
    _wake_pending: bool
    _active: int  # workers started and not yet retired
    _paused: bool
    _closed: bool
    _group_ids: itertools.count[int]
    _watched: frozenset[int]
    _watch_states: bool
    _limits: dict[str, int]  # resource -> how many at once
    _in_use: dict[str, int]
    _parked: dict[str, list[Task]]  # queued tasks waiting for a resource
    _n_parked: int
    _keys: dict[Hashable, Task]  # key -> live shared work
    _cache: OrderedDict[Hashable, Any]  # key -> (result, merge), LRU
    cache_size: int
    _timers: list[tuple[float, int, str, Task, int]]  # (due, seq, kind, task, attempt)
    _timer_seq: itertools.count[int]
    _timer_wakeup: threading.Condition
    _timer_thread: threading.Thread | None

    # Implemented by the mixins and declared here once, typed, for each other: type
    # checking only, so nothing exists at runtime and no call goes through this class.
    if TYPE_CHECKING:
        # _reentry.Reentry
        def _after(self) -> None: ...
        def _defer(self, fn: Callable[..., Any], *args: Any) -> bool: ...

        # _registry.Registry
        def _register(self, task: Task) -> None: ...
        def _get(self, uid: object, what: str) -> Task: ...

        # _ready.Ready
        def _queue(self, task: Task) -> None: ...
        def _reprioritise(self, task: Task, priority: float) -> None: ...
        def _spawn_count(self) -> int: ...

        # _outbox.Outbox
        def _flush_wake(self) -> None: ...
        def _queue_progress(self, source: Task, now: float) -> None: ...

        # _resources.Resources
        def _acquire(self, task: Task, res: dict[str, int]) -> bool: ...

        # _retention.Retention
        def _trim_finished(self, limit: int = -1) -> bool: ...

        # _timers.Timers
        def _add_timer(self, delay: float, kind: str, task: Task) -> None: ...

        # _control.Control
        def _policy(self, task: Task) -> str: ...

        # _transitions.Transitions
        def _wire_upstream(self, task: Task) -> None: ...
        def _move(self, task: Task, new: TaskState) -> None: ...
        def _complete(
            self, task: Task, value: Any, merge: dict[str, Any] | None = None
        ) -> None: ...
        def _fail(
            self, task: Task, error: BaseException, tb: str, message: str | None = None
        ) -> None: ...
        def _end_cancelled(self, task: Task, todo: list[Task] | None = None) -> None: ...
        def _request_stop(self, task: Task) -> None: ...
        def _cancel(self, task: Task) -> None: ...
        def _resolve_one(self, handle: Any, task: Task) -> None: ...
