"""Laying the task graph out off the UI thread.

A relayout of thousands of nodes takes a few hundred milliseconds of pure
Python: on the UI thread that is a visible stall.  ``LayoutRunner`` runs
``compute_layout`` on a daemon thread instead (a layout is plain data: no Qt
object is touched there) and hands the result to the UI thread, which polls
for it with a short timer while a job is out.  One job at a time: a request
made while one runs waits, and only the newest waiting request runs.

Reading ``manager.tasks()`` happens on the worker too: it takes the
scheduler's lock, which workers hold often during a flood.

The worker holds the GIL while it computes; CPython hands it over every
``sys.getswitchinterval()`` (5 ms), so the UI thread waits at most that long
for it.
"""

from __future__ import annotations

import queue
import threading
import weakref
from collections.abc import Callable, Collection, Hashable, Sequence
from typing import Any, NamedTuple, cast

from PySide6.QtCore import QObject, QTimer

from ..core._state import TaskInfo
from ._graph_layout import MARGIN, GraphLayout, Point, lay_out
from ._graph_model import (
    EdgeKey,
    NodeKey,
    VisibleGraph,
    closure,
    collapsed_groups,
    heed,
    visible_graph,
)
from ._graph_route import Route, route_edges

_POLL_MS = 4


class LayoutRequest(NamedTuple):
    """What a layout depends on besides the tasks (a frozen copy of the view's settings)."""

    threshold: int
    expanded: frozenset[Hashable]
    collapsed: frozenset[Hashable]
    seeds: frozenset[int] | None  # neighbours of these only; None: every task
    viewport: Point
    legible: float = 0.6  # the smallest scale at which text can be read
    generation: int = 0  # the view drops results older than its last refresh()


class LayoutResult(NamedTuple):
    """A finished layout and what it was made of."""

    infos: list[TaskInfo]
    shown: set[int] | None  # the uids kept by the neighbours filter; None: all
    groups: set[Hashable]  # the collapsed groups
    graph: VisibleGraph
    layout: GraphLayout
    routes: dict[EdgeKey, Route]
    order: list[NodeKey]  # reading order: layer by layer, top to bottom
    generation: int
    bounds: tuple[float, float, float, float]  # (x, y, width, height) of nodes and arrows


def compute_layout(infos: Sequence[TaskInfo], request: LayoutRequest) -> LayoutResult:
    """Everything the view draws, from task snapshots.  Any thread (pure).

    Args:
        infos: The snapshots, any order.
        request: The view's settings.
    """
    infos = sorted(infos, key=lambda info: info.uid)
    shown: set[int] | None = None
    if request.seeds is not None:
        shown = closure({i.uid: i.upstream for i in infos}, request.seeds)
    sizes: dict[Hashable, int] = {}
    for info in infos:
        if info.group is not None and (shown is None or info.uid in shown):
            sizes[info.group] = sizes.get(info.group, 0) + 1
    groups = collapsed_groups(sizes, request.threshold, request.expanded, request.collapsed)
    graph = visible_graph(infos, groups, shown)
    layout = lay_out(graph.nodes, graph.edges, request.viewport, request.legible)
    routes = cast("dict[EdgeKey, Route]", route_edges(layout, graph.edges))
    order = cast("list[NodeKey]", [k for block in layout.blocks for k in block.keys])
    width, height = layout.size
    left, top, right, bottom = -MARGIN, -MARGIN, width + MARGIN, height + MARGIN
    for route in routes.values():  # arrows may use the margins
        for x, y in route.points:
            left, right = min(left, x - 16), max(right, x + 16)
            top, bottom = min(top, y - 16), max(bottom, y + 16)
    bounds = (left, top, right - left, bottom - top)
    return LayoutResult(
        infos, shown, groups, graph, layout, routes, order, request.generation, bounds
    )


def _weak(read: Callable[[], Collection[TaskInfo]]) -> Callable[[], Collection[TaskInfo]]:
    """``read`` without keeping its object alive (a bound method's object)."""
    try:
        ref = weakref.WeakMethod(read)
    except TypeError:
        return read

    def weak_read() -> Collection[TaskInfo]:
        method = ref()
        return method() if method is not None else []

    return weak_read


def _serve(
    read: Callable[[], Collection[TaskInfo]],
    jobs: queue.SimpleQueue[LayoutRequest | None],
    results: queue.SimpleQueue[LayoutResult | BaseException],
    gate: Any,
) -> None:
    """The worker: lays out each request until it gets None."""
    heed(gate)
    while (request := jobs.get()) is not None:
        try:
            results.put(compute_layout(list(read()), request))
        except BaseException as exc:  # handed to the UI thread, raised there
            results.put(exc)
        del request


class LayoutRunner:
    """Runs one layout at a time on its daemon thread; ``deliver`` gets each
    result on the UI thread (from ``timer``'s timeout).

    The thread is started at the first request and then waits for the next
    one (starting a thread per job cost the UI thread 2-7 ms during a flood:
    ``Thread.start`` waits until the new thread has run, which needs the GIL
    the workers hold); ``close`` ends it.

    GUI thread only, except for the worker it starts.

    Args:
        read: Returns the task snapshots (called on the worker).
        deliver: Called with each result on the UI thread.
        parent: The QObject owning the poll timer.
        gate: The manager's GIL gate: the worker steps aside while the UI
            thread starves (None: it only lets go of the GIL now and then).
    """

    def __init__(
        self,
        read: Callable[[], Collection[TaskInfo]],
        deliver: Callable[[LayoutResult], None],
        parent: QObject,
        gate: Any = None,
    ) -> None:
        self._read = read
        self._gate = gate
        self._deliver = deliver
        self._waiting: LayoutRequest | None = None
        self._running = False  # a job is out on the worker
        self._jobs: queue.SimpleQueue[LayoutRequest | None] = queue.SimpleQueue()
        self._results: queue.SimpleQueue[LayoutResult | BaseException] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self.timer = QTimer(parent)
        self.timer.setInterval(_POLL_MS)
        self.timer.timeout.connect(self._poll)

    def busy(self) -> bool:
        """Whether a job runs or waits.  GUI thread."""
        return self._running or self._waiting is not None

    def thread(self) -> threading.Thread | None:
        """The worker thread (None before the first request).  GUI thread."""
        return self._thread

    def request(self, request: LayoutRequest) -> None:
        """Lay out with ``request`` when the running job (if any) is done.  GUI thread.

        Args:
            request: The settings to use.
        """
        self._waiting = request
        if not self._running:
            self._start()

    def close(self) -> None:
        """End the worker thread once its job (if any) is done.  Any thread."""
        self._jobs.put(None)

    def _start(self) -> None:
        request, self._waiting = self._waiting, None
        if request is None:
            return
        if self._thread is None:
            # The worker holds neither this runner nor the view (nor the manager:
            # a weak method): when the runner goes, its finalizer ends the worker.
            args = (_weak(self._read), self._jobs, self._results, self._gate)
            self._thread = threading.Thread(
                target=_serve, args=args, name="bgtasks-graph-layout", daemon=True
            )
            self._thread.start()
            weakref.finalize(self, self._jobs.put, None)
        self._running = True
        self._jobs.put(request)
        self.timer.start()

    def _poll(self) -> None:
        try:
            result = self._results.get_nowait()
        except queue.Empty:
            return
        self._running = False
        self.timer.stop()
        if self._waiting is not None:
            self._start()  # newer settings or tasks; meanwhile show this one
        if isinstance(result, BaseException):
            raise result
        self._deliver(result)
