"""The manager's control of existing tasks and its registry queries: thin, thread-safe
calls into the core's scheduler (a mixin of BackgroundTaskManager)."""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import TYPE_CHECKING, Any, cast

from PySide6.QtCore import QThreadPool

from ..core import ANY_GROUP, Scheduler, _graph, check_count, check_seconds
from ..core._handle import TaskHandle
from ..core._state import TaskInfo, TaskState

if TYPE_CHECKING:
    from ..core._handle import HandleOwner


class Registry:
    """Control (priorities, retry, settings, limits) and queries (state, info, graph)."""

    _scheduler: Scheduler
    _pool: QThreadPool

    def set_priority(self, uid: int, priority: float) -> None:
        """Change the priority of a pending or queued task.  Any thread."""
        self._scheduler.set_priority(uid, priority)

    def set_group_priority(self, group: Hashable, priority: float) -> int:
        """Give every pending or queued task of ``group`` this priority (visible
        thumbnails first); returns how many changed.  Costs O(k log n) for the
        group's k tasks.  Any thread."""
        return self._scheduler.set_group_priority(group, priority)

    def retry(self, uid: int) -> TaskHandle[Any]:
        """Run a failed or cancelled task again, and the failed or cancelled
        tasks upstream of it first; returns a handle on the new run.

        A handle is the outcome of one run: handles taken before keep the
        outcome they had (a future never changes once done); the returned one
        (and :meth:`handle` from now on) follows the new run.  Any thread.
        ``KeyError`` for an unknown uid, ``ValueError`` for a task that is not
        failed or cancelled (or whose function was released), ``RuntimeError``
        after ``shut_down()``.
        """
        handle: TaskHandle[Any] = TaskHandle(cast("HandleOwner", self))
        handle.uid = uid
        self._scheduler.retry(uid, handle)
        return handle

    def set_settings(self, uid: int, value: Any) -> None:
        """Post ``value`` to the task's settings mailbox (latest wins); the task
        adopts it with ``current_task().update_settings()``.  Any thread."""
        self._scheduler.set_settings(uid, value)

    def set_resource_limit(self, name: str, limit: int) -> None:
        """Allow at most ``limit`` units of resource ``name`` in use at once."""
        self._scheduler.set_resource_limit(name, limit)

    def set_group_policy(self, group: Hashable, on_upstream_failure: str) -> None:
        """Default ``on_upstream_failure`` (``"fail"`` or ``"cancel"``) for a group's tasks."""
        self._scheduler.set_group_policy(group, on_upstream_failure)

    @property
    def cache_size(self) -> int:
        """How many finished results are kept by ``key`` (0: none)."""
        return self._scheduler.cache_size

    @cache_size.setter
    def cache_size(self, size: int) -> None:
        self._scheduler.configure(cache_size=check_count("cache_size", size))

    @property
    def progress_interval(self) -> float:
        """Least seconds between two ``task_progress`` of one task (default 0.04: 25/s)."""
        return self._scheduler.progress_interval

    @progress_interval.setter
    def progress_interval(self, seconds: float) -> None:
        self._scheduler.configure(progress_interval=check_seconds("progress_interval", seconds))

    @property
    def keep_finished(self) -> int:
        """How many finished tasks stay in the registry (``info``) before the oldest go."""
        return self._scheduler.keep_finished

    @keep_finished.setter
    def keep_finished(self, count: int) -> None:
        self._scheduler.configure(keep_finished=check_count("keep_finished", count))

    def task_state(self, uid: int) -> TaskState:
        """The task's state.  ``KeyError`` for a uid this manager never issued,
        or one forgotten (see ``keep_finished``).  Any thread."""
        return self._scheduler.state(uid)

    def info(self, uid: int) -> TaskInfo:
        """A frozen snapshot of one task.  ``KeyError`` as :meth:`task_state`.  Any thread."""
        return self._scheduler.info(uid)

    def infos(self, uids: Iterable[int]) -> dict[int, TaskInfo]:
        """Snapshots of many tasks at once (one lock hold, so one wait for the GIL-bound
        workers, not one per task); uids not registered are left out.  Any thread."""
        return self._scheduler.infos_of(uids)

    def tasks(self, group: Hashable = ANY_GROUP, state: TaskState | None = None) -> list[TaskInfo]:
        """Snapshots of every registered task, or of one group, or in one state.  Any thread."""
        return self._scheduler.infos(group, state)

    def state_counts(self) -> dict[TaskState, int]:
        """How many registered tasks are in each state.  Any thread."""
        return self._scheduler.state_counts()

    def clear_finished(self) -> int:
        """Forget every finished task (``task_removed`` for each); returns how many."""
        return self._scheduler.clear_finished()

    @property
    def max_threads(self) -> int:
        return self._pool.maxThreadCount()

    def to_dot(self) -> str:
        """The task graph in Graphviz DOT: a node per registered task labelled
        with its name and state, coloured by state, edges to dependents."""
        return _graph.to_dot(self._scheduler.graph())

    def to_svg(self) -> str:
        """The task graph as SVG, drawn by Graphviz's ``dot`` program;
        ``RuntimeError`` naming it when it is not installed."""
        return _graph.to_svg(self.to_dot())
