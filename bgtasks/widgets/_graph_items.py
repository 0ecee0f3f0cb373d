"""The graphics items of ``TaskGraphView``: task nodes, group nodes, arrows.

GUI thread only, like every QGraphicsItem.  Nodes share one size
(``NODE_WIDTH`` x ``NODE_HEIGHT``, the layout's grid).  Below half their
size on screen the nodes drop their text (it could not be read) and the
arrows their antialiasing: a big graph zoomed out paints quickly.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Hashable

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import (
    QBrush,
    QColor,
    QFont,
    QFontMetricsF,
    QPainterPath,
    QPen,
    QPolygonF,
)
from PySide6.QtWidgets import (
    QGraphicsItem,
    QGraphicsPathItem,
    QGraphicsPolygonItem,
    QGraphicsRectItem,
    QGraphicsSimpleTextItem,
)

from ..core._errors import repr_of
from ..core._state import TaskInfo, TaskState
from ._columns import clip
from ._graph_layout import NODE_HEIGHT, NODE_WIDTH, Point
from ._graph_model import STATE_WORDS, NodeKey, counts_text, group_key, task_key
from ._graph_route import Route

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
_EDGE_COLOUR = QColor("#555555")
_RADIUS = 8.0
_RECT = QRectF(0, 0, NODE_WIDTH, NODE_HEIGHT)

Activate = Callable[["_NodeItem"], None]

_PLAIN = QPen(QColor("#333333"), 1.2)
_SELECTED = QPen(QColor("#1f5fbf"), 3.0)
_FOCUSED = QPen(QColor("#1f5fbf"), 3.0, Qt.PenStyle.DashLine)
_FONTS: list[QFont] = []  # title, subtitle: made once a QGuiApplication exists


def _fonts() -> list[QFont]:
    if not _FONTS:
        title = QFont()
        title.setPointSizeF(11)
        title.setBold(True)
        subtitle = QFont()
        subtitle.setPointSizeF(9.5)
        _FONTS.extend((title, subtitle))
    return _FONTS


def _rounded(rect: QRectF) -> QPainterPath:
    path = QPainterPath()
    path.addRoundedRect(rect, _RADIUS, _RADIUS)
    return path


def _child_text(parent: QGraphicsItem, font: QFont) -> QGraphicsSimpleTextItem:
    text = QGraphicsSimpleTextItem(parent)
    text.setFont(font)
    text.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
    return text


class _NodeItem(QGraphicsPathItem):
    """What task and group nodes share: size, texts, focus and selection
    outlines, activation.

    Built from plain Qt items (a rounded rectangle with two text items as
    children) and with no Python ``paint`` or ``boundingRect``: Qt paints and
    indexes them without calling into Python, which would have to take the
    GIL back from busy worker threads once per item.
    """

    def __init__(self) -> None:
        super().__init__(_rounded(_RECT))
        title_font, subtitle_font = _fonts()
        self._title = _child_text(self, title_font)
        self._subtitle = _child_text(self, subtitle_font)
        self.activate: Activate | None = None  # set by the view: click, Enter, Space
        self._pressed_at: QPointF | None = None
        self.setPen(_PLAIN)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIsSelectable)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIsFocusable)
        self.setAcceptHoverEvents(True)
        self.setZValue(1)

    @property
    def key(self) -> NodeKey:
        """The node's key in the view (``("task", uid)`` or ``("group", group)``)."""
        raise NotImplementedError

    def description(self) -> str:
        """What a screen reader says of the node.  GUI thread."""
        raise NotImplementedError

    def _set_texts(self, title: str, subtitle: str, bottom: float = 0.0) -> None:
        """Both lines, elided to the node's width and centred."""
        width = NODE_WIDTH - 16
        half = (NODE_HEIGHT - bottom) / 2
        for item, text, top in ((self._title, title, 0.0), (self._subtitle, subtitle, half)):
            elided = QFontMetricsF(item.font()).elidedText(
                clip(text), Qt.TextElideMode.ElideRight, width
            )
            if item.text() != elided:
                item.setText(elided)
            box = item.boundingRect()
            item.setPos((NODE_WIDTH - box.width()) / 2, top + (half - box.height()) / 2 + 2)

    def restyle(self) -> None:
        """The outline for the node's focus and selection.  GUI thread."""
        pen = _FOCUSED if self.hasFocus() else _SELECTED if self.isSelected() else _PLAIN
        if self.pen() != pen:
            self.setPen(pen)

    def focusInEvent(self, event: object) -> None:  # noqa: N802 - Qt override
        """Qt override: a dashed outline while it has the focus."""
        super().focusInEvent(event)  # type: ignore[arg-type]
        self.restyle()

    def focusOutEvent(self, event: object) -> None:  # noqa: N802 - Qt override
        """Qt override: the outline without the focus."""
        super().focusOutEvent(event)  # type: ignore[arg-type]
        self.restyle()

    def mousePressEvent(self, event: object) -> None:  # noqa: N802 - Qt override
        """Qt override: remembers where a click started."""
        self._pressed_at = event.scenePos()  # type: ignore[attr-defined]
        super().mousePressEvent(event)  # type: ignore[arg-type]

    def mouseReleaseEvent(self, event: object) -> None:  # noqa: N802 - Qt override
        """Qt override: a click (not a drag) activates the node."""
        super().mouseReleaseEvent(event)  # type: ignore[arg-type]
        start, self._pressed_at = self._pressed_at, None
        if start is None or self.activate is None:
            return
        moved = event.scenePos() - start  # type: ignore[attr-defined]
        if moved.manhattanLength() < 4 and event.button() == Qt.MouseButton.LeftButton:  # type: ignore[attr-defined]
            self.activate(self)


