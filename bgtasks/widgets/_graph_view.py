"""A live drawing of the manager's task graph in a QGraphicsView."""

from __future__ import annotations

from collections.abc import Sequence
from time import perf_counter
from typing import Any

from PySide6.QtCore import QPointF, QRectF, Qt, QTimer
from PySide6.QtGui import (
    QBrush,
    QColor,
    QFont,
    QFontMetricsF,
    QKeyEvent,
    QPainter,
    QPainterPath,
    QPen,
    QPolygonF,
    QWheelEvent,
)
from PySide6.QtWidgets import (
    QGraphicsItem,
    QGraphicsPathItem,
    QGraphicsScene,
    QGraphicsView,
    QStyleOptionGraphicsItem,
    QWidget,
)

from ..core._state import TaskInfo, TaskState
from ..qt._home_thread import DiesAtHome
from ..qt._manager import BackgroundTaskManager
from ._graph_layout import NODE_HEIGHT, NODE_WIDTH, GraphLayout, lay_out
from ._shutdown import SHUTDOWN_POLL_INTERVAL, WATCH_INTERVAL, manager_is_shut_down

STATE_COLOURS: dict[TaskState, QColor] = {
    TaskState.PENDING: QColor("white"),
    TaskState.QUEUED: QColor("lightblue"),
    TaskState.RUNNING: QColor("yellow"),
    TaskState.CANCELLING: QColor("orange"),
    TaskState.COMPLETED: QColor("#5cd65c"),
    TaskState.FAILED: QColor("#f04040"),
    TaskState.CANCELLED: QColor("#b4b4b4"),
}
"""Node fill by state: the palette of ``manager.to_dot()`` (pending white,
queued light blue, running yellow, cancelling orange, completed green,
failed red, cancelled gray), in shades that keep black text readable."""

_ARROW = 9.0


class TaskNodeItem(QGraphicsItem):
    """One task: a rounded rectangle filled by state, ``"uid: name"`` over the state."""

    def __init__(self, info: TaskInfo) -> None:
        """Make the node of a task (GUI thread, like every graphics item).

        Args:
            info: The task's snapshot (kept as ``info``).
        """
        super().__init__()
        self.info = info
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIsSelectable)
        self.setAcceptHoverEvents(True)
        self.setZValue(1)
        self.update_info(info)

    @property
    def uid(self) -> int:
        """The task's uid."""
        return self.info.uid

    @property
    def state(self) -> TaskState:
        """The task's state in the latest snapshot."""
        return self.info.state

    def colour(self) -> QColor:
        """The fill colour of its state (``STATE_COLOURS``).  GUI thread."""
        return STATE_COLOURS[self.info.state]

    def title(self) -> str:
        """The first line: ``"uid: name"``.  GUI thread."""
        return f"{self.info.uid}: {self.info.name}"

    def subtitle(self) -> str:
        """The second line: the state, with the progress while running.  GUI thread."""
        info = self.info
        text = info.state.name
        if info.state in (TaskState.RUNNING, TaskState.CANCELLING) and info.progress is not None:
            text += f" {round(info.progress * 100)} %"
        return text

    def update_info(self, info: TaskInfo) -> None:
        """Show a newer snapshot of the task (text, tooltip, colour).  GUI thread.

        Args:
            info: The task's new snapshot.
        """
        self.info = info
        tip = [self.title(), f"state: {info.state.value}", f"group: {info.group!r}"]
        if info.progress is not None:
            tip.append(f"progress: {round(info.progress * 100)} %")
        if info.message:
            tip.append(info.message)
        if info.error:
            tip.append(f"error: {info.error}")
        if info.attempts > 1:
            tip.append(f"attempts: {info.attempts}")
        self.setToolTip("\n".join(tip))
        self.update()

    def boundingRect(self) -> QRectF:  # noqa: N802 - Qt override
        """Qt override: the node's rectangle, with room for its outline."""
        return QRectF(-1, -1, NODE_WIDTH + 2, NODE_HEIGHT + 2)

    def shape(self) -> QPainterPath:
        """Qt override: the rounded rectangle, for hits and selection."""
        path = QPainterPath()
        path.addRoundedRect(QRectF(0, 0, NODE_WIDTH, NODE_HEIGHT), 8, 8)
        return path

    def paint(
        self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None
    ) -> None:
        """Qt override: draws the node (GUI thread)."""
        rect = QRectF(0, 0, NODE_WIDTH, NODE_HEIGHT)
        selected = self.isSelected()
        painter.setPen(
            QPen(QColor("#1f5fbf") if selected else QColor("#333333"), 2.5 if selected else 1.2)
        )
        painter.setBrush(QBrush(self.colour()))
        painter.drawRoundedRect(rect, 8, 8)
        painter.setPen(QColor("black"))
        font = QFont(painter.font())
        font.setPointSizeF(9)
        font.setBold(True)
        painter.setFont(font)
        inner = rect.adjusted(6, 4, -6, -4)
        half = inner.height() / 2
        title = QFontMetricsF(font).elidedText(
            self.title(), Qt.TextElideMode.ElideRight, inner.width()
        )
        painter.drawText(
            QRectF(inner.x(), inner.y(), inner.width(), half), Qt.AlignmentFlag.AlignCenter, title
        )
        font.setBold(False)
        font.setPointSizeF(8)
        painter.setFont(font)
        painter.drawText(
            QRectF(inner.x(), inner.y() + half, inner.width(), half),
            Qt.AlignmentFlag.AlignCenter,
            self.subtitle(),
        )


