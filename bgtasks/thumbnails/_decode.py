"""Decoding an image file to a small ``QImage``: what a worker runs.

``decode_thumbnail`` reads with ``QImageReader`` and a scaled size, so JPEGs
decode at a fraction of their resolution.  Two traps of ``QImageReader``:

* a path is a Python ``str``, and a file name that is not UTF-8 (what
  ``os.listdir`` returns for it, with surrogate escapes) does not survive the
  conversion to a ``QString``: such a file is read by Python and handed to the
  reader as bytes;
* a reader refuses any image whose full size is over its allocation limit
  (256 MB: a 9000x9000 RGB image), even with a scaled size, when its format
  cannot scale while decoding (PNG cannot; JPEG can).  Such an image is decoded
  in full once, one at a time (``_HUGE``), under a limit raised to what it
  needs (at most ``MAX_DECODE_MEGABYTES``), and scaled down at once.  The
  limit is process-wide: a reader in another thread meanwhile gets the raised
  limit too, which only matters for an image that would have been refused.

Threads: everything here may be called from any thread; it makes ``QImage``
objects only.
"""

from __future__ import annotations

import os
import stat
import threading
from typing import Any

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QSize, Qt
from PySide6.QtGui import QImage, QImageIOHandler, QImageReader

from ..core._errors import BgTasksError
from ..qt._home_thread import DiesAtHome

#: The largest image (in megabytes of decoded pixels, 4 bytes each) a
#: thumbnail decode may allocate when the format cannot decode at a smaller
#: scale.  Bigger images fail with a message that says so.
MAX_DECODE_MEGABYTES = 1024

# One full-size decode of a huge image at a time: it bounds the memory, and it
# guards the process-wide allocation limit it raises while it reads.
_HUGE = threading.Lock()


class ThumbnailError(BgTasksError, OSError):
    """An image could not be read: missing, broken, too large or of an unsupported format.

    Args:
        path: The image file, exactly as the caller gave it.
        reason: What went wrong (``QImageReader``'s error, for one).

    Attributes:
        path: As the argument.
        reason: As the argument.
    """

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"cannot read image {printable(path)}: {reason}")
        self.path = path
        self.reason = reason

    def __reduce__(self) -> tuple[type[ThumbnailError], tuple[str, str], dict[str, Any]]:
        # the instance dict too: notes (add_note) and anything set later survive
        return type(self), (self.path, self.reason), self.__dict__