class TaskNodeItem(_NodeItem):
    """One task: a rounded rectangle filled by state, ``"uid: name"`` over the state."""

    def __init__(self, info: TaskInfo) -> None:
        """Make the node of a task (GUI thread, like every graphics item).

        Args:
            info: The task's snapshot (kept as ``info``).
        """
        super().__init__()
        self.info = info
        self.update_info(info)

    @property
    def key(self) -> NodeKey:
        """``("task", uid)``."""
        return task_key(self.info.uid)

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

    def description(self) -> str:
        """``"Task 7: parse, RUNNING 40 %"``.  GUI thread."""
        return f"Task {self.title()}, {self.subtitle()}"

    def update_info(self, info: TaskInfo) -> None:
        """Show a newer snapshot of the task (text, tooltip, colour).  GUI thread.

        Args:
            info: The task's new snapshot.
        """
        self.info = info
        tip = [self.title(), f"state: {info.state.value}", f"group: {repr_of(info.group)}"]
        if info.progress is not None:
            tip.append(f"progress: {round(info.progress * 100)} %")
        if info.message:
            tip.append(info.message)
        if info.error:
            tip.append(f"error: {info.error}")
        if info.attempts > 1:
            tip.append(f"attempts: {info.attempts}")
        self.setToolTip("\n".join(tip))
        self.setBrush(STATE_COLOURS[info.state])
        self._set_texts(self.title(), self.subtitle())


class GroupNodeItem(_NodeItem):
    """A collapsed group: a stack of cards, its name and task count over its
    state counts, and a bar of its states' shares along the bottom."""

    def __init__(self, group: Hashable, name: str, counts: Counter[TaskState]) -> None:
        """Make the node of a collapsed group (GUI thread).

        Args:
            group: The group.
            name: Its display name.
            counts: How many of its shown tasks are in each state.
        """
        super().__init__()
        self.task_group = group
        self.name = name
        self.counts: Counter[TaskState] = Counter()
        self.setBrush(QColor("#eef2f8"))
        for item, size in ((self._title, 10.0), (self._subtitle, 8.5)):  # longer texts
            font = QFont(item.font())
            font.setPointSizeF(size)
            item.setFont(font)
        for shift in (3.0, 1.5):  # the cards behind it
            card = QGraphicsPathItem(_rounded(_RECT.translated(shift, -shift)), self)
            card.setFlag(QGraphicsItem.GraphicsItemFlag.ItemStacksBehindParent)
            card.setPen(QPen(QColor("#555555"), 1.0))
            card.setBrush(QColor("#dfe6f0"))
            card.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
        self._bar: dict[TaskState, QGraphicsRectItem] = {}
        for state in STATE_WORDS:
            part = self._bar[state] = QGraphicsRectItem(self)
            part.setPen(QPen(Qt.PenStyle.NoPen))
            part.setBrush(STATE_COLOURS[state].darker(110))
            part.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
        self.set_counts(name, counts)

    @property
    def key(self) -> NodeKey:
        """``("group", group)``."""
        return group_key(self.task_group)

    def total(self) -> int:
        """How many tasks it stands for.  GUI thread."""
        return sum(self.counts.values())

    def title(self) -> str:
        """The first line: ``"name · 44 tasks"``.  GUI thread."""
        n = self.total()
        return f"{self.name} · {n} task{'s' if n != 1 else ''}"

    def subtitle(self) -> str:
        """The second line: the counts, ``"40 done, 3 running, 1 failed"``.  GUI thread."""
        return counts_text(self.counts)

    def text(self) -> str:
        """``"name · 40 done, 3 running, 1 failed"``.  GUI thread."""
        return f"{self.name} · {self.subtitle()}"

    def description(self) -> str:
        """What a screen reader says: the group, its counts, and how to expand it.  GUI thread."""
        return f"Group {self.title()}: {self.subtitle()}. Collapsed: press Enter to expand."

    def set_counts(self, name: str, counts: Counter[TaskState]) -> None:
        """Show a new name or new counts.  GUI thread.

        Args:
            name: The group's display name.
            counts: How many of its shown tasks are in each state.
        """
        if name == self.name and counts == self.counts and self.toolTip():
            return
        self.name = name
        self.counts = Counter(counts)
        lines = [self.title(), self.subtitle(), "Click or press Enter to expand."]
        self.setToolTip("\n".join(lines))
        self._set_texts("▸ " + self.title(), self.subtitle(), bottom=8)
        total = self.total() or 1
        x, width = 6.0, NODE_WIDTH - 12
        for state, part in self._bar.items():
            share = width * self.counts.get(state, 0) / total
            part.setRect(QRectF(x, NODE_HEIGHT - 9, share, 5))
            part.setVisible(share > 0)
            x += share


