"""Groups, the neighbours filter, zoom and fit of ``TaskGraphView`` (a mixin).

GUI thread only.  The view owns the state these methods read and write
(declared below for the type checker); they ask it to lay out again with
``_relayout`` and to update its accessible description with ``_describe``.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QAction, QColor, QKeyEvent, QPainter, QTransform, QWheelEvent
from PySide6.QtWidgets import QGraphicsView, QLabel

from ..core._errors import text_of
from ..core._state import TaskState
from ..core._validate import check_seconds
from ._graph_items import GroupNodeItem, TaskNodeItem, _NodeItem
from ._graph_model import NodeKey, task_key

if TYPE_CHECKING:
    from ..qt._manager import BackgroundTaskManager
    from ._graph_scene import GraphScene

    _Base = QGraphicsView  # a mixin of a QGraphicsView: type-check it as one
else:
    _Base = object

_LIVE = (TaskState.RUNNING, TaskState.CANCELLING)
_ACTIVATE_KEYS = (Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Space)


class GraphViewControls(_Base):
    """``expand_group``, ``set_neighbours_only``, ``fit_to_view`` and their kin."""

    ZOOM_STEP = 1.2
    MIN_ZOOM = 0.05
    MAX_ZOOM = 8.0

    # the view's state (TaskGraphView.__init__)
    _manager: BackgroundTaskManager
    _scene: GraphScene
    _note: QLabel
    _auto_fit: bool
    _min_legible: float
    _collapse_threshold: int
    _expanded: set[Hashable]
    _collapsed: set[Hashable]
    _seeds: frozenset[int] | None
    _neighbours_only: bool
    _focus_after: NodeKey | None
    neighbours_action: QAction
    _outlined: set[_NodeItem]  # the nodes drawn as selected

    def _relayout(self) -> None:
        raise NotImplementedError

    def _describe(self) -> None:
        raise NotImplementedError

    def _set_up_view(self) -> None:
        # Paints are what a flood costs most: lines without antialiasing (they are
        # horizontal and vertical), the background cached, the painter not saved
        # around each item.
        self.setRenderHints(QPainter.RenderHint.TextAntialiasing)
        self.setCacheMode(QGraphicsView.CacheModeFlag.CacheBackground)
        self.setOptimizationFlag(QGraphicsView.OptimizationFlag.DontSavePainterState)
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setBackgroundBrush(QColor("#fafafa"))
        self.setAccessibleName("Task graph")
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self._note = self._make_note()

    def _make_actions(self) -> None:
        def action(text: str, slot: Any, checkable: bool = False) -> QAction:
            act = QAction(text, self)
            act.setCheckable(checkable)
            (act.toggled if checkable else act.triggered).connect(slot)
            self.addAction(act)
            return act

        #: Checkable: "Show only neighbours of selection" (N).
        self.neighbours_action = action(
            "Show only neighbours of selection\tN", self.set_neighbours_only, True
        )
        action("Collapse the selected tasks' groups\tC", self._collapse_selected)
        action("Expand all groups\tE", self.expand_all)
        action("Collapse big groups (the default)", self.reset_groups)
        action("Fit\tF", self.fit_to_view)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)

    # ------------------------------------------------------------------ settings

    @property
    def collapse_threshold(self) -> int:
        """A group with more tasks than this starts collapsed (settable, >= 0).  GUI thread."""
        return self._collapse_threshold

    @collapse_threshold.setter
    def collapse_threshold(self, count: int) -> None:
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ValueError(f"collapse_threshold must be an int >= 0, got {count!r}")
        self._collapse_threshold = count
        self._relayout()

    @property
    def frame_budget(self) -> float:
        """Seconds of item work per turn of the event loop (settable, positive
        and finite; default 0.004).  GUI thread."""
        return self._frame_budget

    @frame_budget.setter
    def frame_budget(self, seconds: float) -> None:
        self._frame_budget = float(check_seconds("frame_budget", seconds, positive=True))

    @property
    def shutdown_poll_limit(self) -> float:
        """Seconds the view keeps re-reading nodes still stopping after a
        shut-down (settable, non-negative; default 30).  GUI thread."""
        return self._shutdown_poll_limit

    @shutdown_poll_limit.setter
    def shutdown_poll_limit(self, seconds: float) -> None:
        self._shutdown_poll_limit = float(check_seconds("shutdown_poll_limit", seconds))

    @property
    def min_legible_scale(self) -> float:
        """The smallest scale Fit goes to (settable, in (0, 1]).  GUI thread."""
        return self._min_legible

    @min_legible_scale.setter
    def min_legible_scale(self, scale: float) -> None:
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not 0 < scale <= 1:
            raise ValueError(f"min_legible_scale must be a number in (0, 1], got {scale!r}")
        self._min_legible = float(scale)
        if self._auto_fit:
            self._fit()

    def _make_note(self) -> QLabel:
        note = QLabel(self)
        note.setAccessibleName("Graph note")
        note.setWordWrap(True)
        note.setStyleSheet(
            "background: rgba(255, 248, 200, 235); color: black; padding: 4px;"
            " border: 1px solid #b0a060; border-radius: 4px;"
        )
        note.hide()
        return note

    # ------------------------------------------------------------------ groups

    def _group_name(self, group: Hashable) -> str:
        name_of = getattr(self._manager, "group_name", None)
        return name_of(group) if name_of is not None else text_of(group)

    def is_collapsed(self, group: Hashable) -> bool:
        """Whether ``group`` is drawn as one node now.  GUI thread.

        Args:
            group: The group.
        """
        return group in self._scene.groups

    def expand_group(self, group: Hashable) -> None:
        """Draw ``group``'s tasks one by one (relayout on a worker).  GUI thread.

        Args:
            group: The group.

        Raises:
            TypeError: ``group`` is unhashable.
        """
        hash(group)
        self._expanded.add(group)
        self._collapsed.discard(group)
        self._relayout()

    def collapse_group(self, group: Hashable) -> None:
        """Draw ``group`` as one node (relayout on a worker).  GUI thread.

        Args:
            group: The group.

        Raises:
            TypeError: ``group`` is unhashable.
            ValueError: ``group`` is None (tasks without a group do not collapse).
        """
        hash(group)
        if group is None:
            raise ValueError("group must not be None: tasks without a group do not collapse")
        self._collapsed.add(group)
        self._expanded.discard(group)
        self._relayout()

    def expand_all(self) -> None:
        """Draw every task on its own.  GUI thread."""
        self._expanded.update(info.group for info in self._scene.infos.values())
        self._collapsed.clear()
        self._relayout()

    def reset_groups(self) -> None:
        """Forget what was expanded or collapsed: big groups collapse again.  GUI thread."""
        self._expanded.clear()
        self._collapsed.clear()
        self._relayout()

    def _collapse_selected(self) -> None:
        items = self._scene.selectedItems() or [self._scene.focusItem()]
        for item in items:
            if isinstance(item, TaskNodeItem) and item.info.group is not None:
                self.collapse_group(item.info.group)

    def _activate(self, item: _NodeItem) -> None:
        if isinstance(item, GroupNodeItem):
            members = self._scene.members.get(item.key, [])
            self._focus_after = task_key(members[0]) if members else None
            self.expand_group(item.task_group)
        else:
            self._scene.clearSelection()
            item.setSelected(True)

    # ------------------------------------------------------------------ neighbours

    def neighbours_only(self) -> bool:
        """Whether only the neighbours of the selection are drawn.  GUI thread."""
        return self._neighbours_only

    def set_neighbours_only(self, on: bool) -> None:
        """Draw only the selected tasks and everything up- and downstream of them.

        With nothing selected the whole graph stays and the note says so.  A
        new selection while it is on refocuses.  GUI thread.

        Args:
            on: True to filter, False to draw every task again.
        """
        if not isinstance(on, bool):
            raise TypeError(f"on must be a bool, got {on!r}")
        if on == self._neighbours_only and self.neighbours_action.isChecked() == on:
            return  # the action's toggled signal, from setChecked below
        self._neighbours_only = on
        if self.neighbours_action.isChecked() != on:
            self.neighbours_action.setChecked(on)
        self._seeds = self._selected_uids() if on else None
        if on and not self._seeds:
            self._seeds = None
        self._set_note(self.fit_note() if on else "")
        self._relayout()

    def _selected_uids(self) -> frozenset[int]:
        uids: set[int] = set()
        for item in self._scene.selectedItems():
            if isinstance(item, _NodeItem):
                uids.update(self._scene.members.get(item.key, ()))
        return frozenset(uids)

    def _selection_changed(self) -> None:
        selected = {i for i in self._scene.selectedItems() if isinstance(i, _NodeItem)}
        for item in selected ^ self._outlined:
            if item.scene() is self._scene:
                item.restyle()
        self._outlined = selected
        if self._neighbours_only:
            seeds = self._selected_uids()
            if seeds and seeds != self._seeds:
                self._seeds = seeds
                self._relayout()
        self._describe()

    # ------------------------------------------------------------------ zoom and fit

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
        """Show the whole graph, between ``min_legible_scale`` and 1:1; auto-fit
        again after each relayout.  GUI thread."""
        self._auto_fit = True
        self._fit()

    def fit_note(self) -> str:
        """What the note at the top says ("" when hidden), e.g. that Fit could not
        show the whole graph legibly.  GUI thread."""
        return self._note.text() if not self._note.isHidden() else ""

    def _set_note(self, text: str) -> None:
        if not text and self._neighbours_only and self._seeds is None:
            text = "Select a task (or a group) to show only its neighbours."
        self._note.setText(text)
        self._note.setVisible(bool(text))
        if text:
            self._note.setMaximumWidth(max(self.viewport().width() - 16, 100))
            self._note.adjustSize()
            self._note.move(8, 8)
        self._describe()

    def _fit(self) -> None:
        rect = self._scene.sceneRect()
        if not self._scene.order or rect.isEmpty():
            self.resetTransform()
            self._set_note("")
            return
        port = self.viewport().rect()
        scale = min(port.width() / rect.width(), port.height() / rect.height(), 1.0)
        if scale >= self._min_legible:
            self.setTransform(QTransform.fromScale(scale, scale))
            self.centerOn(rect.center())
            self._set_note("")
            return
        scale = self._min_legible
        self.setTransform(QTransform.fromScale(scale, scale))
        centre, what = self._work_centre(port.width() / scale, port.height() / scale)
        self.centerOn(centre)
        self._set_note(
            f"Too big to read whole ({len(self._scene.order)} nodes): showing {what} at "
            f"{round(scale * 100)} %. Zoom out with − or Ctrl+wheel; F fits again."
        )

    def _work_centre(self, width: float, height: float) -> tuple[Any, str]:
        """Where to look when the graph cannot be read whole: the running work, or the latest."""
        scene = self._scene
        keys = {scene.node_of.get(u) for u, i in scene.infos.items() if i.state in _LIVE}
        live = [item for item in map(scene.node, filter(None, keys)) if item is not None]
        if live:
            box = QRectF()
            for item in live:
                box = box.united(item.sceneBoundingRect())
            if box.width() <= width and box.height() <= height:
                return box.center(), "the running work"
            first = min(live, key=lambda i: (i.y(), i.x()))
            return first.sceneBoundingRect().center(), "the first running work"
        shown = [i for u, i in scene.infos.items() if u in scene.node_of]
        latest = max(shown, key=lambda i: i.ended or i.started or i.created, default=None)
        node = scene.node(scene.node_of[latest.uid]) if latest is not None else None
        if node is None:
            return scene.sceneRect().center(), "the start"
        return node.sceneBoundingRect().center(), "the latest work"

    # ------------------------------------------------------------------ keyboard, mouse

    def focusNextPrevChild(self, next: bool) -> bool:  # noqa: N802, A002 - Qt override
        """Qt override: Tab and Shift+Tab walk the nodes, then leave the view."""
        order = [self._scene.node(k) for k in self._scene.order]
        items = [i for i in order if i is not None]
        current = self._scene.focusItem()
        if items:
            at = items.index(current) if current in items else (-1 if next else len(items))
            at += 1 if next else -1
            if 0 <= at < len(items):
                items[at].setFocus()
                self.ensureVisible(items[at])
                self._describe()
                return True
            if current is not None:
                current.clearFocus()
        return super().focusNextPrevChild(next)

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
        """Qt override: zoom, fit, expand and collapse, the neighbours filter (see the class)."""
        key = event.key()
        focus = self._scene.focusItem()
        if key in _ACTIVATE_KEYS and isinstance(focus, _NodeItem):
            self._activate(focus)
        elif key in (Qt.Key.Key_Plus, Qt.Key.Key_Equal):
            self.zoom_by(self.ZOOM_STEP)
        elif key in (Qt.Key.Key_Minus, Qt.Key.Key_Underscore):
            self.zoom_by(1 / self.ZOOM_STEP)
        elif key in (Qt.Key.Key_0, Qt.Key.Key_F):
            self.fit_to_view()
        elif key == Qt.Key.Key_N:
            self.set_neighbours_only(not self._neighbours_only)
        elif key == Qt.Key.Key_C:
            self._collapse_selected()
        elif key == Qt.Key.Key_E:
            self.expand_all()
        else:
            super().keyPressEvent(event)
            return
        event.accept()
