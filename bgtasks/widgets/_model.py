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

The parts live in their own modules: the rows in ``_rows`` (a
``RowStore``), the Qt item-model methods over them in
``_row_model`` (the base class), what a cell answers in ``_columns``, the
recorded changes and the fetch in ``_pending``, removing rows in
``_removals``, the edits that tell the views in ``_row_edits``, and the
shut-down check in ``_shutdown``.  This module listens to the manager and
schedules the passes.

Thread: the model belongs to the manager's thread (the GUI thread); every
method must be called there.
"""

from __future__ import annotations

from time import perf_counter
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

from ..core import check_count, check_seconds
from ..core._state import TaskState
from ..qt._flat import flatten_mixins
from ..qt._home_thread import DiesAtHome
from ..qt._manager import BackgroundTaskManager
from ._columns import ELAPSED
from ._pending import TERMINAL, PendingChanges, PendingUids, beyond_window
from ._row_edits import emit_changed, insert_infos, relabel_group
from ._row_model import RowModel
from ._shutdown import SHUTDOWN_POLL_INTERVAL, WATCH_INTERVAL, manager_is_shut_down


@flatten_mixins
class TaskModel(DiesAtHome, RowModel):
    """Tasks of one ``BackgroundTaskManager`` as rows.

    Columns: name, group, state, progress, message, elapsed time, error
    (numbered ``NameColumn`` … ``ErrorColumn``).  A
    flat table, or with ``grouped=True`` a tree with one row per group (in the
    order groups first appeared; with ``sort_groups`` in the natural order of
    their labels, 2 before 10 and names alphabetically, a renamed group's row
    moving to its place) and the group's tasks below it, in the order they
    were added.  Empty groups disappear.

    Besides the display roles, each task cell answers ``UidRole`` (int),
    ``StateRole`` (``TaskState``), ``ProgressRole``
    (float in 0..1), ``TracebackRole`` (str), ``InfoRole`` (the
    ``TaskInfo`` snapshot), ``GroupRole`` (the group value)
    and ``SortRole`` (a value that sorts naturally).  Group rows answer
    ``None`` for the task roles, their group for ``GroupRole`` and the
    fraction of finished tasks for ``ProgressRole``.

    Groups are shown by their manager's names (``set_group_name``; the
    model follows ``group_renamed``), else as ``str(group)``, "(no group)"
    for ``None``; a group column sorts naturally (``SortRole``: 2 before 10).

    ``finished_rows`` bounds the rows of finished tasks: beyond it the rows
    that finished first leave (the manager keeps the tasks), so a flood costs
    the views a bounded number of rows.  ``state_counts()`` counts rows,
    ``task_counts()`` the tasks, those without a row included.

    Manager's thread only.  Signals, emitted on the manager's thread:
    ``batch_applied()`` at the end of every pass that changed something (or
    while tasks run), and ``rows_updated(uids)`` during a pass, with the
    list of uids whose rows it gave a new snapshot.

    Args:
        manager: The manager whose tasks it lists.
        parent: The QObject parent.
        grouped: A tree with a row per group; False: a flat list.
        finished_rows: The most rows of finished tasks it shows (see
            ``finished_rows``); ``None``: every one.
        sort_groups: Grouped: group rows in the natural order of their
            labels, not in the order groups first appeared.
    """

    #: Emitted at the end of every pass that changed something (or while tasks run).
    batch_applied = Signal()
    #: Emitted during a pass with the uids (a list) of the rows given a new snapshot.
    rows_updated = Signal(object)

    def __init__(
        self,
        manager: BackgroundTaskManager,
        parent: QObject | None = None,
        grouped: bool = False,
        finished_rows: int | None = None,
        sort_groups: bool = False,
    ) -> None:
        super().__init__(parent, grouped, sort_groups)
        self._remember_home()  # destroyed on this thread, whoever drops it last
        self._manager = manager
        self._refresh_interval = 50  # refresh_interval
        self._pass_budget = 0.008  # pass_budget
        self._max_items = 2000  # max_items_per_pass
        #: Statistics: passes run, and the most tasks / seconds a single pass took.
        self.pass_count = 0
        self.largest_pass_items = 0
        self.largest_pass_seconds = 0.0
        self._shutdown_poll_limit = 30.0  # shutdown_poll_limit
        self._shut_down = False  # noticed that the manager was shut down
        self._shutdown_deadline = 0.0
        self._stopping: set[int] = set()  # after a shut-down: rows still live
        self._finished_rows = check_count("finished_rows", finished_rows, optional=True)
        self._hidden_changed = False  # counts of rows-less tasks changed since the last pass

        self._pending = pending = PendingChanges()
        self._to_add, self._dirty = pending.to_add, pending.dirty
        self._removals, self._trims = pending.removals, pending.trims

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
        manager.task_state_changed.connect(self._on_state)
        manager.task_progress.connect(self._on_progress)
        manager.group_renamed.connect(self._on_group_renamed)
        self._names.update(manager.group_names())
        infos = manager.tasks()
        infos.sort(key=lambda i: i.uid)
        if self._finished_rows is not None:
            infos = beyond_window(self._store, infos, self._finished_rows)
        insert_infos(self, self._store, infos, signal=False)
        if self._store.active:
            self._timer.start()
        if not self._check_shut_down():
            self._update_watch()

    # ------------------------------------------------------------------ settings
    # Set on the GUI thread; a value that would stall the UI (a NaN budget: no
    # time is past NaN) or stop the model (no item per pass) is a ValueError.

    @property
    def refresh_interval(self) -> int:
        """Milliseconds between two passes (default 50; a positive int)."""
        return self._refresh_interval

    @refresh_interval.setter
    def refresh_interval(self, ms: int) -> None:
        self._refresh_interval = check_count("refresh_interval", ms, minimum=1)

    @property
    def pass_budget(self) -> float:
        """Seconds a pass may spend before it leaves the rest to the next tick
        (default 0.008; a TaskMonitor's model 0.004)."""
        return self._pass_budget

    @pass_budget.setter
    def pass_budget(self, seconds: float) -> None:
        self._pass_budget = float(check_seconds("pass_budget", seconds))

    @property
    def max_items_per_pass(self) -> int:
        """Most tasks (inserted, removed or refreshed) one pass handles (default 2000)."""
        return self._max_items

    @max_items_per_pass.setter
    def max_items_per_pass(self, count: int) -> None:
        self._max_items = check_count("max_items_per_pass", count, minimum=1)

    @property
    def shutdown_poll_limit(self) -> float:
        """Seconds the model keeps re-reading tasks that are still stopping after
        the manager was shut down (one may never return; default 30)."""
        return self._shutdown_poll_limit

    @shutdown_poll_limit.setter
    def shutdown_poll_limit(self, seconds: float) -> None:
        self._shutdown_poll_limit = float(check_seconds("shutdown_poll_limit", seconds))

    # ------------------------------------------------------------------ public

    @property
    def manager(self) -> BackgroundTaskManager:
        """The manager whose tasks it lists."""
        return self._manager

    @property
    def finished_rows(self) -> int | None:
        """The most rows of finished tasks the model shows (``None``: every one).

        Beyond it, the rows that finished first leave at the next pass (the
        manager still has the tasks; ``task_counts()`` still counts them); a
        finished task that would leave at once never gets a row.  A retried
        task gets its row back.  Read and set on the manager's thread; a
        value that is not a non-negative int or ``None`` raises
        ``ValueError`` and changes nothing.
        """
        return self._finished_rows

    @finished_rows.setter
    def finished_rows(self, rows: int | None) -> None:
        self._finished_rows = check_count("finished_rows", rows, optional=True)
        self._wake()

    def task_counts(self) -> dict[TaskState, int]:
        """How many tasks the model knows in each state: its rows, and the finished
        tasks without a row (see ``finished_rows``).  Tasks the manager forgot
        are not counted.  Manager's thread."""
        return self._store.task_counts()

    def hidden_count(self) -> int:
        """How many finished tasks have no row (see ``finished_rows``).  Manager's thread."""
        return len(self._store.hidden)

    def is_shut_down(self) -> bool:
        """Whether the model noticed that its manager was shut down (or deleted).

        From then on no signal comes: the model reads the registry itself, as
        the module docstring says, and finally stops its timers.  Manager's thread."""
        return self._shut_down

    def has_pending(self) -> bool:
        """Whether signals were received that no pass has applied yet.  Manager's thread."""
        return bool(self._pending)

    def pending(self) -> PendingUids:
        """The uids recorded from signals that no pass has applied yet: ``to_add``,
        ``to_remove`` and ``to_refresh`` (a copy).  Manager's thread only."""
        return self._pending.uids()

    def apply_pass(self) -> None:
        """Run one pass now, as the timer does: within ``pass_budget`` seconds and
        ``max_items_per_pass`` tasks (``flush`` ignores both).  Manager's thread only."""
        self._apply()

    def flush(self) -> None:
        """Apply every pending change now, ignoring the per-pass limits.  Manager's thread."""
        while self.has_pending():
            self._apply(limit=False)

    def running_timers(self) -> set[str]:
        """Which of the model's timers run: ``"pass"`` while passes are scheduled
        (changes recorded, running rows ticking, or a shut-down's re-reads), and
        ``"watch"`` while it looks for a shut-down its manager will not signal.
        An empty set: the model does nothing until a signal comes.  Manager's thread only."""
        timers = set()
        if self._timer.isActive():
            timers.add("pass")
        if self._watch.isActive():
            timers.add("watch")
        return timers

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
            if self._to_add.pop(uid) in TERMINAL:
                self._pending.finished_adds -= 1
        elif uid in self._nodes:
            self._trims.discard(uid)  # it goes the usual way, not counted hidden
            self._store.keep(uid)
            self._removals.add(uid)
            self._dirty.pop(uid, None)
            self._wake()
        elif self._store.unhide(uid):  # left the window, now forgotten
            self._hidden_changed = True
            self._wake()

    def _on_state(self, uid: int, group: Any, state: TaskState) -> None:
        to_add = self._to_add
        if uid in to_add:  # no row yet: remember its state (see PendingChanges)
            if (to_add[uid] in TERMINAL) is not (state in TERMINAL):
                self._pending.finished_adds += 1 if state in TERMINAL else -1
            to_add[uid] = state
        else:
            self._on_changed(uid, group)

    def _on_changed(self, uid: int, group: Any, *_: Any) -> None:
        if uid in self._nodes:
            if uid not in self._removals.uids:
                if uid in self._trims.uids:  # retried before its row left the window
                    self._trims.discard(uid)
                    self._store.keep(uid)
                self._dirty[uid] = None
                self._wake()
        elif self._store.unhide(uid):  # retried after its row left: it gets one again
            self._hidden_changed = True
            self._to_add[uid] = None
            self._wake()

    def _on_group_renamed(self, group: Any, name: str) -> None:
        if name:
            self._names[group] = name
        else:
            self._names.pop(group, None)
        relabel_group(self, self._store, group)

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
        deadline = start + self._pass_budget if limit else float("inf")
        cap = self._max_items if limit else 1 << 62
        done = 0
        if self._removals.uids:
            done += self._removals.apply(self, self._store, deadline, cap)
        if (self._to_add or self._dirty) and done < cap and perf_counter() < deadline:
            taken, updated = self._pending.apply_fetched(
                self, self._store, self._manager, deadline, cap - done, self._finished_rows
            )
            done += taken
            if updated:
                self.rows_updated.emit(updated)
        done += self._trim(deadline, cap - done)
        counted, self._hidden_changed = self._hidden_changed, False  # counts to show
        self._tick_elapsed()
        seconds = perf_counter() - start
        self.pass_count += 1
        self.largest_pass_items = max(self.largest_pass_items, done)
        self.largest_pass_seconds = max(self.largest_pass_seconds, seconds)
        if self._shut_down:
            if self._after_shut_down_pass() or noticed or done or counted:
                self.batch_applied.emit()
            return
        if not self.has_pending() and not self._store.active:
            self._timer.stop()
        self._update_watch()
        if done or counted or self._store.active:
            self.batch_applied.emit()

    def _trim(self, deadline: float, cap: int) -> int:
        """Remove the oldest finished rows beyond ``finished_rows``, within the pass's limits."""
        limit = self._finished_rows
        trims = self._trims
        if limit is not None:
            for uid in self._store.trim(limit):
                trims.add(uid)
        if not trims.uids or cap <= 0 or perf_counter() >= deadline:
            return 0
        return trims.apply(self, self._store, deadline, cap)

    def _tick_elapsed(self) -> None:
        active = self._store.active
        if active:
            nodes = self._nodes
            emit_changed(self, [nodes[uid] for uid in active], ELAPSED, ELAPSED)

    # ------------------------------------------------------------------ shut-down

    def _check_shut_down(self) -> bool:
        """True once the manager is shut down; the first time, read every live row again."""
        if self._shut_down:
            return True
        if not manager_is_shut_down(self._manager):
            if not self._store.live_rows():
                self._watch.stop()
            return False
        self._shut_down = True
        self._watch.stop()
        self._shutdown_deadline = perf_counter() + self.shutdown_poll_limit
        self._stopping = self._store.live_uids(leave_out=self._removals.uids)
        dirty = self._dirty
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
        self._stopping = self._store.still_live(self._stopping)
        if self._stopping and perf_counter() < self._shutdown_deadline:
            self._timer.start(max(self.refresh_interval, SHUTDOWN_POLL_INTERVAL))
            return False
        # Done: every row ended, or the rest never will as far as we wait.
        was_active = self._timer.isActive()
        self._timer.stop()
        self._watch.stop()
        self._stopping.clear()
        self._store.active.clear()  # nothing ticks any more
        return was_active

    def _update_watch(self) -> None:
        # Only while live rows are shown and no pass runs: then a shut-down
        # would change rows, and nothing else would look.
        if self._store.live_rows() and not self._timer.isActive():
            if not self._watch.isActive():
                self._watch.start()
        elif self._watch.isActive():
            self._watch.stop()