class TaskEdgeItem(QGraphicsPathItem):
    """An arrow from an upstream node to a downstream node, along its route;
    with a count when it stands for several task edges (collapsed groups).

    Made of plain Qt items (the line, a child polygon for its head, a child
    text for its count), so painting it runs no Python.
    """

    def __init__(self, source: _NodeItem, target: _NodeItem, count: int = 1) -> None:
        """Make the arrow from ``source`` to ``target`` (GUI thread).

        Args:
            source: The upstream node.
            target: The downstream node.
            count: How many task edges it stands for.
        """
        super().__init__()
        self.source = source
        self.target = target
        self.count = count
        self.points: tuple[Point, ...] = ()
        self.setZValue(0)
        self.setPen(QPen(_EDGE_COLOUR, 1.4))
        self._head = QGraphicsPolygonItem(self)
        self._head.setPen(QPen(Qt.PenStyle.NoPen))
        self._head.setBrush(QBrush(_EDGE_COLOUR))
        self._text = QGraphicsSimpleTextItem(self)
        font = QFont(self._text.font())
        font.setPointSizeF(8.5)
        font.setBold(True)
        self._text.setFont(font)
        self._text.setBrush(QBrush(QColor("#1f3f7f")))
        self._text.hide()

    def set_route(self, route: Route, turned: bool = False, count: int = 1) -> None:
        """Draw the arrow along ``route``.  GUI thread.

        Args:
            route: The polyline from the left node's right side to the right
                node's left side (horizontal and vertical segments), and
                where its count goes.
            turned: The arrow runs right to left (its head at the first point).
            count: How many task edges it stands for (written when above 1).
        """
        points = route.points
        self.points = tuple(points)
        self.count = count
        path = QPainterPath(QPointF(*points[0]))
        for i in range(1, len(points) - 1):  # rounded corners
            (x0, y0), (x1, y1), (x2, y2) = points[i - 1], points[i], points[i + 1]
            r = min(6.0, abs(x1 - x0 + y1 - y0) / 2, abs(x2 - x1 + y2 - y1) / 2)
            before = QPointF(x1 - r * _sign(x1 - x0), y1 - r * _sign(y1 - y0))
            after = QPointF(x1 + r * _sign(x2 - x1), y1 + r * _sign(y2 - y1))
            path.lineTo(before)
            path.quadTo(QPointF(x1, y1), after)
        path.lineTo(QPointF(*points[-1]))
        self.setPath(path)
        tip_x, tip_y = points[0] if turned else points[-1]
        back = _ARROW if turned else -_ARROW
        self._head.setPolygon(
            QPolygonF(
                [
                    QPointF(tip_x, tip_y),
                    QPointF(tip_x + back, tip_y - _ARROW / 2),
                    QPointF(tip_x + back, tip_y + _ARROW / 2),
                ]
            )
        )
        width = 1.4 if count <= 1 else min(1.4 + count.bit_length() * 0.25, 3.0)
        self.setPen(QPen(_EDGE_COLOUR, width))
        self._text.setVisible(count > 1)
        if count > 1:
            self._text.setText(str(count))
            (x, y), left_of = route.label, route.label_before
            size = self._text.boundingRect()
            self._text.setPos(x - size.width() - 3 if left_of else x + 3, y - size.height())

    def label_rect(self) -> QRectF:
        """Where the count is written (empty when it is not): above the line,
        beside the node at the arrow's own (not bundled) end.  GUI thread."""
        return self._text.sceneBoundingRect() if self._text.isVisible() else QRectF()

    def label(self) -> str:
        """The count as written ("" for a single task edge).  GUI thread."""
        return self._text.text() if self.count > 1 else ""


def _sign(v: float) -> float:
    return (v > 0) - (v < 0)
