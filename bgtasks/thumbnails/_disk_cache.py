"""The shared thumbnail cache on disk, after the freedesktop.org Thumbnail Managing Standard.

Thumbnails live in ``$XDG_CACHE_HOME/thumbnails`` (``~/.cache/thumbnails``
when the variable is unset or not absolute), in one folder per size:
``normal`` (128 px), ``large`` (256), ``x-large`` (512), ``xx-large`` (1024).
A thumbnail's name is the MD5 (hex) of its file's URI plus ``.png``; the URI
is ``file://`` and the absolute path's bytes, percent-encoded as GLib does
(so the file managers and image viewers that follow the standard find ours,
and we theirs).  Each PNG carries the text keys ``Thumb::URI`` and
``Thumb::MTime`` (the file's modification time, whole seconds) and
``Thumb::Size``; a thumbnail is used only when the URI and the MTime (and the
size, if it has one) match the file now, so a changed file is thumbnailed
again.  Ours also carry ``bgtasks::MTimeNs``, the exact time, checked when
present: a change within the same second is seen too.

Files that could not be decoded get an entry in ``fail/bgtasks-<version>/``
(the standard's place for one program's failures), with the same keys and the
reason, so they are not tried again until they change.

``thumbnail`` reads (or decodes) and hands back what to write; ``store``
writes it, so a loader delivers a new thumbnail first and writes it later.
Writes are atomic: a temporary file in the same folder (mode 0600), renamed
over the thumbnail; folders are made with mode 0700.  A damaged or foreign
file is ignored and replaced; a cache that cannot be written is reported once
on the ``bgtasks`` logger and otherwise ignored: it never fails a thumbnail.

Threads: every method may be called from any thread (the loader's workers
call them); the object holds no state that changes except the "reported
once" flag.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import QByteArray, QSize
from PySide6.QtGui import QImage, QImageReader, QImageWriter

from .._version import __version__
from ._decode import ByteBuffer, ThumbnailError, is_regular_or_missing, scale_to_fit

logger = logging.getLogger("bgtasks")

#: The standard's folders, smallest first, and the largest side of their thumbnails.
FLAVOURS: tuple[tuple[str, int], ...] = (
    ("normal", 128),
    ("large", 256),
    ("x-large", 512),
    ("xx-large", 1024),
)

# Kept unescaped in a URI's path, as GLib's g_filename_to_uri does.
_SAFE = "!$&'()*+,;=:@/~"


def default_cache_root() -> str:
    """``$XDG_CACHE_HOME/thumbnails``, or ``~/.cache/thumbnails``.  Any thread."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):  # the XDG spec: a relative value is ignored
        base = os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "thumbnails")


def file_uri(path: str) -> str:
    """The ``file://`` URI of ``path`` as the standard hashes it.  Any thread.

    Args:
        path: A file path (made absolute; a non-UTF-8 name keeps its bytes).
    """
    raw = os.fsencode(os.path.abspath(path))
    return "file://" + urllib.parse.quote(raw, safe=_SAFE)


def thumbnail_name(path: str) -> str:
    """The file name of ``path``'s thumbnail: MD5 hex of its URI + ``.png``.  Any thread.

    Args:
        path: The image file.
    """
    return hashlib.md5(file_uri(path).encode("ascii"), usedforsecurity=False).hexdigest() + ".png"


def flavour_for(pixels: int) -> str | None:
    """The smallest flavour whose thumbnails are at least ``pixels`` wide.  Any thread.

    Args:
        pixels: The largest side needed, in device pixels.

    Returns:
        Its folder name, or None if even ``xx-large`` is too small.
    """
    return next((name for name, side in FLAVOURS if side >= pixels), None)


@dataclass(frozen=True)
class _Source:
    """What identifies one version of a file: its path, URI, mtime and size."""

    path: str
    uri: str
    mtime_ns: int
    size: int
    name: str


@dataclass(frozen=True)
class DiskWrite:
    """A thumbnail to write: where, of which version of which file, the image."""

    where: str
    source: _Source
    image: QImage