def printable(text: str) -> str:
    """``text`` with the surrogate escapes of a non-UTF-8 file name written as
    ``\\udcXX``, so it can be shown, logged and passed through Qt.  Any thread.

    Args:
        text: A path or file name.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


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


def scale_to_fit(image: QImage, box: QSize) -> QImage:
    """``image`` scaled down (smoothly) to fit in ``box``; itself if it fits.  Any thread.

    Args:
        image: The image.
        box: The largest size allowed.
    """
    target = fit_size(image.size(), box)
    if target == image.size():
        return image
    return image.scaled(
        target, Qt.AspectRatioMode.IgnoreAspectRatio, Qt.TransformationMode.SmoothTransformation
    )


class ByteBuffer(DiesAtHome, QBuffer):
    """A ``QBuffer`` over bytes, destroyed on the thread that made it (a worker's).

    Any thread: made, used and dropped by one function.

    Args:
        data: The bytes to read, or None for an empty buffer to write.
    """

    def __init__(self, data: bytes | None = None) -> None:
        super().__init__()
        self._remember_home()  # a worker's object: destroyed there, whoever drops it last
        if data is None:
            self.open(QIODevice.OpenModeFlag.WriteOnly)
        else:
            self.setData(QByteArray(data))
            self.open(QIODevice.OpenModeFlag.ReadOnly)


def is_regular_or_missing(path: str) -> bool:
    """False if ``path`` exists and is not a regular file (a folder, a named
    pipe, a device): what no image reader may open.  Any thread; never blocks.

    Args:
        path: A file's path.
    """
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return True  # missing or unreadable: the reader says so in its own words
    return stat.S_ISREG(mode)


def open_reader(path: str) -> tuple[QImageReader, QBuffer | None]:
    """A reader of ``path``; for a file name Qt cannot spell, a reader of its bytes.

    Any thread.  The buffer, if any, must live as long as the reader.

    Args:
        path: The image file.

    Raises:
        ThumbnailError: the path is not a regular file (a named pipe would
            block the reader, holding the GIL: the whole app froze), or the
            file name is not UTF-8 and the file cannot be read.
    """
    if "\0" in path:  # Qt would read the file the name is cut to
        raise ThumbnailError(path, "the file name contains a NUL character")
    if not is_regular_or_missing(path):
        raise ThumbnailError(path, "not a regular file")
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as exc:
            raise ThumbnailError(path, exc.strerror or str(exc)) from None
        buffer = ByteBuffer(data)
        return QImageReader(buffer), buffer
    return QImageReader(path), None


def decode_thumbnail(path: str, size: QSize) -> QImage:
    """Read ``path`` scaled down to fit in ``size`` (aspect ratio kept, EXIF
    orientation applied).  Any thread: makes only a ``QImage``.

    Args:
        path: The image file (a file name that is not UTF-8 is read too).
        size: The largest size of the result, in pixels.

    Returns:
        The image, in a format ``QPixmap.fromImage`` takes without converting.

    Raises:
        ThumbnailError: the file is missing, broken, of an unsupported format,
            or larger than ``MAX_DECODE_MEGABYTES`` (the message names the path
            and ``QImageReader``'s error).
    """
    reader, _buffer = open_reader(path)
    reader.setAutoTransform(True)
    source = reader.size()
    huge = False
    if source.isValid():
        # The scaled size applies before the EXIF rotation: fit the shown shape.
        rotated = bool(
            reader.transformation() & QImageIOHandler.Transformation.TransformationRotate90
        )
        shown = source.transposed() if rotated else source
        target = fit_size(shown, size)
        if target != shown:
            reader.setScaledSize(target.transposed() if rotated else target)
        huge = _over_the_limit(reader, source)
    image = _read_huge(path, reader, source) if huge else reader.read()
    if image.isNull():
        raise ThumbnailError(path, reader.errorString())
    if image.width() > size.width() or image.height() > size.height():
        image = scale_to_fit(image, size)
    # The formats QPixmap.fromImage takes without a conversion on the UI thread.
    wanted = (
        QImage.Format.Format_ARGB32_Premultiplied
        if image.hasAlphaChannel()
        else QImage.Format.Format_RGB32
    )
    if image.format() != wanted:
        image.convertTo(wanted)
    return image


def _megabytes(size: QSize) -> float:
    return size.width() * size.height() * 4 / (1024 * 1024)


def _over_the_limit(reader: QImageReader, source: QSize) -> bool:
    """True if the reader would refuse ``source``: over the allocation limit,
    and no scaling while decoding (the check is on the full size then)."""
    limit = QImageReader.allocationLimit()
    if limit <= 0 or _megabytes(source) <= limit:
        return False
    return not reader.supportsOption(QImageIOHandler.ImageOption.ScaledSize)


def _read_huge(path: str, reader: QImageReader, source: QSize) -> QImage:
    needed = _megabytes(source)
    if needed > MAX_DECODE_MEGABYTES:
        raise ThumbnailError(
            path,
            f"the image is {source.width()}x{source.height()}: decoding it needs "
            f"{needed:.0f} MB, over the {MAX_DECODE_MEGABYTES} MB a thumbnail may use",
        )
    with _HUGE:
        before = QImageReader.allocationLimit()
        QImageReader.setAllocationLimit(int(needed) + 64)
        try:
            return reader.read()
        finally:
            QImageReader.setAllocationLimit(before)


__all__ = [
    "MAX_DECODE_MEGABYTES",
    "ByteBuffer",
    "ThumbnailError",
    "decode_thumbnail",
    "fit_size",
    "open_reader",
    "printable",
    "scale_to_fit",
]
