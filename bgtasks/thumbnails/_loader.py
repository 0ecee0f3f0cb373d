"""The thumbnail loader: decode images in workers, deliver pixmaps on the UI thread.

``ThumbnailLoader`` decodes an image file to a small ``QImage`` in a worker of
a ``BackgroundTaskManager`` (``decode_thumbnail``:
``QImageReader`` with a scaled size, so JPEGs decode at a fraction of their
resolution) and converts it to a ``QPixmap`` on the UI thread, where pixmaps
must be made.  Repeats are answered from a byte-bounded LRU cache of pixmaps
without any task; a request for a path already in flight attaches to it (the
manager's ``key=``), so ten requests mean one decode.

Thumbnails are decoded at ``size`` times the device pixel ratio and the
pixmaps marked with it (sharp on HiDPI screens).  With a disk cache
(``_disk_cache``, on by default) the worker first looks for the thumbnail
there; a decoded one is delivered first and written afterwards, by a task of
the lowest priority (``WRITE_PRIORITY``) submitted once no request is in
flight (or ``WRITES_HELD_BYTES`` of images wait).  A request's manager key holds the
path's generation (``_memory_cache``): ``forget`` changes it, so a manager
with a result cache decodes again instead of answering with the old image.

``attach_view(view)`` (``_views``) gives the view a ``ViewTracker``, which reports
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

import logging
import math
import os
from collections import OrderedDict
from typing import Any

from PySide6.QtCore import QObject, QSize, Signal
from PySide6.QtGui import QColor, QGuiApplication, QImage, QImageReader, QPainter, QPen, QPixmap

from ..core._context import current_task
from ..core._handle import TaskHandle
from ..core._validate import check_count, check_priority
from ..qt._flat import flatten_mixins
from ..qt._home_thread import DiesAtHome
from ._decode import decode_thumbnail, printable
from ._disk_cache import DiskCache, DiskWrite
from ._memory_cache import _Cache
from ._views import _Views

logger = logging.getLogger("bgtasks")


#: Priority of writing a decoded thumbnail to the disk cache: below every
#: request, so the writes wait until nothing is left to decode.
WRITE_PRIORITY = float("-inf")
#: Bytes of decoded thumbnails whose disk writes may wait while decodes are in
#: flight (a write, a PNG encode, running beside the last decodes of a screen
#: delayed that screen): 128 px thumbnails by the hundred, 1024 px ones by the
#: dozen.  Past this they are written anyway.
WRITES_HELD_BYTES = 32 * 1024 * 1024


def _decode_task(
    path: str, width: int, height: int, ratio: float, disk: DiskCache | None
) -> tuple[QImage, DiskWrite | None]:
    # Runs in a worker.  A request cancelled while queued never gets here; one
    # cancelled just before it starts is skipped (a decode cannot be interrupted).
    current_task().raise_if_cancelled()
    # decode_thumbnail is looked up as this module's global when the task runs,
    # so a test can replace it (to count or hold decodes) for every loader at once.
    if disk is None:
        image, write = decode_thumbnail(path, QSize(width, height)), None
    else:
        image, write = disk.thumbnail(path, QSize(width, height), decode_thumbnail)
    image = QImage(image)  # a copy of the handle: the write's image keeps its ratio
    image.setDevicePixelRatio(ratio)  # the ratio it was decoded for, whatever happens meanwhile
    return image, write


def _write_task(disk: DiskCache, write: DiskWrite) -> None:
    # Runs in a worker, after the thumbnail was delivered.  Nothing here may
    # fail a thumbnail: an error is logged, never raised.
    try:
        disk.store(write)
    except Exception:  # noqa: BLE001 - logged: a cache write must not surface as a failure
        logger.exception("thumbnail disk cache: cannot write %s", write.where)


class _Request:
    __slots__ = ("handle", "priority", "evictable")

    def __init__(self, handle: TaskHandle[Any], priority: float, evictable: bool) -> None:
        self.handle = handle
        self.priority = priority
        self.evictable = evictable  # asked for by a view: cancelled when scrolled far away


@flatten_mixins
class ThumbnailLoader(DiesAtHome, _Cache, _Views, QObject):
    """Decodes thumbnails in a manager's workers, delivers pixmaps on the UI thread.

    Signals:
        * ``thumbnail_ready(path, pixmap)``: the thumbnail (a ``QPixmap``), at most
          ``size`` in device-independent pixels, aspect kept, with the loader's
          ``device_pixel_ratio``.  Emitted on the loader's thread.
        * ``thumbnail_failed(path, message)``: missing, broken, too large or
          unsupported file; ``message`` names the path and ``QImageReader``'s
          error.  Failures are remembered (``error``) and not retried until
          ``forget``.  Emitted on the loader's thread.
        * ``visible_loaded(view)``: every row in the viewport of an attached
          ``view`` has its thumbnail (or its failure); once per screen, again
          after a scroll shows new rows and they have loaded.  Emitted on the
          loader's thread.

    ``path`` is exactly the string the caller (or the model) gave: a file name
    that is not UTF-8, as ``os.listdir`` returns it, arrives unchanged (the
    signals carry Python objects, not ``QString``).

    The tasks are in one group of ``manager`` (``group``) and owned by the
    loader: deleting it cancels them.  Create and use it on the UI thread (the
    manager's thread): every method belongs to it.  The decode and the disk
    cache's reads and writes run in the manager's workers; a new thumbnail is
    delivered first and written to disk afterwards, by a task of the lowest
    priority submitted once no decode is in flight, so writing never delays a
    thumbnail on screen.

    Args:
        manager: The ``BackgroundTaskManager`` whose workers decode.
        size: The largest thumbnail size, in device-independent pixels
            (default 128x128).
        cache_bytes: Bytes of pixmaps the cache keeps (width * height * 4 each,
            in device pixels).
        parent: The loader's QObject parent, if any.
        keep_screens: Queued requests of a view farther than this many screens
            from its viewport are cancelled.
        device_pixel_ratio: Decode at ``size`` times this and mark the pixmaps
            with it, so they are sharp on a HiDPI screen.  None (default): the
            highest ratio of the screens (``QGuiApplication.devicePixelRatio()``).
        disk_cache: True (default): keep thumbnails on disk in the shared
            freedesktop.org cache, ``$XDG_CACHE_HOME/thumbnails``; a path: that
            folder instead; False: no disk cache.

    Attributes:
        cache_bytes: As the argument; may be changed.
        keep_screens: As the argument; may be changed.
        default_priority: Priority of a plain ``request(path)`` (0.0).
        group: The manager's group of the loader's tasks.

    Raises:
        ValueError: ``size`` is smaller than 1x1, ``cache_bytes`` is not a
            non-negative int, ``keep_screens`` not a non-negative number,
            ``device_pixel_ratio`` not a positive finite number, or a
            thumbnail (``size`` times the ratio) would be over 8192 device
            pixels a side (Qt's image allocation limit).
        TypeError: ``disk_cache`` is not a bool or a path.
    """

    thumbnail_ready = Signal(object, QPixmap)
    thumbnail_failed = Signal(object, str)
    visible_loaded = Signal(QObject)

    def __init__(
        self,
        manager: Any,
        size: QSize | None = None,
        cache_bytes: int = 64 * 1024 * 1024,
        parent: QObject | None = None,
        keep_screens: float = 2.0,
        *,
        device_pixel_ratio: float | None = None,
        disk_cache: bool | str | os.PathLike[str] = True,
    ) -> None:
        super().__init__(parent)
        self._remember_home()  # destroyed on this thread, whoever drops it last
        size = QSize(128, 128) if size is None else QSize(size)
        if size.width() < 1 or size.height() < 1:
            raise ValueError(f"size must be at least 1x1, got {size.width()}x{size.height()}")
        self._cache_bytes = check_count("cache_bytes", cache_bytes)
        self._keep_screens = _check_screens(keep_screens)
        self._dpr = _check_ratio(device_pixel_ratio)
        _check_fits(size, self._dpr if self._dpr is not None else _screens_ratio())
        self._disk = _disk_cache(disk_cache)
        self._manager = manager
        self._size = size
        self._default_priority = 0.0
        self.group = manager.next_group_id()
        self._cache: OrderedDict[str, tuple[QPixmap, int]] = OrderedDict()
        self._cached_bytes = 0
        self._failed: OrderedDict[str, str] = OrderedDict()
        self._generations: dict[str, int] = {}
        self._generation = 0  # shared by every loader until clear_cache: they share decodes
        self._inflight: dict[str, _Request] = {}
        self._held_writes: list[tuple[DiskCache, DiskWrite]] = []  # see _write_when_idle
        self._held_bytes = 0
        self._uid_path: dict[int, str] = {}  # live request uid -> path
        self._placeholder: QPixmap | None = None
        self._init_views()
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

    @property
    def device_pixel_ratio(self) -> float:
        """The ratio thumbnails are decoded for (see the class).  UI thread."""
        return self._dpr if self._dpr is not None else _screens_ratio()

    @property
    def default_priority(self) -> float:
        """Priority of a plain ``request(path)`` (settable: a number, ±inf
        allowed, NaN refused; None means 0).  UI thread."""
        return self._default_priority

    @default_priority.setter
    def default_priority(self, value: float | None) -> None:
        self._default_priority = float(check_priority("default_priority", value))

    @property
    def keep_screens(self) -> float:
        """Queued requests of a view farther than this many screens from its
        viewport are cancelled; settable (a non-negative number, inf: never).
        UI thread."""
        return self._keep_screens

    @keep_screens.setter
    def keep_screens(self, value: float) -> None:
        self._keep_screens = _check_screens(value)

    @property
    def disk_cache_dir(self) -> str | None:
        """The folder of the disk cache (holding ``normal/``, ``large/``, ...),
        or None without one.  UI thread."""
        return None if self._disk is None else self._disk.root

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
            ratio = self.device_pixel_ratio
            w, h = _scaled(self._size, ratio)
            pixmap = QPixmap(w, h)
            pixmap.setDevicePixelRatio(ratio)
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
            TypeError: ``path`` is not a str (or a path of one), ``priority``
                is not a number.
            ValueError: ``path`` contains a NUL character (Qt would read the
                file its name is cut to).
            RuntimeError: the manager was shut down.
        """
        path = os.fspath(path)
        if not isinstance(path, str):
            raise TypeError(f"path must be a str or a path of one, got {path!r}")
        if "\0" in path:
            raise ValueError(f"path must not contain a NUL character, got {path!r}")
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

    def _submit(self, path: str, priority: float) -> TaskHandle[Any]:
        ratio = self.device_pixel_ratio
        w, h = _scaled(self._size, ratio)  # device pixels
        disk = self._disk
        handle: TaskHandle[Any] = self._manager.options(
            priority=priority, group=self.group, owner=self,
            name=f"thumbnail {printable(os.path.basename(path))}",
            key=("bgtasks.thumbnail", path, w, h, ratio, disk is not None,
                 self._generation_of(path)),
        ).submit(_decode_task, path, w, h, ratio, disk)  # fmt: skip
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
        self._write_when_idle()
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
        self._held_writes.clear()  # a shut-down manager runs nothing more
        self._held_bytes = 0
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
        image, write = result
        pixmap = QPixmap.fromImage(image)  # UI thread: the only place pixmaps are made (ratio kept)
        self._store(path, pixmap)
        self.thumbnail_ready.emit(path, pixmap)
        self._arrived(path)
        if write is not None and self._disk is not None:
            self._held_writes.append((self._disk, write))
            self._held_bytes += write.image.sizeInBytes()
        self._write_when_idle()

    def _write_when_idle(self) -> None:
        """Submit the held disk writes once no request is in flight (a write's
        PNG encode beside a screen's last decodes delays that screen), or once
        ``WRITES_HELD_BYTES`` of images wait."""
        held = self._held_writes
        if not held or (self._inflight and self._held_bytes < WRITES_HELD_BYTES):
            return
        self._held_writes, self._held_bytes = [], 0
        for disk, write in held:
            self._write_later(disk, write)

    def _write_later(self, disk: DiskCache, write: DiskWrite) -> None:
        """Write ``write`` to the disk cache in a worker, once nothing waits to decode."""
        try:
            self._manager.options(
                priority=WRITE_PRIORITY, group=self.group, owner=self,
                name=f"thumbnail disk write {os.path.basename(write.where)}",
                key=("bgtasks.thumbnail-write", write.where),
            ).submit(_write_task, disk, write)  # fmt: skip
        except RuntimeError:  # shut down meanwhile: the cache simply misses it
            pass

    def _on_failed(self, uid: int, group: Any, message: str, _traceback: str) -> None:
        path = self._take(uid, group)
        if path is None:
            return
        if printable(path) not in message:  # not our ThumbnailError: say which file
            message = f"cannot make a thumbnail of {printable(path)}: {message}"
        self._failed[path] = message
        while len(self._failed) > 10_000:
            self._failed.popitem(last=False)
        self.thumbnail_failed.emit(path, message)
        self._arrived(path)
        self._write_when_idle()

    def _on_cancelled(self, uid: int, group: Any) -> None:
        path = self._take(uid, group)
        if path is not None:  # cancelled by someone else (stop_task_group, shut_down)
            self._write_when_idle()


#: A thumbnail's largest side in device pixels: 8192 x 8192 x 4 bytes is Qt's
#: image allocation limit (``QImageReader.allocationLimit()``, 256 MB).
MAX_DEVICE_SIDE = 8192


def _check_ratio(ratio: float | None) -> float | None:
    if ratio is None:
        return None
    if (
        isinstance(ratio, bool)
        or not isinstance(ratio, (int, float))
        or not (ratio > 0 and math.isfinite(ratio))
    ):
        raise ValueError(f"device_pixel_ratio must be a positive number or None, got {ratio!r}")
    return float(ratio)


def _check_fits(size: QSize, ratio: float) -> None:
    w, h = _scaled(size, ratio)
    if max(w, h) > MAX_DEVICE_SIDE:
        raise ValueError(
            f"thumbnails of {size.width()}x{size.height()} at device_pixel_ratio {ratio!r} "
            f"would be {w}x{h} device pixels; at most {MAX_DEVICE_SIDE} a side fit Qt's "
            f"image allocation limit"
        )


def _check_screens(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise ValueError(f"keep_screens must be a non-negative number, got {value!r}")
    return float(value)


def _screens_ratio() -> float:
    """The highest device pixel ratio of the screens (1.0 without a GUI application)."""
    app = QGuiApplication.instance()
    return float(app.devicePixelRatio()) if isinstance(app, QGuiApplication) else 1.0


def _disk_cache(setting: bool | str | os.PathLike[str]) -> DiskCache | None:
    if setting is True:
        return DiskCache()
    if setting is False:
        return None
    if isinstance(setting, (str, os.PathLike)):
        return DiskCache(os.fspath(setting))
    raise TypeError(f"disk_cache must be True, False or a folder, got {setting!r}")


def _scaled(size: QSize, ratio: float) -> tuple[int, int]:
    """``size`` in device pixels at ``ratio`` (rounded up: never blurry)."""
    return math.ceil(size.width() * ratio - 1e-9), math.ceil(size.height() * ratio - 1e-9)
