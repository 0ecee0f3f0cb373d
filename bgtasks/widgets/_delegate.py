"""``ProgressDelegate``: paints a cell as a progress bar.

GUI thread only, as every painting class.
"""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QRect, Qt
from PySide6.QtGui import QPainter, QPalette
from PySide6.QtWidgets import (
    QApplication,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
)

from ._model import TaskModel


class ProgressDelegate(QStyledItemDelegate):
    """Draws the cell's ``TaskModel.ProgressRole`` (0..1) as a progress bar,
    with the cell's display text (e.g. "42%") on it.

    Install it on the progress column (``view.setItemDelegateForColumn``).
    Cells without a progress value or without text (a task that reported no
    progress) are drawn as usual.
    """

    def paint(  # noqa: D102 - Qt override
        self,
        painter: QPainter,
        option: QStyleOptionViewItem,
        index: QModelIndex | QPersistentModelIndex,
    ) -> None:
        """Qt override: a progress bar for a cell with a fraction, else the default look (GUI thread)."""
        fraction = index.data(TaskModel.ProgressRole)
        text = index.data(Qt.ItemDataRole.DisplayRole)
        if fraction is None or not text:  # no progress to show (not started, say)
            super().paint(painter, option, index)
            return
        widget = option.widget
        style = widget.style() if widget is not None else QApplication.style()
        # the selection / hover background first, as other cells have it
        style.drawPrimitive(QStyle.PrimitiveElement.PE_PanelItemViewItem, option, painter, widget)
        # A plain bar: the style's CE_ProgressBar (gradients, a frame) cost ~50 us
        # a cell, a third of a flood's repaint; these few fills cost a fifth of it.
        # A light track and a translucent highlight: dark text reads on both,
        # in selected rows too.
        palette = option.palette
        rect = option.rect.adjusted(2, 3, -2, -3)
        painter.fillRect(rect, palette.color(QPalette.ColorRole.Base).darker(106))
        filled = round(rect.width() * max(0.0, min(1.0, float(fraction))))
        if filled > 0:
            colour = palette.color(QPalette.ColorRole.Highlight)
            colour.setAlpha(110)
            painter.fillRect(QRect(rect.left(), rect.top(), filled, rect.height()), colour)
        painter.setPen(palette.color(QPalette.ColorRole.Text))
        painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, str(text))
