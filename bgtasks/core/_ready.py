"""The ready queue: a heap with lazy deletion, claims, and how many workers to use."""

from __future__ import annotations

import heapq
import time

from ._events import (
    TASK_STARTED,
    TASK_STATE,
)
from ._fields import (
    WIDEN_AFTER,
    SchedulerFields,
)
from ._task import (
    _HIDDEN,
    PENDING,
    QUEUED,
    RUNNING,
    Task,
)


class Ready(SchedulerFields):
    """Queued tasks by priority (FIFO among equals), and the adaptive worker count."""

    def _queue(self, task: Task) -> None:
        self._move(task, QUEUED)
        heapq.heappush(self._ready, (-task.priority, task.uid))
        self._n_ready += 1

    def _reprioritise(self, task: Task, priority: float) -> None:
        if priority == task.priority:
            return  # nothing changes: no new heap entry
        task.priority = priority
        if task.state is QUEUED and not task.parked:  # the old heap entry goes stale
            ready = self._ready
            heapq.heappush(ready, (-priority, task.uid))
            if len(ready) > 2 * self._n_ready + 1024:
                self._compact_ready()
        work = task.work
        if work is not None and work.mirrors and work.state in (PENDING, QUEUED):
            # a keyed request: its shared work runs at its requesters' highest priority
            top = max(m.priority for m in work.mirrors)
            if top != work.priority:
                self._reprioritise(work, top)

    def _compact_ready(self) -> None:
        """Drop the ready heap's stale entries (priority changes leave them)."""
        seen: set[int] = set()
        live = []
        tasks = self._tasks
        for entry in self._ready:
            prio, uid = entry
            task = tasks.get(uid)
            if (
                task is not None
                and task.state is QUEUED
                and -prio == task.priority
                and not task.parked
            ):
                if uid not in seen:
                    seen.add(uid)
                    live.append(entry)
        heapq.heapify(live)
        self._grave.append(self._ready)
        self._ready = live

    def _claim(self) -> Task | None:
        if self._paused or self._closed:
            return None
        ready = self._ready
        tasks = self._tasks
        while ready:
            prio, uid = heapq.heappop(ready)
            task = tasks.get(uid)
            if task is None or task.state is not QUEUED or -prio != task.priority or task.parked:
                continue  # stale entry
            res = task.opts.resources
            if res and not self._acquire(task, res):
                continue  # parked until a resource frees up
            self._n_ready -= 1
            task.attempts += 1
            task.started = time.time()
            task.state = RUNNING  # QUEUED -> RUNNING, always allowed
            if self._watched:
                self._announce_start(task)
            timeout = task.opts.timeout
            if timeout is not None:
                self._add_timer(timeout, "timeout", task)
            return task
        return None

    def _announce_start(self, task: Task) -> None:
        if task.group is _HIDDEN:
            pass
        elif self._watch_states:
            self._outbox.append((TASK_STATE, task.uid, task.group, RUNNING._value_))
        if TASK_STARTED in self._watched:
            if task.mirrors is None:
                self._outbox.append((TASK_STARTED, task))
            else:
                for m in task.mirrors:
                    m.started = task.started
                    self._outbox.append((TASK_STARTED, m))

    def _spawn_count(self) -> int:
        if self._paused or self._closed:
            return 0
        # Active workers may all be busy with long tasks: every ready task may
        # get a new worker, up to the target.
        ready = self._n_ready - self._n_parked
        want = min(ready, self._target - self._active)
        if (
            ready
            and self._active >= self._target
            and self._target < self._max_workers
            and self._widen_mark < 0
        ):
            self._widen_mark = self._finish_count
            self._add_timer(WIDEN_AFTER, "widen", None)  # type: ignore[arg-type]
        if want > 0:
            self._active += want
            return want
        return 0
