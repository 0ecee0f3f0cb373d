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
        """Change the priority of a pending or queued task.  Any thread.

        Args:
            uid: The task's uid.
            priority: The new priority (higher runs first; ``None`` counts as 0).

        Raises:
            TypeError: ``uid`` is not an int, or ``priority`` is not a number.
            KeyError: a uid this manager never issued, or one forgotten.
            ValueError: the task is no longer pending or queued.
        """
        self._scheduler.set_priority(uid, priority)

    def set_group_priority(self, group: Hashable, priority: float) -> int:
        """Give every pending or queued task of ``group`` this priority.  Any thread.

        For example, visible thumbnails first.  Costs O(k log n) for the
        group's k tasks.

        Args:
            group: The group (any hashable value, ``None`` included).
            priority: The new priority (higher runs first).

        Returns:
            How many tasks changed (0 if the calling thread holds the
            scheduler's lock: the change is then applied when it is released).

        Raises:
            TypeError: ``group`` is unhashable, or ``priority`` is not a number.
        """
        return self._scheduler.set_group_priority(group, priority)

    def retry(self, uid: int) -> TaskHandle[Any]:
        """Run a failed or cancelled task again, the failed or cancelled tasks upstream first.

        A handle is the outcome of one run: handles taken before keep the
        outcome they had (a future never changes once done); the returned one
        (and ``handle`` from now on) follows the new run.  Any thread;
        its signals arrive on the manager's thread.

        Args:
            uid: The task's uid.

        Returns:
            A handle on the new run.

        Raises:
            TypeError: ``uid`` is not an int.
            KeyError: a uid this manager never issued, or one forgotten.
            ValueError: the task is not failed or cancelled, or its function
                was released.
            RuntimeError: the manager is shut down.
        """
        handle: TaskHandle[Any] = TaskHandle(cast("HandleOwner", self))
        handle.uid = uid
        self._scheduler.retry(uid, handle)
        return handle

    def set_settings(self, uid: int, value: Any) -> None:
        """Post ``value`` to the task's settings mailbox (latest wins).  Any thread.

        The running task adopts it, on its worker thread, with
        ``current_task().update_settings()``.

        Args:
            uid: The task's uid.
            value: The new settings, any object.

        Raises:
            TypeError: ``uid`` is not an int.
            KeyError: a uid this manager never issued, or one forgotten.
        """
        self._scheduler.set_settings(uid, value)

    def set_resource_limit(self, name: str, limit: int) -> None:
        """Allow at most ``limit`` units of resource ``name`` in use at once.  Any thread.

        Tasks name the units they need with ``options(resources={name: n})``;
        raising a limit starts the tasks that waited for it.

        Args:
            name: The resource's name.
            limit: Units that may be in use at once, at least 1.

        Raises:
            TypeError: ``name`` is not a non-empty string.
            ValueError: ``limit`` is not a positive int.
        """
        self._scheduler.set_resource_limit(name, limit)

    def set_group_policy(self, group: Hashable, on_upstream_failure: str) -> None:
        """Set the default ``on_upstream_failure`` of a group's tasks.  Any thread.

        Args:
            group: The group (any hashable value, ``None`` included).
            on_upstream_failure: ``"fail"`` or ``"cancel"``; a task's own
                option wins over it.

        Raises:
            TypeError: ``group`` is unhashable.
            ValueError: ``on_upstream_failure`` is neither ``"fail"`` nor ``"cancel"``.
        """
        self._scheduler.set_group_policy(group, on_upstream_failure)

    @property
    def cache_size(self) -> int:
        """How many finished results are kept by ``key`` (0: none).

        Read on any thread; set on the manager's thread (``ValueError``
        for a value that is not a non-negative int).
        """
        return self._scheduler.cache_size

    @cache_size.setter
    def cache_size(self, size: int) -> None:
        self._scheduler.configure(cache_size=check_count("cache_size", size))

    @property
    def progress_interval(self) -> float:
        """Least seconds between two ``task_progress`` of one task (default 0.04: 25/s).

        Read on any thread; set on the manager's thread (``ValueError``
        for a value that is not a non-negative number of seconds).
        """
        return self._scheduler.progress_interval

    @progress_interval.setter
    def progress_interval(self, seconds: float) -> None:
        self._scheduler.configure(progress_interval=check_seconds("progress_interval", seconds))

    @property
    def keep_finished(self) -> int:
        """How many finished tasks stay in the registry (``info``) before the oldest go.

        Read on any thread; set on the manager's thread (``ValueError``
        for a value that is not a non-negative int).
        """
        return self._scheduler.keep_finished

    @keep_finished.setter
    def keep_finished(self, count: int) -> None:
        self._scheduler.configure(keep_finished=check_count("keep_finished", count))

    def task_state(self, uid: int) -> TaskState:
        """The task's state.  Any thread.

        Args:
            uid: The task's uid.

        Returns:
            Its state now.

        Raises:
            TypeError: ``uid`` is not an int.
            KeyError: a uid this manager never issued, or one forgotten (see
                ``keep_finished``).
        """
        return self._scheduler.state(uid)

    def info(self, uid: int) -> TaskInfo:
        """A frozen snapshot of one task.  Any thread.

        Args:
            uid: The task's uid.

        Returns:
            Its ``TaskInfo``.

        Raises:
            TypeError: ``uid`` is not an int.
            KeyError: a uid this manager never issued, or one forgotten.
        """
        return self._scheduler.info(uid)

    def infos(self, uids: Iterable[int]) -> dict[int, TaskInfo]:
        """Snapshots of many tasks at once.  Any thread.

        One lock hold, so one wait for the GIL-bound workers, not one per task.

        Args:
            uids: The tasks' uids.

        Returns:
            A ``TaskInfo`` by uid; uids not registered are left out.
        """
        return self._scheduler.infos_of(uids)

    def tasks(self, group: Hashable = ANY_GROUP, state: TaskState | None = None) -> list[TaskInfo]:
        """Snapshots of every registered task, or of one group, or in one state.  Any thread.

        Args:
            group: Only the tasks of this group (default: every group).
            state: Only the tasks in this state (default: every state).

        Returns:
            The tasks' ``TaskInfo``.

        Raises:
            TypeError: ``state`` is not a TaskState or None, or ``group`` is
                unhashable.
        """
        return self._scheduler.infos(group, state)

    def state_counts(self) -> dict[TaskState, int]:
        """How many registered tasks are in each state.  Any thread."""
        return self._scheduler.state_counts()

    def clear_finished(self) -> int:
        """Forget every finished task.  Any thread.

        ``task_removed`` is emitted for each, on the manager's thread.

        Returns:
            How many were forgotten.
        """
        return self._scheduler.clear_finished()

    @property
    def max_threads(self) -> int:
        """The most threads the manager's pool runs at once (``max_threads``).  Any thread."""
        return self._pool.maxThreadCount()

    def to_dot(self) -> str:
        """The task graph in Graphviz DOT.  Any thread.

        Returns:
            DOT text: a node per registered task labelled with its name and
            state, coloured by state, edges to dependents.
        """
        return _graph.to_dot(self._scheduler.graph())

    def to_svg(self) -> str:
        """The task graph as SVG, drawn by Graphviz's ``dot`` program.

        Any thread; it blocks while ``dot`` runs, so prefer a worker over the
        UI thread for a large graph.

        Returns:
            The SVG text.

        Raises:
            RuntimeError: ``dot`` is not installed, or it failed (the message
                says which).
        """
        return _graph.to_svg(self.to_dot())