def _curve(path: QPainterPath, start: QPointF, end: QPointF) -> None:
    """An S-curve from ``start`` to ``end``, horizontal at both ends."""
    dx = max((end.x() - start.x()) / 2, 10.0)
    path.cubicTo(start + QPointF(dx, 0), end - QPointF(dx, 0), end)


class TaskEdgeItem(QGraphicsPathItem):
    """An arrow from an upstream task's node to a downstream task's node."""

    def __init__(self, source: TaskNodeItem, target: TaskNodeItem) -> None:
        """Make the arrow from ``source`` to ``target`` (GUI thread).

        Args:
            source: The upstream task's node.
            target: The downstream task's node.
        """
        super().__init__()
        self._head = QPainterPath()
        self.source = source
        self.target = target
        self.setZValue(0)
        self.setPen(QPen(QColor("#555555"), 1.4))
        self.setBrush(QBrush(QColor("#555555")))
        self.lanes: tuple[tuple[float, float, float], ...] = ()
        self.adjust()

    def adjust(self, lanes: Sequence[tuple[float, float, float]] = ()) -> None:
        """Route the arrow between its nodes' current positions.  GUI thread.

        Args:
            lanes: (left x, right x, y) passages through the layers it crosses (gaps
                between their nodes), left to right.
        """
        self.lanes = tuple(lanes)
        src = self.source.pos() + QPointF(NODE_WIDTH, NODE_HEIGHT / 2)
        dst = self.target.pos() + QPointF(0, NODE_HEIGHT / 2)
        path = QPainterPath(src)
        here = src
        for left, right, y in self.lanes:
            _curve(path, here, QPointF(left, y))
            here = QPointF(right, y)
            path.lineTo(here)
        _curve(path, here, dst - QPointF(_ARROW, 0))
        # the arrow head points along the curve's end direction: +x
        head = QPainterPath()
        head.addPolygon(
            QPolygonF(
                [dst, dst + QPointF(-_ARROW, -_ARROW / 2), dst + QPointF(-_ARROW, _ARROW / 2), dst]
            )
        )
        self.prepareGeometryChange()
        self._head = head  # filled; the curve is only stroked
        self.setPath(path)

    def boundingRect(self) -> QRectF:  # noqa: N802 - Qt override
        """Qt override: the curve's bounds with its arrow head."""
        return super().boundingRect().united(self._head.boundingRect()).adjusted(-2, -2, 2, 2)

    def paint(
        self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None
    ) -> None:
        """Qt override: draws the curve and its arrow head (GUI thread)."""
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(self.pen())
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawPath(self.path())
        painter.setBrush(self.brush())
        painter.drawPath(self._head)


