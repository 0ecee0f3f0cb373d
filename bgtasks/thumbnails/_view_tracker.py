"""Which rows of an item view are on screen: the visible-first half of thumbnails.

A ``ViewTracker`` watches one view (scroll bars, viewport resize and show,
model changes), and after a short debounce finds the rows in the viewport and
the rows within ``keep_screens`` screens of it, then hands both path lists to
the ``changed`` callback it was given (a ``ThumbnailLoader``
requests the visible paths and cancels what is no longer near).  The tracker
knows nothing of the loader: it is given how far to keep (``keep_screens()``)
and whom to tell (``changed``), so it imports nothing of the package.

The search is a binary search over ``visualRect``: list, table and icon views
lay top-level rows out in reading order, so a row's rectangle never ends above
(or, in a single horizontal line, left of) the previous one.  A hidden row
(``setRowHidden``) has an empty rectangle at the origin, which would break
that order: the search gives it the place of the next row shown.

Paths are read from the model's ``path_role``, or from its
``thumbnail_path(row)`` if it has one: a ``QVariant`` cannot carry a
non-UTF-8 file name (a Python ``str`` with surrogate escapes), a direct call can.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import shiboken6
from PySide6.QtCore import QEvent, QModelIndex, QObject, QRect, QTimer
from PySide6.QtWidgets import QAbstractItemView

from ..qt._home_thread import DiesAtHome

#: ``changed(visible, keep, request)``: the paths visible (in row order), the
#: paths near enough to keep, and False while the view is flung (cancel only).
ViewportChanged = Callable[[list[str], set[str], bool], None]

_MODEL_SIGNALS = ("modelReset", "rowsInserted", "rowsRemoved", "rowsMoved", "layoutChanged")


class ViewTracker(DiesAtHome, QObject):
    """Follows one view and reports its visible and nearby paths.  UI thread only.

    Made by ``ThumbnailLoader.attach_view
    <bgtasks.thumbnails.ThumbnailLoader.attach_view>`` and found with its
    ``view_tracker(view)``.  Read, on the UI thread: ``visible``,
    ``keep``, ``flings``, ``view``; ``debounce_ms`` may be set.

    Args:
        view: The view it follows.
        path_role: The role that answers a row's path.
        column: The column whose cells it measures.
        keep_screens: Returns how many screens beyond the viewport to keep.
        changed: Called on the UI thread with what is visible and what to keep.
        parent: The QObject parent.
        gone: Called with the tracker on the UI thread when its view is destroyed.
    """

    #: Milliseconds of quiet before the viewport is read again.
    debounce_ms = 25

    def __init__(
        self,
        view: QAbstractItemView,
        path_role: int,
        column: int,
        *,
        keep_screens: Callable[[], float],
        changed: ViewportChanged,
        parent: QObject | None = None,
        gone: Callable[[ViewTracker], None] | None = None,
    ) -> None:
        super().__init__(parent)
        self._remember_home()  # destroyed on this thread, whoever drops it last
        self._keep_screens = keep_screens
        self._changed = changed
        self._gone = gone
        self._view: QAbstractItemView | None = view
        self._path_role = path_role
        self._column = column
        self._model: Any = None
        self._last_change = 0.0
        self._last_update = 0.0
        self._flings = 0
        self._keep: set[str] = set()
        self._visible: list[str] = []
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.update_now)
        for bar in (view.verticalScrollBar(), view.horizontalScrollBar()):
            bar.valueChanged.connect(self.schedule)
            bar.rangeChanged.connect(self.schedule)
        view.viewport().installEventFilter(self)
        view.destroyed.connect(self._view_gone)
        self._hook_model()
        self.schedule()

    @property
    def visible(self) -> list[str]:
        """The paths visible at the last update, in row order (a copy).  UI thread."""
        return list(self._visible)

    @property
    def keep(self) -> frozenset[str]:
        """The paths within ``keep_screens`` screens of the viewport at the last
        update, the visible ones included.  UI thread."""
        return frozenset(self._keep)

    @property
    def flings(self) -> int:
        """How many updates only cancelled, because the view was flung past a
        screen (see ``update_now``).  UI thread."""
        return self._flings

    @property
    def view(self) -> QAbstractItemView | None:
        """The view followed; None once it is destroyed or the tracker closed.  UI thread."""
        view = self._view
        if view is not None and not shiboken6.isValid(view):
            self._view = None
            return None
        return view

    def close(self) -> None:
        """Stop following the view (``changed`` is not called again).  UI thread."""
        self._timer.stop()
        view = self.view
        if view is not None:
            for bar in (view.verticalScrollBar(), view.horizontalScrollBar()):
                bar.valueChanged.disconnect(self.schedule)
                bar.rangeChanged.disconnect(self.schedule)
            view.viewport().removeEventFilter(self)
            view.destroyed.disconnect(self._view_gone)
        self._unhook_model()
        self._view = None
        self._keep = set()
        self._visible = []

    def _view_gone(self, *_: object) -> None:
        self._view = None
        self._model = None
        self._keep = set()
        self._timer.stop()
        if self._gone is not None:
            self._gone(self)

    def _hook_model(self) -> None:
        view = self.view
        model = view.model() if view is not None else None
        if model is self._model:
            return
        self._unhook_model()
        self._model = model
        if model is not None:
            for name in _MODEL_SIGNALS:
                getattr(model, name).connect(self.schedule)

    def _unhook_model(self) -> None:
        model, self._model = self._model, None
        if model is not None and shiboken6.isValid(model):
            for name in _MODEL_SIGNALS:
                try:
                    getattr(model, name).disconnect(self.schedule)
                except (RuntimeError, TypeError):
                    pass

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt override
        """Qt override: a viewport resize or show schedules a read."""
        if event.type() in (QEvent.Type.Resize, QEvent.Type.Show):
            self.schedule()
        return False

    def schedule(self, *_: object) -> None:
        """Read the viewport again soon.  UI thread (connected to the view's signals).

        A change at least ``debounce_ms`` after the last read is read at the
        next idle moment (a wheel step shows its rows without delay); one
        sooner waits for ``debounce_ms`` of quiet.  So a continuous scroll
        is read about every ``debounce_ms``.

        Args:
            *_: Ignored: the arguments of the signal connected to it.
        """
        now = time.monotonic()
        self._last_change = now
        if now - self._last_update >= self.debounce_ms / 1000:
            self._timer.start(0)  # quiet for a while: read at the next idle moment
        else:
            self._timer.start(self.debounce_ms)

    def update_now(self) -> None:
        """Read the viewport and tell ``changed`` what is visible and what is near.

        During a fling (the view is still moving and shows none of the rows
        it showed at the last update) only the cancellation happens: rows
        requested now would be gone before they decode.  A read after the
        scroll stops requests them.  The view's thread (the UI thread).
        """
        now = time.monotonic()
        still_moving = now - self._last_change < self.debounce_ms / 1000
        self._last_update = now
        self._timer.stop()
        self._hook_model()
        view, model = self.view, self._model
        if view is None or model is None:
            self._keep, self._visible = set(), []
            return
        visible_rows, keep_rows = self.rows(self._keep_screens())
        path_of = self._path_reader(view, model)
        visible: list[str] = []
        keep: set[str] = set()
        for row in keep_rows:
            path = path_of(row)
            if path:
                keep.add(str(path))
        for row in visible_rows:
            path = path_of(row)
            if path:
                visible.append(str(path))
        keep.update(visible)
        if not visible:
            self._last_update = 0.0  # not laid out yet: the next change is read at once
        fling = still_moving and bool(self._visible) and not set(visible) & set(self._visible)
        self._keep, self._visible = keep, visible
        self._changed(visible, keep, not fling)
        if fling:
            self._flings += 1
            self._timer.start(self.debounce_ms)  # read again once it stops

    def _path_reader(self, view: QAbstractItemView, model: Any) -> Callable[[int], Any]:
        """How to read a row's path: the model's ``thumbnail_path``, or the role."""
        direct = getattr(model, "thumbnail_path", None)
        if callable(direct) and view.rootIndex() == QModelIndex():
            return direct  # type: ignore[no-any-return]
        role, column, root = self._path_role, self._column, view.rootIndex()
        return lambda row: model.index(row, column, root).data(role)

    def rows(self, keep_screens: float) -> tuple[list[int], range]:
        """The rows intersecting the viewport, and the rows near it.  UI thread.

        Args:
            keep_screens: How many viewports beyond it count as near.

        Returns:
            The visible rows (in order), and the range of rows within
            ``keep_screens`` viewports of it.
        """
        view, model = self.view, self._model
        if view is None or model is None:
            return [], range(0)
        root = view.rootIndex()
        count = model.rowCount(root)
        if count == 0:
            return [], range(0)
        layout = _Layout(view, model, self._column, count)
        first, last = layout.place(0), layout.last_shown()
        vertical = count == 1 or last.top() > first.top()
        area = view.viewport().rect()
        extent = area.height() if vertical else area.width()
        start_of: Callable[[QRect], int] = (lambda r: r.top()) if vertical else (lambda r: r.left())
        end_of: Callable[[QRect], int] = (
            (lambda r: r.bottom()) if vertical else (lambda r: r.right())
        )

        def first_ending_at_or_after(pos: int) -> int:
            lo, hi = 0, count
            while lo < hi:
                mid = (lo + hi) // 2
                if end_of(layout.place(mid)) >= pos:
                    hi = mid
                else:
                    lo = mid + 1
            return lo

        def last_starting_before(pos: int) -> int:
            lo, hi = -1, count - 1
            while lo < hi:
                mid = (lo + hi + 1) // 2
                if start_of(layout.place(mid)) < pos:
                    lo = mid
                else:
                    hi = mid - 1
            return lo

        top, bottom = first_ending_at_or_after(0), last_starting_before(extent)
        visible = [r for r in range(top, bottom + 1) if layout.rect(r).intersects(area)]
        margin = int(extent * keep_screens)
        keep = range(first_ending_at_or_after(-margin), last_starting_before(extent + margin) + 1)
        return visible, keep


#: Where the search places the hidden rows after the last row shown: beyond everything.
_BEYOND = QRect(1 << 30, 1 << 30, 0, 0)


class _Layout:
    """The rectangles of a view's top-level rows during one read.

    ``place(row)`` is the row's rectangle, or for a hidden row (an empty
    rectangle at the origin) the rectangle of the next row shown, so the
    places keep the reading order the binary search needs.  Each row's place
    is looked up once per read.
    """

    def __init__(self, view: QAbstractItemView, model: Any, column: int, count: int) -> None:
        self._view, self._model, self._column = view, model, column
        self._root = view.rootIndex()
        self._count = count
        self._placed: dict[int, QRect] = {}

    def rect(self, row: int) -> QRect:
        return self._view.visualRect(self._model.index(row, self._column, self._root))

    def place(self, row: int) -> QRect:
        found = self._placed.get(row)
        if found is not None:
            return found
        hidden = []
        while row < self._count:
            found = self._placed.get(row)
            if found is not None:
                break
            found = self.rect(row)
            if not found.isEmpty():
                break
            hidden.append(row)
            row += 1
        if found is None or found.isEmpty():
            found = _BEYOND  # hidden rows up to the end
        for each in (*hidden, row):
            self._placed[each] = found
        return found

    def last_shown(self) -> QRect:
        """The rectangle of the last row not hidden (the last row's if all are)."""
        for row in range(self._count - 1, -1, -1):
            found = self.rect(row)
            if not found.isEmpty():
                return found
        return self.rect(self._count - 1)
