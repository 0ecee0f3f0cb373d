"""Control from any thread: stop, priorities, retry, group policies."""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable, Iterable
from typing import Any

from ._fields import (
    UPSTREAM_POLICIES,
    SchedulerFields,
)
from ._task import (
    _NO_OPTIONS,
    CANCELLED,
    CANCELLING,
    FAILED,
    PENDING,
    QUEUED,
    Task,
)
from ._validate import check_hashable, check_priority


class Control(SchedulerFields):
    """What callers do to tasks that exist."""

    def stop(
        self, task_id: object, stop_upstream: bool = True, stop_downstream: bool = True
    ) -> bool:
        """Stop a task; False if it had already ended (or the call was deferred, see _defer)."""
        if self._defer(self.stop, task_id, stop_upstream, stop_downstream):
            return False
        with self._lock:
            task = self._get(task_id, "stop_task")
            if task.state.is_terminal or task.state is CANCELLING:
                return False
            self._stop_many([task], stop_upstream, stop_downstream)
        self._after()
        return True

    def stop_group(
        self, group: Hashable, stop_upstream: bool = True, stop_downstream: bool = True
    ) -> None:
        check_hashable("group", group)
        if self._defer(self.stop_group, group, stop_upstream, stop_downstream):
            return
        with self._lock:
            members = self._groups.get(group)
            if members:
                self._stop_many(list(members.values()), stop_upstream, stop_downstream)
        self._after()

    def stop_all(self) -> None:
        if self._defer(self.stop_all):
            return
        with self._lock:
            live = [t for t in self._tasks.values() if not t.state.is_terminal]
            self._stop_many(live, False, False)
        self._after()

    def stop_uids(self, uids: Iterable[int]) -> None:
        """Stop these tasks (those not yet forgotten) and their dependents."""
        uids = list(uids)
        if self._defer(self.stop_uids, uids):
            return
        with self._lock:
            tasks = [t for t in map(self._tasks.get, uids) if t is not None]
            self._stop_many([t for t in tasks if not t.state.is_terminal], False, True)
        self._after()

    def _stop_many(self, tasks: list[Task], stop_upstream: bool, stop_downstream: bool) -> None:
        targets: dict[int, Task] = {}
        todo = list(tasks)
        while todo:
            t = todo.pop()
            if t.uid in targets or t.state.is_terminal:
                continue
            targets[t.uid] = t
            if stop_upstream:
                for up in t.upstream:
                    parent = self._tasks.get(up)
                    if parent is not None:
                        todo.append(parent)
            if stop_downstream:
                todo.extend(t.downstream)
        for t in targets.values():
            self._cancel(t)
        self._flush_wake()

    def set_priority(self, uid: object, priority: object) -> None:
        prio = check_priority("priority", priority)
        if self._defer(self.set_priority, uid, priority):
            return
        with self._lock:
            task = self._get(uid, "set_priority")
            if task.state not in (PENDING, QUEUED):
                raise ValueError(
                    f"task {uid} is {task.state.name}: only pending or queued tasks change priority"
                )
            self._reprioritise(task, prio)
        self._after()

    def set_group_priority(self, group: Hashable, priority: object) -> int:
        """Give every pending or queued task of ``group`` this priority; returns how many."""
        check_hashable("group", group)
        prio = check_priority("priority", priority)
        if self._defer(self.set_group_priority, group, priority):
            return 0
        with self._lock:
            members = self._groups.get(group, {})
            changed = 0
            for task in members.values():
                if task.state is PENDING or task.state is QUEUED:
                    self._reprioritise(task, prio)
                    changed += 1
        self._after()
        return changed

    def retry(self, uid: object, handle: Any = None) -> None:
        """Run a failed or cancelled task again, with the failed or cancelled
        tasks upstream of it (repair and re-run).  ``handle`` follows the new run."""
        if self._defer(self.retry, uid, handle):
            return
        with self._lock:
            if self._closed:
                raise RuntimeError("this task manager has been shut down; it accepts no new tasks")
            task = self._get(uid, "retry")
            if task.state not in (FAILED, CANCELLED):
                raise ValueError(
                    f"task {uid} is {task.state.name}: only failed or cancelled tasks can be retried"
                )
            if task.fn is None:
                raise ValueError(f"task {uid} can no longer be retried: its function was released")
            self._revive(task, handle)
            spawn = self._spawn_count()
            self._flush_wake()
        if spawn:
            self._spawn(spawn)
        self._after()

    def _revive(self, task: Task, handle: Any = None) -> None:
        """retry(): back to PENDING, the failed or cancelled tasks upstream first
        (an iterative post-order walk: chains of any length)."""
        tasks = self._tasks
        order: list[Task] = []
        seen = {task.uid}
        stack = [(task, iter(task.upstream))]
        while stack:
            t, ups = stack[-1]
            for up in ups:
                parent = tasks.get(up)
                if (
                    parent is not None
                    and parent.uid not in seen
                    and parent.state in (FAILED, CANCELLED)
                    and parent.fn is not None
                ):
                    seen.add(parent.uid)
                    stack.append((parent, iter(parent.upstream)))
                    break
            else:
                stack.pop()
                order.append(t)
        revived = {t.uid for t in order}
        self._finished = deque(u for u in self._finished if u not in revived)
        grave = self._grave
        for t in order:
            grave.append((t.error, t.handles))
            self._move(t, PENDING)
            t.error = None
            t.handles = [handle] if handle is not None and t is task else None
            t.cancel_event = None  # a stop of the last run is not a stop of this one
            t.retry_base = t.attempts
            t.message = t.traceback = ""
            t.ended = None
            t.timed_out = False
            t.progress = None
            t.progress_message = ""
            members = self._groups.get(t.group)
            if members is None:
                members = self._groups[t.group] = {}
            members[t.uid] = t
            # It may still be listed downstream of a live upstream task (it was
            # stopped while that one ran): wired once, counted once.
            for up in t.upstream:
                parent = tasks.get(up)
                if parent is not None and parent.downstream and t in parent.downstream:
                    parent.downstream = [c for c in parent.downstream if c is not t]
            self._wire_upstream(t)

    def _cancel_older(self, task: Task) -> None:
        """Exclusive: the group's older tasks that have not started are cancelled,
        except those the new task waits for (directly or not)."""
        members = self._groups.get(task.group)
        if not members:
            return
        older = [t for t in members.values() if t is not task and t.state in (PENDING, QUEUED)]
        if not older:
            return
        ancestors: set[int] = set()
        todo = list(task.upstream)
        tasks = self._tasks
        while todo:
            up = todo.pop()
            if up in ancestors:
                continue
            ancestors.add(up)
            parent = tasks.get(up)
            if parent is not None and not parent.state.is_terminal:
                todo.extend(parent.upstream)
                if parent.work is not None:  # a keyed request waits through its shared work
                    todo.append(parent.work.uid)
        for t in older:
            if t.uid not in ancestors and t.state in (PENDING, QUEUED):
                self._cancel(t)

    def set_group_policy(self, group: Hashable, policy: object) -> None:
        check_hashable("group", group)
        if policy not in UPSTREAM_POLICIES:
            raise ValueError(f"on_upstream_failure must be 'fail' or 'cancel', got {policy!r}")
        with self._lock:
            self._group_policy[group] = policy

    def _policy(self, task: Task) -> str:
        if task.opts is not _NO_OPTIONS and task.opts.policy != "fail":
            return task.opts.policy
        return self._group_policy.get(task.group, "fail") if self._group_policy else "fail"
