"""A live drawing of the manager's task graph in a QGraphicsView.

Readable from a handful of tasks to thousands: big groups collapse into one
node with their state counts (``_graph_model``), the layers wrap into the
viewport's shape (``_graph_layout``), arrows run in the gaps between nodes
(``_graph_route``), relayouts run on a worker thread (``_graph_jobs``) and
their items are made on the UI thread a time-budgeted batch at a time
(``_graph_scene``).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from time import perf_counter
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QGraphicsView, QWidget

from ..core import check_count
from ..qt._home_thread import DiesAtHome
from ..qt._manager import BackgroundTaskManager
from ._graph_controls import GraphViewControls
from ._graph_items import STATE_COLOURS, GroupNodeItem, TaskEdgeItem, TaskNodeItem, _NodeItem
from ._graph_jobs import LayoutRequest, LayoutResult, LayoutRunner, compute_layout
from ._graph_model import EdgeKey, NodeKey
from ._graph_scene import GraphScene
from ._shutdown import SHUTDOWN_POLL_INTERVAL, WATCH_INTERVAL, manager_is_shut_down

__all__ = ["STATE_COLOURS", "GroupNodeItem", "TaskEdgeItem", "TaskGraphView", "TaskNodeItem"]


class TaskGraphView(DiesAtHome, GraphViewControls, QGraphicsView):
    """The manager's tasks as a graph, readable at 30, 300 or 5,000 tasks.

    * **Groups** with more than ``collapse_threshold`` tasks (default 20) are
      drawn as one node, ``"export · 44 tasks"`` over ``"40 done, 3 running,
      1 failed"``; the arrows between such nodes are merged into one with a
      count.  A click on a group node, or Enter or Space while it has the
      keyboard focus, expands it (``expand_group``); C on one of its tasks
      collapses it again, E expands every group, and the context menu has both.
    * **Neighbours**: with "Show only neighbours of selection" on (the
      ``neighbours_action``, the N key, ``set_neighbours_only``) only the
      selected tasks and everything upstream and downstream of them are drawn.
    * **Fit** (F or 0, ``fit_to_view``) shows the whole graph, laid out in
      layers that wrap into the viewport's shape, but never below
      ``min_legible_scale`` (default 0.6): a graph too big for that is shown
      at that scale, centred on the running work (else the latest), and a
      note at the top says so (``fit_note``).  Until the user zooms
      (Ctrl+wheel, ``+``, ``-``), every relayout fits.
    * **Keyboard**: Tab and Shift+Tab walk the nodes in reading order (then
      leave the view); the focused node's description is the view's
      accessible description.

    Live: the manager's signals only start a single-shot timer, so the view
    updates at most every ``refresh_interval`` ms (default 100).  New states
    repaint their nodes; added or removed tasks lay the graph out again on a
    worker thread, and the items follow on this thread in batches of at most
    ``frame_budget`` seconds (default 0.004) per turn of the event loop.
    ``refresh()`` does all of it at once.

    A shut-down manager emits nothing more: while live tasks are shown a slow
    watch timer looks at ``manager.is_shut_down``; once it is, the live tasks
    are read from the registry again a few times a second until they ended or
    ``shutdown_poll_limit`` seconds passed, and then nothing polls any more.

    Signals (emitted on the GUI thread):
        laid_out(): a layout has been applied in full (items placed).

    GUI thread only; the manager's signals it follows arrive on that thread.

    Args:
        manager: The manager whose tasks it draws.
        parent: The parent widget.
    """

    laid_out = Signal()

    def __init__(self, manager: BackgroundTaskManager, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._remember_home()  # destroyed on this thread, whoever drops it last
        self._manager = manager
        self._scene = GraphScene(self._group_name, self._activate, self)
        self.setScene(self._scene)
        self._set_up_view()
        self._auto_fit = True
        self._collapse_threshold = 20
        self._min_legible = 0.6
        self._frame_budget = 0.004  # seconds of item work per turn (frame_budget)
        self._expanded: set[Hashable] = set()
        self._collapsed: set[Hashable] = set()
        self._seeds: frozenset[int] | None = None  # neighbours filter: None when off
        self._neighbours_only = False
        self._focus_after: NodeKey | None = None
        self._outlined: set[_NodeItem] = set()
        self.refresh_count = 0  #: how many refreshes ran (tests check the coalescing)
        self.layout_count = 0  #: how many layouts were applied
        self._structure_changed = True  # tasks added or removed: lay out again
        self._changed: set[int] = set()  # uids whose state or progress changed
        self._since_request: set[int] = set()  # ... while a layout job was out
        self._generation = 0  # bumped by refresh(): older jobs' results are dropped
        self._last_viewport = (0.0, 0.0)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(100)
        self._timer.timeout.connect(self._update)
        self._work: Iterator[None] | None = None
        self._work_end = 0.0  # when the last budgeted piece of work ended
        self._work_timer = QTimer(self)
        # 1 ms, not 0: a zero timer fires again and again in one pass of the
        # event loop, and the application's other timers wait meanwhile.
        self._work_timer.setInterval(1)
        self._work_timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._work_timer.timeout.connect(self._work_tick)
        self._runner = LayoutRunner(
            self._manager.tasks, self._deliver, self, getattr(manager, "gil_gate", None)
        )
        self._shutdown_poll_limit = 30.0  # see shutdown_poll_limit
        self._shut_down = False
        self._shutdown_deadline = 0.0
        self._watch = QTimer(self)
        self._watch.setInterval(WATCH_INTERVAL)
        self._watch.timeout.connect(self._watch_tick)
        self._make_actions()
        manager.task_added.connect(self._on_structure)
        manager.task_removed.connect(self._on_structure)
        manager.task_state_changed.connect(self._on_changed)
        manager.task_progress.connect(self._on_changed)
        renamed = getattr(manager, "group_renamed", None)
        if renamed is not None:
            renamed.connect(self._on_renamed)
        self._scene.selectionChanged.connect(self._selection_changed)
        self.refresh()

    # ------------------------------------------------------------------ settings

    @property
    def refresh_interval(self) -> int:
        """Milliseconds between two refreshes while tasks change (settable).  GUI thread."""
        return self._timer.interval()

    @refresh_interval.setter
    def refresh_interval(self, ms: int) -> None:
        self._timer.setInterval(check_count("refresh_interval", ms, minimum=1))

    # ------------------------------------------------------------------ what is shown

    def nodes(self) -> dict[int, TaskNodeItem]:
        """uid -> node of every task drawn on its own (not in a collapsed group).  GUI thread."""
        return dict(self._scene.tasks)

    def group_nodes(self) -> dict[Hashable, GroupNodeItem]:
        """group -> node of every collapsed group drawn.  GUI thread."""
        return dict(self._scene.groups)

    def node_items(self) -> dict[NodeKey, TaskNodeItem | GroupNodeItem]:
        """Every node drawn, by key: ``("task", uid)`` or ``("group", group)``.  GUI thread."""
        return {item.key: item for item in self._scene.nodes()}  # type: ignore[misc]

    def node_order(self) -> list[NodeKey]:
        """The keys of the nodes drawn in reading order (Tab's order).  GUI thread."""
        return list(self._scene.order)

    def edges(self) -> set[tuple[int, int]]:
        """(upstream uid, downstream uid) of every arrow between two task nodes.  GUI thread."""
        return {(a[1], b[1]) for a, b in self._scene.edges if a[0] == b[0] == "task"}  # type: ignore[misc]

    def links(self) -> dict[EdgeKey, int]:
        """(upstream key, downstream key) -> how many task edges each arrow stands for.

        GUI thread.
        """
        return {key: item.count for key, item in self._scene.edges.items()}

    def edge_items(self) -> dict[EdgeKey, TaskEdgeItem]:
        """(upstream key, downstream key) -> arrow item of every arrow drawn.  GUI thread."""
        return dict(self._scene.edges)

    def shown_uids(self) -> set[int]:
        """The uids drawn, alone or in a group node (all but those the neighbours
        filter hides).  GUI thread."""
        return set(self._scene.node_of)

    def running_timers(self) -> set[str]:
        """Which of the view's timers run: ``"refresh"`` while a refresh is
        scheduled, ``"watch"`` while it looks for a shut-down (live nodes shown)
        or re-reads the nodes still stopping after one, ``"layout"`` while a
        layout is computed or its items are made.  GUI thread only."""
        timers = set()
        if self._timer.isActive():
            timers.add("refresh")
        if self._watch.isActive():
            timers.add("watch")
        if self._runner.timer.isActive() or self._work_timer.isActive():
            timers.add("layout")
        return timers

    def is_laying_out(self) -> bool:
        """Whether a layout is being computed or applied.  GUI thread."""
        return self._runner.busy() or self._work is not None

    # ------------------------------------------------------------------ updates

    def refresh(self) -> None:
        """Read ``manager.tasks()`` and lay the graph out now, on this thread.  GUI thread."""
        self._timer.stop()
        self.refresh_count += 1
        self._structure_changed = False
        self._generation += 1
        self._changed.clear()
        self._since_request.clear()
        result = compute_layout(self._manager.tasks(), self._request())
        self._start_apply(result)
        if self._work is not None:
            for _ in self._work:
                pass
            self._finish_apply()
        self._update_watch()

    def is_shut_down(self) -> bool:
        """Whether the view noticed that its manager was shut down (or deleted).  GUI thread."""
        return self._shut_down

    def _request(self) -> LayoutRequest:
        port = self.viewport().size()
        viewport = (
            (float(port.width()), float(port.height()))
            if self.isVisible() and port.width() > 50 and port.height() > 50
            else (1280.0, 800.0)
        )
        self._last_viewport = viewport
        return LayoutRequest(
            self._collapse_threshold,
            frozenset(self._expanded),
            frozenset(self._collapsed),
            self._seeds,
            viewport,
            self._min_legible,
            self._generation,
        )

    def _relayout(self) -> None:
        """Lay out again on the worker, now (settings changed)."""
        self._structure_changed = False
        self._runner.request(self._request())

    def _deliver(self, result: LayoutResult) -> None:
        if result.generation < self._generation:
            return  # a refresh() was made after it started
        self._start_apply(result)
        if not self._runner.busy():
            self._changed |= self._since_request
            self._since_request.clear()

    def _start_apply(self, result: LayoutResult) -> None:
        self._scene.infos = {info.uid: info for info in result.infos}
        self._work = self._scene.apply_steps(result)
        # one paint when the items are in place, not one per batch
        self.viewport().setUpdatesEnabled(False)
        self._work_timer.start()

    def _room(self) -> float | None:
        """The deadline of a budgeted piece of work starting now; None when another
        ended less than 2 ms ago (most likely in this same turn of the event loop:
        two budgets in one turn would make one stall of twice the budget)."""
        now = perf_counter()
        if now - self._work_end < 0.002:
            return None
        return now + self.frame_budget

    def _work_tick(self) -> None:
        work = self._work
        if work is None:
            self._work_timer.stop()
            return
        deadline = self._room()
        if deadline is None:
            return  # the timer fires again on the next turn
        try:
            for _ in work:
                if perf_counter() >= deadline:
                    return
            self._work = iter(())  # done: finish (fit, repaint) on a turn of its own
            if perf_counter() < deadline - self.frame_budget / 2:
                self._finish_apply()
        finally:
            self._work_end = perf_counter()

    def _finish_apply(self) -> None:
        self._work = None
        self._work_timer.stop()
        self.viewport().setUpdatesEnabled(True)
        self.layout_count += 1
        if self._auto_fit:
            self._fit()
        if self._focus_after is not None:
            item = self._scene.node(self._focus_after)
            self._focus_after = None
            if item is not None:
                item.setFocus()
                self.ensureVisible(item)
        self._describe()
        self._update_watch()
        if self._changed:
            self._schedule()
        self.laid_out.emit()

    def _update(self) -> None:
        self.refresh_count += 1
        if self._structure_changed:
            self._relayout()
        self._update_states()
        self._update_watch()

    def _update_states(self) -> None:
        """New states to their nodes, a chunk at a time within ``frame_budget``."""
        deadline = self._room()
        if deadline is None:
            QTimer.singleShot(2, self._update_rest)
            return
        changed = list(self._changed)
        self._changed.clear()
        done = 0
        while done < len(changed):
            chunk = changed[done : done + 32]
            done += len(chunk)
            self._scene.update_states(self._manager.infos(chunk).values())
            if perf_counter() >= deadline:
                break
        self._work_end = perf_counter()
        if done < len(changed):  # the rest on the next turn of the event loop
            self._changed.update(changed[done:])
            QTimer.singleShot(1, self._update_rest)

    def _update_rest(self) -> None:
        if self._changed and not self._timer.isActive():
            self._update_states()

    # ------------------------------------------------------------------ shut-down watch

    def _live_uids(self) -> list[int]:
        return [uid for uid, info in self._scene.infos.items() if not info.state.is_terminal]

    def _update_watch(self) -> None:
        # Live nodes could change without a signal only once the manager is
        # shut down: look for that, slowly, while there are some.
        if self._shut_down:
            return  # _watch_tick decides
        if self._live_uids():
            if not self._watch.isActive():
                self._watch.start()
        else:
            self._watch.stop()

    def _watch_tick(self) -> None:
        if not self._shut_down:
            if not manager_is_shut_down(self._manager):
                return
            self._shut_down = True
            self._shutdown_deadline = perf_counter() + self.shutdown_poll_limit
            self._watch.setInterval(SHUTDOWN_POLL_INTERVAL)
        self._scene.update_states(self._manager.infos(self._live_uids()).values())
        if not self._live_uids() or perf_counter() >= self._shutdown_deadline:
            self._watch.stop()  # for good: nothing starts it again

    # ------------------------------------------------------------------ signals in

    def _on_structure(self, *_: Any) -> None:
        self._structure_changed = True
        self._schedule()

    def _on_changed(self, uid: int, *_: Any) -> None:
        self._changed.add(uid)
        if self._runner.busy() or self._work is not None:
            self._since_request.add(uid)
        self._schedule()

    def _on_renamed(self, group: Hashable, name: str) -> None:
        self._scene.rename(group)

    def _schedule(self) -> None:
        if not self._timer.isActive():
            self._timer.start()

    # ------------------------------------------------------------------ keyboard, mouse

    def _describe(self) -> None:
        item = self._scene.focusItem()
        parts = [self.fit_note()] if self.fit_note() else []
        if isinstance(item, _NodeItem):
            parts.append(item.description())
        self.setAccessibleDescription(" ".join(parts))

    def resizeEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        """Qt override: refits while auto-fitting; a much changed shape lays out again."""
        super().resizeEvent(event)
        width, height = self._last_viewport
        port = self.viewport().size()
        if width and height and port.width() > 50 and port.height() > 50:
            ratio = (port.width() / port.height()) / (width / height)
            if not 0.75 < ratio < 1.33:
                self._on_structure()
        if self._auto_fit:
            self._fit()
