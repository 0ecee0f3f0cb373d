"""The registry of tasks: registration and read-only queries."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from ._events import (
    TASK_ADDED,
)
from ._fields import (
    ANY_GROUP,
    SchedulerFields,
)
from ._state import TaskInfo, TaskState
from ._task import (
    _HIDDEN,
    Task,
)
from ._validate import check_hashable


class Registry(SchedulerFields):
    """Every task not yet forgotten, by uid and by group; snapshots of them."""

    def _register(self, task: Task) -> None:
        self._tasks[task.uid] = task
        group = task.group
        if group is not _HIDDEN:
            members = self._groups.get(group)
            if members is None:
                members = self._groups[group] = {}
            members[task.uid] = task
            if TASK_ADDED in self._watched:
                self._outbox.append((TASK_ADDED, task.uid, group))

    def _get(self, uid: object, what: str) -> Task:
        if not isinstance(uid, int) or isinstance(uid, bool):
            raise TypeError(f"{what} takes a task uid (an int), got {uid!r}")
        task = self._tasks.get(uid)
        if task is None:
            if type(uid) is int and 0 < uid < self._next_uid:
                raise KeyError(
                    f"task {uid} was forgotten: it finished more than keep_finished tasks ago"
                )
            raise KeyError(f"task {uid!r} is unknown: {what} takes a uid of this manager")
        return task

    def _info(self, t: Task) -> TaskInfo:
        started, ended = t.started, t.ended
        runtime = None
        if started is not None:
            runtime = (ended if ended is not None and ended >= started else time.time()) - started
        work = t.work
        src = work if work is not None else t
        return TaskInfo(
            uid=t.uid, name=t.name, group=t.group, state=t.state, priority=t.priority,
            key=t.opts.key, upstream=t.upstream, created=t.created, started=src.started,
            ended=ended, runtime=runtime, progress=src.progress,
            message=src.progress_message, status=src.status, error=t.message,
            traceback=t.traceback, attempts=src.attempts,
        )  # fmt: skip

    def state(self, uid: object) -> TaskState:
        with self._lock:
            return self._get(uid, "task_state").state

    def info(self, uid: object) -> TaskInfo:
        with self._lock:
            return self._info(self._get(uid, "info"))

    def infos_of(self, uids: Iterable[int]) -> dict[int, TaskInfo]:
        """Snapshots of these tasks in one lock hold; forgotten or unknown uids are left out."""
        with self._lock:
            tasks = self._tasks
            return {
                uid: self._info(task)
                for uid in uids
                if (task := tasks.get(uid)) is not None and task.group is not _HIDDEN
            }

    def infos(self, group: object = ANY_GROUP, state: TaskState | None = None) -> list[TaskInfo]:
        if state is not None and not isinstance(state, TaskState):
            raise TypeError(
                f"state must be a TaskState or None, got {state!r}"
                + (f" (use TaskState.{state})" if state in TaskState.__members__ else "")
            )
        if group is not ANY_GROUP:
            check_hashable("group", group)
        with self._lock:
            return [
                self._info(t)
                for t in self._tasks.values()
                if t.group is not _HIDDEN
                and (group is ANY_GROUP or t.group == group)
                and (state is None or t.state is state)
            ]

    def state_counts(self) -> dict[TaskState, int]:
        with self._lock:
            counts = dict.fromkeys(TaskState, 0)
            for t in self._tasks.values():
                if t.group is not _HIDDEN:
                    counts[t.state] += 1
            return counts

    def add_handle(self, uid: object, handle: Any) -> TaskState:
        with self._lock:
            task = self._get(uid, "handle")
            if task.state.is_terminal:
                self._resolve_one(handle, task)
            elif task.handles is None:
                task.handles = [handle]
            else:
                task.handles.append(handle)
            return task.state

    def counts(self) -> dict[str, int]:
        with self._lock:
            return {
                "live": sum(1 for t in self._tasks.values() if not t.state.is_terminal),
                "queued": self._n_ready,
                "workers": self._active,
                "keys": len(self._keys),
                "cached": len(self._cache),
            }

    def graph(self) -> list[tuple[int, str, TaskState, tuple[int, ...]]]:
        """(uid, name, state, upstream uids) of every task still registered."""
        with self._lock:
            return [
                (t.uid, t.name, t.state, t.upstream if t.work is None else (t.work.uid,))
                for t in self._tasks.values()
            ]
