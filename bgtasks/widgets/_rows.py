"""The row store of ``TaskModel``: its task and group rows.

Plain Python, no Qt: the model calls these methods between its
``begin…Rows`` and ``end…Rows`` calls, and reads the containers directly
in its per-row Qt methods (no call per row).  The store never rebinds a
container, so a reference taken once stays the live one.

GUI thread only (the thread of the model that owns the store).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterable
from itertools import islice
from typing import Any

from ..core._state import TaskInfo, TaskState

#: States whose elapsed time ticks.
ACTIVE = frozenset({TaskState.RUNNING, TaskState.CANCELLING})
#: States of a task that has not ended.
LIVE = (TaskState.PENDING, TaskState.QUEUED, TaskState.RUNNING, TaskState.CANCELLING)


class TaskRow:
    """One task's row: its latest snapshot, its group row (None when flat) and row number."""

    __slots__ = ("uid", "info", "parent", "row")

    def __init__(self, info: TaskInfo, parent: GroupRow | None, row: int) -> None:
        self.uid = info.uid
        self.info = info
        self.parent = parent
        self.row = row


class GroupRow:
    """One group's row (grouped mode): its tasks' rows and their cached counts by state."""

    __slots__ = ("key", "gid", "row", "children", "counts")

    def __init__(self, key: Any, gid: int, row: int) -> None:
        self.key = key
        self.gid = gid  # the internalId of its children's indexes
        self.row = row
        self.children: list[TaskRow] = []
        self.counts: dict[TaskState, int] | None = None  # cached, None when stale


