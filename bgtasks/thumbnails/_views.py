"""The loader's views: which views it follows, what they show, when their screen is complete.

A mixin of ``ThumbnailLoader`` (``_Views``): ``attach_view`` gives a view a
``ViewTracker``; each viewport update requests the visible paths above
everything requested before and cancels the view's queued requests that
scrolled far away.  Each tracker's visible paths still missing are kept
(``_awaiting``); when the last of them arrives (or fails) ``visible_loaded``
is emitted for that view, once per set of visible paths (``_announced``).

A tracker is deleted when its view is detached or destroyed, so attaching
and detaching views leaks nothing.

Threads: the UI thread (the loader's) only.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractItemView

from ._view_tracker import ViewTracker

VISIBLE_PRIORITY = 1_000_000.0
"""Priority of the rows in a viewport: above any ordinary request.  Each
viewport update adds one, so the newest screen always comes first."""


class _Views:
    """The views a ``ThumbnailLoader`` follows (a mixin; UI thread)."""

    keep_screens: float
    visible_loaded: Any
    _cache: OrderedDict[str, Any]
    _failed: OrderedDict[str, str]
    _inflight: dict[str, Any]
    _trackers: list[ViewTracker]
    _awaiting: dict[ViewTracker, tuple[frozenset[str], set[str]]]
    _announced: dict[ViewTracker, frozenset[str]]
    _visible_generation: int

    def _request(self, path: str, priority: float, evictable: bool) -> int:
        raise NotImplementedError  # ThumbnailLoader's

    def cancel(self, path: str) -> bool:
        raise NotImplementedError  # ThumbnailLoader's

    def _init_views(self) -> None:
        self._trackers = []
        self._awaiting = {}
        self._announced = {}
        self._visible_generation = 0

    def attach_view(
        self,
        view: QAbstractItemView,
        path_role: int = Qt.ItemDataRole.UserRole,
        column: int = 0,
    ) -> None:
        """Follow ``view``: request its visible rows first, cancel those scrolled far away.

        List, table and icon views lay rows out in order, which the viewport
        search relies on (hidden rows are skipped).  Detached when the view is
        destroyed, or with ``detach_view``.  ``visible_loaded(view)`` tells
        when its screen is complete.  UI thread; attaching a view twice does
        nothing.

        Args:
            view: The view, on the loader's thread.
            path_role: The model role holding each row's path (a model with a
                ``thumbnail_path(row)`` method, as ``ThumbnailModel``, is asked
                that instead: it gives the exact path strings).
            column: The column whose top-level rows are the thumbnails.

        Raises:
            TypeError: ``view`` is not a ``QAbstractItemView``.
        """
        if not isinstance(view, QAbstractItemView):
            raise TypeError(f"view must be a QAbstractItemView, got {view!r}")
        if any(t.view is view for t in self._trackers):
            return
        made: list[ViewTracker] = []

        def changed(visible: list[str], keep: set[str], request: bool = True) -> None:
            self._viewport_changed(made[0], visible, keep, request)

        tracker = ViewTracker(
            view, int(path_role), column,
            keep_screens=lambda: self.keep_screens, changed=changed,
            gone=self._drop_tracker, parent=self,  # type: ignore[arg-type]
        )  # fmt: skip
        made.append(tracker)
        self._trackers.append(tracker)

    def detach_view(self, view: QAbstractItemView) -> None:
        """Stop following ``view`` (and forget trackers whose view was destroyed).  UI thread.

        Args:
            view: A view given to ``attach_view``; another one is ignored.
        """
        for tracker in list(self._trackers):
            if tracker.view is view or tracker.view is None:
                tracker.close()
                self._drop_tracker(tracker)

    def _drop_tracker(self, tracker: ViewTracker) -> None:
        """Forget ``tracker`` and delete it (its view was detached or destroyed)."""
        if tracker in self._trackers:
            self._trackers.remove(tracker)
        self._awaiting.pop(tracker, None)
        self._announced.pop(tracker, None)
        tracker.deleteLater()

    def has_views(self) -> bool:
        """True if the loader follows a view that still exists.  UI thread."""
        return any(t.view is not None for t in self._trackers)

    def views(self) -> list[QAbstractItemView]:
        """The views the loader follows, in the order attached; destroyed ones
        are left out.  UI thread."""
        return [view for view in (t.view for t in self._trackers) if view is not None]

    def view_tracker(self, view: QAbstractItemView) -> ViewTracker | None:
        """The ``ViewTracker`` following ``view``, or None if it is not attached.

        UI thread; the tracker's attributes (what it found visible and near at
        its last update) are for reading.

        Args:
            view: A view.
        """
        if view is None:  # a destroyed view's tracker has view None: never found
            return None
        return next((t for t in self._trackers if t.view is view), None)

    def _viewport_changed(
        self, tracker: ViewTracker, visible: Sequence[str], keep: Iterable[str], request: bool
    ) -> None:
        """``tracker``'s view shows ``visible`` (in order) and keeps ``keep`` close;
        ``request=False`` while it is flung: cancel only."""
        if request:
            self._visible_generation += 1
            # Newest screen above every older one; within it, reading order.
            base = VISIBLE_PRIORITY + self._visible_generation
            count = len(visible)
            try:
                for i, path in enumerate(visible):
                    if path in self._cache or path in self._failed:
                        continue
                    self._request(path, base + (count - i) / (count + 1), evictable=True)
            except RuntimeError:  # the manager was shut down: nothing more to load
                self._awaiting.pop(tracker, None)
                return
            self._await(tracker, visible)
        else:
            self._awaiting.pop(tracker, None)  # flung: announced after the next read
        near: set[str] = set()
        for t in self._trackers:
            near.update(t.keep)
        for path, entry in list(self._inflight.items()):
            if entry.evictable and path not in near:
                self.cancel(path)

    def _await(self, tracker: ViewTracker, visible: Sequence[str]) -> None:
        """Wait for ``visible`` of ``tracker``; announce at once if nothing is missing."""
        shown = frozenset(visible)
        missing = {p for p in shown if p not in self._cache and p not in self._failed}
        self._awaiting[tracker] = (shown, missing)
        if not missing:
            self._announce(tracker)

    def _arrived(self, path: str) -> None:
        """``path`` has its thumbnail or its failure: a screen may be complete."""
        for tracker, (_, missing) in list(self._awaiting.items()):
            if path in missing:
                missing.discard(path)
                if not missing:
                    self._announce(tracker)

    def _announce(self, tracker: ViewTracker) -> None:
        shown, _ = self._awaiting[tracker]
        view = tracker.view
        if not shown or view is None or self._announced.get(tracker) == shown:
            return  # nothing shown, or this screen was announced already
        self._announced[tracker] = shown
        self.visible_loaded.emit(view)
