"""The thumbnail model: a list model over image paths whose decoration is the thumbnail.

It answers from its ``ThumbnailLoader``'s cache and
announces each arrival with ``dataChanged``; it loads nothing itself except,
when no view is attached to the loader, the rows a view asks to paint.

Threads: the model belongs to the UI thread, like its loader.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from PySide6.QtCore import (
    QAbstractListModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QSize,
    Qt,
)
from PySide6.QtGui import QFont, QFontMetrics
from PySide6.QtWidgets import QApplication, QStyle, QStyleOptionViewItem

from ..core._validate import check_count
from ..qt._home_thread import DiesAtHome
from ._loader import ThumbnailLoader


class ThumbnailModel(DiesAtHome, QAbstractListModel):
    """A list model over image paths whose ``DecorationRole`` is the thumbnail.

    ``DisplayRole`` is the file name (the caption), ``ToolTipRole`` the path
    (or the error), ``path_role`` (``Qt.UserRole``) the path.
    ``DecorationRole`` is the pixmap once loaded, the loader's placeholder for
    a failed file, and None while loading; ``dataChanged`` announces each
    arrival.  ``SizeHintRole`` holds the thumbnail box (the loader's size,
    whatever the image's aspect ratio) and ``caption_lines`` lines of caption
    below it, measured by the application's style with ``caption_font``, plus
    ``size_hint_margin`` pixels on each side; it is the same before and after
    loading, so a view with ``setUniformItemSizes(True)`` sizes its items for
    the thumbnails instead of for the first empty row, and in ``IconMode``
    no caption overlaps its image.  A longer file name is elided.

    A file name that is not UTF-8 is shown with a replacement character; the
    path itself reaches the loader unchanged (``thumbnail_path``).

    When the loader follows a view (``attach_view``), the view decides what
    to load; otherwise asking for a row's decoration requests it.

    UI thread only; the loader's ``thumbnail_ready`` / ``thumbnail_failed``
    signals it follows arrive there.

    Args:
        paths: The image paths, one per row.
        loader: The loader that decodes the thumbnails.
        parent: The QObject parent.
        path_role: The role that answers a row's path.
        size_hint_margin: Pixels added on each side of the item for
            ``SizeHintRole``.
        caption_lines: Lines of caption below the thumbnail (0: no caption,
            ``DisplayRole`` is then None); more than one line needs
            ``view.setWordWrap(True)``, else a long name is elided on one line.
        caption_font: The font the view shows captions in (default: the
            application's font for list views).

    Raises:
        TypeError: ``size_hint_margin`` or ``caption_lines`` is not an int.
        ValueError: ``size_hint_margin`` or ``caption_lines`` is negative.
    """

    def __init__(
        self,
        paths: Iterable[str | os.PathLike[str]],
        loader: ThumbnailLoader,
        parent: QObject | None = None,
        path_role: int = Qt.ItemDataRole.UserRole,
        size_hint_margin: int = 4,
        caption_lines: int = 1,
        caption_font: QFont | None = None,
    ) -> None:
        super().__init__(parent)
        self._remember_home()  # destroyed on this thread, whoever drops it last
        check_count("size_hint_margin", size_hint_margin)
        check_count("caption_lines", caption_lines)
        self._loader = loader
        self._path_role = int(path_role)
        self._margin = int(size_hint_margin)
        self._caption_lines = caption_lines
        self._font = QFont(caption_font) if caption_font is not None else None
        self._size_hint: QSize | None = None
        self._paths: list[str] = []
        self._rows: dict[str, list[int]] = {}
        self._set(paths)
        loader.thumbnail_ready.connect(self._arrived)
        loader.thumbnail_failed.connect(self._arrived)

    @property
    def loader(self) -> ThumbnailLoader:
        """The loader whose thumbnails the model shows.  UI thread."""
        return self._loader

    def thumbnail_path(self, row: int) -> str | None:
        """The exact path of ``row`` (what ``attach_view`` reads), or None.  UI thread.

        Args:
            row: A row of the model.
        """
        return self._paths[row] if 0 <= row < len(self._paths) else None

    def item_size(self) -> QSize:
        """The ``SizeHintRole`` of every row: thumbnail box, caption and margins.  UI thread."""
        if self._size_hint is None:
            self._size_hint = _item_size(
                self._loader.size, self._caption_lines, self._font, self._margin
            )
        return QSize(self._size_hint)

    def paths(self) -> list[str]:
        """The paths, one per row (a copy).  UI thread."""
        return list(self._paths)

    def set_paths(self, paths: Iterable[str | os.PathLike[str]]) -> None:
        """Show ``paths`` instead (a model reset).  UI thread.

        Args:
            paths: The new image paths, one per row.
        """
        self.beginResetModel()
        self._set(paths)
        self.endResetModel()

    def _set(self, paths: Iterable[str | os.PathLike[str]]) -> None:
        self._paths = [os.fspath(p) for p in paths]
        rows: dict[str, list[int]] = {}
        for row, path in enumerate(self._paths):
            rows.setdefault(path, []).append(row)
        self._rows = rows

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008, N802
        """Qt override: how many paths (0 under a valid parent: a list has no children)."""
        return 0 if parent.isValid() else len(self._paths)

    def data(
        self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        """Qt override: a row's value for ``role`` (see the class); None for others.  UI thread."""
        if not index.isValid() or not 0 <= index.row() < len(self._paths):
            return None
        path = self._paths[index.row()]
        if role == Qt.ItemDataRole.DecorationRole:
            loader = self._loader
            pixmap = loader.cached(path)
            if pixmap is not None:
                return pixmap
            if loader.error(path) is not None:
                return loader.placeholder()
            if not loader.has_views() and not loader.is_pending(path):
                try:
                    loader._request(path, loader.default_priority, evictable=True)
                except RuntimeError:  # the manager was shut down
                    pass
            return None
        if role == self._path_role:
            return path
        if role == Qt.ItemDataRole.SizeHintRole:
            return self.item_size()
        if role == Qt.ItemDataRole.DisplayRole:
            return _shown(os.path.basename(path) or path) if self._caption_lines else None
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._loader.error(path) or _shown(path)
        return None

    def multiData(  # noqa: N802 - Qt override
        self,
        index: QModelIndex | QPersistentModelIndex,
        role_data_span: Any,  # a QModelRoleDataSpan: iterable, but PySide6's stubs omit __iter__
    ) -> None:
        """Qt override: every role a delegate asks for, in one call.  UI thread."""
        # One call per item for a delegate's ~10 roles (as TaskModel.multiData).
        # Every slot is written: a span reused from item to item must not keep
        # the previous item's icon or text.  No value: cleared, not set to None
        # (a valid QVariant holding Python's None, which Qt would convert).
        valid = index.isValid() and 0 <= index.row() < len(self._paths)
        for slot in role_data_span:
            value = self.data(index, slot.role()) if valid else None
            if value is None:
                slot.clearData()
            else:
                slot.setData(value)

    def _arrived(self, path: str, *_: object) -> None:
        for row in self._rows.get(path, ()):
            index = self.index(row, 0)
            self.dataChanged.emit(index, index, [Qt.ItemDataRole.DecorationRole])


def _shown(text: str) -> str:
    """``text`` as Qt can show it: a non-UTF-8 byte becomes U+FFFD."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _item_size(box: QSize, lines: int, font: QFont | None, margin: int) -> QSize:
    """An icon-mode item holding a ``box`` decoration above ``lines`` of text,
    as the application's style lays it out, plus ``margin`` on each side."""
    if lines == 0:
        return QSize(box.width() + 2 * margin, box.height() + 2 * margin)
    font = QFont(font) if font is not None else QApplication.font("QListView")  # type: ignore[call-overload]  # str at runtime
    option = QStyleOptionViewItem()
    option.features = (
        QStyleOptionViewItem.ViewItemFeature.HasDecoration
        | QStyleOptionViewItem.ViewItemFeature.HasDisplay
    )
    option.decorationPosition = QStyleOptionViewItem.Position.Top
    option.decorationAlignment = Qt.AlignmentFlag.AlignCenter
    option.displayAlignment = Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop
    option.decorationSize = QSize(box)
    option.font = font
    option.fontMetrics = QFontMetrics(font)
    option.text = "\u2028".join(["Xg"] * lines)  # the delegate's line separator
    style = QApplication.style()
    natural = style.sizeFromContents(QStyle.ContentsType.CT_ItemViewItem, option, QSize(), None)
    width = max(natural.width(), box.width() + 2 * style.pixelMetric(
        QStyle.PixelMetric.PM_FocusFrameHMargin, option, None) + 2)  # fmt: skip
    return QSize(width + 2 * margin, natural.height() + 2 * margin)
