"""The thumbnail delegate: every image centred in the same box, every caption on one line.

``QStyledItemDelegate`` lays an item out around its decoration's own size: in
``IconMode`` a landscape thumbnail's caption then sits higher than a portrait
one's, and an item still loading has no decoration at all, so its caption
jumps when the image arrives.  ``ThumbnailDelegate`` gives the style the
thumbnail box instead (the loader's size, in device-independent pixels) as
the decoration's size, with or without an image: the style centres the image
in the box, and the captions of a row share one line.

Threads: the UI thread only, like the view it draws.
"""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QObject, QPersistentModelIndex, QSize
from PySide6.QtWidgets import QStyledItemDelegate, QStyleOptionViewItem

from ..qt._home_thread import DiesAtHome


class ThumbnailDelegate(DiesAtHome, QStyledItemDelegate):
    """Draws each thumbnail centred in a ``size`` box, its caption under the box.

    ``view.setItemDelegate(ThumbnailDelegate(loader.size, view))`` with a
    ``ThumbnailModel`` (whose size hint holds the box and the caption).
    UI thread only.

    Args:
        size: The thumbnail box, in device-independent pixels (the loader's ``size``).
        parent: The QObject parent (the view, usually).

    Raises:
        ValueError: ``size`` is smaller than 1x1.
    """

    def __init__(self, size: QSize, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._remember_home()  # destroyed on this thread, whoever drops it last
        if size.width() < 1 or size.height() < 1:
            raise ValueError(f"size must be at least 1x1, got {size.width()}x{size.height()}")
        self._box = QSize(size)

    @property
    def box(self) -> QSize:
        """The thumbnail box (a copy).  UI thread."""
        return QSize(self._box)

    def initStyleOption(  # noqa: N802 - Qt override
        self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> None:
        """Qt override: the item's option, its decoration the whole box.  UI thread.

        Args:
            option: The option to fill in.
            index: The item.
        """
        super().initStyleOption(option, index)
        option.features |= QStyleOptionViewItem.ViewItemFeature.HasDecoration
        option.decorationSize = QSize(self._box)