class DiskCache:
    """Reads and writes thumbnails under ``root``, as the standard lays them out.

    Any thread (the loader's workers call it).

    Args:
        root: The folder holding ``normal/``, ``large/``, ..., ``fail/``
            (default ``default_cache_root()``).

    Attributes:
        root: As the argument, absolute.
    """

    def __init__(self, root: str | None = None) -> None:
        self.root = os.path.abspath(default_cache_root() if root is None else root)
        self._fail_dir = os.path.join(self.root, "fail", f"bgtasks-{__version__}")
        self._reported = False

    def path_of(self, path: str, flavour: str) -> str:
        """Where the ``flavour`` thumbnail of ``path`` is kept.  Any thread.

        Args:
            path: The image file.
            flavour: ``"normal"``, ``"large"``, ``"x-large"`` or ``"xx-large"``.
        """
        return os.path.join(self.root, flavour, thumbnail_name(path))

    def fail_path_of(self, path: str) -> str:
        """Where the failure entry of ``path`` is kept.  Any thread.

        Args:
            path: The image file.
        """
        return os.path.join(self._fail_dir, thumbnail_name(path))

    def thumbnail(
        self, path: str, box: QSize, decode: Callable[[str, QSize], QImage]
    ) -> tuple[QImage, DiskWrite | None]:
        """``path``'s thumbnail, fitting ``box``, from the cache or decoded.

        A decoded thumbnail is not written yet: the second value says what to
        write (``store`` it), so the caller can deliver the image first.  A
        failure is written at once, and a failure remembered for this version
        of the file is raised again without decoding.  Any thread (a worker's).

        Args:
            path: The image file.
            box: The largest size, in device pixels.
            decode: ``decode(path, size) -> QImage``, which may raise ``ThumbnailError``.

        Returns:
            The image, and None if it came from the cache (or cannot be cached),
            else the write for ``store``.

        Raises:
            ThumbnailError: the file cannot be read, now or when last tried.
        """
        source = self._source(path)
        flavour = flavour_for(max(box.width(), box.height()))
        if source is None or flavour is None:  # missing (decode says so), or too big to cache
            return decode(path, box), None
        failed = self._read_entry(self.fail_path_of(path), source)
        if failed is not None:
            raise ThumbnailError(path, failed.text("bgtasks::Error") or "failed before")
        names = [name for name, _ in FLAVOURS]
        for name in names[names.index(flavour) :]:  # a larger one will do as well
            cached = self._read_entry(self.path_of(path, name), source)
            if cached is not None:
                return scale_to_fit(cached, box), None
        side = dict(FLAVOURS)[flavour]
        try:
            image = decode(path, QSize(side, side))
        except ThumbnailError as exc:
            self._write(self.fail_path_of(path), source, QImage(1, 1, QImage.Format.Format_ARGB32),
                        error=exc.reason)  # fmt: skip
            raise
        return scale_to_fit(image, box), DiskWrite(self.path_of(path, flavour), source, image)

    def store(self, write: DiskWrite) -> None:
        """Write a thumbnail ``thumbnail`` decoded (atomically; a failure is logged
        once and otherwise ignored).  Any thread (a worker's).

        Args:
            write: The second value ``thumbnail`` returned.
        """
        self._write(write.where, write.source, write.image)

    # ------------------------------------------------------------------ entries

    @staticmethod
    def _source(path: str) -> _Source | None:
        try:
            st = os.stat(path)
        except OSError:
            return None
        return _Source(path, file_uri(path), st.st_mtime_ns, st.st_size, thumbnail_name(path))

    @staticmethod
    def _read_entry(where: str, source: _Source) -> QImage | None:
        """The PNG at ``where`` if it is a thumbnail of this version of the file."""
        if not is_regular_or_missing(where):
            return None  # a pipe or a folder in its place: never opened (it may block)
        try:
            with open(where, "rb") as f:
                data = f.read()
        except OSError:
            return None
        buffer = ByteBuffer(data)
        reader = QImageReader(buffer, b"png")
        # Text keys before the pixels come with the header: a thumbnail of
        # another file or version is rejected without decoding it.
        image: QImage | None = None
        text = reader.text
        if not reader.text("Thumb::URI"):  # the keys may follow the pixels
            image = reader.read()
            text = image.text
        if text("Thumb::URI") != source.uri:
            return None
        if text("Thumb::MTime") != str(source.mtime_ns // 1_000_000_000):
            return None
        size, exact = text("Thumb::Size"), text("bgtasks::MTimeNs")
        if (size and size != str(source.size)) or (exact and exact != str(source.mtime_ns)):
            return None
        if image is None:
            image = reader.read()
        return None if image.isNull() else image

    def _write(self, where: str, source: _Source, image: QImage, error: str = "") -> None:
        image = QImage(image)  # a shallow copy: the caller's keeps no text
        image.setText("Thumb::URI", source.uri)
        image.setText("Thumb::MTime", str(source.mtime_ns // 1_000_000_000))
        image.setText("Thumb::Size", str(source.size))
        image.setText("bgtasks::MTimeNs", str(source.mtime_ns))
        image.setText("Software", f"bgtasks {__version__}")
        if error:
            image.setText("bgtasks::Error", error)
        buffer = ByteBuffer()
        writer = QImageWriter(buffer, QByteArray(b"png"))
        writer.setQuality(50)  # zlib level ~4: a third of the default's time, as small
        if not writer.write(image):
            self._report(where, f"cannot encode the PNG: {writer.errorString()}")
            return
        data = buffer.data().data()
        folder = os.path.dirname(where)
        tmp = ""
        try:
            self._make_folder(folder)
            fd, tmp = tempfile.mkstemp(prefix=".bgtasks-", suffix=".png", dir=folder)  # 0600
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, where)
        except OSError as exc:
            if tmp:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass
            self._report(where, str(exc))

    def _make_folder(self, folder: str) -> None:
        """``folder`` (under ``root``), the folders it needs from ``root`` on made 0700."""
        if os.path.isdir(folder):
            return
        os.makedirs(os.path.dirname(self.root), exist_ok=True)  # e.g. ~/.cache: as it comes
        path = self.root
        for part in ["", *os.path.relpath(folder, self.root).split(os.sep)]:
            path = os.path.join(path, part) if part else path
            try:
                os.mkdir(path, 0o700)
            except FileExistsError:
                pass

    def _report(self, where: str, why: str) -> None:
        if not self._reported:  # once: a read-only cache would say it for every image
            self._reported = True
            logger.warning("thumbnail disk cache: cannot write %s: %s", where, why)
