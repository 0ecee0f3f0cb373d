"""How tasks end, and what their ends do to the tasks that depend on them."""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from ._errors import TaskCancelled, UpstreamFailed, describe
from ._events import (
    GROUP_FINISHED,
    TASK_CANCELLED,
    TASK_COMPLETED,
    TASK_FAILED,
    TASK_STATE,
)
from ._fields import (
    SchedulerFields,
)
from ._state import TRANSITIONS, IllegalTransition, TaskState
from ._task import (
    _HIDDEN,
    CANCELLED,
    CANCELLING,
    COMPLETED,
    FAILED,
    PENDING,
    QUEUED,
    RUNNING,
    Task,
)


class Transitions(SchedulerFields):
    """State transitions and propagation, with work lists (never recursion)."""

    def _wire_upstream(self, task: Task) -> None:
        """Count the upstream tasks a new (or revived) task waits for."""
        failed_by: tuple[int, str, str] | None = None
        cancelled_by = False
        waiting = 0
        kwargs = task.kwargs
        tasks = self._tasks
        for up in task.upstream:
            parent = tasks.get(up)
            if parent is None:  # forgotten: it finished long ago
                ended = self._ended.get(up)
                if ended is None:
                    continue  # completed (or forgotten beyond ENDED_MEMORY)
                if ended[0] is FAILED:
                    failed_by = failed_by or (up, ended[1], ended[2])
                else:
                    cancelled_by = True
                continue
            state = parent.state
            if state is COMPLETED:
                result = parent.result
                if type(result) is dict:
                    kwargs.update(result)  # type: ignore[union-attr]
                elif result is not None and parent.merge is not None:
                    kwargs.update(parent.merge)  # type: ignore[union-attr]
            elif state is FAILED:
                failed_by = failed_by or (parent.uid, parent.message, parent.traceback)
            elif state is CANCELLED or state is CANCELLING:
                cancelled_by = True
            else:
                if parent.downstream:
                    parent.downstream.append(task)
                else:
                    parent.downstream = [task]
                waiting += 1
        task.waiting = waiting
        if failed_by is not None:
            up, message, tb = failed_by
            if self._policy(task) == "cancel":
                self._cancel(task)
            else:
                self._fail(task, UpstreamFailed(task.uid, up, message), tb, message)
        elif cancelled_by:
            self._cancel(task)
        elif waiting == 0:
            self._queue(task)

    def _move(self, task: Task, new: TaskState) -> None:
        if new not in TRANSITIONS[task.state]:
            raise IllegalTransition(task.uid, task.state, new)
        task.state = new
        if self._watch_states and task.group is not _HIDDEN:
            self._outbox.append((TASK_STATE, task.uid, task.group, new._value_))

    def _end(self, task: Task, state: TaskState, event: tuple[Any, ...] | None) -> None:
        """Move a task to a terminal state, queue its event, account for its group."""
        if state not in TRANSITIONS[task.state]:
            raise IllegalTransition(task.uid, task.state, state)
        task.state = state
        group = task.group
        if self._watch_states and group is not _HIDDEN:
            self._outbox.append((TASK_STATE, task.uid, group, state._value_))
        task.ended = time.time()
        if state is COMPLETED or task.work is not None:
            # failed/cancelled keep them for retry.  A worker that ran the task
            # still holds them: they never die here, under the lock.
            task.fn = task.args = task.kwargs = None
        if task.progress_dirty:  # the final progress goes out before the end
            task.progress_dirty = False
            if not task.progress_queued:
                self._queue_progress(task, time.monotonic())
        if event is not None and group is not _HIDDEN:
            self._outbox.append(event)
            task.pending += 1
        if task.mirrors is not None:
            if self._keys.get(task.opts.key) is task:
                del self._keys[task.opts.key]
        elif group is not _HIDDEN:
            members = self._groups[group]
            del members[task.uid]
            if state is not CANCELLED:
                self._groups_reported.add(group)
            if not members:
                del self._groups[group]
                if group in self._groups_reported:
                    self._groups_reported.discard(group)
                    self._outbox.append((GROUP_FINISHED, group))
        finished = self._finished
        finished.append(task.uid)
        if len(finished) > self.keep_finished and not self._tasks[finished[0]].pending:
            self._trim_finished()

    def _complete(self, task: Task, value: Any, merge: dict[str, Any] | None = None) -> None:
        """Complete a task with ``value``; ``merge`` is the dict its dependents
        merge when ``value`` is a dict subclass (made outside the lock)."""
        task.result = value
        if type(value) is dict:
            merge = value
        elif merge is not None:
            task.merge = merge
        self._end(task, COMPLETED, (TASK_COMPLETED, task.uid, task.group, value))
        if task.handles:
            self._resolve_handles(task)
        for child in task.downstream:
            if child.state is PENDING:
                if merge:
                    child.kwargs.update(merge)  # type: ignore[union-attr]
                child.waiting -= 1
                if child.waiting == 0:
                    self._queue(child)
        task.downstream = ()
        mirrors = task.mirrors
        if mirrors is not None:
            if self.cache_size > 0:
                cache = self._cache
                cache[task.opts.key] = (value, merge if type(value) is not dict else None)
                cache.move_to_end(task.opts.key)
                while len(cache) > self.cache_size:
                    self._grave.append(cache.popitem(last=False))
            task.mirrors = []
            for m in mirrors:
                if m.state is PENDING:
                    self._complete(m, value, merge)
            # The shared work's result is the requests' now: not kept here.
            task.result = None
            if merge is not None and task.merge is not None:
                task.merge = None
            self._grave.append(value)

    def _fail(self, task: Task, error: BaseException, tb: str, message: str | None = None) -> None:
        """Fail a task; every task downstream of it fails (or is cancelled, by
        policy), and so do the requests mirroring a failed shared work.  A work
        list, not recursion: chains of any length."""
        if message is None:
            message = describe(error)  # ours (a timeout): the worker's come with one
        # (task, its error, the uid its dependents name as the failed upstream)
        todo: deque[tuple[Task, BaseException | None, int]] = deque([(task, error, task.uid)])
        first = True
        while todo:
            t, err, origin = todo.popleft()
            if first:
                first = False
            elif t.state is not PENDING:
                continue  # ended already, e.g. reached twice through a diamond
            if err is None:  # downstream of a failed task
                if self._policy(t) == "cancel":
                    self._cancel(t)
                    continue
                err = UpstreamFailed(t.uid, origin, message)
            else:
                origin = t.uid
            t.error = err
            t.message = message
            t.traceback = tb
            # the handles this failure resolves ride along: delivery tells whether
            # anyone observes the failure (qt/_delivery.py, never silent)
            self._end(t, FAILED, (TASK_FAILED, t, message, tb, t.handles))
            if t.handles:
                self._resolve_handles(t)
            children, t.downstream = t.downstream, ()
            for child in children:
                todo.append((child, None, origin))
            mirrors = t.mirrors
            if mirrors:
                t.mirrors = []
                for m in mirrors:
                    todo.append((m, err, origin))

    def _end_stopped(self, task: Task) -> None:
        """A CANCELLING task's run returned: it ends CANCELLED, or FAILED if it timed out."""
        if task.timed_out:
            error = TimeoutError(f"task {task.uid} timed out after {task.opts.timeout} s")
            self._fail(task, error, "")
        else:
            self._end_cancelled(task)

    def _end_cancelled(self, task: Task, todo: list[Task] | None = None) -> None:
        """End a task CANCELLED; what depends on it is stopped too: pushed onto
        ``todo`` (for _cancel_all's loop), or stopped here."""
        self._end(task, CANCELLED, (TASK_CANCELLED, task))
        if task.handles:
            self._resolve_handles(task)
        children, task.downstream = task.downstream, ()
        mirrors = task.mirrors
        if mirrors:  # the shared work was cancelled: so are its requests
            task.mirrors = []
        if todo is None:
            todo = []
            self._push_dependents(todo, children, mirrors)
            if todo:
                self._cancel_loop(todo)
        else:
            self._push_dependents(todo, children, mirrors)

    @staticmethod
    def _push_dependents(todo: list[Task], children: Any, mirrors: list[Task] | None) -> None:
        # reversed: the stack pops them in their own order (depth first)
        if mirrors:
            todo.extend(m for m in reversed(mirrors) if m.state is PENDING)
        if children:
            todo.extend(c for c in reversed(children) if c.state is PENDING)

    def _request_stop(self, task: Task) -> None:
        self._move(task, CANCELLING)
        if task.cancel_event is not None:
            task.cancel_event.set()

    def _cancel(self, task: Task) -> None:
        """Stop a task; its dependents can never run, so stop them too."""
        self._cancel_loop([task])

    def _cancel_loop(self, todo: list[Task]) -> None:
        while todo:
            t = todo.pop()
            state = t.state
            if state is RUNNING:
                self._request_stop(t)  # the worker ends it in finish()
                children, t.downstream = t.downstream, ()
                self._push_dependents(todo, children, None)
            elif state is PENDING or state is QUEUED:
                if state is QUEUED:
                    self._n_ready -= 1
                    if t.parked:
                        t.parked = False
                        self._n_parked -= 1
                self._end_cancelled(t, todo)
                work = t.work
                if work is not None and work.mirrors:
                    try:
                        work.mirrors.remove(t)
                    except ValueError:
                        pass
                    if not work.mirrors and not work.state.is_terminal:
                        todo.append(work)  # the last requester gave up

    def _resolve_handles(self, task: Task) -> None:
        handles = task.handles
        if handles:
            for h in handles:
                self._resolve_one(h, task)
            # resolved once: the task keeps no handle (nor its result) alive
            task.handles = None
            self._grave.append(handles)

    def _resolve_one(self, handle: Any, task: Task) -> None:
        state = task.state
        if handle.done():
            return
        if state is COMPLETED:
            handle._resolve(state, task.result, None)
        elif state is FAILED:
            handle._resolve(state, None, task.error)
        else:  # CANCELLED, or CANCELLING after close(): its outcome will not be reported
            handle._resolve(CANCELLED, None, TaskCancelled(f"task {task.uid} was cancelled"))
