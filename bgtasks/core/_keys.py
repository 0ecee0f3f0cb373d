"""Deduplication by key: requests share one hidden work task, or a cached result."""

from __future__ import annotations

from ._fields import (
    SchedulerFields,
)
from ._task import (
    _HIDDEN,
    CANCELLING,
    FAILED,
    PENDING,
    QUEUED,
    Task,
)


class Keys(SchedulerFields):
    """Keyed requests mirror a shared work task's outcome."""

    def _attach_to_key(self, request: Task) -> None:
        """A keyed task: share the live work for its key, or the cached result."""
        key = request.opts.key
        if key in self._cache:
            self._cache.move_to_end(key)
            request.fn = request.args = request.kwargs = None
            value, merge = self._cache[key]
            self._complete(request, value, merge)
            return
        work = self._keys.get(key)
        if work is None or work.state is CANCELLING:
            # The work is a hidden task that runs the function; every request
            # (this one included) mirrors its outcome.  Work that is being
            # cancelled is not joined: it stays the key's until it ends.
            work = Task(self._next_uid, request.name, request.fn, request.args, request.kwargs,
                        request.priority, _HIDDEN, request.upstream, request.opts)  # fmt: skip
            self._next_uid += 1
            work.mirrors = []
            self._register(work)
            self._keys[key] = work
            self._wire_upstream(work)
        elif request.priority > work.priority and work.state in (PENDING, QUEUED):
            self._reprioritise(work, request.priority)
        request.fn = request.args = request.kwargs = None
        request.upstream = ()  # stopping a request must not stop the shared work's upstream
        request.work = work
        if work.state.is_terminal:  # failed or cancelled at once (its upstream)
            self._mirror(request, work)
        else:
            work.mirrors.append(request)  # type: ignore[union-attr]

    def _mirror(self, request: Task, work: Task) -> None:
        if work.state is FAILED:
            self._fail(request, work.error, work.traceback, work.message)  # type: ignore[arg-type]
        else:
            self._end_cancelled(request)
