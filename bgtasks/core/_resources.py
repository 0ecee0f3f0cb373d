"""Resource limits: tasks that need a resource in use wait parked."""

from __future__ import annotations

import heapq

from ._fields import (
    SchedulerFields,
)
from ._task import (
    QUEUED,
    Task,
)


class Resources(SchedulerFields):
    """Counted resources; a queued task that cannot have one is parked until one is released."""

    def set_resource_limit(self, name: object, limit: object) -> None:
        if not isinstance(name, str) or not name:
            raise TypeError(f"resource name must be a non-empty string, got {name!r}")
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"resource limit must be a positive integer, got {limit!r}")
        with self._lock:
            self._limits[name] = limit
            self._unpark(name)
            spawn = self._spawn_count()
        if spawn:
            self._spawn(spawn)

    def _acquire(self, task: Task, res: dict[str, int]) -> bool:
        in_use, limits = self._in_use, self._limits
        for name, amount in res.items():
            if in_use.get(name, 0) + amount > limits[name]:
                self._parked.setdefault(name, []).append(task)
                task.parked = True
                self._n_parked += 1
                return False
        for name, amount in res.items():
            in_use[name] = in_use.get(name, 0) + amount
        return True

    def _release_resources(self, task: Task) -> None:
        res = task.opts.resources
        if res:
            for name, amount in res.items():
                self._in_use[name] -= amount
                self._unpark(name)

    def _unpark(self, name: str) -> None:
        parked = self._parked.pop(name, None)
        if parked:
            for t in parked:
                if t.parked:  # not cancelled (or claimed) since
                    t.parked = False
                    self._n_parked -= 1
                    if t.state is QUEUED:
                        heapq.heappush(self._ready, (-t.priority, t.uid))
