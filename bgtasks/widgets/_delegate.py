"""``ProgressDelegate``: paints a cell as a progress bar.

GUI thread only, as every painting class.
"""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QPainter
from PySide6.QtWidgets import (
    QApplication,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionProgressBar,
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

    #: Steps of the bar; a fraction is shown to 0.1 %.
    RANGE = 1000

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
        bar = QStyleOptionProgressBar()
        if widget is not None:
            bar.initFrom(widget)
        bar.state = option.state | QStyle.StateFlag.State_Horizontal
        bar.direction = option.direction
        bar.rect = option.rect.adjusted(2, 2, -2, -2)
        bar.fontMetrics = option.fontMetrics
        bar.palette = option.palette
        bar.minimum = 0
        bar.maximum = self.RANGE
        bar.progress = round(max(0.0, min(1.0, float(fraction))) * self.RANGE)
        bar.text = str(text)
        bar.textVisible = True
        bar.textAlignment = Qt.AlignmentFlag.AlignCenter
        style.drawControl(QStyle.ControlElement.CE_ProgressBar, bar, painter, widget)
