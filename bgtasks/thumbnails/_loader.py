"""The thumbnail loader: decode images in workers, deliver pixmaps on the UI thread.

``ThumbnailLoader`` decodes an image file to a small ``QImage`` in a worker of
a ``BackgroundTaskManager`` (``decode_thumbnail``:
``QImageReader`` with a scaled size, so JPEGs decode at a fraction of their
resolution) and converts it to a ``QPixmap`` on the UI thread, where pixmaps
must be made.  Repeats are answered from a byte-bounded LRU cache of pixmaps
without any task; a request for a path already in flight attaches to it (the
manager's ``key=``), so ten requests mean one decode.

``attach_view(view)`` gives the view a ``ViewTracker``, which reports
the rows in the viewport after each scroll, resize or model change; the loader
requests them with a priority above everything requested before, and cancels
the queued requests the view asked for that lie more than ``keep_screens``
screens away, so the first screen loads first and a fast scroll does not
decode what is never shown.

Threads: every method belongs to the thread the loader lives in (the UI
thread), and every signal is emitted there.  Only ``decode_thumbnail``
runs in workers; it makes ``QImage`` objects only.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import Any

from PySide6.QtCore import QObject, QSize, Qt, Signal
from PySide6.QtGui import QColor, QImage, QImageIOHandler, QImageReader, QPainter, QPen, QPixmap
from PySide6.QtWidgets import QAbstractItemView

from ..core._context import current_task
from ..core._errors import BgTasksError
from ..core._handle import TaskHandle
from ..core._validate import check_count, check_priority
from ..qt._flat import flatten_mixins
from ..qt._home_thread import DiesAtHome
from ._view_tracker import ViewTracker

VISIBLE_PRIORITY = 1_000_000.0
"""Priority of the rows in a viewport: above any ordinary request.  Each
viewport update adds one, so the newest screen always comes first."""


class ThumbnailError(BgTasksError, OSError):
    """An image could not be read: missing, broken or of an unsupported format."""


def fit_size(source: QSize, box: QSize) -> QSize:
    """``source`` scaled down to fit in ``box`` with its aspect ratio.  Any thread.

    Args:
        source: The image's size.
        box: The largest size allowed.

    Returns:
        A new size, at least 1x1; ``source`` itself (a copy) if it fits already:
        never enlarged.
    """
    if source.width() <= box.width() and source.height() <= box.height():
        return QSize(source)
    scaled = source.scaled(box, Qt.AspectRatioMode.KeepAspectRatio)
    return QSize(max(1, scaled.width()), max(1, scaled.height()))


def decode_thumbnail(path: str, size: QSize) -> QImage:
    """Read ``path`` scaled down to fit in ``size`` (aspect ratio kept, EXIF
    orientation applied).  Any thread: makes only a ``QImage``.

    Args:
        path: The image file.
        size: The largest size of the result.

    Returns:
        The image, in a format ``QPixmap.fromImage`` takes without converting.

    Raises:
        ThumbnailError: the file is missing, broken or of an unsupported
            format (the message names the path and ``QImageReader``'s error).
    """
    reader = QImageReader(path)
    reader.setAutoTransform(True)
    source = reader.size()
    if source.isValid():
        # The scaled size applies before the EXIF rotation: fit the shown shape.
        rotated = bool(
            reader.transformation() & QImageIOHandler.Transformation.TransformationRotate90
        )
        shown = source.transposed() if rotated else source
        target = fit_size(shown, size)
        if target != shown:
            reader.setScaledSize(target.transposed() if rotated else target)
    image = reader.read()
    if image.isNull():
        raise ThumbnailError(f"cannot read image {path}: {reader.errorString()}")
    if not source.isValid() and (image.width() > size.width() or image.height() > size.height()):
        image = image.scaled(
            size, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
        )
    # The formats QPixmap.fromImage takes without a conversion on the UI thread.
    wanted = (
        QImage.Format.Format_ARGB32_Premultiplied
        if image.hasAlphaChannel()
        else QImage.Format.Format_RGB32
    )
    if image.format() != wanted:
        image.convertTo(wanted)
    return image


def _decode_task(path: str, width: int, height: int) -> QImage:
    # Runs in a worker.  A request cancelled while queued never gets here; one
    # cancelled just before it starts is skipped (a decode cannot be interrupted).
    current_task().raise_if_cancelled()
    # Looked up as this module's global when the task runs, so a test can
    # replace it (to count or hold decodes) for every loader at once.
    return decode_thumbnail(path, QSize(width, height))


class _Request:
    __slots__ = ("handle", "priority", "evictable")

    def __init__(self, handle: TaskHandle[QImage], priority: float, evictable: bool) -> None:
        self.handle = handle
        self.priority = priority
        self.evictable = evictable  # asked for by a view: cancelled when scrolled far away


class _Cache:
    """The loader's byte-bounded LRU cache of pixmaps and its remembered failures.

    A mixin of ``ThumbnailLoader`` (which sets these attributes); UI thread.
    """

    cache_bytes: int
    _cache: OrderedDict[str, tuple[QPixmap, int]]
    _cached_bytes: int
    _failed: OrderedDict[str, str]

    def cached(self, path: str | os.PathLike[str]) -> QPixmap | None:
        """The cached thumbnail of ``path``, which becomes the most recently used.  UI thread.

        Args:
            path: The image file.

        Returns:
            The pixmap, or None if it is not cached.
        """
        path = os.fspath(path)
        item = self._cache.get(path)
        if item is None:
            return None
        self._cache.move_to_end(path)
        return item[0]

    def error(self, path: str | os.PathLike[str]) -> str | None:
        """The message of the remembered failure of ``path``.  UI thread.

        Args:
            path: The image file.

        Returns:
            The message ``thumbnail_failed`` gave, or None if none is remembered.
        """
        return self._failed.get(os.fspath(path))

    def forget(self, path: str | os.PathLike[str]) -> None:
        """Drop the cached thumbnail and remembered failure of ``path``.  UI thread.

        Args:
            path: The image file, e.g. one that changed.
        """
        path = os.fspath(path)
        item = self._cache.pop(path, None)
        if item is not None:
            self._cached_bytes -= item[1]
        self._failed.pop(path, None)

    def clear_cache(self) -> None:
        """Drop every cached thumbnail and remembered failure.  UI thread."""
        self._cache.clear()
        self._cached_bytes = 0
        self._failed.clear()

    @property
    def cache_used(self) -> int:
        """Bytes of the cached pixmaps (width * height * 4 each).  UI thread."""
        return self._cached_bytes

    def cached_paths(self) -> list[str]:
        """Cached paths, least recently used first.  UI thread."""
        return list(self._cache)

    def _store(self, path: str, pixmap: QPixmap) -> None:
        nbytes = pixmap.width() * pixmap.height() * 4
        old = self._cache.pop(path, None)
        if old is not None:
            self._cached_bytes -= old[1]
        if nbytes > self.cache_bytes:
            return
        self._cache[path] = (pixmap, nbytes)
        self._cached_bytes += nbytes
        while self._cached_bytes > self.cache_bytes:
            _, (_, freed) = self._cache.popitem(last=False)
            self._cached_bytes -= freed


@flatten_mixins
class ThumbnailLoader(DiesAtHome, _Cache, QObject):
    """Decodes thumbnails in a manager's workers, delivers pixmaps on the UI thread.

    Signals:
        * ``thumbnail_ready(path, pixmap)``: the thumbnail (a ``QPixmap``), at most
          ``size``, aspect kept.  Emitted on the loader's thread.
        * ``thumbnail_failed(path, message)``: missing, broken or unsupported file;
          ``message`` names the path and ``QImageReader``'s error.  Failures
          are remembered (``error``) and not retried until ``forget``.
          Emitted on the loader's thread.

    The tasks are in one group of ``manager`` (``group``) and owned by the
    loader: deleting it cancels them.  Create and use it on the UI thread (the
    manager's thread): every method belongs to it.

    Args:
        manager: The ``BackgroundTaskManager`` whose workers decode.
        size: The largest thumbnail size (default 128x128).
        cache_bytes: Bytes of pixmaps the cache keeps (width * height * 4 each).
        parent: The loader's QObject parent, if any.
        keep_screens: Queued requests of a view farther than this many screens
            from its viewport are cancelled.

    Attributes:
        cache_bytes: As the argument; may be changed.
        keep_screens: As the argument; may be changed.
        default_priority: Priority of a plain ``request(path)`` (0.0).
        group: The manager's group of the loader's tasks.

    Raises:
        ValueError: ``size`` is smaller than 1x1, or ``cache_bytes`` is not a
            non-negative int.
    """

    thumbnail_ready = Signal(str, QPixmap)
    thumbnail_failed = Signal(str, str)

    def __init__(
        self,
        manager: Any,
        size: QSize | None = None,
        cache_bytes: int = 64 * 1024 * 1024,
        parent: QObject | None = None,
        keep_screens: float = 2.0,
    ) -> None:
        super().__init__(parent)
        self._remember_home()  # destroyed on this thread, whoever drops it last
        size = QSize(128, 128) if size is None else QSize(size)
        if size.width() < 1 or size.height() < 1:
            raise ValueError(f"size must be at least 1x1, got {size.width()}x{size.height()}")
        check_count("cache_bytes", cache_bytes)
        self._manager = manager
        self._size = size
        self.cache_bytes = cache_bytes
        self.keep_screens = float(keep_screens)
        self.default_priority = 0.0
        self.group = manager.next_group_id()
        self._cache: OrderedDict[str, tuple[QPixmap, int]] = OrderedDict()
        self._cached_bytes = 0
        self._failed: OrderedDict[str, str] = OrderedDict()
        self._inflight: dict[str, _Request] = {}
        self._uid_path: dict[int, str] = {}  # live request uid -> path
        self._placeholder: QPixmap | None = None
        self._trackers: list[ViewTracker] = []
        self._visible_generation = 0
        manager.task_completed.connect(self._on_completed)
        manager.task_failed.connect(self._on_failed)
        manager.task_cancelled.connect(self._on_cancelled)

    # ------------------------------------------------------------------ properties

    @property
    def size(self) -> QSize:
        """The largest thumbnail size (a copy).  UI thread."""
        return QSize(self._size)

    @property
    def manager(self) -> Any:
        """The manager whose workers decode.  UI thread."""
        return self._manager

    @staticmethod
    def supported_formats() -> list[str]:
        """The image formats ``QImageReader`` can read here.  Any thread.

        Returns:
            Their names, sorted, e.g. ``["bmp", "jpeg", "png"]``.
        """
        return sorted({bytes(f.data()).decode() for f in QImageReader.supportedImageFormats()})

    def placeholder(self) -> QPixmap:
        """A grey pixmap with a cross, of the thumbnail size, for failed files.  UI thread."""
        if self._placeholder is None:
            w, h = self._size.width(), self._size.height()
            pixmap = QPixmap(w, h)
            pixmap.fill(QColor(224, 224, 224))
            painter = QPainter(pixmap)
            painter.setPen(QPen(QColor(160, 160, 160), max(1, min(w, h) // 32)))
            painter.drawRect(0, 0, w - 1, h - 1)
            painter.drawLine(0, 0, w - 1, h - 1)
            painter.drawLine(0, h - 1, w - 1, 0)
            painter.end()
            self._placeholder = pixmap
        return self._placeholder

    # ------------------------------------------------------------------ requests

    def request(self, path: str | os.PathLike[str], priority: float | None = None) -> int | None:
        """Ask for the thumbnail of ``path``; ``thumbnail_ready`` or ``thumbnail_failed`` follows.

        A cached thumbnail (or a remembered failure) is answered at once, from
        within this call, without a task; the return value is then None.
        Otherwise returns the uid of the request's task; a path already in
        flight is not decoded twice (its priority is raised if ``priority`` is
        higher).  UI thread; the signals are emitted on it.

        Args:
            path: The image file.
            priority: The request's priority (default ``default_priority``).

        Returns:
            The uid of the request's task, or None if answered at once.

        Raises:
            TypeError: ``priority`` is not a number.
            RuntimeError: the manager was shut down.
        """
        path = os.fspath(path)
        priority = (
            self.default_priority if priority is None else check_priority("priority", priority)
        )
        pixmap = self.cached(path)
        if pixmap is not None:
            self.thumbnail_ready.emit(path, pixmap)
            return None
        message = self._failed.get(path)
        if message is not None:
            self.thumbnail_failed.emit(path, message)
            return None
        return self._request(path, float(priority), evictable=False)

    def _request(self, path: str, priority: float, evictable: bool) -> int:
        if self._drop_if_shut_down():
            raise RuntimeError("the task manager was shut down: no thumbnail can be loaded")
        entry = self._inflight.get(path)
        if entry is not None:
            entry.evictable = entry.evictable and evictable
            if priority > entry.priority:
                self._raise(path, entry, priority)
            return entry.handle.uid
        handle = self._submit(path, priority)
        self._inflight[path] = _Request(handle, priority, evictable)
        return handle.uid

    def _submit(self, path: str, priority: float) -> TaskHandle[QImage]:
        w, h = self._size.width(), self._size.height()
        handle: TaskHandle[QImage] = self._manager.options(
            priority=priority, group=self.group, owner=self, name="thumbnail",
            key=("bgtasks.thumbnail", path, w, h),
        ).submit(_decode_task, path, w, h)  # fmt: skip
        self._uid_path[handle.uid] = path
        return handle

    def _raise(self, path: str, entry: _Request, priority: float) -> None:
        # set_priority on a keyed request does not reach the shared work (it
        # lives outside the group); a new request with the same key does raise
        # it.  The old request is then withdrawn: the work keeps the new one.
        old = entry.handle
        if old.done():  # finished: its outcome is on the way
            return
        entry.handle = self._submit(path, priority)
        entry.priority = priority
        self._uid_path.pop(old.uid, None)
        old.cancel()

    def cancel(self, path: str | os.PathLike[str]) -> bool:
        """Withdraw the request for ``path``.  UI thread.

        A queued decode never runs (unless another loader asked for the same
        path and size); a running one cannot be interrupted, its result is dropped.

        Args:
            path: The image file.

        Returns:
            False if there was no request in flight for it, else True.
        """
        entry = self._inflight.pop(os.fspath(path), None)
        if entry is None:
            return False
        self._uid_path.pop(entry.handle.uid, None)
        entry.handle.cancel()
        return True

    def cancel_all(self) -> int:
        """Withdraw every request in flight.  UI thread.

        Returns:
            How many were withdrawn.
        """
        paths = list(self._inflight)
        for path in paths:
            self.cancel(path)
        return len(paths)

    def pending(self) -> list[str]:
        """The paths requested and not yet delivered (none after a shut_down).  UI thread."""
        self._drop_if_shut_down()
        return list(self._inflight)

    def is_pending(self, path: str) -> bool:
        """Whether a request for ``path`` is in flight (False after a shut_down).  UI thread.

        Args:
            path: The image file (a str).
        """
        self._drop_if_shut_down()
        return path in self._inflight

    def _drop_if_shut_down(self) -> bool:
        """True if the manager was shut down; then forget the requests in flight.

        A shut-down manager emits nothing more, so they would stay "in flight"
        for ever (and a new request for the same path would share them)."""
        if not self._manager.is_shut_down:
            return False
        if self._inflight:
            self._inflight.clear()
            self._uid_path.clear()
        return True

    def pending_priority(self, path: str) -> float | None:
        """The priority of the request in flight for ``path``.  UI thread.

        Args:
            path: The image file (a str).

        Returns:
            The priority, or None if no request for it is in flight.
        """
        self._drop_if_shut_down()
        entry = self._inflight.get(path)
        return None if entry is None else entry.priority

    # ------------------------------------------------------------------ outcomes (UI thread)

    def _take(self, uid: int, group: Any) -> str | None:
        if group != self.group:
            return None
        path = self._uid_path.pop(uid, None)
        if path is None:
            return None
        entry = self._inflight.get(path)
        if entry is not None and entry.handle.uid == uid:
            del self._inflight[path]
        return path

    def _on_completed(self, uid: int, group: Any, result: Any) -> None:
        path = self._take(uid, group)
        if path is None:
            return
        pixmap = QPixmap.fromImage(result)  # UI thread: the only place pixmaps are made
        self._store(path, pixmap)
        self.thumbnail_ready.emit(path, pixmap)

    def _on_failed(self, uid: int, group: Any, message: str, _traceback: str) -> None:
        path = self._take(uid, group)
        if path is None:
            return
        if path not in message:  # not our ThumbnailError: say which file
            message = f"cannot make a thumbnail of {path}: {message}"
        self._failed[path] = message
        while len(self._failed) > 10_000:
            self._failed.popitem(last=False)
        self.thumbnail_failed.emit(path, message)

    def _on_cancelled(self, uid: int, group: Any) -> None:
        path = self._take(uid, group)
        if path is not None:  # cancelled by someone else (stop_task_group, shut_down)
            pass

    # ------------------------------------------------------------------ views

    def attach_view(
        self,
        view: QAbstractItemView,
        path_role: int = Qt.ItemDataRole.UserRole,
        column: int = 0,
    ) -> None:
        """Follow ``view``: request its visible rows first, cancel those scrolled far away.

        List, table and icon views lay rows out in order, which the viewport
        search relies on.  Detached when the view is destroyed, or with
        ``detach_view``.  UI thread; attaching a view twice does nothing.

        Args:
            view: The view, on the loader's thread.
            path_role: The model role holding each row's path.
            column: The column whose top-level rows are the thumbnails.

        Raises:
            TypeError: ``view`` is not a ``QAbstractItemView``.
        """
        if not isinstance(view, QAbstractItemView):
            raise TypeError(f"view must be a QAbstractItemView, got {view!r}")
        if any(t.view is view for t in self._trackers):
            return
        tracker = ViewTracker(
            view, int(path_role), column,
            keep_screens=lambda: self.keep_screens, changed=self._viewport_changed, parent=self,
        )  # fmt: skip
        self._trackers.append(tracker)

    def detach_view(self, view: QAbstractItemView) -> None:
        """Stop following ``view`` (and forget trackers whose view was destroyed).  UI thread.

        Args:
            view: A view given to ``attach_view``; another one is ignored.
        """
        for tracker in list(self._trackers):
            if tracker.view is view or tracker.view is None:
                tracker.close()
                self._trackers.remove(tracker)

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
        self, visible: Sequence[str], keep: Iterable[str], request: bool = True
    ) -> None:
        """A tracker's view shows ``visible`` (in order) and keeps ``keep`` close;
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
                return
        near: set[str] = set()
        for tracker in self._trackers:
            near.update(tracker.keep)
        for path, entry in list(self._inflight.items()):
            if entry.evictable and path not in near:
                self.cancel(path)