class RowStore:
    """The rows of a model, flat (``top``) or grouped (``groups``), and what is kept about them."""

    def __init__(self, grouped: bool, order_of: Callable[[Any], str] | None = None) -> None:
        self.grouped = grouped
        # grouped: a group row's place is by order_of(key), the natural order of
        # its label; group_order holds those values, row by row (None: appended)
        self._order_of = order_of
        self.group_order: list[str] = []
        self.top: list[TaskRow] = []  # flat mode: the rows
        self.groups: list[GroupRow] = []  # grouped mode: the top rows
        self.group_of_key: dict[Any, GroupRow] = {}
        self.group_of_gid: dict[int, GroupRow] = {}
        self._next_gid = 1
        self.nodes: dict[int, TaskRow] = {}
        self.group_sizes: dict[Any, int] = {}  # group -> rows, in order of appearance
        self.active: set[int] = set()  # uids shown running: elapsed ticks
        self.counts: dict[TaskState, int] = dict.fromkeys(TaskState, 0)  # rows per state
        # The window of finished rows: uids of the rows showing a finished task,
        # oldest first (the order the model saw them finish).  Those chosen to
        # leave it (``trim``) are out of ``finished`` and wait in ``trimming``
        # for their rows to go; then they are ``hidden``: no row, still counted.
        self.finished: dict[int, None] = {}
        self.trimming: set[int] = set()
        self.hidden: dict[int, TaskState] = {}
        self.hidden_counts: dict[TaskState, int] = dict.fromkeys(TaskState, 0)
        #: Bumped whenever a group gets its first row or loses its last one.
        self.groups_version = 0

    def uids(self) -> list[int]:
        """Every task uid, in row order (groups in order in grouped mode)."""
        if self.grouped:
            return [n.uid for g in self.groups for n in g.children]
        return [n.uid for n in self.top]

    def live_rows(self) -> int:
        """How many task rows show a task that has not ended."""
        counts = self.counts
        return sum(counts[state] for state in LIVE)

    def live_uids(self, leave_out: set[int]) -> set[int]:
        """The uids of the rows whose task has not ended, but those in ``leave_out``."""
        return {
            uid
            for uid, node in self.nodes.items()
            if not node.info.state.is_terminal and uid not in leave_out
        }

    def still_live(self, uids: Iterable[int]) -> set[int]:
        """Those of ``uids`` whose row is there and shows a task that has not ended."""
        nodes = self.nodes
        return {
            uid
            for uid in uids
            if (node := nodes.get(uid)) is not None and not node.info.state.is_terminal
        }

    def rows_of(self, group: GroupRow | None) -> list[TaskRow]:
        """The task rows under ``group``: the top rows for ``None``."""
        return self.top if group is None else group.children

    def place_of(self, key: Any) -> int:
        """The row a new group row of ``key`` takes: by the natural order of its
        label (after its equals), or below the others without an order."""
        if self._order_of is None:
            return len(self.groups)
        return bisect_right(self.group_order, self._order_of(key))

    def add_group(self, key: Any, row: int) -> GroupRow:
        """A new group row at ``row`` (``place_of(key)``); the rows below move down."""
        group = GroupRow(key, self._next_gid, row)
        self._next_gid += 1
        groups = self.groups
        groups.insert(row, group)
        self.group_order.insert(row, "" if self._order_of is None else self._order_of(key))
        self.group_of_key[key] = group
        self.group_of_gid[group.gid] = group
        for r in range(row + 1, len(groups)):
            groups[r].row = r
        return group

    def drop_group(self, group: GroupRow) -> None:
        """Remove an empty group row; the rows below it move up."""
        groups, row = self.groups, group.row
        del groups[row]
        del self.group_order[row]
        del self.group_of_key[group.key]
        del self.group_of_gid[group.gid]
        for r in range(row, len(groups)):
            groups[r].row = r

    def new_place(self, group: GroupRow) -> int:
        """Where ``group``'s row belongs now (its label changed), counted without
        it: the row it has after ``move_group``."""
        if self._order_of is None:
            return group.row
        order = self.group_order[: group.row] + self.group_order[group.row + 1 :]
        return bisect_right(order, self._order_of(group.key))

    def move_group(self, group: GroupRow, row: int) -> None:
        """Move ``group``'s row to ``row`` (``new_place``); the rows between follow."""
        groups, order, old = self.groups, self.group_order, group.row
        del groups[old]
        key = order.pop(old)
        groups.insert(row, group)
        order.insert(row, key if self._order_of is None else self._order_of(group.key))
        for r in range(min(old, row), max(old, row) + 1):
            groups[r].row = r

    def append(self, group: GroupRow | None, infos: list[TaskInfo]) -> None:
        """Append a row per snapshot under ``group`` (``None``: the top rows)."""
        rows = self.rows_of(group)
        nodes, active, sizes, counts = self.nodes, self.active, self.group_sizes, self.counts
        for row, inf in enumerate(infos, len(rows)):
            size = sizes.get(inf.group, 0)
            if not size:
                self.groups_version += 1
            sizes[inf.group] = size + 1
            state = inf.state
            counts[state] += 1
            node = TaskRow(inf, group, row)
            rows.append(node)
            nodes[inf.uid] = node
            if state in ACTIVE:
                active.add(inf.uid)

    def note_finished(self, infos: Iterable[TaskInfo]) -> None:
        """Put the finished ones of ``infos`` (rows just appended) in the window, in this order."""
        finished = self.finished
        for inf in infos:
            if inf.state.is_terminal:
                finished[inf.uid] = None

    def drop_block(self, rows: list[TaskRow], block: list[TaskRow], forget: set[int]) -> None:
        """Remove ``block``, contiguous rows of ``rows`` listed last first; their
        uids leave ``forget`` too.  The rows below move up."""
        first, last = block[-1].row, block[0].row
        del rows[first : last + 1]
        for row in range(first, len(rows)):
            rows[row].row = row
        nodes, active, sizes, counts = self.nodes, self.active, self.group_sizes, self.counts
        finished, trimming = self.finished, self.trimming
        for node in block:
            uid = node.uid
            state = node.info.state
            counts[state] -= 1
            del nodes[uid]
            forget.discard(uid)
            active.discard(uid)
            finished.pop(uid, None)
            if uid in trimming:  # left the window: no row, still counted
                trimming.discard(uid)
                self.hidden[uid] = state
                self.hidden_counts[state] += 1
            key = node.info.group
            sizes[key] -= 1
            if not sizes[key]:
                del sizes[key]
                self.groups_version += 1

    def update(self, uids: list[int], get: Callable[[int], TaskInfo | None]) -> list[TaskRow]:
        """Give the rows of ``uids`` their new snapshot, ``get(uid)``; returns the
        rows changed (a uid with no row or no snapshot is left alone)."""
        nodes, active, counts, finished = self.nodes, self.active, self.counts, self.finished
        changed: list[TaskRow] = []
        for uid in uids:
            node = nodes.get(uid)
            inf = get(uid)
            if node is None or inf is None:
                continue
            state = inf.state
            counts[node.info.state] -= 1
            counts[state] += 1
            node.info = inf
            if state in ACTIVE:
                active.add(uid)
            else:
                active.discard(uid)
            if state.is_terminal:
                if uid not in finished and uid not in self.trimming:
                    finished[uid] = None
            else:  # retried
                finished.pop(uid, None)
            changed.append(node)
        return changed

    # ------------------------------------------------------------------ the window of finished rows

    def hide(self, uid: int, state: TaskState) -> None:
        """Count a finished task that gets no row (it left the window before it had one)."""
        self.hidden[uid] = state
        self.hidden_counts[state] += 1

    def unhide(self, uid: int) -> bool:
        """Stop counting a hidden task (forgotten, or live again); False if it was not hidden."""
        state = self.hidden.pop(uid, None)
        if state is None:
            return False
        self.hidden_counts[state] -= 1
        return True

    def trim(self, limit: int) -> list[int]:
        """Choose the oldest finished rows beyond ``limit`` to leave the window; their uids."""
        finished = self.finished
        excess = len(finished) - limit
        if excess <= 0:
            return []
        out = list(islice(finished, excess))
        for uid in out:
            del finished[uid]
        self.trimming.update(out)
        return out

    def keep(self, uid: int) -> None:
        """A row chosen to leave the window stays after all (its task is live again, or
        forgotten: it goes the usual way)."""
        self.trimming.discard(uid)

    def task_counts(self) -> dict[TaskState, int]:
        """Tasks per state: the rows, and the finished tasks that left the window."""
        hidden = self.hidden_counts
        return {state: n + hidden[state] for state, n in self.counts.items()}