class TaskGraphView(DiesAtHome, QGraphicsView):
    """The manager's tasks as a graph: a node per registered task, an arrow
    from each upstream task to its downstream task, laid out in columns by
    layer (longest path from a root), ordered by uid within a column.

    Updates live: the manager's signals only start a single-shot QTimer, so
    however many signals arrive, the view rebuilds at most every
    ``refresh_interval`` ms (default 100).  ``refresh()`` rebuilds at once.
    Nodes are kept per uid across refreshes (selection survives).

    Zoom: Ctrl+wheel, ``+``/``-`` (``=`` too), ``0`` or ``F`` fits the graph in
    view (``fit_to_view``).  Until the user zooms, every refresh fits.

    A shut-down manager emits nothing more: while live nodes are shown a slow
    watch timer looks at ``manager.is_shut_down``; once it is, the live nodes
    are read from the registry (running ones CANCELLING, queued ones
    CANCELLED), again a few times a second until they ended or
    ``shutdown_poll_limit`` seconds passed, and then nothing polls any more.

    GUI thread only; the manager's signals it follows arrive on that thread.

    Args:
        manager: The manager whose tasks it draws.
        parent: The parent widget.
    """

    ZOOM_STEP = 1.2
    MIN_ZOOM = 0.05
    MAX_ZOOM = 8.0

    def __init__(self, manager: BackgroundTaskManager, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._remember_home()  # destroyed on this thread, whoever drops it last
        self._manager = manager
        self._scene = QGraphicsScene(self)
        self.setScene(self._scene)
        self.setRenderHints(QPainter.RenderHint.Antialiasing | QPainter.RenderHint.TextAntialiasing)
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setBackgroundBrush(QColor("#fafafa"))
        self.setAccessibleName("Task graph")
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self._nodes: dict[int, TaskNodeItem] = {}
        self._edges: dict[tuple[int, int], TaskEdgeItem] = {}
        self._auto_fit = True
        self.refresh_count = 0  #: how many refreshes ran (tests check the coalescing)
        self.layout_count = 0  #: how many of them laid the graph out again
        self._structure_changed = True  # tasks added or removed: lay out again
        self._changed: set[int] = set()  # uids whose state or progress changed
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(100)
        self._timer.timeout.connect(self._update)
        #: Seconds the view keeps re-reading nodes still stopping after a shut-down.
        self.shutdown_poll_limit = 30.0
        self._shut_down = False
        self._shutdown_deadline = 0.0
        self._watch = QTimer(self)
        self._watch.setInterval(WATCH_INTERVAL)
        self._watch.timeout.connect(self._watch_tick)
        manager.task_added.connect(self._on_structure)
        manager.task_removed.connect(self._on_structure)
        manager.task_state_changed.connect(self._on_changed)
        manager.task_progress.connect(self._on_changed)
        self.refresh()

    # ------------------------------------------------------------------ public API

    @property
    def refresh_interval(self) -> int:
        """Milliseconds between two refreshes while tasks change (settable).  GUI thread."""
        return self._timer.interval()

    @refresh_interval.setter
    def refresh_interval(self, ms: int) -> None:
        self._timer.setInterval(int(ms))

    def nodes(self) -> dict[int, TaskNodeItem]:
        """uid -> node item, as of the last refresh.  GUI thread."""
        return dict(self._nodes)

    def edges(self) -> set[tuple[int, int]]:
        """(upstream uid, downstream uid) pairs, as of the last refresh.  GUI thread."""
        return set(self._edges)

    def edge_items(self) -> dict[tuple[int, int], TaskEdgeItem]:
        """(upstream uid, downstream uid) -> arrow item, as of the last refresh.  GUI thread only."""
        return dict(self._edges)

    def running_timers(self) -> set[str]:
        """Which of the view's timers run: ``"refresh"`` while a refresh is
        scheduled, ``"watch"`` while it looks for a shut-down (live nodes shown)
        or re-reads the nodes still stopping after one.  GUI thread only."""
        timers = set()
        if self._timer.isActive():
            timers.add("refresh")
        if self._watch.isActive():
            timers.add("watch")
        return timers

    def zoom(self) -> float:
        """The current scale (1.0: unscaled).  GUI thread."""
        return self.transform().m11()

    def zoom_by(self, factor: float) -> None:
        """Scale the view by ``factor``, within MIN_ZOOM..MAX_ZOOM; stops auto-fitting.

        GUI thread.

        Args:
            factor: The scale factor (above 1 zooms in).
        """
        self._auto_fit = False
        current = self.zoom()
        target = min(max(current * factor, self.MIN_ZOOM), self.MAX_ZOOM)
        if current > 0 and target != current:
            self.scale(target / current, target / current)

    def fit_to_view(self) -> None:
        """Show the whole graph (never magnified beyond 1:1); auto-fit again on refresh.

        GUI thread.
        """
        self._auto_fit = True
        self._fit()

    def refresh(self) -> None:
        """Rebuild from ``manager.tasks()`` now.  GUI thread."""
        self._structure_changed = True
        self._update()

    def is_shut_down(self) -> bool:
        """Whether the view noticed that its manager was shut down (or deleted).  GUI thread."""
        return self._shut_down

    def _update(self) -> None:
        self._update_now()
        self._update_watch()

    def _live_uids(self) -> list[int]:
        return [uid for uid, node in self._nodes.items() if not node.state.is_terminal]

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
        self._changed.update(self._live_uids())
        self._update_now()
        if not self._live_uids() or perf_counter() >= self._shutdown_deadline:
            self._watch.stop()  # for good: nothing starts it again

    def _update_now(self) -> None:
        # From the timer: new states repaint their nodes only; added or removed
        # tasks lay the graph out again.
        self._timer.stop()
        self.refresh_count += 1
        if not self._structure_changed:
            changed, self._changed = self._changed, set()
            for uid, info in self._manager.infos(changed).items():
                node = self._nodes.get(uid)
                if node is not None and node.info != info:
                    node.update_info(info)
            return
        self._structure_changed = False
        self._changed.clear()
        self.layout_count += 1
        infos = sorted(self._manager.tasks(), key=lambda info: info.uid)
        self._sync_nodes(infos)
        layout = lay_out(infos)
        for uid, (x, y) in layout.positions.items():
            self._nodes[uid].setPos(x, y)
        self._sync_edges(layout)
        scene = self._scene
        scene.setSceneRect(scene.itemsBoundingRect().adjusted(-12, -12, 12, 12))
        if self._auto_fit:
            self._fit()

    def _sync_nodes(self, infos: list[TaskInfo]) -> None:
        """A node per snapshot: new ones added, gone ones removed, changed ones updated."""
        scene = self._scene
        seen = {info.uid for info in infos}
        for uid in [uid for uid in self._nodes if uid not in seen]:
            scene.removeItem(self._nodes.pop(uid))
        for info in infos:
            node = self._nodes.get(info.uid)
            if node is None:
                node = self._nodes[info.uid] = TaskNodeItem(info)
                scene.addItem(node)
            elif node.info != info:
                node.update_info(info)

    def _sync_edges(self, layout: GraphLayout) -> None:
        """An arrow per edge of ``layout``, routed through its lanes (the nodes are placed)."""
        scene = self._scene
        for key in [key for key in self._edges if key not in layout.edges]:
            scene.removeItem(self._edges.pop(key))
        for key in layout.edges:
            up, down = key
            edge = self._edges.get(key)
            if edge is None:
                edge = self._edges[key] = TaskEdgeItem(self._nodes[up], self._nodes[down])
                scene.addItem(edge)
            edge.adjust(layout.lanes(up, down))

    # ------------------------------------------------------------------ internals

    def _fit(self) -> None:
        rect = self._scene.sceneRect()
        if not self._nodes:
            self.resetTransform()
            return
        self.fitInView(rect, Qt.AspectRatioMode.KeepAspectRatio)
        if self.zoom() > 1.0:  # small graphs stay at natural size
            self.resetTransform()
            self.centerOn(rect.center())

    def _on_structure(self, *_: Any) -> None:
        self._structure_changed = True
        self._schedule()

    def _on_changed(self, uid: int, *_: Any) -> None:
        self._changed.add(uid)
        self._schedule()

    def _schedule(self) -> None:
        if not self._timer.isActive():
            self._timer.start()

    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802 - Qt override
        """Qt override: Ctrl + wheel zooms; otherwise scrolls."""
        if event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            steps = event.angleDelta().y() / 120
            if steps:
                self.zoom_by(self.ZOOM_STEP**steps)
            event.accept()
            return
        super().wheelEvent(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt override
        """Qt override: + and - zoom, 0 or F fits the graph to the view."""
        key = event.key()
        if key in (Qt.Key.Key_Plus, Qt.Key.Key_Equal):
            self.zoom_by(self.ZOOM_STEP)
        elif key in (Qt.Key.Key_Minus, Qt.Key.Key_Underscore):
            self.zoom_by(1 / self.ZOOM_STEP)
        elif key in (Qt.Key.Key_0, Qt.Key.Key_F):
            self.fit_to_view()
        else:
            super().keyPressEvent(event)
            return
        event.accept()

    def resizeEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        """Qt override: refits the graph while auto-fitting."""
        super().resizeEvent(event)
        if self._auto_fit:
            self._fit()
