"""``TaskModel``: a Qt item model over the tasks of one manager.

The model listens to the manager's signals, but a signal only records what
changed: a uid to insert, to remove, or whose row is stale.  A timer applies
the recorded changes every ``refresh_interval`` milliseconds, fetching the
snapshots of all the tasks it takes with one ``infos(uids)`` call (one wait
for the scheduler lock per pass, however many tasks).  A pass takes at most
``max_items_per_pass`` tasks, and fewer when the measured cost per task says
more would overrun ``pass_budget`` seconds; the next tick continues.  Rows appended to one parent in a pass
are one ``beginInsertRows``; changed rows are one ``dataChanged`` per
contiguous range.  So a flood of short tasks costs the UI thread a bounded
slice of time per tick, whatever the number of tasks.

After ``manager.shut_down()`` the manager emits nothing more.  The model
notices it (each pass looks at ``manager.is_shut_down``, and whether the
manager's QObject was deleted; while only queued tasks are shown a slow
watch timer does), reads every live row from the registry once (queued tasks
were dropped: CANCELLED; running ones are CANCELLING), then re-reads the
rows still stopping a few times a second until the registry says they
ended, for ``shutdown_poll_limit`` seconds at most, and stops for good.

Thread: the model belongs to the manager's thread (the GUI thread); every
method must be called there.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from itertools import islice
from time import perf_counter
from typing import Any

import shiboken6
from PySide6.QtCore import (
    QAbstractItemModel,
    QModelIndex,
    QModelRoleDataSpan,
    QObject,
    QPersistentModelIndex,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QBrush, QColor

from ..core._state import TaskInfo, TaskState
from ..qt._manager import BackgroundTaskManager

#: Column numbers.
NAME, GROUP, STATE, PROGRESS, MESSAGE, ELAPSED, ERROR = range(7)
_HEADERS = ("Name", "Group", "State", "Progress", "Message", "Elapsed", "Error")

_ROOT = QModelIndex()  # the invalid index: the parent of top rows
_COLUMNS = len(_HEADERS)
_MIN_CHUNK = 64  # fewest tasks a pass fetches, however slow the last one was

_ACTIVE = frozenset({TaskState.RUNNING, TaskState.CANCELLING})
_LIVE = (TaskState.PENDING, TaskState.QUEUED, TaskState.RUNNING, TaskState.CANCELLING)
#: Milliseconds between two looks at ``manager.is_shut_down`` while live rows
#: are shown and no pass runs (only queued or pending tasks: nothing ticks).
WATCH_INTERVAL = 500
#: Milliseconds between two reads of the tasks still stopping after a shut-down.
SHUTDOWN_POLL_INTERVAL = 250
_COLOURS = {
    TaskState.FAILED: QColor(190, 30, 30),
    TaskState.CANCELLED: QColor(120, 120, 120),
    TaskState.CANCELLING: QColor(160, 110, 0),
}
_BRUSHES = {state: QBrush(colour) for state, colour in _COLOURS.items()}
_RIGHT = int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
_DISPLAY = int(Qt.ItemDataRole.DisplayRole)
_FOREGROUND = int(Qt.ItemDataRole.ForegroundRole)
_ALIGNMENT = int(Qt.ItemDataRole.TextAlignmentRole)
_TOOLTIP = int(Qt.ItemDataRole.ToolTipRole)
_USER = int(Qt.ItemDataRole.UserRole)


def manager_is_shut_down(manager: BackgroundTaskManager) -> bool:
    """Whether ``manager`` was shut down, or its QObject deleted: either way it emits nothing more.

    Polled, not signalled: a shut-down manager emits nothing, and a slot on
    its ``destroyed`` can outlive the widget that connected it (PySide6 6.12
    crashed calling one after the widget had been deleted)."""
    return bool(manager.is_shut_down) or not shiboken6.isValid(manager)


def group_label(group: Any) -> str:
    """How a group value is shown: ``str(group)``, or "(no group)" for ``None``."""
    return "(no group)" if group is None else str(group)


def format_elapsed(seconds: float | None) -> str:
    """``0.4 s``, ``12.0 s``, ``3:07``, ``1:02:03``; empty for ``None``."""
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.1f} s"
    s = int(seconds)
    if s < 3600:
        return f"{s // 60}:{s % 60:02d}"
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def elapsed_of(info: TaskInfo) -> float | None:
    """Seconds the task has run (so far, while it runs); ``None`` before it starts."""
    if info.started is None:
        return None
    if info.state in _ACTIVE:
        return max(0.0, time.time() - info.started)
    return info.runtime


class _Task:
    __slots__ = ("uid", "info", "parent", "row")

    def __init__(self, info: TaskInfo, parent: _Group | None, row: int) -> None:
        self.uid = info.uid
        self.info = info
        self.parent = parent
        self.row = row


class _Group:
    __slots__ = ("key", "gid", "row", "children", "counts")

    def __init__(self, key: Any, gid: int, row: int) -> None:
        self.key = key
        self.gid = gid  # the internalId of its children's indexes
        self.row = row
        self.children: list[_Task] = []
        self.counts: dict[TaskState, int] | None = None  # cached, None when stale


class TaskModel(QAbstractItemModel):
    """Tasks of one :class:`~bgtasks.BackgroundTaskManager` as rows.

    Columns: name, group, state, progress, message, elapsed time, error.  A
    flat table, or with ``grouped=True`` a tree with one row per group (in the
    order groups first appeared) and the group's tasks below it.  Empty groups
    disappear.

    Besides the display roles, each task cell answers :attr:`UidRole` (int),
    :attr:`StateRole` (:class:`~bgtasks.TaskState`), :attr:`ProgressRole`
    (float in 0..1), :attr:`TracebackRole` (str), :attr:`InfoRole` (the
    :class:`~bgtasks.TaskInfo` snapshot), :attr:`GroupRole` (the group value)
    and :attr:`SortRole` (a value that sorts naturally).  Group rows answer
    ``None`` for the task roles, their group for ``GroupRole`` and the
    fraction of finished tasks for ``ProgressRole``.

    Manager's thread only.
    """

    UidRole = Qt.ItemDataRole.UserRole + 1
    StateRole = Qt.ItemDataRole.UserRole + 2
    ProgressRole = Qt.ItemDataRole.UserRole + 3
    TracebackRole = Qt.ItemDataRole.UserRole + 4
    InfoRole = Qt.ItemDataRole.UserRole + 5
    GroupRole = Qt.ItemDataRole.UserRole + 6
    SortRole = Qt.ItemDataRole.UserRole + 7

    #: Emitted at the end of every pass that changed something (or while tasks run).
    batch_applied = Signal()

    def __init__(
        self, manager: BackgroundTaskManager, parent: QObject | None = None, grouped: bool = False
    ) -> None:
        super().__init__(parent)
        self._manager = manager
        self._grouped = bool(grouped)
        #: Milliseconds between two passes.
        self.refresh_interval = 50
        #: Seconds a pass may spend before it leaves the rest to the next tick.
        self.pass_budget = 0.008
        #: Most tasks (inserted, removed or refreshed) one pass handles.
        self.max_items_per_pass = 2000
        #: Statistics: passes run, and the most tasks / seconds a single pass took.
        self.pass_count = 0
        self.largest_pass_items = 0
        self.largest_pass_seconds = 0.0
        # seconds one task costs a pass (fetch + rows), measured: sizes the chunks
        self._item_cost = 5e-6
        self._remove_cost = 5e-6  # the same for a removed row

        self._top: list[_Task] = []  # flat mode: the rows
        self._groups: list[_Group] = []  # grouped mode: the top rows
        self._group_of_key: dict[Any, _Group] = {}
        self._group_of_gid: dict[int, _Group] = {}
        self._next_gid = 1
        self._nodes: dict[int, _Task] = {}
        self._group_sizes: dict[Any, int] = {}  # group -> rows, in order of appearance
        self._active: set[int] = set()  # uids shown running: elapsed ticks
        self._counts: dict[TaskState, int] = dict.fromkeys(TaskState, 0)  # rows per state

        self._to_add: dict[int, None] = {}  # insertion-ordered set of uids
        self._to_remove: set[int] = set()
        # the nodes of _to_remove, sorted last row first; None when stale.  Rows
        # go last first, so the rows of those left keep their numbers.
        self._remove_order: list[_Task] | None = None
        self._dirty: dict[int, None] = {}

        #: Seconds the model keeps re-reading tasks that are still stopping
        #: after the manager was shut down (one may never return).
        self.shutdown_poll_limit = 30.0
        self._shut_down = False  # noticed that the manager was shut down
        self._shutdown_deadline = 0.0
        self._stopping: set[int] = set()  # after a shut-down: rows still live

        self._timer = QTimer(self)
        self._timer.setInterval(self.refresh_interval)
        self._timer.timeout.connect(self._apply)
        # Looks at manager.is_shut_down while live rows are shown and the pass
        # timer is idle (queued tasks only): the manager will not say it.
        self._watch = QTimer(self)
        self._watch.setInterval(WATCH_INTERVAL)
        self._watch.timeout.connect(self._check_shut_down)

        # Connect first, then read what exists: a task added in between is
        # both read and announced, and the duplicate announcement is ignored.
        manager.task_added.connect(self._on_added)
        manager.task_removed.connect(self._on_removed)
        manager.task_state_changed.connect(self._on_changed)
        manager.task_progress.connect(self._on_progress)
        infos = manager.tasks()
        infos.sort(key=lambda i: i.uid)
        self._insert_infos(infos, signal=False)
        if self._active:
            self._timer.start()
        if not self._check_shut_down():
            self._update_watch()

    # ------------------------------------------------------------------ public

    @property
    def manager(self) -> BackgroundTaskManager:
        return self._manager

    @property
    def grouped(self) -> bool:
        return self._grouped

    def is_shut_down(self) -> bool:
        """Whether the model noticed that its manager was shut down (or deleted).

        From then on no signal comes: the model reads the registry itself, as
        the module docstring says, and finally stops its timers."""
        return self._shut_down

    def has_pending(self) -> bool:
        """Whether signals were received that no pass has applied yet."""
        return bool(self._to_add or self._to_remove or self._dirty)

    def flush(self) -> None:
        """Apply every pending change now, ignoring the per-pass limits."""
        while self.has_pending():
            self._apply(limit=False)

    def groups(self) -> list[Any]:
        """The groups of the tasks in the model, in the order they first appeared."""
        return list(self._group_sizes)

    def state_counts(self) -> dict[TaskState, int]:
        """How many task rows the model shows in each state (kept as rows change)."""
        return dict(self._counts)

    def task_count(self) -> int:
        """How many task rows the model has (group rows not counted)."""
        return len(self._nodes)

    def uids(self) -> list[int]:
        """Every task uid in the model, in row order (groups in order in grouped mode)."""
        if self._grouped:
            return [n.uid for g in self._groups for n in g.children]
        return [n.uid for n in self._top]

    def task_info(self, uid: int) -> TaskInfo | None:
        """The snapshot the model shows for ``uid``, or ``None`` if it has no such row."""
        node = self._nodes.get(uid)
        return None if node is None else node.info

    def index_of(self, uid: int, column: int = 0) -> QModelIndex:
        """The index of a task's cell, invalid if the model has no row for it."""
        node = self._nodes.get(uid)
        if node is None:
            return QModelIndex()
        return self.createIndex(node.row, column, 0 if node.parent is None else node.parent.gid)

    # ------------------------------------------------------------------ signal slots

    def _wake(self) -> None:
        if self._shut_down:
            return  # the registry is read on the shut-down schedule
        if not self._timer.isActive():
            self._timer.start(self.refresh_interval)

    def _on_added(self, uid: int, group: Any) -> None:
        if uid not in self._nodes and uid not in self._to_add:
            self._to_add[uid] = None
            self._wake()

    def _on_removed(self, uid: int, group: Any) -> None:
        if uid in self._to_add:  # announced, never inserted
            del self._to_add[uid]
        elif uid in self._nodes:
            self._to_remove.add(uid)
            self._remove_order = None
            self._dirty.pop(uid, None)
            self._wake()

    def _on_changed(self, uid: int, group: Any, *_: Any) -> None:
        if uid in self._nodes and uid not in self._to_remove:
            self._dirty[uid] = None
            self._wake()

    def _on_progress(self, uid: int, group: Any, fraction: float, message: str) -> None:
        self._on_changed(uid, group)

    # ------------------------------------------------------------------ passes

    def _apply(self, limit: bool = True) -> None:
        noticed = not self._shut_down and self._check_shut_down()
        if self._shut_down and self._stopping and not self.has_pending():
            # the registry says when a stopping task ends; no signal will
            nodes, dirty = self._nodes, self._dirty
            for uid in self._stopping:
                if uid in nodes:
                    dirty[uid] = None
        start = perf_counter()
        deadline = start + self.pass_budget if limit else float("inf")
        cap = self.max_items_per_pass if limit else 1 << 62
        done = 0
        if self._to_remove:
            done += self._apply_removals(deadline, cap)
        if (self._to_add or self._dirty) and done < cap and perf_counter() < deadline:
            done += self._apply_fetched(deadline, cap - done)
        self._tick_elapsed()
        seconds = perf_counter() - start
        self.pass_count += 1
        self.largest_pass_items = max(self.largest_pass_items, done)
        self.largest_pass_seconds = max(self.largest_pass_seconds, seconds)
        if self._shut_down:
            if self._after_shut_down_pass() or noticed or done:
                self.batch_applied.emit()
            return
        if not self.has_pending() and not self._active:
            self._timer.stop()
        self._update_watch()
        if done or self._active:
            self.batch_applied.emit()

    # ------------------------------------------------------------------ shut-down

    def _manager_shut_down(self) -> bool:
        return manager_is_shut_down(self._manager)

    def _check_shut_down(self) -> bool:
        """True once the manager is shut down; the first time, read every live row again."""
        if self._shut_down:
            return True
        if not self._manager_shut_down():
            if not self._live_rows():
                self._watch.stop()
            return False
        self._shut_down = True
        self._watch.stop()
        self._shutdown_deadline = perf_counter() + self.shutdown_poll_limit
        nodes, dirty, to_remove = self._nodes, self._dirty, self._to_remove
        self._stopping = {
            uid
            for uid, node in nodes.items()
            if not node.info.state.is_terminal and uid not in to_remove
        }
        for uid in self._stopping:
            dirty[uid] = None
        # a zero timer: this may run inside a signal handler or the constructor
        self._timer.start(0)
        return True

    def _after_shut_down_pass(self) -> bool:
        """Schedule the next pass after a shut-down, or stop for good (then True)."""
        if self.has_pending():  # a big model: the first read takes several passes
            self._timer.start(self.refresh_interval)
            return False
        nodes = self._nodes
        self._stopping = {
            uid
            for uid in self._stopping
            if (node := nodes.get(uid)) is not None and not node.info.state.is_terminal
        }
        if self._stopping and perf_counter() < self._shutdown_deadline:
            self._timer.start(max(self.refresh_interval, SHUTDOWN_POLL_INTERVAL))
            return False
        # Done: every row ended, or the rest never will as far as we wait.
        was_active = self._timer.isActive()
        self._timer.stop()
        self._watch.stop()
        self._stopping.clear()
        self._active.clear()  # nothing ticks any more
        return was_active

    def _live_rows(self) -> int:
        counts = self._counts
        return sum(counts[state] for state in _LIVE)

    def _update_watch(self) -> None:
        # Only while live rows are shown and no pass runs: then a shut-down
        # would change rows, and nothing else would look.
        if self._live_rows() and not self._timer.isActive():
            if not self._watch.isActive():
                self._watch.start()
        elif self._watch.isActive():
            self._watch.stop()

    def _apply_removals(self, deadline: float, cap: int) -> int:
        order = self._remove_order
        if order is None:
            nodes = self._nodes
            order = [nodes[uid] for uid in self._to_remove]
            order.sort(
                key=lambda n: (-1 if n.parent is None else n.parent.row, n.row), reverse=True
            )
            self._remove_order = order
        sizes, active, to_remove = self._group_sizes, self._active, self._to_remove
        done = pos = 0
        while pos < len(order) and done < cap:
            began = perf_counter()
            if done and began >= deadline:
                break
            # one contiguous block of one parent, at most cap - done rows, and no
            # more than half the time left allows at the measured cost per row
            # (views and proxies react to each block inside endRemoveRows)
            most = cap - done
            if deadline != float("inf"):
                most = min(most, max(_MIN_CHUNK, int((deadline - began) / 2 / self._remove_cost)))
            group = order[pos].parent
            end = pos + 1
            limit = min(len(order), pos + most)
            while (
                end < limit
                and order[end].parent is group
                and order[end].row == order[end - 1].row - 1
            ):
                end += 1
            block = order[pos:end]
            pos = end
            first, last = block[-1].row, block[0].row
            rows = self._top if group is None else group.children
            parent = QModelIndex() if group is None else self.createIndex(group.row, 0, 0)
            self.beginRemoveRows(parent, first, last)
            del rows[first : last + 1]
            for row in range(first, len(rows)):
                rows[row].row = row
            counts = self._counts
            for node in block:
                uid = node.uid
                counts[node.info.state] -= 1
                del self._nodes[uid]
                to_remove.discard(uid)
                active.discard(uid)
                key = node.info.group
                sizes[key] -= 1
                if not sizes[key]:
                    del sizes[key]
            self.endRemoveRows()
            done += len(block)
            cost = (perf_counter() - began) / len(block)
            self._remove_cost = 0.5 * self._remove_cost + 0.5 * max(cost, 1e-7)
            if group is not None:
                group.counts = None
                if rows:
                    self._group_changed(group)
                else:
                    self._remove_group(group)
        del order[:pos]
        return done

    def _remove_group(self, group: _Group) -> None:
        row = group.row
        self.beginRemoveRows(QModelIndex(), row, row)
        del self._groups[row]
        del self._group_of_key[group.key]
        del self._group_of_gid[group.gid]
        for r in range(row, len(self._groups)):  # before the end: views ask parent()
            self._groups[r].row = r
        self.endRemoveRows()

    def _insert_infos(self, infos: Iterable[TaskInfo], signal: bool) -> None:
        if not self._grouped:
            self._append(None, list(infos), signal)
            return
        by_group: dict[Any, list[TaskInfo]] = {}
        for inf in infos:
            by_group.setdefault(inf.group, []).append(inf)
        for key, batch in by_group.items():
            group = self._group_of_key.get(key)
            if group is None:
                row = len(self._groups)
                if signal:
                    self.beginInsertRows(QModelIndex(), row, row)
                group = _Group(key, self._next_gid, row)
                self._next_gid += 1
                self._groups.append(group)
                self._group_of_key[key] = group
                self._group_of_gid[group.gid] = group
                if signal:
                    self.endInsertRows()
            else:
                group.counts = None
                if signal:
                    self._group_changed(group)
            self._append(group, batch, signal)

    def _append(self, group: _Group | None, infos: list[TaskInfo], signal: bool) -> None:
        if not infos:
            return
        rows = self._top if group is None else group.children
        first = len(rows)
        if signal:
            parent = QModelIndex() if group is None else self.createIndex(group.row, 0, 0)
            self.beginInsertRows(parent, first, first + len(infos) - 1)
        nodes, active, sizes, counts = self._nodes, self._active, self._group_sizes, self._counts
        for row, inf in enumerate(infos, first):
            sizes[inf.group] = sizes.get(inf.group, 0) + 1
            counts[inf.state] += 1
            node = _Task(inf, group, row)
            rows.append(node)
            nodes[inf.uid] = node
            if inf.state in _ACTIVE:
                active.add(inf.uid)
        if signal:
            self.endInsertRows()

    def _apply_fetched(self, deadline: float, cap: int) -> int:
        """Insert and refresh up to ``cap`` recorded tasks with one ``infos()``
        call: one wait for the scheduler lock per pass, not one per task.  The
        chunk is sized from the measured cost per task so the pass stays near
        its budget; a pass takes at least a few tasks, so the queue drains."""
        room = deadline - perf_counter()
        if room != float("inf"):
            # aim at half the room left: a long call is more likely to lose the
            # GIL to the workers for a whole switch interval
            cap = min(cap, max(_MIN_CHUNK, int(room / 2 / self._item_cost)))
        to_add, dirty, nodes = self._to_add, self._dirty, self._nodes
        adds = _take(to_add, cap)
        updates = _take(dirty, cap - len(adds))
        taken = len(adds) + len(updates)
        if not taken:
            return 0
        began = perf_counter()
        # uids already forgotten are left out: their task_removed follows
        snaps = self._manager.infos([*adds, *updates])
        get = snaps.get
        self._insert_infos([inf for uid in adds if (inf := get(uid)) is not None], signal=True)
        active, counts = self._active, self._counts
        changed: list[_Task] = []
        for uid in updates:
            node = nodes.get(uid)
            inf = get(uid)
            if node is None or inf is None:
                continue
            counts[node.info.state] -= 1
            counts[inf.state] += 1
            node.info = inf
            if inf.state in _ACTIVE:
                active.add(uid)
            else:
                active.discard(uid)
            changed.append(node)
        self._emit_changed(changed, 0, len(_HEADERS) - 1)
        cost = (perf_counter() - began) / taken
        self._item_cost = 0.5 * self._item_cost + 0.5 * max(cost, 1e-7)
        return taken

    def _emit_changed(self, nodes: list[_Task], first_col: int, last_col: int) -> None:
        by_parent: dict[_Group | None, list[int]] = {}
        for node in nodes:
            by_parent.setdefault(node.parent, []).append(node.row)
        for group, rows in by_parent.items():
            gid = 0 if group is None else group.gid
            rows.sort()
            begin = 0
            for i in range(1, len(rows) + 1):
                if i == len(rows) or rows[i] != rows[i - 1] + 1:
                    self.dataChanged.emit(
                        self.createIndex(rows[begin], first_col, gid),
                        self.createIndex(rows[i - 1], last_col, gid),
                    )
                    begin = i
            if group is not None and first_col == 0:
                group.counts = None
                self._group_changed(group)

    def _group_changed(self, group: _Group) -> None:
        self.dataChanged.emit(
            self.createIndex(group.row, 0, 0), self.createIndex(group.row, len(_HEADERS) - 1, 0)
        )

    def _tick_elapsed(self) -> None:
        if self._active:
            nodes = self._nodes
            self._emit_changed([nodes[uid] for uid in self._active], ELAPSED, ELAPSED)

    # ------------------------------------------------------------------ Qt model API

    def _node(self, index: QModelIndex | QPersistentModelIndex) -> _Task | _Group | None:
        gid = index.internalId()
        row = index.row()
        try:
            if not self._grouped:
                return self._top[row]
            if gid == 0:
                return self._groups[row]
            return self._group_of_gid[gid].children[row]
        except (IndexError, KeyError):
            return None

    def _info_at(
        self, row: int, parent: QModelIndex | QPersistentModelIndex = _ROOT
    ) -> TaskInfo | None:
        """The snapshot of the task in ``row`` under ``parent``; None for a group
        row or no row.  For a filter proxy: no call through Qt, so no wait for
        the GIL."""
        try:
            if not parent.isValid():
                if self._grouped:
                    return None
                return self._top[row].info if row >= 0 else None
            if not self._grouped or parent.internalId() != 0 or row < 0:
                return None
            return self._groups[parent.row()].children[row].info
        except IndexError:
            return None

    def index(
        self, row: int, column: int, parent: QModelIndex | QPersistentModelIndex = _ROOT
    ) -> QModelIndex:
        # Views call this once per row on every layout: checked here, in Python,
        # not with hasIndex(), which calls rowCount() and columnCount() back.
        if row < 0 or not 0 <= column < _COLUMNS:
            return QModelIndex()
        if not parent.isValid():
            if row >= (len(self._groups) if self._grouped else len(self._top)):
                return QModelIndex()
            return self.createIndex(row, column, 0)
        if not self._grouped or parent.column() != 0 or parent.internalId() != 0:
            return QModelIndex()
        prow = parent.row()
        if prow >= len(self._groups):
            return QModelIndex()
        group = self._groups[prow]
        if row >= len(group.children):
            return QModelIndex()
        return self.createIndex(row, column, group.gid)

    def parent(  # type: ignore[override]
        self, index: QModelIndex | QPersistentModelIndex = _ROOT
    ) -> QModelIndex:
        if not index.isValid():
            return QModelIndex()
        gid = index.internalId()
        if gid == 0:
            return QModelIndex()
        group = self._group_of_gid.get(gid)
        if group is None:
            return QModelIndex()
        return self.createIndex(group.row, 0, 0)

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = _ROOT) -> int:  # noqa: N802
        if not parent.isValid():
            return len(self._groups) if self._grouped else len(self._top)
        if not self._grouped or parent.column() != 0 or parent.internalId() != 0:
            return 0
        row = parent.row()
        return len(self._groups[row].children) if row < len(self._groups) else 0

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = _ROOT) -> int:  # noqa: N802
        return _COLUMNS

    def headerData(  # noqa: N802
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation == Qt.Orientation.Horizontal and 0 <= section < len(_HEADERS):
            if role == Qt.ItemDataRole.DisplayRole:
                return _HEADERS[section]
        return None

    # flags() is Qt's (enabled, selectable): views ask it for every cell they
    # paint, and an override would cost a call into Python each time.

    def hasChildren(  # noqa: N802 - Qt override
        self, parent: QModelIndex | QPersistentModelIndex = _ROOT
    ) -> bool:
        # One call per row when a tree view lays out (Qt's would call
        # rowCount() and columnCount()).
        if not parent.isValid():
            return bool(self._groups if self._grouped else self._top)
        if not self._grouped or parent.column() != 0 or parent.internalId() != 0:
            return False
        row = parent.row()
        return row < len(self._groups) and bool(self._groups[row].children)

    def data(
        self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        node = self._node(index) if index.isValid() else None
        if node is None:
            return None
        if isinstance(node, _Group):
            return self._group_data(node, index.column(), role)
        return self._task_data(node.info, index.column(), role)

    def multiData(  # noqa: N802 - Qt override
        self, index: QModelIndex | QPersistentModelIndex, role_data_span: QModelRoleDataSpan
    ) -> None:
        # A delegate asks for ~10 roles per cell at each paint.  Qt's default
        # multiData calls data() once per role, letting go of the GIL around
        # each call: with busy workers every call waits for it again.  One
        # call per cell here halves a paint's time during a flood.
        # A caller may pass the same span for cell after cell (Qt's delegate
        # keeps one), so every role this model can answer is written, a value
        # or cleared: a slot left alone would keep the previous cell's value (a
        # failed row's red coloured the rows painted after it).  Roles it never
        # answers (font, decoration, check state, background) are never set by
        # it, so they stay empty and are left alone: clearing them too cost a
        # paint ~2 ms.  No value is cleared, not set to None: a QVariant holding
        # Python's None is valid, and Qt converting it calls back into Python.
        node = self._node(index) if index.isValid() else None
        if node is None:
            for slot in role_data_span:
                slot.clearData()
            return
        col = index.column()
        if isinstance(node, _Group):
            for slot in role_data_span:
                value = self._group_data(node, col, slot.role())
                if value is None:
                    slot.clearData()
                else:
                    slot.setData(value)
            return
        info = node.info
        for slot in role_data_span:
            role = slot.role()
            # the roles a delegate asks for, answered inline; most have no value
            if role == _DISPLAY:
                value = _display(info, col)
            elif role == _FOREGROUND:
                value = _BRUSHES.get(info.state)
            elif role == _ALIGNMENT:
                value = _RIGHT if col == ELAPSED else None
            elif role == _TOOLTIP or role > _USER:
                value = self._task_data(info, col, role)
            else:
                continue  # a role no cell answers: never set, still empty
            if value is None:
                slot.clearData()
            else:
                slot.setData(value)

    def _task_data(self, info: TaskInfo, col: int, role: int) -> Any:
        if role == Qt.ItemDataRole.DisplayRole:
            return _display(info, col)
        if role == self.UidRole:
            return info.uid
        if role == self.StateRole:
            return info.state
        if role == self.ProgressRole:
            return _progress(info)
        if role == self.TracebackRole:
            return info.traceback
        if role == self.InfoRole:
            return info
        if role == self.GroupRole:
            return info.group
        if role == self.SortRole:
            return _sort_key(info, col)
        if role == Qt.ItemDataRole.ToolTipRole:
            if col == ERROR and info.error:
                return info.error
            if col == MESSAGE and info.message:
                return info.message
            return None
        if role == Qt.ItemDataRole.ForegroundRole:
            return _BRUSHES.get(info.state)
        if role == Qt.ItemDataRole.TextAlignmentRole and col == ELAPSED:
            return _RIGHT
        return None

    def _group_data(self, group: _Group, col: int, role: int) -> Any:
        if role == self.GroupRole:
            return group.key
        if role in (Qt.ItemDataRole.DisplayRole, self.SortRole, self.ProgressRole):
            counts = group.counts
            if counts is None:
                counts = group.counts = dict.fromkeys(TaskState, 0)
                for node in group.children:
                    counts[node.info.state] += 1
            total = len(group.children)
            finished = (
                counts[TaskState.COMPLETED] + counts[TaskState.FAILED] + counts[TaskState.CANCELLED]
            )
            if role == self.ProgressRole:
                return finished / total if total else 0.0
            if col == NAME:
                return (
                    group_label(group.key)
                    if role == Qt.ItemDataRole.DisplayRole
                    else str(group.key)
                )
            if col == GROUP:
                return f"{total} tasks" if role == Qt.ItemDataRole.DisplayRole else total
            if col == STATE:
                parts = [f"{n} {s.value}" for s, n in counts.items() if n]
                return ", ".join(parts)
            if col == PROGRESS:
                return (
                    f"{finished}/{total}"
                    if role == Qt.ItemDataRole.DisplayRole
                    else finished / max(total, 1)
                )
            return None if role == Qt.ItemDataRole.DisplayRole else ""
        return None


def _display(info: TaskInfo, col: int) -> str | None:
    if col == NAME:
        return info.name
    if col == STATE:
        return info.state.value
    if col == PROGRESS:
        if info.state is TaskState.COMPLETED:
            return "100%"
        return "" if info.progress is None else f"{info.progress * 100:.0f}%"
    if col == GROUP:
        return group_label(info.group)
    if col == MESSAGE:
        return info.message
    if col == ELAPSED:
        return format_elapsed(elapsed_of(info))
    if col == ERROR:
        return info.error.splitlines()[0] if info.error else ""
    return None


def _progress(info: TaskInfo) -> float:
    if info.state is TaskState.COMPLETED:
        return 1.0
    if info.progress is None:
        return 0.0
    return min(1.0, max(0.0, float(info.progress)))


def _sort_key(info: TaskInfo, col: int) -> Any:
    if col == NAME:
        return info.name
    if col == GROUP:
        return group_label(info.group)
    if col == STATE:
        return list(TaskState).index(info.state)
    if col == PROGRESS:
        return _progress(info)
    if col == MESSAGE:
        return info.message
    if col == ELAPSED:
        e = elapsed_of(info)
        return -1.0 if e is None else e
    return info.error


def _take(queue: dict[int, Any], n: int) -> list[int]:
    """Remove and return the first ``n`` keys of an insertion-ordered dict."""
    if n <= 0 or not queue:
        return []
    if n >= len(queue):
        keys = list(queue)
        queue.clear()
        return keys
    keys = list(islice(queue, n))
    for key in keys:
        del queue[key]
    return keys
